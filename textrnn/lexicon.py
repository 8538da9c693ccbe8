"""A lexicon matched inside token sequences, for SoftLexicon-style Chinese NER (Ma et al., 2020).

Each character sees the lexicon words that Begin at it, have it in their Middle, End at it, or are
it as a Single-character word (its B/M/E/S sets). The model embeds each set as the
frequency-weighted mean of its words' vectors (``textrnn/modules/lexicon.py``).

The words live here, in ``lexicon.json`` beside the vocabularies; the numbers (each word's weight
and vector row) live in the model's weights. Matching and loading are pure Python: a saved model
needs neither jieba nor gensim. ``build_lexicon_features`` (training time only) reads a lexicon
file or jieba's dictionary, counts, and trains word vectors with gensim.
"""
from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from .errors import ConfigError, DataFormatError
from .utils import PathLike, atomic_write_text

logger = logging.getLogger(__name__)

B, M, E, S = range(4)  # the four sets; a token's code for a word is 4 * entry + set
SETS = "BMES"
PAD_ROW, NONE_ROW, UNK_ROW = 0, 1, 2  # vector rows: padding, the empty set, words without a row
WEIGHTINGS = ("frequency", "corpus", "uniform")


class Lexicon:
    """Words matched as contiguous runs of tokens; entry ``i + 1`` is ``words[i]`` (entry 0 pads)."""

    key = "lexicon"

    def __init__(self, words: Sequence[str], lowercase: bool = True):
        self.words = list(words)
        self.lowercase = lowercase
        # word -> entry, and every proper prefix of a word -> 0, so a scan stops at the first miss
        index: Dict[str, int] = {}
        for i, w in enumerate(self.words, 1):
            if not w or index.get(w):
                raise DataFormatError(None, None, f"lexicon entry {i} ({w!r}) is empty or repeated")
            for k in range(1, len(w)):
                index.setdefault(w[:k], 0)
            index[w] = i
        self._index = index

    def __len__(self) -> int:
        """Entries, padding included (the size of the model's weight table)."""
        return len(self.words) + 1

    def normalize(self, token: str) -> str:
        return token.lower() if self.lowercase else token

    def matches(self, tokens: Sequence[str]) -> List[Tuple[int, int, int]]:
        """(first, end, entry) of every lexicon word spelled by ``tokens[first:end]``, by first, then end."""
        toks = [self.normalize(t) for t in tokens]
        index, out = self._index, []
        for i in range(len(toks)):
            text = ""
            for j in range(i, len(toks)):
                text += toks[j]
                entry = index.get(text)
                if entry is None:
                    break
                if entry:
                    out.append((i, j + 1, entry))
        return out

    def codes(self, tokens: Sequence[str]) -> List[List[int]]:
        """Per token, ``4 * entry + set`` for each word of its B, M, E and S sets (the model's input)."""
        out: List[List[int]] = [[] for _ in tokens]
        for first, end, entry in self.matches(tokens):
            code = 4 * entry
            if end - first == 1:
                out[first].append(code + S)
                continue
            out[first].append(code + B)
            for k in range(first + 1, end - 1):
                out[k].append(code + M)
            out[end - 1].append(code + E)
        return out

    def sets(self, tokens: Sequence[str]) -> List[Dict[str, Set[str]]]:
        """Per token, ``{"B": {...}, "M": {...}, "E": {...}, "S": {...}}``: the words, readable."""
        return [{name: {self.words[c // 4 - 1] for c in codes if c % 4 == k} for k, name in enumerate(SETS)}
                for codes in self.codes(tokens)]

    def save(self, path: PathLike) -> None:
        atomic_write_text(path, json.dumps({self.key: self.words, "lowercase": self.lowercase},
                                           ensure_ascii=False))

    @classmethod
    def load(cls, path: PathLike) -> "Lexicon":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(data[cls.key], lowercase=bool(data.get("lowercase", True)))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataFormatError(path, None, f"expected a JSON object with a {cls.key!r} list of words ({err})") from None


def load_model_lexicon(folder: PathLike, config) -> Optional[Lexicon]:
    """A saved or exported model's lexicon (None when its config has none), checked against the config."""
    if not config.lexicon_size:
        return None
    from .hub import LEXICON_NAME

    path = Path(folder) / LEXICON_NAME
    lexicon = Lexicon.load(path)
    if len(lexicon) != config.lexicon_size:
        raise DataFormatError(path, None, f"holds {len(lexicon) - 1} words but config.json says "
                              f"lexicon_size {config.lexicon_size} (entries, padding included)")
    return lexicon


# ------------------------------------------------------------------------------- reading lexicons
def read_lexicon_file(path: PathLike, lowercase: bool = True) -> Dict[str, float]:
    """word -> frequency from a file of ``WORD [FREQUENCY [anything]]`` lines (jieba's dict.txt
    format; a word without a frequency counts 1). Words equal after lowercasing add up."""
    out: Dict[str, float] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise DataFormatError(path, None, f"expected UTF-8 text ({err})") from None
    except OSError as err:
        raise DataFormatError(path, None, f"cannot read the lexicon file ({err.strerror})") from None
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        freq = 1.0
        if len(parts) > 1:
            try:
                freq = float(parts[1])
            except ValueError:
                raise DataFormatError(path, lineno, f"expected 'WORD [FREQUENCY]', found {line[:60]!r}") from None
            if not freq >= 0 or math.isinf(freq):
                raise DataFormatError(path, lineno, f"expected a frequency of 0 or more, found {parts[1]!r}")
        word = parts[0].lower() if lowercase else parts[0]
        out[word] = out.get(word, 0.0) + freq
    if not out:
        raise DataFormatError(path, None, "the lexicon file holds no words; expected one 'WORD [FREQUENCY]' a line")
    return out


def lexicon_path(spec: str) -> Path:
    """A lexicon file: ``jieba`` names the dictionary shipped with the jieba package (349k words with
    frequencies counted on a large corpus, offline); anything else is a path."""
    if spec == "jieba":
        try:
            import jieba  # noqa: F401  (only its data file is used)
        except ImportError:
            raise ConfigError("--lexicon jieba needs the jieba package: pip install 'textrnn[chinese]' "
                              "(or give a lexicon file: one 'WORD [FREQUENCY]' a line)") from None
        return Path(jieba.__file__).parent / "dict.txt"
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DataFormatError(path, None, "no such lexicon file; expected 'jieba' or a file of 'WORD [FREQUENCY]' lines")
    return path


# ----------------------------------------------------------------------------------- segmentation
def segment(tokens: Sequence[str], lexicon: Lexicon, freq: Sequence[float]) -> List[str]:
    """The most probable split of ``tokens`` into lexicon words under a unigram model (``freq[entry]``),
    as jieba's dictionary path does; a token no word covers stands alone with frequency 1. The words
    are what gensim trains lexicon vectors on."""
    n = len(tokens)
    total = math.log(max(sum(freq), 1.0))
    edges: List[List[Tuple[int, float]]] = [[] for _ in range(n + 1)]  # end -> (first, log p)
    for first, end, entry in lexicon.matches(tokens):
        edges[end].append((first, math.log(max(freq[entry], 1.0)) - total))
    best = [0.0] + [-math.inf] * n
    back = [0] * (n + 1)
    for end in range(1, n + 1):
        options = edges[end] + [(end - 1, -total)]  # a token alone
        for first, logp in options:
            if best[first] + logp > best[end]:
                best[end], back[end] = best[first] + logp, first
    words, end = [], n
    while end > 0:
        words.append("".join(lexicon.normalize(t) for t in tokens[back[end]:end]))
        end = back[end]
    return words[::-1]


def maximal_counts(sentences: Iterable[Sequence[str]], lexicon: Lexicon) -> Counter:
    """Per entry, how often it matches where no longer match covers it (SoftLexicon's frequency)."""
    counts: Counter = Counter()
    for tokens in sentences:
        found = lexicon.matches(tokens)
        for first, end, entry in found:
            if not any(f <= first and end <= e and (f, e) != (first, end) for f, e, _ in found):
                counts[entry] += 1
    return counts


# ----------------------------------------------------------------------------------------- building
@dataclass
class LexiconFeatures:
    """What a tagger needs to carry a lexicon: the words, and per entry its weight and vector row."""

    lexicon: Lexicon
    weights: List[float]  # per entry (entry 0, padding, weighs 0)
    rows: List[int]  # per entry: its vector row (UNK_ROW for words without one)
    num_rows: int
    num_trainable: int  # rows below this are fine-tuned; the rest stay as gensim trained them
    vectors: Optional[object] = None  # (num_rows, dim) float tensor, or None for random rows


def build_lexicon_features(spec: str, train_sentences: Iterable[Sequence[str]], *, dim: int = 50,
                           weighting: str = "frequency", vectors: str = "word2vec",
                           extra_sentences: Sequence[Sequence[str]] = (), seed: int = 42) -> LexiconFeatures:
    """The lexicon ``spec`` (``jieba`` or a file) with weights and vector rows for a tagger.

    Rows: words matched in the training text (fine-tuned), then words matched only in the extra
    (unlabelled) text (frozen); any other word shares the ``<unk>`` row but still counts in its
    sets' weights. ``weighting``: the lexicon's frequencies, SoftLexicon's counts of maximal matches
    in the text (plus one), or uniform. ``vectors``: ``word2vec`` trains them with gensim on the text
    segmented by the lexicon; ``random`` does not.
    """
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"lexicon weighting must be one of {', '.join(WEIGHTINGS)}; got {weighting!r}")
    if vectors not in ("word2vec", "random"):
        raise ConfigError(f"lexicon vectors must be 'word2vec' or 'random'; got {vectors!r}")
    path = lexicon_path(spec)
    freq_of = read_lexicon_file(path)
    lexicon = Lexicon(sorted(freq_of, key=lambda w: (-freq_of[w], w)))
    freq = [0.0] + [freq_of[w] for w in lexicon.words]
    train_sentences, extra_sentences = list(train_sentences), list(extra_sentences)
    train_counts = maximal_counts(train_sentences, lexicon)
    extra_counts = maximal_counts(extra_sentences, lexicon)
    seen = Counter(e for s in train_sentences for _, _, e in lexicon.matches(s))
    seen_extra = Counter(e for s in extra_sentences for _, _, e in lexicon.matches(s))
    trainable = sorted(seen, key=lambda e: (-seen[e], e))
    frozen = sorted((e for e in seen_extra if e not in seen), key=lambda e: (-seen_extra[e], e))
    rows = [PAD_ROW] + [UNK_ROW] * len(lexicon.words)
    for r, entry in enumerate(trainable + frozen, 3):
        rows[entry] = r
    num_rows = 3 + len(trainable) + len(frozen)
    if weighting == "frequency":
        weights = [0.0] + [max(f, 1.0) for f in freq[1:]]
    elif weighting == "corpus":
        weights = [0.0] + [1.0 + train_counts[e] + extra_counts[e] for e in range(1, len(lexicon))]
    else:
        weights = [0.0] + [1.0] * len(lexicon.words)
    logger.info("lexicon %s: %d words, %d matched in the training text (%d matches), %d more in the extra "
                "text", path, len(lexicon.words), len(trainable), sum(seen.values()), len(frozen))
    table = None
    if vectors == "word2vec":
        table = _train_vectors(train_sentences + extra_sentences, lexicon, freq, rows, num_rows, dim, seed)
    return LexiconFeatures(lexicon, weights, rows, num_rows, 3 + len(trainable), table)


def _train_vectors(sentences, lexicon: Lexicon, freq, rows, num_rows: int, dim: int, seed: int):
    """gensim Word2Vec on the text segmented by the lexicon; rows of words it never saw stay random."""
    import numpy as np
    import torch

    from . import embeddings as emb  # gensim is imported only here

    model = emb.train_word_vectors([segment(s, lexicon, freq) for s in sentences], "word2vec", dim=dim,
                                   seed=seed)
    rng = np.random.default_rng(seed)
    scale = math.sqrt(3.0 / dim)
    table = rng.uniform(-scale, scale, size=(num_rows, dim)).astype(np.float32)
    table[PAD_ROW] = 0.0
    found = 0
    for entry, row in enumerate(rows):
        word = lexicon.words[entry - 1] if entry else None
        if row > UNK_ROW and word in model.wv.key_to_index:
            table[row] = model.wv[word]
            found += 1
    logger.info("lexicon vectors: %d of %d rows from word2vec trained on the segmented text", found, num_rows - 3)
    return torch.from_numpy(table)
