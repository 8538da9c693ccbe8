#!/usr/bin/env python
"""English NER on CoNLL-2003: BiLSTM-CNN-CRF with GloVe 6B 50d (Ma and Hovy, 2016).

Trains on train, selects the best epoch on dev F1, reports test and CoNLL++ test F1, writes the
model folder, and prints one JSON line of results. The defaults are the settings measured in
docs/benchmarks.md. Runs on one CPU as is, and on many GPUs with `accelerate launch`.

    python recipes/ner_conll2003.py --output-dir runs/conll03-bilstm-crf
    python recipes/ner_conll2003.py --rnn gru --no-crf --max-epochs 5
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from textrnn.data import load_corpus
from textrnn.options import add_tagger_args, add_training_args, set_threads, tagger_kwargs, training_config
from textrnn.tasks.tagging import build_tagger, finish_tagging_run, train_tagger
from textrnn.utils import default_data_dir, setup_logging

logger = logging.getLogger("recipes.ner_conll2003")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(default_data_dir()),
                   help="folder holding conll2003/, conllpp/ and glove/ (default: $TEXTRNN_DATA_DIR)")
    add_tagger_args(p, embeddings=None, hidden_size=256, char_features="cnn")
    add_training_args(p, max_epochs=50, batch_size=32, optimizer="sgd", lr=0.015, momentum=0.9,
                      schedule="inverse", lr_decay=0.05, clip_norm=5.0, output_dir="runs/conll03-bilstm-crf")
    args = p.parse_args(argv)
    if args.embeddings is None:
        args.embeddings = str(Path(args.data_dir) / "glove" / "glove.6B.50d.txt.gz")
    return args


def load_data(data_dir: str):
    corpus = load_corpus("conll2003", data_dir=data_dir)
    conllpp = load_corpus("conllpp", data_dir=data_dir)["test"]
    return corpus, conllpp


def main(argv=None) -> dict:
    args = parse_args(argv)
    setup_logging()
    set_threads(args)
    corpus, conllpp = load_data(args.data_dir)
    config = training_config(args)
    tagger = build_tagger(corpus["train"], **tagger_kwargs(args))
    result = train_tagger(tagger, corpus["train"], corpus["validation"], config,
                          output_dir=args.output_dir, resume=args.resume)
    return finish_tagging_run(tagger, result, {"test": corpus["test"], "conllpp_test": conllpp}, args,
                              recipe="ner_conll2003", dataset="conll2003")


if __name__ == "__main__":
    sys.exit(main() and 0)
