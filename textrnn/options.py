"""Command-line options shared by the recipes and the ``textrnn`` command (one list, not two)."""
from __future__ import annotations

import argparse
import os
from typing import Any, Dict

from .config import TrainingConfig


def add_training_args(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    """Optimiser, schedule, batching, stopping and output flags."""
    d = {**TrainingConfig().to_dict(), **defaults}
    g = parser.add_argument_group("training")
    g.add_argument("--max-epochs", type=int, default=d["max_epochs"], help="epochs at most (default %(default)s)")
    g.add_argument("--max-minutes", type=float, default=d.get("max_minutes"),
                   help="stop after the epoch that passes this much training time")
    g.add_argument("--patience", type=int, default=d["patience"],
                   help="stop after this many epochs without a better dev score")
    g.add_argument("--batch-size", type=int, default=d["batch_size"], help="sentences per batch (%(default)s)")
    g.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default=d["optimizer"])
    g.add_argument("--lr", type=float, default=d["lr"], help="learning rate (%(default)s)")
    g.add_argument("--momentum", type=float, default=d["momentum"])
    g.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    g.add_argument("--schedule", choices=("inverse", "linear", "plateau", "constant"), default=d["schedule"],
                   help="inverse: lr / (1 + decay * epoch) (default %(default)s)")
    g.add_argument("--lr-decay", type=float, default=d["lr_decay"])
    g.add_argument("--clip-norm", type=float, default=d["clip_norm"], help="gradient norm clipping (%(default)s)")
    g.add_argument("--seed", type=int, default=d["seed"])
    g.add_argument("--output-dir", default=d.get("output_dir"), help="model folder, metrics and checkpoints")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoint in --output-dir")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.set_defaults(metric=d["metric"])  # the dev score that picks the best epoch


def training_config(args: argparse.Namespace) -> TrainingConfig:
    return TrainingConfig(
        max_epochs=args.max_epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
        lr_decay=args.lr_decay, clip_norm=args.clip_norm or None, patience=args.patience,
        max_seconds=args.max_minutes * 60 if args.max_minutes else None, seed=args.seed, metric=args.metric,
    )


def add_encoder_args(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    """Embeddings and encoder flags, common to taggers and classifiers."""
    g = parser.add_argument_group("model")
    g.add_argument("--embeddings", default=defaults.get("embeddings"),
                   help="vectors file (GloVe/word2vec/fastText, .gz too), or word2vec/fasttext to train "
                        "them with gensim on the training text, or random")
    g.add_argument("--embeddings-text", default=None,
                   help="with word2vec/fasttext: also train the vectors on this unlabelled text (one sentence a line)")
    g.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction,
                   default=defaults.get("freeze_embeddings", False),
                   help="keep the initial vectors fixed instead of fine-tuning them")
    g.add_argument("--word-dim", type=int, default=defaults.get("word_dim", 100),
                   help="embedding size when vectors are random or trained here")
    g.add_argument("--extra-pretrained", type=int, default=defaults.get("extra_pretrained", 100_000),
                   help="also keep this many pretrained vectors of words unseen in training (frozen)")
    g.add_argument("--rnn", "--encoder", dest="rnn", choices=("lstm", "gru"), default=defaults.get("rnn", "lstm"))
    g.add_argument("--hidden-size", type=int, default=defaults.get("hidden_size", 256), help="per direction")
    g.add_argument("--num-layers", type=int, default=defaults.get("num_layers", 1))
    g.add_argument("--dropout", type=float, default=defaults.get("dropout", 0.5))


def add_tagger_args(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    add_encoder_args(parser, **defaults)
    g = parser.add_argument_group("tagger")
    g.add_argument("--char-features", choices=("cnn", "lstm", "none"), default=defaults.get("char_features", "cnn"))
    g.add_argument("--char-dim", type=int, default=defaults.get("char_dim", 30))
    g.add_argument("--char-filters", type=int, default=defaults.get("char_filters", 30),
                   help="CNN filters, or char LSTM hidden size per direction")
    g.add_argument("--no-crf", dest="crf", action="store_false", help="softmax over tags instead of a CRF")
    g.add_argument("--bigrams", action=argparse.BooleanOptionalAction, default=defaults.get("bigrams", False),
                   help="add an embedding of each token with the next (character-level Chinese NER)")


def tagger_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments for ``build_tagger`` from parsed flags."""
    return dict(_embedding_kwargs(args), char_encoder=args.char_features, char_dim=args.char_dim,
                char_filters=args.char_filters, use_crf=args.crf, bigrams=args.bigrams)


def _embedding_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    return dict(embeddings=args.embeddings, embeddings_text=args.embeddings_text,
                freeze_embeddings=args.freeze_embeddings, extra_pretrained=args.extra_pretrained, word_dim=args.word_dim, seed=args.seed, rnn=args.rnn,
                hidden_size=args.hidden_size, num_layers=args.num_layers, dropout=args.dropout)


def set_threads(args: argparse.Namespace) -> None:
    import torch

    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)


def add_classifier_args(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    add_encoder_args(parser, **defaults)
    g = parser.add_argument_group("classifier")
    g.add_argument("--pooling", choices=("last", "mean", "max", "attention"), default=defaults.get("pooling", "max"),
                   help="how encoder states become one text vector (default %(default)s)")
    g.add_argument("--input-dropout", type=float, default=defaults.get("input_dropout"),
                   help="dropout on the word vectors (default: the same as --dropout)")
    g.add_argument("--min-freq", type=int, default=defaults.get("min_freq", 1),
                   help="words seen fewer times in training map to <unk>")
    g.add_argument("--bigrams", action=argparse.BooleanOptionalAction, default=defaults.get("bigrams", False),
                   help="add an embedding of each token with the next (Chinese characters)")
    g.add_argument("--balanced-weights", action="store_true",
                   help="weight the loss by inverse label frequency (imbalanced data)")


def classifier_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments for ``build_classifier`` from parsed flags."""
    return dict(_embedding_kwargs(args), min_freq=args.min_freq, pooling=args.pooling,
                input_dropout=args.input_dropout, bigrams=args.bigrams,
                balanced_weights=args.balanced_weights)
