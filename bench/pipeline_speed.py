#!/usr/bin/env python
"""End-to-end NER pipeline speed: raw strings in, entity dicts out; one JSON line.

The CoNLL-2003 test sentences are joined back into plain strings (tokens separated by spaces), so
the pipeline does all the work a user's call does: pre-tokenization with offsets, encoding,
batching, BiRNN, CRF Viterbi and span marginals, and building the dicts. Needs a trained model
folder (recipes/ner_conll2003.py writes one). Run it alone.

    python bench/pipeline_speed.py --model runs/conll03-bilstm-crf
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import time

import torch

from textrnn import pipeline
from textrnn.data import load_corpus
from textrnn.utils import default_data_dir


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="runs/conll03-bilstm-crf")
    p.add_argument("--data-dir", default=str(default_data_dir()))
    p.add_argument("--batch-sizes", default="1,32,256")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    texts = [" ".join(tokens) for tokens in load_corpus("conll2003", data_dir=args.data_dir)["test"]["tokens"]]
    ner = pipeline("ner", model=args.model, precision=args.precision)
    result = {"bench": "pipeline_speed", "model": args.model, "sentences": len(texts), "threads": args.threads,
              "precision": args.precision}
    for batch_size in map(int, args.batch_sizes.split(",")):
        ner(texts[:512], batch_size=batch_size)  # warm-up
        start = time.perf_counter()
        entities = ner(texts, batch_size=batch_size)
        seconds = time.perf_counter() - start
        result[f"sentences_per_second_b{batch_size}"] = round(len(texts) / seconds)
        result["entities"] = sum(map(len, entities))
    result["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["machine"] = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"
    result["date"] = datetime.date.today().isoformat()
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
