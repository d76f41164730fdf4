"""nlpcore: Malbeot's recurrent NLP models, tokenizers, decoding and training.

Importing this package is cheap: it never imports TensorFlow, JAX or Qt. The
Keras backend is loaded the first time a model is built or loaded.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
