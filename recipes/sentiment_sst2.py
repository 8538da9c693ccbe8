#!/usr/bin/env python
"""English sentiment on SST-2 (sentences): BiLSTM with max pooling over GloVe 6B 50d.

Trains on train, keeps the epoch with the best dev accuracy, reports test accuracy and macro-F1,
writes the model folder with the test metrics and a confusion-matrix plot beside them, and prints
one JSON line of results.

    python recipes/sentiment_sst2.py --output-dir runs/sst2-bilstm
    python recipes/sentiment_sst2.py --pooling attention --rnn gru
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from textrnn.data import load_corpus
from textrnn.options import (add_classifier_args, add_training_args, classifier_kwargs, set_threads,
                             training_config)
from textrnn.runs import main_process_first, run
from textrnn.utils import default_data_dir, setup_logging


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(default_data_dir()),
                   help="folder holding sst2/ and glove/ (default: $TEXTRNN_DATA_DIR)")
    # extra_pretrained: the 100,000 most frequent other GloVe words stay, frozen, for words unseen in
    # training (chosen on dev over 3 seeds, docs/benchmarks.md)
    add_classifier_args(p, hidden_size=150, pooling="max", dropout=0.5, extra_pretrained=100_000)
    add_training_args(p, max_epochs=15, batch_size=32, optimizer="adam", lr=1e-3, schedule="constant",
                      clip_norm=5.0, metric="accuracy", output_dir="runs/sst2-bilstm")
    args = p.parse_args(argv)
    if args.embeddings is None:
        args.embeddings = str(Path(args.data_dir) / "glove" / "glove.6B.50d.txt.gz")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    with main_process_first(args.cpu):
        corpus = load_corpus("sst2", data_dir=args.data_dir)
    return run("classify", corpus["train"], corpus["validation"], {"test": corpus["test"]},
               model_options=classifier_kwargs(args), training=training_config(args), output_dir=args.output_dir,
               resume=args.resume, recipe="sentiment_sst2", dataset="sst2", cpu=args.cpu,
               watch_tests=args.watch_tests)


if __name__ == "__main__":
    sys.exit(main() and 0)
