#!/usr/bin/env python
"""Speed of the default tagger (recipes/ner_conll2003.py defaults) on CoNLL-2003; one JSON line.

Training: tokens/s over --steps batches of the shuffled, length-bucketed train set after
--warmup batches, through the real loop's parts (rows fetched from the encoded Arrow table and
padded by the DataLoader, forward, backward, clipping, SGD step, and the weight average's update
where the settings keep one; under autocast with --mixed-precision). Inference: sentences/s and
tokens/s of ``SequenceTagger.predict`` (tokens in, tags out, Viterbi included) on the test set at
several batch sizes, and of ``predict_entities``
(token and span scores too) at batch 256, after one warm-up pass. On a GPU, the clock is read
after ``torch.cuda.synchronize()``. The model is untrained: speed does not depend on the weights.
Run it alone: two torch processes on two cores slow each other.

    python bench/ner_speed.py
    python bench/ner_speed.py --rnn gru --no-crf
    python bench/ner_speed.py --device cuda --preset gpu      # batch 256, bf16 autocast, 2 loader workers
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
import ner_conll2003 as recipe  # noqa: E402  (the recipe's own flags and defaults)

from textrnn.options import set_threads, tagger_kwargs, training_config  # noqa: E402
from textrnn.tasks.tagging import build_tagger  # noqa: E402
from textrnn.training.averaging import WeightAverage  # noqa: E402
from textrnn.training.batching import BucketBatchSampler  # noqa: E402
from textrnn.training.trainer import build_optimizer  # noqa: E402
from textrnn.utils import resolve_device  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_speed(tagger, train, config, device: torch.device, warmup: int, steps: int) -> float:
    from torch.utils.data import DataLoader

    data = tagger.encode_for_training(train)
    sampler = BucketBatchSampler(data["length"][:], config.batch_size, seed=config.seed)
    loader = DataLoader(data, batch_sampler=sampler, collate_fn=tagger.collate, num_workers=config.loader_workers,
                        pin_memory=device.type == "cuda")
    model = tagger.model.to(device).train()
    optimizer = build_optimizer(model.parameters(), config)
    average = WeightAverage(model, config.average_decay) if config.average_decay else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16 if config.mixed_precision == "bf16" else torch.float16,
                              enabled=config.mixed_precision != "no")
    tokens, start, step = 0, None, 0
    while step < warmup + steps:
        for batch in loader:
            if step == warmup:
                synchronize(device)
                tokens, start = 0, time.perf_counter()
            tokens += int(batch["lengths"].sum())
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with autocast:
                loss = model(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            if average is not None:
                average.update(model)
            step += 1
            if step == warmup + steps:
                break
    synchronize(device)
    return tokens / (time.perf_counter() - start)


def inference_speed(tagger, sentences, batch_size: int, scores: bool = False):
    run = tagger.predict_entities if scores else tagger.predict
    run(sentences[: max(batch_size * 2, 64)], batch_size=batch_size)  # warm-up
    synchronize(tagger.device)
    start = time.perf_counter()
    run(sentences, batch_size=batch_size)  # returns Python lists: the device has finished
    seconds = time.perf_counter() - start
    tokens = sum(map(len, sentences))
    return round(len(sentences) / seconds), round(tokens / seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="inference precision (training follows --mixed-precision)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when there is one)")
    bench_args, rest = parser.parse_known_args(argv)
    args = recipe.parse_args(rest)
    set_threads(args.threads)
    device = resolve_device(bench_args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    corpus, _ = recipe.load_data(args.data_dir)
    config = training_config(args)
    tagger = build_tagger(corpus["train"], **tagger_kwargs(args))
    result = {
        "bench": "ner_speed", "rnn": args.rnn, "hidden_size": args.hidden_size, "crf": args.crf,
        "char_features": args.char_features, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "mixed_precision": config.mixed_precision, "loader_workers": config.loader_workers,
        "train_tokens_per_second": round(training_speed(tagger, corpus["train"], config, device, bench_args.warmup,
                                                        bench_args.steps)),
    }
    tagger.model.eval()
    tagger.precision = result["inference_precision"] = bench_args.precision
    sentences = corpus["test"]["tokens"][:]
    for batch_size in (1, 32, 256) + ((1024,) if device.type == "cuda" else ()):
        sps, tps = inference_speed(tagger, sentences, batch_size)
        result[f"test_sentences_per_second_b{batch_size}"] = sps
        result[f"test_tokens_per_second_b{batch_size}"] = tps
    result["test_sentences_per_second_b256_with_scores"] = inference_speed(tagger, sentences, 256, scores=True)[0]
    result["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if device.type == "cuda":
        result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    result["machine"] = f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores"
    result["torch"] = torch.__version__
    result["date"] = datetime.date.today().isoformat()
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
