#!/usr/bin/env python
"""Chinese NER on ResumeNER, character level: BiLSTM-CRF over characters, character bigrams and
the lexicon words matching at each character (SoftLexicon B/M/E/S sets, Ma et al. 2020).

Character vectors are trained by gensim on the training text (Word2Vec by default; --embeddings
fasttext, or a vectors file) unless a file is given. The lexicon is jieba's dictionary (349k words
with frequencies; --lexicon FILE for another, --lexicon none for the plain character model); its
word vectors are trained by gensim on the training text segmented by the lexicon (plus
--embeddings-text). Tags are BMES; the CRF's transitions are constrained by the scheme, and spans
are scored by seqeval as IOBES (M- read as I-), which is the same span set. Prints one JSON line.

    python recipes/ner_resume_zh.py --output-dir runs/resume-lexicon
"""
from __future__ import annotations

import argparse
import sys

from textrnn.data import load_corpus
from textrnn.options import add_tagger_args, add_training_args, set_threads, tagger_kwargs, training_config
from textrnn.runs import main_process_first, run
from textrnn.utils import default_data_dir, setup_logging


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(default_data_dir()),
                   help="folder holding resume_ner/ (default: $TEXTRNN_DATA_DIR)")
    add_tagger_args(p, embeddings="word2vec", word_dim=100, extra_pretrained=0, hidden_size=200,
                    char_features="none", bigrams=True, lexicon="jieba")
    # chosen on dev (docs/benchmarks.md): Adam reaches SGD's dev F1 (40 epochs) in under 15 epochs
    add_training_args(p, max_epochs=15, batch_size=16, optimizer="adam", lr=0.001, momentum=0.9,
                      schedule="inverse", lr_decay=0.05, clip_norm=5.0, output_dir="runs/resume-lexicon")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    setup_logging()
    set_threads(args.threads)
    with main_process_first(args.cpu):
        corpus = load_corpus("resume_ner", data_dir=args.data_dir)
    return run("ner", corpus["train"], corpus["validation"], {"test": corpus["test"]},
               model_options=tagger_kwargs(args), training=training_config(args), output_dir=args.output_dir,
               resume=args.resume, recipe="ner_resume_zh", dataset="resume_ner", cpu=args.cpu,
               watch_tests=args.watch_tests)


if __name__ == "__main__":
    sys.exit(main() and 0)
