"""Word vectors through gensim: load GloVe / word2vec / fastText files, cache them, train new ones,
and build the embedding matrix of a vocabulary with the Ma & Hovy fallbacks.

The only textrnn package that imports gensim, and only inside functions, so that `import textrnn`
and loading a saved model never need it. `subword_vector` reproduces fastText's vectors for
unseen words with numpy alone, for inference without gensim.

Its parts: ``vectors`` (the ``Vectors`` type), ``files`` (formats, parsing, the pickle guard),
``cache`` (the parse cache), ``matrix`` (a vocabulary's embedding matrix) and ``training``
(gensim training, writing and converting files, the vectors a run starts from).
"""
from textrnn.errors import DataFormatError
from textrnn.subwords import _ft_hash, _ngrams, subword_vector  # gensim-free, for inference

from .cache import default_cache_dir, file_sha256
from .files import (CACHE_MIN_BYTES, FORMATS, PICKLE_FORMATS, PICKLE_SUFFIXES, SUBWORD_BUCKETS_MAX,
                    _PARSERS, PathLike, fasttext_subword_table, load_vectors, sniff_format)
from .matrix import Coverage, EmbeddingTable, build_embedding_matrix, candidate_keys
from .training import (convert_vectors, resolve_vectors_path, save_vectors, train_word_vectors,
                       vectors_from_source)
from .vectors import Vectors

__all__ = ["CACHE_MIN_BYTES", "FORMATS", "PICKLE_FORMATS", "PICKLE_SUFFIXES", "SUBWORD_BUCKETS_MAX",
           "Coverage", "DataFormatError", "EmbeddingTable", "PathLike", "Vectors",
           "build_embedding_matrix", "candidate_keys", "convert_vectors", "default_cache_dir",
           "fasttext_subword_table", "file_sha256", "load_vectors", "resolve_vectors_path",
           "save_vectors", "sniff_format", "subword_vector", "train_word_vectors", "vectors_from_source",
           "_PARSERS", "_ft_hash", "_ngrams"]
