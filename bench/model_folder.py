#!/usr/bin/env python
"""Save and load times of a GloVe-sized tagger folder; one JSON line.

The model has the shape of the CoNLL-2003 recipe's: 20,000 trained word rows plus 380,000 frozen
pretrained rows of 50 dimensions, a character CNN, a 256-per-direction BiLSTM and a CRF (about
85 MB of weights). A save stages every file, fsyncs it and swaps it in; a load checks config.json
against the weights (a model built on the meta device) and the vocabularies. Each time is the
median of ``--repeats`` runs, saving over the previous save each time.

    python bench/model_folder.py [--repeats 5] [--folder /tmp/textrnn-bench-model]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time

import torch

from textrnn import load_model
from textrnn.config import TaggerConfig
from textrnn.models.tagger import BiRNNTagger
from textrnn.tasks.tagging import SequenceTagger
from textrnn.vocab import CharVocab, WordVocab

LABELS = ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")


def glove_sized_tagger(vocab: int = 400_000, trained: int = 20_000) -> SequenceTagger:
    words = WordVocab.from_words(f"w{i}" for i in range(vocab - 2))
    chars = CharVocab(["<pad>", "<unk>"] + [chr(c) for c in range(33, 127)])
    config = TaggerConfig(vocab_size=len(words), labels=LABELS, word_dim=50, num_trainable_words=trained,
                          num_chars=len(chars), hidden_size=256)
    torch.manual_seed(0)
    return SequenceTagger(BiRNNTagger(config, torch.randn(len(words), 50)), words, chars)


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder", default="/tmp/textrnn-bench-model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tagger = glove_sized_tagger()
    shutil.rmtree(args.folder, ignore_errors=True)
    save = median_seconds(lambda: tagger.save_pretrained(args.folder), args.repeats)
    load = median_seconds(lambda: load_model(args.folder), args.repeats)
    size = sum(p.stat().st_size for p in __import__("pathlib").Path(args.folder).iterdir() if p.is_file())
    shutil.rmtree(args.folder, ignore_errors=True)
    print(json.dumps({"bench": "model_folder", "folder_mb": round(size / 1e6, 1), "save_seconds": round(save, 3),
                      "load_seconds": round(load, 3), "repeats": args.repeats}))


if __name__ == "__main__":
    main()
