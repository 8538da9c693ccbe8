"""Frozen settings for models and training, each round-tripping through JSON.

A saved model carries the config that built it; the ``architecture`` string is versioned
(``birnn-tagger/1``) so that later releases keep loading old folders.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from .errors import ConfigError

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


class _JSONMixin:
    """to_dict / from_dict / to_json_file that keep tuples as tuples and ignore nothing silently."""

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: Dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__} does not know the setting(s) {', '.join(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
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
        _check_positive(vocab_size=self.vocab_size, num_tags=self.num_tags, word_dim=self.word_dim)
        _check_choice("char_encoder", self.char_encoder, CHAR_ENCODERS)
        if self.char_encoder != "none" and self.num_chars <= 0:
            raise ConfigError("char features need num_chars > 0 (the size of the character vocabulary)")
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
    rnn: str = "lstm"
    hidden_size: int = 150
    num_layers: int = 1
    dropout: float = 0.5  # on the pooled vector (and between stacked layers)
    input_dropout: Optional[float] = None  # on the word vectors; None: the same as dropout
    pooling: str = "max"
    architecture: str = "birnn-classifier/1"

    def __post_init__(self):
        _check_positive(vocab_size=self.vocab_size, word_dim=self.word_dim)
        if len(self.labels) < 2 and not self.multi_label:
            raise ConfigError(f"a classifier needs at least 2 labels; got {list(self.labels)}")
        _check_choice("pooling", self.pooling, POOLINGS)
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
        if self.warmup_steps < 0 or self.loader_workers < 0:
            raise ConfigError("warmup_steps and loader_workers must be 0 or more")
        if isinstance(self.report_to, str):
            object.__setattr__(self, "report_to", (self.report_to,) if self.report_to else ())
