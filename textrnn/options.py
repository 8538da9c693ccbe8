"""Command-line options shared by the recipes and the ``textrnn`` command (one list, not two)."""
from __future__ import annotations

import argparse
import os
from typing import Any, Dict, Optional

from .config import TrainingConfig


def add_training_args(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    """Optimiser, schedule, batching, stopping, checkpoint, device and output flags."""
    d = {**TrainingConfig().to_dict(), **defaults}
    g = parser.add_argument_group("training")
    g.add_argument("--max-epochs", type=int, default=d["max_epochs"], help="epochs at most (default %(default)s)")
    g.add_argument("--max-steps", type=int, default=d["max_steps"], help="optimiser steps at most")
    g.add_argument("--max-minutes", type=float, default=d.get("max_minutes"),
                   help="stop at the first evaluation past this much training time")
    g.add_argument("--patience", type=int, default=d["patience"],
                   help="stop after this many evaluations without a better dev score (default %(default)s)")
    g.add_argument("--batch-size", type=int, default=d["batch_size"],
                   help="sentences per step and process (%(default)s); N processes make an N times larger batch")
    g.add_argument("--eval-batch-size", type=int, default=d["eval_batch_size"])
    g.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default=d["optimizer"])
    g.add_argument("--lr", type=float, default=d["lr"], help="learning rate (%(default)s)")
    g.add_argument("--momentum", type=float, default=d["momentum"])
    g.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    g.add_argument("--schedule", choices=("inverse", "linear", "plateau", "constant"), default=d["schedule"],
                   help="inverse: lr / (1 + decay * epoch) (default %(default)s)")
    g.add_argument("--lr-decay", type=float, default=d["lr_decay"])
    g.add_argument("--warmup-steps", type=int, default=d["warmup_steps"],
                   help="raise the lr linearly over the first steps (%(default)s)")
    g.add_argument("--clip-norm", type=float, default=d["clip_norm"], help="gradient norm clipping (%(default)s)")
    g.add_argument("--average-weights", type=float, default=d["average_decay"], metavar="DECAY",
                   help="score dev and keep the model with an exponential moving average of the weights "
                        "(decay per step, e.g. 0.999; 0: the weights themselves; default %(default)s)")
    g.add_argument("--seed", type=int, default=d["seed"])
    g.add_argument("--eval-every-steps", type=int, default=d["eval_every_steps"],
                   help="score dev every N steps (default: at the end of each epoch)")
    g.add_argument("--save-every-steps", type=int, default=d["save_every_steps"],
                   help="also checkpoint every N steps, so a killed run resumes mid-epoch")
    g.add_argument("--keep-checkpoints", type=int, default=d["keep_checkpoints"],
                   help="keep the newest K checkpoints (%(default)s)")
    g.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"), default=d["mixed_precision"],
                   help="train under autocast (GPUs: bf16; fp16 with loss scaling)")
    g.add_argument("--report-to", nargs="+", default=list(d["report_to"]), metavar="TRACKER",
                   help="accelerate trackers (tensorboard, wandb, mlflow, ...); metrics.jsonl is always written")
    g.add_argument("--loader-workers", type=int, default=d["loader_workers"],
                   help="processes that prepare batches (%(default)s; 2 suits a GPU)")
    g.add_argument("--output-dir", default=d.get("output_dir"), help="model folder, metrics and checkpoints")
    g.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output-dir")
    g.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is available")
    g.add_argument("--watch-tests", action="store_true",
                   help="also score the test sets at every evaluation, for the logs and curves (never to select)")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.set_defaults(metric=d["metric"])  # the dev score that picks the best epoch


def training_config(args: argparse.Namespace) -> TrainingConfig:
    return TrainingConfig(
        max_epochs=args.max_epochs, batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
        optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        schedule=args.schedule, lr_decay=args.lr_decay, warmup_steps=args.warmup_steps,
        clip_norm=args.clip_norm or None, average_decay=args.average_weights or None, patience=args.patience,
        max_seconds=args.max_minutes * 60 if args.max_minutes else None, max_steps=args.max_steps,
        eval_every_steps=args.eval_every_steps, save_every_steps=args.save_every_steps,
        keep_checkpoints=args.keep_checkpoints, mixed_precision=args.mixed_precision,
        report_to=tuple(args.report_to or ()), loader_workers=args.loader_workers, seed=args.seed,
        metric=args.metric,
    )


def parse_with_preset(parser: argparse.ArgumentParser, presets: Dict[str, Dict[str, Any]], argv=None):
    """Parse flags, where ``--preset NAME`` first swaps in that preset's defaults (explicit flags win)."""
    parser.add_argument("--preset", choices=sorted(presets), default=None,
                        help="a tested set of defaults: " + "; ".join(
                            f"{name}: " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in values.items())
                            for name, values in sorted(presets.items())))
    known, _ = parser.parse_known_args(argv)
    if known.preset:
        parser.set_defaults(**presets[known.preset])
    return parser.parse_args(argv)


def add_encoder_args(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    """Embeddings and encoder flags, common to taggers and classifiers."""
    g = parser.add_argument_group("model")
    g.add_argument("--embeddings", default=defaults.get("embeddings"),
                   help="vectors file (GloVe/word2vec/fastText, .gz too), or word2vec/fasttext to train "
                        "them with gensim on the training text, or random")
    g.add_argument("--trust-pickle", action="store_true",
                   help="allow gensim's native vector files (.kv, .model, .wv): they are pickles, and "
                        "loading a pickle can run code. Only for files you made or trust")
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
    add_character_args(g, dict({"bigram_init": "normal"}, **defaults))


def add_character_args(g, defaults: Dict[str, Any]) -> None:
    """Flags of character-level (Chinese) models, taggers and classifiers alike: bigrams and a lexicon."""
    g.add_argument("--bigrams", action=argparse.BooleanOptionalAction, default=defaults.get("bigrams", False),
                   help="add an embedding of each token with the next (Chinese characters)")
    g.add_argument("--bigram-init", choices=("normal", "uniform"), default=defaults.get("bigram_init", "uniform"),
                   help="bigram vectors start uniform(±√(3/d)) or N(0, 1) (default %(default)s)")
    g.add_argument("--bigram-min-freq", type=int, default=defaults.get("bigram_min_freq", 1),
                   help="bigrams seen fewer times in training share one unknown vector (default %(default)s)")
    g.add_argument("--lexicon", default=defaults.get("lexicon"),
                   help="each token also sees the B/M/E/S sets of lexicon words matching there (SoftLexicon): "
                        "'jieba' (its 349k-word dictionary) or a file of 'WORD [FREQUENCY]' lines; 'none' for no lexicon")
    g.add_argument("--lexicon-dim", type=int, default=defaults.get("lexicon_dim", 50), help="lexicon word vector size")
    g.add_argument("--lexicon-weighting", choices=("frequency", "corpus", "uniform"),
                   default=defaults.get("lexicon_weighting", "frequency"),
                   help="word weights in a set: the lexicon's frequencies, counts in the training text, or equal")
    g.add_argument("--lexicon-vectors", choices=("word2vec", "random"), default=defaults.get("lexicon_vectors", "word2vec"),
                   help="lexicon word vectors: gensim Word2Vec on the text segmented by the lexicon, or random")


def character_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of ``add_character_args``'s flags, for ``build_tagger`` and ``build_classifier``."""
    kwargs = dict(bigrams=args.bigrams, bigram_init=args.bigram_init, bigram_min_freq=args.bigram_min_freq)
    if args.lexicon and args.lexicon != "none":
        kwargs.update(lexicon=args.lexicon, lexicon_dim=args.lexicon_dim, lexicon_weighting=args.lexicon_weighting,
                      lexicon_vectors=args.lexicon_vectors)
    return kwargs


def tagger_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments for ``build_tagger`` from parsed flags."""
    return dict(_embedding_kwargs(args), char_encoder=args.char_features, char_dim=args.char_dim,
                char_filters=args.char_filters, use_crf=args.crf, **character_kwargs(args))


def _embedding_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    return dict(embeddings=args.embeddings, embeddings_text=args.embeddings_text, trust_pickle=args.trust_pickle,
                freeze_embeddings=args.freeze_embeddings, extra_pretrained=args.extra_pretrained, word_dim=args.word_dim, seed=args.seed, rnn=args.rnn,
                hidden_size=args.hidden_size, num_layers=args.num_layers, dropout=args.dropout)


def set_threads(threads: Optional[int] = None) -> None:
    """torch's CPU threads: ``threads``, or one per core this process may use."""
    import torch

    torch.set_num_threads(threads or len(os.sched_getaffinity(0)))


def add_classifier_args(parser: argparse.ArgumentParser, **defaults: Any) -> None:
    add_encoder_args(parser, **defaults)
    g = parser.add_argument_group("classifier")
    g.add_argument("--pooling", choices=("last", "mean", "max", "attention"), default=defaults.get("pooling", "max"),
                   help="how encoder states become one text vector (default %(default)s)")
    g.add_argument("--input-dropout", type=float, default=defaults.get("input_dropout"),
                   help="dropout on the word vectors (default: the same as --dropout)")
    g.add_argument("--word-dropout", type=float, default=defaults.get("word_dropout", 0.0),
                   help="in training, replace each token by <unk> with this probability (default %(default)s)")
    g.add_argument("--min-freq", type=int, default=defaults.get("min_freq", 1),
                   help="words seen fewer times in training map to <unk>")
    g.add_argument("--balanced-weights", action="store_true",
                   help="weight the loss by inverse label frequency (imbalanced data)")
    add_character_args(g, defaults)


def classifier_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments for ``build_classifier`` from parsed flags."""
    return dict(_embedding_kwargs(args), min_freq=args.min_freq, pooling=args.pooling,
                input_dropout=args.input_dropout, word_dropout=args.word_dropout,
                balanced_weights=args.balanced_weights, **character_kwargs(args))
