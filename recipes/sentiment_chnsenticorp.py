#!/usr/bin/env python
"""Chinese sentiment on ChnSentiCorp: a character BiLSTM with character bigrams and max pooling.

Bigrams seen once share one vector, and bigram vectors start at the scale of the character vectors
(--bigram-min-freq 2 --bigram-init uniform): chosen on dev over 3 seeds (docs/benchmarks.md).

Character vectors are trained by gensim (Word2Vec, or FastText with --embeddings fasttext) on the
training texts unless a vectors file is given. The public test file has no labels, so `dev.tsv`
is the test set here and validation is carved from train with a fixed seed (--validation-size).

    python recipes/sentiment_chnsenticorp.py --output-dir runs/chnsenticorp-bilstm
"""
from __future__ import annotations

import argparse
import sys

from textrnn.data import load_corpus
from textrnn.options import (add_classifier_args, add_training_args, classifier_kwargs, set_threads,
                             training_config)
from textrnn.runs import main_process_first, run
from textrnn.utils import default_data_dir, setup_logging


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(default_data_dir()),
                   help="folder holding chnsenticorp/ (default: $TEXTRNN_DATA_DIR)")
    p.add_argument("--validation-size", type=float, default=0.1,
                   help="share of train held out for validation, stratified, seeded by --split-seed")
    p.add_argument("--split-seed", type=int, default=13)
    add_classifier_args(p, embeddings="word2vec", word_dim=100, hidden_size=150, pooling="max", dropout=0.5,
                        bigrams=True, bigram_init="uniform", bigram_min_freq=2)
    add_training_args(p, max_epochs=12, batch_size=32, optimizer="adam", lr=1e-3, schedule="constant",
                      clip_norm=5.0, metric="accuracy", output_dir="runs/chnsenticorp-bilstm")
    return p.parse_args(argv)


def load_data(args):
    corpus = load_corpus("chnsenticorp", data_dir=args.data_dir)
    split = corpus["train"].train_test_split(test_size=args.validation_size, seed=args.split_seed,
                                             stratify_by_column="label")
    return split["train"], split["test"], corpus["test"]


def main(argv=None) -> dict:
    args = parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    with main_process_first(args.cpu):
        train, validation, test = load_data(args)
    return run("classify", train, validation, {"test": test}, model_options=classifier_kwargs(args),
               training=training_config(args), output_dir=args.output_dir, resume=args.resume,
               recipe="sentiment_chnsenticorp", dataset="chnsenticorp", cpu=args.cpu,
               watch_tests=args.watch_tests)


if __name__ == "__main__":
    sys.exit(main() and 0)
