#!/usr/bin/env python
"""Tags of a torch model and of its ONNX export (fp32 and int8) on every test sentence of a corpus:
how many differ, each backend's test F1 and its predict speed (tokens in, tags out, batch 256, the
best of --repeats passes after a warm-up); one JSON line. Run it alone.

    python bench/onnx_tags.py runs/conll03-bilstm-crf
    python bench/onnx_tags.py runs/resume-lexicon --corpus resume_ner
"""
import argparse
import datetime
import json
import os
import platform
import time

from textrnn import load_model
from textrnn.data import load_corpus
from textrnn.training.metrics import entity_scores
from textrnn.utils import default_data_dir

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("model", help="a torch model folder")
parser.add_argument("--corpus", default="conll2003", help="a named corpus with a test split (default %(default)s)")
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()
test = load_corpus(args.corpus, data_dir=str(default_data_dir()))["test"]
tokens = list(test["tokens"])
names = test.features["tags"].feature.names
gold = [[names[t] for t in row] for row in test["tags"]]
out = {"bench": "onnx_tags", "model": args.model, "corpus": args.corpus, "sentences": len(tokens),
       "tokens": sum(map(len, tokens))}
ref = None
for name, kw in {"torch": {}, "onnx-fp32": {"backend": "onnx"}, "onnx-int8": {"backend": "onnx", "quantize": "int8"}}.items():
    model = load_model(args.model, **kw)
    got = model.predict(tokens, batch_size=256)  # (also the warm-up)
    best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.predict(tokens, batch_size=256)
        best = min(best, time.perf_counter() - start)
    row = {"test_f1": round(entity_scores(gold, got, model.config.scheme)["f1"], 2),
           "sentences_per_second_b256": round(len(tokens) / best)}
    if ref is None:
        ref = got
    else:
        row.update(sentences_with_a_different_tag=sum(a != b for a, b in zip(ref, got)),
                   tokens_with_a_different_tag=sum(x != y for a, b in zip(ref, got) for x, y in zip(a, b)))
    out[name] = row
out.update(machine=f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores", date=datetime.date.today().isoformat())
print(json.dumps(out))
