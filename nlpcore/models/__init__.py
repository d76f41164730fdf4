"""Keras models of the project. Importing this package imports Keras and
registers the project's serializable layers, so packages can load them with
``safe_mode=True``."""

from . import layers  # noqa: F401  (registers the custom layers)
