#!/usr/bin/env python
"""Inference speed of the Chinese NER recipe with and without its lexicon, on ResumeNER; one JSON line.

Both taggers are built from recipes/ner_resume_zh.py's defaults (the plain one with --lexicon
none) and left untrained: speed does not depend on the weights. Each is timed on the test set's
477 sentences (tokens in, tags out: encoding, lexicon matching, batching, BiLSTM, CRF Viterbi) at
several batch sizes, and with span scores (``predict_entities``) at batch 256, after a warm-up
pass; the two models take turns, --repeats times, and the best time of each counts. Run it alone.

    python bench/ner_zh_speed.py
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
import ner_resume_zh as recipe  # noqa: E402  (the recipe's own flags and defaults)

from textrnn.data import load_corpus  # noqa: E402
from textrnn.options import set_threads, tagger_kwargs  # noqa: E402
from textrnn.tasks.tagging import build_tagger  # noqa: E402


def seconds(run, sentences, batch_size: int) -> float:
    start = time.perf_counter()
    run(sentences, batch_size=batch_size)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1,32,256")
    bench_args, rest = parser.parse_known_args(argv)
    args = recipe.parse_args(rest)
    set_threads(args.threads)
    corpus = load_corpus("resume_ner", data_dir=args.data_dir)
    lexicon_options = tagger_kwargs(args)
    plain_options = {k: v for k, v in lexicon_options.items() if not k.startswith("lexicon")}
    taggers = {"plain": build_tagger(corpus["train"], **plain_options),
               "lexicon": build_tagger(corpus["train"], **lexicon_options)}
    sentences = corpus["test"]["tokens"][:]
    tests = [(f"b{b}", "predict", int(b)) for b in bench_args.batch_sizes.split(",")]
    tests.append(("b256_with_scores", "predict_entities", 256))
    best = {}
    for tagger in taggers.values():
        tagger.model.eval()
        tagger.predict(sentences[:64], batch_size=32)  # warm-up
    for _ in range(bench_args.repeats):
        for name, tagger in taggers.items():
            for test, method, batch_size in tests:
                key = f"{name}_sentences_per_second_{test}"
                t = seconds(getattr(tagger, method), sentences, batch_size)
                best[key] = max(best.get(key, 0), round(len(sentences) / t))
    result = {"bench": "ner_zh_speed", "sentences": len(sentences), "threads": torch.get_num_threads(),
              "lexicon": args.lexicon, "lexicon_words": len(taggers["lexicon"].lexicon), **best,
              "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
              "torch": torch.__version__, "date": datetime.date.today().isoformat()}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
