"""Frozen settings for models and training, each round-tripping through JSON.

A saved model carries the config that built it; the ``architecture`` string is versioned
(``birnn-tagger/1``) so that later releases keep loading old folders.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from .errors import ConfigError
from .tags import SCHEMES

RNN_TYPES = ("lstm", "gru")
CHAR_ENCODERS = ("cnn", "lstm", "none")
POOLINGS = ("last", "mean", "max", "attention")


def _check_choice(name: str, value: str, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be positive; got {value}")


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
          dict: "a JSON object", type(None): "null"}


def _kind(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "a list"
    return _KINDS.get(type(value), type(value).__name__)


def _check_type(name: str, value: Any, hint: Any) -> Any:
    """``value`` as the annotation ``hint`` wants it (lists become tuples), or a ConfigError naming
    the field. Annotations this does not know are let through (the dataclass checks the rest)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return value
        return _check_type(name, value, rest[0])
    if origin is tuple or hint is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list; got {value!r} ({_kind(value)})")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_type(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
        return tuple(value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a JSON object; got {value!r} ({_kind(value)})")
        return value
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif hint is str:
        ok = isinstance(value, str)
    else:
        return value
    if not ok:
        raise ConfigError(f"{name} must be {_KINDS[hint]}; got {value!r} ({_kind(value)})")
    return float(value) if hint is float else value


def _check_at_least(minimum: int, **values: int) -> None:
    for name, value in values.items():
        if value < minimum:
            raise ConfigError(f"{name} must be {minimum} or more; got {value}")


def _check_lexicon(config) -> None:
    """The SoftLexicon fields shared by taggers and classifiers."""
    _check_at_least(0, lexicon_size=config.lexicon_size, lexicon_rows=config.lexicon_rows)
    _check_positive(lexicon_dim=config.lexicon_dim, lexicon_trainable=config.lexicon_trainable)
    if config.lexicon_size and config.lexicon_rows < 3:
        raise ConfigError(f"a lexicon needs lexicon_rows >= 3 (<pad>, <none>, <unk>); got {config.lexicon_rows}")
    if config.lexicon_trainable is not None and config.lexicon_trainable > config.lexicon_rows:
        raise ConfigError(f"lexicon_trainable ({config.lexicon_trainable}) exceeds lexicon_rows ({config.lexicon_rows})")


def _check_words(config) -> None:
    """What taggers and classifiers share: the word table, its subword and bigram parts, labels."""
    _check_positive(vocab_size=config.vocab_size, word_dim=config.word_dim, bigram_dim=config.bigram_dim)
    n = config.num_trainable_words
    if n is not None and not 0 < n <= config.vocab_size:
        raise ConfigError(f"num_trainable_words must be between 1 and vocab_size ({config.vocab_size}); got {n}")
    _check_at_least(0, subword_buckets=config.subword_buckets, bigram_vocab_size=config.bigram_vocab_size)
    _check_at_least(1, subword_min_n=config.subword_min_n)
    if config.subword_max_n < config.subword_min_n:
        raise ConfigError(f"subword_max_n ({config.subword_max_n}) is below subword_min_n ({config.subword_min_n})")
    if len(set(config.labels)) != len(config.labels):
        repeated = sorted({label for label in config.labels if config.labels.count(label) > 1})
        raise ConfigError(f"labels must be unique; {', '.join(map(repr, repeated))} appear more than once")


class _JSONMixin:
    """to_dict / from_dict / to_json_file that keep tuples as tuples and ignore nothing silently."""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Dict[str, Any]):
        """The config from JSON data: every value of the type its field declares (a number written
        as a string is an error, not a crash later), no unknown and no missing settings."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} settings must be a JSON object; got {_kind(data)}")
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        names = {f.name for f in fields}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__} does not know the setting(s) {', '.join(unknown)}")
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING and f.name not in data]
        if required:
            raise ConfigError(f"{cls.__name__} needs the setting(s) {', '.join(required)}")
        hints = typing.get_type_hints(cls)
        kwargs = {k: _check_type(k, v, hints.get(k, Any)) for k, v in data.items()}
        return cls(**kwargs)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class EncoderConfig(_JSONMixin):
    """A stacked bidirectional LSTM or GRU over packed sequences."""

    rnn: str = "lstm"
    hidden_size: int = 256  # per direction
    num_layers: int = 1
    dropout: float = 0.5  # before and after the encoder

    def __post_init__(self):
        _check_choice("rnn", self.rnn, RNN_TYPES)
        _check_positive(hidden_size=self.hidden_size, num_layers=self.num_layers)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {self.dropout}")


@dataclass(frozen=True)
class TaggerConfig(_JSONMixin):
    """Everything needed to rebuild a BiRNN tagger, without its weights."""

    vocab_size: int
    num_tags: int = 0
    labels: Tuple[str, ...] = ()
    scheme: str = "IOB2"
    word_dim: int = 50
    num_trainable_words: Optional[int] = None  # rows past this index are frozen pretrained vectors
    subword_buckets: int = 0  # fastText n-gram rows carried for out-of-vocabulary words (0: none)
    subword_min_n: int = 3
    subword_max_n: int = 6
    bigram_vocab_size: int = 0  # Chinese NER: embeddings of each character with the next (0: none)
    bigram_dim: int = 50
    lexicon_size: int = 0  # SoftLexicon B/M/E/S word sets: lexicon entries, padding included (0: none)
    lexicon_rows: int = 0  # word vector rows of the lexicon: <pad>, <none>, <unk>, then words
    lexicon_dim: int = 50
    lexicon_trainable: Optional[int] = None  # rows past this index keep their gensim vectors, frozen
    num_chars: int = 0
    char_encoder: str = "cnn"
    char_dim: int = 30
    char_filters: int = 30  # CNN filters, or hidden size per direction of the char LSTM
    char_kernel: int = 3
    max_word_length: int = 30  # longer words are cut for the character features only
    rnn: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.5
    use_crf: bool = True
    architecture: str = "birnn-tagger/1"

    def __post_init__(self):
        if self.labels and self.num_tags and len(self.labels) != self.num_tags:
            raise ConfigError(f"num_tags is {self.num_tags} but {len(self.labels)} labels were given")
        if self.labels and not self.num_tags:
            object.__setattr__(self, "num_tags", len(self.labels))
        _check_words(self)
        _check_positive(num_tags=self.num_tags, char_dim=self.char_dim, char_filters=self.char_filters,
                        char_kernel=self.char_kernel, max_word_length=self.max_word_length)
        _check_at_least(0, num_chars=self.num_chars)
        _check_choice("scheme", self.scheme.upper(), SCHEMES + ("BIO", "IOBES"))
        _check_choice("char_encoder", self.char_encoder, CHAR_ENCODERS)
        if self.char_encoder != "none" and self.num_chars <= 0:
            raise ConfigError("char features need num_chars > 0 (the size of the character vocabulary)")
        _check_lexicon(self)
        EncoderConfig(self.rnn, self.hidden_size, self.num_layers, self.dropout)  # validates


@dataclass(frozen=True)
class ClassifierConfig(_JSONMixin):
    """Everything needed to rebuild a BiRNN text classifier, without its weights."""

    vocab_size: int
    labels: Tuple[str, ...] = ()
    multi_label: bool = False
    thresholds: Tuple[float, ...] = ()  # multi-label: one decision threshold per label (default 0.5)
    class_weights: Tuple[float, ...] = ()  # loss weight per label, for imbalanced data
    word_dim: int = 50
    num_trainable_words: Optional[int] = None
    subword_buckets: int = 0
    subword_min_n: int = 3
    subword_max_n: int = 6
    bigram_vocab_size: int = 0  # Chinese: embeddings of each character with the next (0: none)
    bigram_dim: int = 50
    lexicon_size: int = 0  # SoftLexicon B/M/E/S word sets, as in TaggerConfig (0: none)
    lexicon_rows: int = 0
    lexicon_dim: int = 50
    lexicon_trainable: Optional[int] = None
    rnn: str = "lstm"
    hidden_size: int = 150
    num_layers: int = 1
    dropout: float = 0.5  # on the pooled vector (and between stacked layers)
    input_dropout: Optional[float] = None  # on the word vectors; None: the same as dropout
    word_dropout: float = 0.0  # training only: each token becomes <unk> with this probability
    pooling: str = "max"
    architecture: str = "birnn-classifier/1"

    def __post_init__(self):
        _check_words(self)
        if self.input_dropout is not None and not 0.0 <= self.input_dropout < 1.0:
            raise ConfigError(f"input_dropout must be in [0, 1); got {self.input_dropout}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ConfigError(f"word_dropout (--word-dropout) must be in [0, 1); got {self.word_dropout}")
        if len(self.labels) < 2 and not self.multi_label:
            raise ConfigError(f"a classifier needs at least 2 labels; got {list(self.labels)}")
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_lexicon(self)
        for name in ("thresholds", "class_weights"):
            values = getattr(self, name)
            if values and len(values) != len(self.labels):
                raise ConfigError(f"{name} has {len(values)} values for {len(self.labels)} labels")
        if self.thresholds and not self.multi_label:
            raise ConfigError("thresholds apply to multi-label classifiers only")
        EncoderConfig(self.rnn, self.hidden_size, self.num_layers, self.dropout)  # validates

    @property
    def num_labels(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class TrainingConfig(_JSONMixin):
    """Settings of the training loop; the loop itself knows nothing of the model."""

    max_epochs: int = 50
    batch_size: int = 32  # sentences per step on each process (the global batch is N times that)
    eval_batch_size: int = 256
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.015
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "inverse"  # inverse: lr / (1 + decay * epoch); linear; plateau; constant
    lr_decay: float = 0.05
    warmup_steps: int = 0  # lr rises linearly over the first steps (large batches need it)
    clip_norm: Optional[float] = 5.0
    average_decay: Optional[float] = None  # score and keep an exponential moving average of the weights
    patience: Optional[int] = None  # stop after this many evaluations without a better dev score
    max_seconds: Optional[float] = None  # stop at the first evaluation past this much training time
    max_steps: Optional[int] = None  # stop after this many optimiser steps
    eval_every_steps: Optional[int] = None  # evaluate on dev every N steps (default: each epoch's end)
    save_every_steps: Optional[int] = None  # also checkpoint every N steps (always at evaluations)
    keep_checkpoints: int = 2  # the newest K checkpoints are kept (an older one is the fallback)
    log_every_steps: int = 50  # a training-loss line in steps.jsonl and the trackers
    mixed_precision: str = "no"  # no | bf16 | fp16 (accelerate's autocast; fp16 with loss scaling)
    report_to: Tuple[str, ...] = ()  # accelerate trackers: tensorboard, wandb, mlflow, ...
    loader_workers: int = 0  # processes that fetch and pad batches (GPUs: 2; CPUs: 0)
    seed: int = 42
    metric: str = "f1"  # the dev metric that selects the best epoch
    extra: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        _check_choice("optimizer", self.optimizer, ("sgd", "adam", "adamw"))
        _check_choice("schedule", self.schedule, ("inverse", "linear", "plateau", "constant"))
        _check_choice("mixed_precision", self.mixed_precision, ("no", "bf16", "fp16"))
        _check_positive(max_epochs=self.max_epochs, batch_size=self.batch_size, lr=self.lr,
                        eval_batch_size=self.eval_batch_size, clip_norm=self.clip_norm,
                        patience=self.patience, max_seconds=self.max_seconds, max_steps=self.max_steps,
                        eval_every_steps=self.eval_every_steps, save_every_steps=self.save_every_steps,
                        keep_checkpoints=self.keep_checkpoints, log_every_steps=self.log_every_steps)
        if self.average_decay is not None and not 0.0 < self.average_decay < 1.0:
            raise ConfigError(f"--average-weights must lie between 0 and 1 (e.g. 0.999), not {self.average_decay}")
        if self.warmup_steps < 0 or self.loader_workers < 0:
            raise ConfigError("warmup_steps and loader_workers must be 0 or more")
        if isinstance(self.report_to, str):
            object.__setattr__(self, "report_to", (self.report_to,) if self.report_to else ())
