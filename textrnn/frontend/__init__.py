"""Strings to arrays and arrays to results: all a tagger or classifier does around its network.

Shared by the torch backend (``textrnn.tasks``) and the ONNX one (``textrnn.export.runtime``):
each backend only says how to turn a batch of arrays into emissions or probabilities. Imports
neither torch nor datasets, so an exported model runs on numpy, tokenizers and onnxruntime alone.

Its parts: ``arrays`` (padding, batches by length, character tables), ``base`` (``Frontend``: words
to ids, batching, the network one batch ahead), ``tagging`` (``TaggerFrontend``, ``SpanReader``) and
``classification`` (``ClassifierFrontend``).
"""
from .arrays import (TOKENS_PER_SENTENCE, Arrays, Item, char_arrays, gc_paused, length_batches, padded,
                     padded_codes)
from .base import Frontend
from .classification import ClassifierFrontend
from .tagging import TOKEN_CACHE_SIZE, Decoder, SpanReader, TaggerFrontend

__all__ = ["TOKENS_PER_SENTENCE", "TOKEN_CACHE_SIZE", "Arrays", "ClassifierFrontend", "Decoder", "Frontend",
           "Item", "SpanReader", "TaggerFrontend", "char_arrays", "gc_paused", "length_batches", "padded",
           "padded_codes"]
