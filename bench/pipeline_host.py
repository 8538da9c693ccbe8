#!/usr/bin/env python
"""What ``pipeline("ner")`` costs on the host besides the network and the CRF: one JSON line.

On a GPU the network and the CRF run on the device, and the Python around them bounds the
speed. Here the network is replayed (its emissions for each batch recorded in a first call),
so the timed calls cost only the host's work plus the numpy CRF, which is timed apart:
``host_us_per_sentence`` is the rest (pre-tokenization, encoding, arrays, tags, spans, dicts),
and ``host_bound_sentences_per_second`` the speed no device could exceed on this CPU;
``garbage_collection_us_per_sentence`` is the collector's share (timed by ``gc.callbacks``). A second
pass times each step with a clock around every call (which adds about 0.1 us per call):
``steps_us_per_sentence``. CoNLL-2003 test sentences joined back into strings, as
bench/pipeline_speed.py. Run it alone.

    python bench/pipeline_host.py --model runs/conll03-bilstm-crf --batch-size 1024
"""
from __future__ import annotations

import argparse
import collections
import datetime
import gc
import json
import os
import platform
import statistics
import time

import torch

from textrnn import pipeline
from textrnn.data import load_corpus
from textrnn.decoding import CRFDecoder
from textrnn.utils import default_data_dir


def clocked(owner, name: str, totals, key: str, static: bool = False, inner: str = "") -> None:
    """Wrap ``owner.name`` so that its time adds up in ``totals[key]``, less the time of ``inner``
    (another clock's key) spent inside it."""
    fn = getattr(owner, name)

    def timed(*args, **kwargs):
        start, before = time.perf_counter(), totals[inner]
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start - (totals[inner] - before if inner else 0.0)

    setattr(owner, name, staticmethod(timed) if static else timed)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="runs/conll03-bilstm-crf")
    p.add_argument("--data-dir", default=str(default_data_dir()))
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    test = load_corpus("conll2003", data_dir=args.data_dir)["test"]
    texts = [" ".join(tokens) for tokens in test["tokens"]]
    n = len(texts)
    ner = pipeline("ner", model=args.model, batch_size=args.batch_size)
    tagger = ner.model
    if tagger.crf_parameters() is None:
        raise SystemExit("this bench times a CRF tagger")
    recorded = []
    network = tagger.emission_scores
    tagger.emission_scores = lambda arrays: recorded.append(network(arrays)) or recorded[-1]
    expected = ner(texts)
    replay = iter(())

    def replayed(arrays):
        emissions = next(replay)
        assert emissions.shape[:2] == arrays["words"].shape
        return emissions

    tagger.emission_scores = replayed
    totals = collections.defaultdict(float)
    for name in ("viterbi", "forward_backward", "marginals", "span_probabilities"):
        clocked(CRFDecoder, name, totals, "crf", static=name == "marginals")
    collecting = {"start": 0.0, "seconds": 0.0}

    def collector(phase, _info):  # the garbage collector's time within the host's
        if phase == "start":
            collecting["start"] = time.perf_counter()
        else:
            collecting["seconds"] += time.perf_counter() - collecting["start"]

    host, crf, collected = [], [], []
    gc.callbacks.append(collector)
    for _ in range(args.repeats):
        replay, totals["crf"], collecting["seconds"] = iter(recorded), 0.0, 0.0
        start = time.perf_counter()
        got = ner(texts)
        crf.append(totals["crf"])
        host.append(time.perf_counter() - start - totals["crf"])
        collected.append(collecting["seconds"])
        assert got == expected
        del got
    gc.callbacks.remove(collector)
    steps = {"pre-tokenization and segments": (type(ner), "preprocess"), "encoding": (type(tagger), "encode"),
             "array building": (type(tagger), "arrays"),
             "tags, token scores and spans": (type(tagger), "_decode_batch"),
             "entity dicts": (type(ner), "postprocess")}
    for key, (owner, name) in steps.items():
        clocked(owner, name, totals, key, inner="crf")
    if hasattr(type(tagger), "_find_spans"):  # (since 36aaa6a; before, _decode_batch found the spans)
        clocked(type(tagger), "_find_spans", totals, "tags, token scores and spans", inner="crf")
    rounds = []
    for _ in range(args.repeats):
        replay = iter(recorded)
        totals.clear()
        ner(texts)
        rounds.append({k: totals[k] for k in steps})
    median = {k: statistics.median(r[k] for r in rounds) for k in steps}
    host_s = statistics.median(host)
    result = {"bench": "pipeline_host", "model": args.model, "sentences": n, "batch_size": args.batch_size,
              "threads": args.threads, "repeats": args.repeats,
              "host_us_per_sentence": round(1e6 * host_s / n, 1),
              "host_bound_sentences_per_second": round(n / host_s),
              "numpy_crf_us_per_sentence": round(1e6 * statistics.median(crf) / n, 1),
              "garbage_collection_us_per_sentence": round(1e6 * statistics.median(collected) / n, 2),
              "steps_us_per_sentence": {k: round(1e6 * v / n, 2) for k, v in median.items()},
              "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
              "date": datetime.date.today().isoformat()}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
