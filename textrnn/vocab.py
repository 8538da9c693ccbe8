"""Vocabularies: words (a `tokenizers` WordLevel model saved as tokenizer.json), characters, labels.

The word vocabulary is a real ``tokenizers.Tokenizer``: its normalizer (lowercase, optional
digits -> 0) and a pre-tokenizer that keeps character offsets (English words and punctuation,
CJK split per character) travel inside ``tokenizer.json``, so the file also loads with
``tokenizers.Tokenizer.from_file`` and encodes raw text on its own.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from .errors import DataFormatError
from .utils import PathLike, atomic_write_text

PAD, UNK = "<pad>", "<unk>"

# One alternative per kind of token, tried in order: a CJK character alone; abbreviations (U.S.);
# numbers with inner separators (1,200.50, 2-1, 12:30); clitics ('s); words joined by hyphens;
# any other visible character alone. Whitespace separates and is never part of a token.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
TOKEN_PATTERN = (
    rf"[{_CJK}]"
    r"|(?:\p{L}\.){2,}"
    r"|\p{N}+(?:[.,:/-]\p{N}+)*"
    r"|['’]\p{L}+"
    rf"|[^\s\p{{P}}\p{{S}}{_CJK}]+(?:-[^\s\p{{P}}\p{{S}}{_CJK}]+)*"
    r"|\S"
)


def text_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Splits raw text into (token, (start, end)) with exact character offsets."""
    return pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(TOKEN_PATTERN), "isolated")]
    )


def pre_tokenize(text: str) -> List[Tuple[str, Tuple[int, int]]]:
    """``"U.S. troops"`` -> ``[("U.S.", (0, 4)), ("troops", (5, 11))]``, by today's pattern (a saved
    model tokenizes with its own: ``WordVocab.pre_tokenize``)."""
    return _pre_tokenize_with(_PRE_TOKENIZER, text, plain_ascii=True)


_PRE_TOKENIZER = text_pre_tokenizer()
_PRE_TOKENIZER_STATE = _PRE_TOKENIZER.__getstate__()
# TOKEN_PATTERN on plain ASCII text (printable characters, space, tab, line ends): there letters are
# A-Z and a-z, digits 0-9, every other printable character punctuation or a symbol, and nothing is
# CJK, so Python's re reads it as tokenizers reads the Unicode pattern after its whitespace split.
# Most English input is such text; split here, it costs 5 instead of 17 us per CoNLL-2003 sentence
# (tokenizers' per-token bookkeeping, not the regex, is what costs there). Any other character sends
# the whole text to tokenizers. tests/test_inference.py checks both ways agree on every string of up to
# two characters over this alphabet and on random longer ones: a change to TOKEN_PATTERN fails there.
_ASCII_TOKEN = re.compile(r"(?:[A-Za-z]\.){2,}|[0-9]+(?:[.,:/-][0-9]+)*|'[A-Za-z]+"
                          r"|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*|[!-~]")
_NOT_PLAIN_ASCII = re.compile(r"[^\t-\r -~]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """Lone surrogates (``"\\ud800"``, which no UTF-8 text can hold) as U+FFFD, one for one, so
    character offsets stay those of the original string."""
    return _SURROGATES.sub("\ufffd", text)


def _pre_tokenize_with(pre_tokenizer, text: str, plain_ascii: bool = False
                       ) -> List[Tuple[str, Tuple[int, int]]]:
    """``plain_ascii``: ``pre_tokenizer`` is today's, so plain ASCII text may be split in Python."""
    if plain_ascii and _NOT_PLAIN_ASCII.search(text) is None:
        return [(m.group(), m.span()) for m in _ASCII_TOKEN.finditer(text)]
    try:
        return pre_tokenizer.pre_tokenize_str(text)
    except UnicodeEncodeError:  # a lone surrogate cannot cross into Rust
        return pre_tokenizer.pre_tokenize_str(without_surrogates(text))


def _surrogate_safe(normalize: Callable[[str], str]) -> Callable[[str], str]:
    def safe(word: str) -> str:
        try:
            return normalize(word)
        except UnicodeEncodeError:
            return normalize(without_surrogates(word))
    return safe


def _normalizer(lowercase: bool, digits_to_zero: bool,
                unicode_normalize: bool = False) -> Optional[normalizers.Normalizer]:
    steps = [normalizers.NFKC()] if unicode_normalize else []  # full-width ＡＢＣ１ -> ABC1
    if lowercase:
        steps.append(normalizers.Lowercase())
    if digits_to_zero:
        steps.append(normalizers.Replace(Regex(r"\d"), "0"))
    return normalizers.Sequence(steps) if steps else None


class WordVocab:
    """Word -> id through a `tokenizers` WordLevel model; id 0 is padding, id 1 is unknown."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self._ids: Dict[str, int] = tokenizer.get_vocab()
        if self._ids.get(PAD) != 0 or self._ids.get(UNK) != 1:
            raise DataFormatError(None, None, f"a word vocabulary must map {PAD} to 0 and {UNK} to 1")
        normalizer = tokenizer.normalizer
        self._normalize = _surrogate_safe(normalizer.normalize_str if normalizer else without_surrogates)
        # The pre-tokenizer saved with the model, not today's pattern: a model keeps the
        # tokenization it was trained with (files without one fall back to the default).
        self._pre_tokenizer = tokenizer.pre_tokenizer or _PRE_TOKENIZER
        self._plain_ascii = self._pre_tokenizer.__getstate__() == _PRE_TOKENIZER_STATE
        self._cache: Dict[str, int] = {}
        self.counts: Counter = Counter()  # training frequencies of normalised words, when built here

    @classmethod
    def build(
        cls,
        sentences: Iterable[Sequence[str]],
        *,
        min_freq: int = 1,
        lowercase: bool = True,
        digits_to_zero: bool = False,
        unicode_normalize: bool = False,
        extra_words: Iterable[str] = (),
    ) -> "WordVocab":
        """Words seen at least ``min_freq`` times (most frequent first), then ``extra_words``."""
        normalizer = _normalizer(lowercase, digits_to_zero, unicode_normalize)
        norm = normalizer.normalize_str if normalizer else (lambda w: w)
        counts = Counter(norm(w) for sentence in sentences for w in sentence)
        frequent = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_freq]
        vocab = cls.from_words(frequent + [norm(w) for w in extra_words], lowercase=lowercase,
                               digits_to_zero=digits_to_zero, unicode_normalize=unicode_normalize)
        vocab.counts = counts
        return vocab

    @classmethod
    def from_words(cls, words: Iterable[str], *, lowercase: bool = True, digits_to_zero: bool = False,
                   unicode_normalize: bool = False) -> "WordVocab":
        """A vocabulary of exactly these (already normalised) words, after <pad> and <unk>."""
        entries: Dict[str, int] = {PAD: 0, UNK: 1}
        for w in words:
            entries.setdefault(w, len(entries))
        tokenizer = Tokenizer(models.WordLevel(entries, unk_token=UNK))
        tokenizer.normalizer = _normalizer(lowercase, digits_to_zero, unicode_normalize)
        tokenizer.pre_tokenizer = text_pre_tokenizer()
        return cls(tokenizer)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def words(self) -> List[str]:
        """All entries, in id order."""
        return [w for w, _ in sorted(self._ids.items(), key=lambda kv: kv[1])]

    def normalize(self, word: str) -> str:
        return self._normalize(word)

    def pre_tokenize(self, text: str) -> List[Tuple[str, Tuple[int, int]]]:
        """Raw text -> (token, (start, end)) by this vocabulary's own saved pre-tokenizer."""
        return _pre_tokenize_with(self._pre_tokenizer, text, self._plain_ascii)

    def tokens_and_offsets(self, text: str) -> Tuple[Sequence[str], Sequence[Tuple[int, int]]]:
        """``pre_tokenize`` as two sequences, tokens and their (start, end): what the NER pipeline
        keeps, without building pairs to take apart again."""
        if self._plain_ascii and _NOT_PLAIN_ASCII.search(text) is None:
            tokens, offsets, end, find = _ASCII_TOKEN.findall(text), [], 0, text.find
            for token in tokens:  # only whitespace lies between tokens, and no token starts with it
                start = find(token, end)
                end = start + len(token)
                offsets.append((start, end))
            return tokens, offsets
        pieces = self.pre_tokenize(text)
        return tuple(zip(*pieces)) if pieces else ((), ())  # type: ignore[return-value]

    def id(self, word: str) -> int:
        """The id of one (already pre-tokenized) word; unknown words map to 1."""
        i = self._cache.get(word)
        if i is None:
            i = self._ids.get(self._normalize(word), 1)
            if len(self._cache) < 1_000_000:
                self._cache[word] = i
        return i

    def encode(self, words: Sequence[str]) -> List[int]:
        return [self.id(w) for w in words]

    def save(self, path: PathLike) -> None:
        atomic_write_text(path, self.tokenizer.to_str(pretty=False))

    @classmethod
    def load(cls, path: PathLike) -> "WordVocab":
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as err:  # tokenizers raises a bare Exception with a serde message
            if isinstance(err, DataFormatError):
                raise DataFormatError(path, None, err.message) from None
            raise DataFormatError(path, None, f"not a readable tokenizers file ({err})") from None


class _SymbolVocab:
    """A list of symbols saved as JSON ``{key: [...]}``; id 0 pads, id 1 is unknown."""

    key = "symbols"

    def __init__(self, symbols: Sequence[str]):
        self.symbols = list(symbols)
        if self.symbols[:2] != [PAD, UNK]:
            raise DataFormatError(None, None, f"a {self.key} vocabulary must start with {PAD}, {UNK}")
        self._ids = {c: i for i, c in enumerate(self.symbols)}

    @classmethod
    def _from_counts(cls, counts: Counter, min_freq: int):
        kept = sorted((c for c, n in counts.items() if n >= min_freq), key=lambda c: (-counts[c], c))
        return cls([PAD, UNK] + kept)

    def __len__(self) -> int:
        return len(self.symbols)

    def save(self, path: PathLike) -> None:
        atomic_write_text(path, json.dumps({self.key: self.symbols}, ensure_ascii=False))

    @classmethod
    def load(cls, path: PathLike):
        try:
            return cls(json.loads(Path(path).read_text(encoding="utf-8"))[cls.key])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataFormatError(path, None, f"expected a JSON object with a {cls.key!r} list ({err})") from None


class CharVocab(_SymbolVocab):
    """Characters of the training words (case kept)."""

    key = "chars"

    def __init__(self, chars: Sequence[str]):
        super().__init__(chars)
        self._cache: Dict[Tuple[str, int], List[int]] = {}

    @property
    def chars(self) -> List[str]:
        return self.symbols

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1) -> "CharVocab":
        return cls._from_counts(Counter(c for sentence in sentences for w in sentence for c in w), min_freq)

    def encode_word(self, word: str, max_length: int) -> List[int]:
        """Character ids of a word (cut at max_length); callers must not modify the list."""
        key = (word, max_length)
        ids = self._cache.get(key)
        if ids is None:
            ids = [self._ids.get(c, 1) for c in word[:max_length]] or [1]
            if len(self._cache) < 1_000_000:
                self._cache[key] = ids
        return ids


END = "</s>"


class BigramVocab(_SymbolVocab):
    """Each token joined with the next (``</s>`` after the last): a strong feature for Chinese NER
    (Zhang and Yang, 2018), where a character alone says little."""

    key = "bigrams"

    @property
    def bigrams(self) -> List[str]:
        return self.symbols

    @staticmethod
    def pairs(tokens: Sequence[str]) -> List[str]:
        return [a + b for a, b in zip(tokens, list(tokens[1:]) + [END])]

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], min_freq: int = 1) -> "BigramVocab":
        return cls._from_counts(Counter(p for sentence in sentences for p in cls.pairs(sentence)), min_freq)

    def encode(self, tokens: Sequence[str]) -> List[int]:
        ids = self._ids
        return [ids.get(p, 1) for p in self.pairs(tokens)]
