#!/usr/bin/env python
"""Chinese NER on ResumeNER, character level: BiLSTM-CRF over characters and character bigrams.

Character vectors are trained by gensim on the training text (Word2Vec by default; --embeddings
fasttext, or a vectors file) unless a file is given. Tags are BMES; the CRF's transitions are
constrained by the scheme, and spans are scored by seqeval as IOBES (M- read as I-), which is the
same span set. Prints one JSON line of results.

    python recipes/ner_resume_zh.py --output-dir runs/resume-bilstm-crf
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from textrnn.data import load_corpus
from textrnn.hub import write_model_card
from textrnn.options import add_tagger_args, add_training_args, set_threads, tagger_kwargs, training_config
from textrnn.tasks.tagging import build_tagger, train_tagger
from textrnn.training.trainer import remove_checkpoint
from textrnn.utils import default_data_dir, setup_logging


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(default_data_dir()),
                   help="folder holding resume_ner/ (default: $TEXTRNN_DATA_DIR)")
    add_tagger_args(p, embeddings="word2vec", word_dim=100, extra_pretrained=0, hidden_size=200,
                    char_features="none", bigrams=True)
    add_training_args(p, max_epochs=40, batch_size=16, optimizer="sgd", lr=0.015, momentum=0.9,
                      schedule="inverse", lr_decay=0.05, clip_norm=5.0, output_dir="runs/resume-bilstm-crf")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    setup_logging()
    set_threads(args)
    corpus = load_corpus("resume_ner", data_dir=args.data_dir)
    config = training_config(args)
    tagger = build_tagger(corpus["train"], **tagger_kwargs(args))
    result = train_tagger(tagger, corpus["train"], corpus["validation"], config,
                          output_dir=args.output_dir, resume=args.resume)
    tagger.save_pretrained(args.output_dir)
    start = time.perf_counter()
    test = tagger.evaluate(corpus["test"])
    seconds = time.perf_counter() - start
    results = {
        "recipe": "ner_resume_zh", "rnn": args.rnn, "crf": args.crf, "bigrams": args.bigrams,
        "embeddings": Path(args.embeddings).name if args.embeddings else "random",
        "dev_f1": round(result.best_score, 2), "best_epoch": result.best_epoch, "epochs_run": len(result.history),
        "test_f1": round(test["f1"], 2), "test_strict_f1": round(test["strict_f1"], 2),
        "test_precision": round(test["precision"], 2), "test_recall": round(test["recall"], 2),
        "train_seconds": round(result.train_seconds, 1),
        "test_sentences_per_second": round(len(corpus["test"]) / seconds), "seed": args.seed,
        "output_dir": args.output_dir,
    }
    (Path(args.output_dir) / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_model_card(args.output_dir, "token-classification", dataset="resume_ner",
                     metrics={"f1": test["f1"], "precision": test["precision"], "recall": test["recall"]},
                     training={**config.to_dict(), "embeddings": results["embeddings"]})
    remove_checkpoint(args.output_dir)
    print(json.dumps(results, ensure_ascii=False), flush=True)
    return results


if __name__ == "__main__":
    sys.exit(main() and 0)
