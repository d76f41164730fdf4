"""Keras models of the project. Importing this package imports Keras and
registers the project's serializable layers, so packages can load them with
``safe_mode=True``."""

# Every module that registers layers, so any package loads with safe_mode=True.
# Registered names must be unique across them (a test checks).
from . import attention, language_model, layers, seq2seq  # noqa: F401
