#!/usr/bin/env python
"""Speed of the default tagger (recipes/ner_conll2003.py defaults) on CoNLL-2003; one JSON line.

Training: tokens/s over --steps batches of the shuffled, length-bucketed train set after
--warmup batches (forward, backward, clipping, SGD step: the real loop's work). Inference:
sentences/s and tokens/s of ``SequenceTagger.predict`` (tokens in, tags out, Viterbi included) on
the test set at batch sizes 1, 32 and 256, after one warm-up pass. The model is untrained: speed
does not depend on the weights. Run it alone: two torch processes on two cores slow each other.

    python bench/ner_speed.py
    python bench/ner_speed.py --rnn gru --no-crf
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
from textrnn.training.batching import BucketBatchSampler  # noqa: E402
from textrnn.training.trainer import build_optimizer  # noqa: E402


def training_speed(tagger, train, config, warmup: int, steps: int) -> float:
    items = [tagger.encode(tokens) for tokens in train["tokens"]]
    for item, tags in zip(items, train["tags"]):
        item["tags"] = tags
    sampler = BucketBatchSampler([len(it["words"]) for it in items], config.batch_size, seed=config.seed)
    batches = list(sampler)
    model = tagger.model.train()
    optimizer = build_optimizer(model.parameters(), config)
    tokens, start = 0, None
    for step, indices in enumerate(batches[: warmup + steps]):
        if step == warmup:
            tokens, start = 0, time.perf_counter()
        batch = tagger.collate([items[i] for i in indices])  # collation is part of the real loop
        loss = model(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        tokens += int(batch["lengths"].sum())
    return tokens / (time.perf_counter() - start)


def inference_speed(tagger, sentences, batch_size: int):
    tagger.predict(sentences[: max(batch_size * 2, 64)], batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    tagger.predict(sentences, batch_size=batch_size)
    seconds = time.perf_counter() - start
    tokens = sum(map(len, sentences))
    return round(len(sentences) / seconds), round(tokens / seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="inference precision (training is always fp32)")
    bench_args, rest = parser.parse_known_args(argv)
    args = recipe.parse_args(rest)
    set_threads(args)
    corpus, _ = recipe.load_data(args.data_dir)
    config = training_config(args)
    tagger = build_tagger(corpus["train"], **tagger_kwargs(args))
    result = {
        "bench": "ner_speed", "rnn": args.rnn, "hidden_size": args.hidden_size, "crf": args.crf,
        "char_features": args.char_features, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
        "train_tokens_per_second": round(training_speed(tagger, corpus["train"], config, bench_args.warmup,
                                                        bench_args.steps)),
    }
    tagger.model.eval()
    tagger.precision = result["inference_precision"] = bench_args.precision
    sentences = corpus["test"]["tokens"][:]
    for batch_size in (1, 32, 256):
        sps, tps = inference_speed(tagger, sentences, batch_size)
        result[f"test_sentences_per_second_b{batch_size}"] = sps
        result[f"test_tokens_per_second_b{batch_size}"] = tps
    result["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["machine"] = f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores"
    result["torch"] = torch.__version__
    result["date"] = datetime.date.today().isoformat()
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
