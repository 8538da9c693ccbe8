#!/usr/bin/env python
"""End-to-end NER pipeline speed and accuracy, backends side by side: one JSON line.

The CoNLL-2003 test sentences are joined back into plain strings (tokens separated by spaces), so
the pipeline does all the work a user's call does: pre-tokenization with offsets, encoding,
batching, the network, CRF Viterbi and span marginals, and building the dicts. Each variant
(torch fp32, torch bf16, onnxruntime fp32 and int8; torch fp32 with the CRF decoded on the
host though the model is on a GPU, or with torch on the CPU) is timed in turn, ``--repeats`` rounds
interleaved so that the machine's drift hits all alike; the median is reported. Each variant's
test F1 comes from tagging the gold tokens, and its entities are compared with torch fp32's
(same spans? largest score difference?). Needs a trained model folder
(recipes/ner_conll2003.py writes one). Run it alone.

    python bench/pipeline_speed.py --model runs/conll03-bilstm-crf
    python bench/pipeline_speed.py --model runs/conll03-bilstm-crf --variants torch-fp32,onnx-int8
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import time

import torch

from textrnn import pipeline
from textrnn.data import load_corpus
from textrnn.utils import default_data_dir

VARIANTS = {  # name -> pipeline options
    "torch-fp32": {},
    "torch-bf16": {"precision": "bf16"},
    "onnx-fp32": {"backend": "onnx"},
    "onnx-int8": {"backend": "onnx", "quantize": "int8"},
    # on a GPU the CRF decodes there (textrnn/decoding_torch.py); this one copies emissions to the
    # host and decodes them in numpy, as every call did before (on the CPU: the same as torch-fp32)
    "torch-fp32-host-crf": {"device_decoding": False},
    # the other way round: torch decoding even on the CPU (to compare it with numpy there)
    "torch-fp32-device-crf": {"device_decoding": True},
    # one batch ahead (Frontend.overlap): the network in a worker thread (CPU), or a GPU's work queued
    # before the batch before is read; or forced serial. Each backend and device has its default
    "torch-fp32-overlap": {"overlap": True},
    "torch-fp32-serial": {"overlap": False},
    "torch-fp32-device-crf-serial": {"device_decoding": True, "overlap": False},
}
ATTRIBUTES = ("device_decoding", "overlap")  # variant settings that are model attributes, not pipeline options


def compare(reference, entities):
    """Whether every text has the same spans and labels, and the largest score difference."""
    same, largest = True, 0.0
    for ref, got in zip(reference, entities):
        if [(e["entity_group"], e["start"], e["end"]) for e in ref] != \
                [(e["entity_group"], e["start"], e["end"]) for e in got]:
            same = False
            continue
        largest = max([largest] + [abs(a["score"] - b["score"]) for a, b in zip(ref, got)])
    return same, largest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="runs/conll03-bilstm-crf")
    p.add_argument("--data-dir", default=str(default_data_dir()))
    p.add_argument("--variants", default=",".join(v for v in VARIANTS if not v.endswith(("-crf", "overlap", "serial"))),
                   help=f"any of {', '.join(VARIANTS)}")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3, help="timed rounds per variant (the median is kept)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 (torch variants; onnx runs on the CPU)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    test = load_corpus("conll2003", data_dir=args.data_dir)["test"]
    texts = [" ".join(tokens) for tokens in test["tokens"]]
    names = args.variants.split(",")
    pipes = {}
    for name in names:
        options = {k: v for k, v in VARIANTS[name].items() if k not in ATTRIBUTES}
        pipes[name] = pipeline("ner", model=args.model, batch_size=args.batch_size, **options,
                               **({} if name.startswith("onnx") else {"device": args.device}))
        for key in ATTRIBUTES:
            if key in VARIANTS[name]:
                setattr(pipes[name].model, key, VARIANTS[name][key])
    seconds = {name: [] for name in names}
    outputs = {}
    for name, ner in pipes.items():
        outputs[name] = ner(texts)  # warm-up, and the entities compared below
    for _ in range(args.repeats):
        for name, ner in pipes.items():
            start = time.perf_counter()
            ner(texts)
            seconds[name].append(time.perf_counter() - start)
    result = {"bench": "pipeline_speed", "model": args.model, "sentences": len(texts), "threads": args.threads,
              "batch_size": args.batch_size, "repeats": args.repeats, "device": args.device}
    if args.device != "cpu" and torch.cuda.is_available():
        result["card"] = torch.cuda.get_device_name(args.device)
    reference = outputs[names[0]]
    for name in names:
        speed = len(texts) / statistics.median(seconds[name])
        same, largest = compare(reference, outputs[name])
        f1 = pipes[name].model.evaluate(test, batch_size=args.batch_size)["f1"]
        result[name] = {"sentences_per_second": round(speed), "test_f1": round(f1, 2),
                        "entities": sum(map(len, outputs[name])),
                        f"same_spans_as_{names[0]}": same, "largest_score_difference": float(f"{largest:.2g}")}
    result["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["machine"] = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"
    result["date"] = datetime.date.today().isoformat()
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
