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
from textrnn.options import (add_tagger_args, add_training_args, parse_with_preset, set_threads, tagger_kwargs,
                             training_config)
from textrnn.runs import main_process_first, run
from textrnn.utils import default_data_dir, setup_logging

logger = logging.getLogger("recipes.ner_conll2003")


# Large batches for GPUs. The loss is summed over the batch, so a batch 8 times larger already takes
# 8 times larger steps (linear scaling); the clipping threshold grows with it (5 -> 40), and a short
# warm-up keeps the first large steps from diverging. Dev is scored, and the model kept, with a moving
# average of the weights over about 100 steps (2 epochs at this batch). Chosen on dev on this CPU
# (docs/benchmarks.md).
PRESETS = {"gpu": dict(batch_size=256, clip_norm=40.0, warmup_steps=100, max_epochs=60, mixed_precision="bf16",
                       average_weights=0.99, loader_workers=2, eval_batch_size=1024)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(default_data_dir()),
                   help="folder holding conll2003/, conllpp/ and glove/ (default: $TEXTRNN_DATA_DIR)")
    p.add_argument("--tag-scheme", choices=("IOB2", "BIOES"), default="IOB2",
                   help="tags to train on (the files are IOB2; entities are scored as spans either way)")
    add_tagger_args(p, embeddings=None, hidden_size=256, char_features="cnn")
    add_training_args(p, max_epochs=50, batch_size=32, optimizer="sgd", lr=0.015, momentum=0.9,
                      schedule="inverse", lr_decay=0.05, clip_norm=5.0, output_dir="runs/conll03-bilstm-crf")
    args = parse_with_preset(p, PRESETS, argv)
    if args.embeddings is None:
        args.embeddings = str(Path(args.data_dir) / "glove" / "glove.6B.50d.txt.gz")
    return args


def load_data(data_dir: str, scheme: str = "IOB2"):
    convert = None if scheme == "IOB2" else scheme
    corpus = load_corpus("conll2003", data_dir=data_dir, convert_to=convert)
    conllpp = load_corpus("conllpp", data_dir=data_dir, convert_to=convert)["test"]
    return corpus, conllpp


def main(argv=None) -> dict:
    args = parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    with main_process_first(args.cpu):
        corpus, conllpp = load_data(args.data_dir, args.tag_scheme)
    return run("ner", corpus["train"], corpus["validation"], {"test": corpus["test"], "conllpp_test": conllpp},
               model_options=tagger_kwargs(args), training=training_config(args), output_dir=args.output_dir,
               resume=args.resume, recipe="ner_conll2003", dataset="conll2003", cpu=args.cpu,
               watch_tests=args.watch_tests)


if __name__ == "__main__":
    sys.exit(main() and 0)
