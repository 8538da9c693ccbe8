#!/usr/bin/env python
"""Peak memory of a training run as the corpus grows; one JSON line per corpus size.

Each measurement is ``textrnn train ner`` in a fresh process with an empty ``datasets`` cache:
``--max-steps`` steps (300 by default) of the CoNLL-2003 recipe's model (GloVe 6B 50d, char CNN,
BiLSTM-CRF) on a file of N copies of CoNLL-2003 train (built once under /tmp by
bench/data_load.py), the dev file scored at the end. It reports the child's peak RSS
(``ru_maxrss`` of the finished child) and wall time. Reading, vocabularies, encoding and batching
all stream from Arrow, so 20 copies (4M tokens) should peak near one copy. Run it under the lock.

    python bench/train_memory.py --repeat 1 --repeat 20
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from data_load import repeated_train  # noqa: E402


def measure(train: str, steps: int, embeddings: str, dev: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HF_DATASETS_CACHE=os.path.join(tmp, "hf"), HF_DATASETS_OFFLINE="1")
        command = [sys.executable, "-m", "textrnn.cli", "train", "ner", "--train", train, "--dev", dev,
                   "--embeddings", embeddings, "--max-steps", str(steps), "--max-epochs", "1000",
                   "--output-dir", os.path.join(tmp, "run")]
        start = time.perf_counter()
        with open(os.path.join(tmp, "out"), "w+") as out, open(os.path.join(tmp, "err"), "w+") as err:
            child = subprocess.Popen(command, env=env, stdout=out, stderr=err)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest so far
            seconds = time.perf_counter() - start
            out.seek(0), err.seek(0)
            if status != 0:
                raise SystemExit(err.read()[-3000:])
            results = json.loads([line for line in out.read().splitlines() if line.startswith("{")][-1])
    return {"seconds": round(seconds, 1), "steps": results["steps"], "dev_f1": results["dev_f1"],
            "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def main(argv=None) -> None:
    from textrnn.data import card_for
    from textrnn.utils import default_data_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, action="append", help="copies of CoNLL-2003 train (default 1 and 20)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--embeddings", default=str(default_data_dir() / "glove" / "glove.6B.50d.txt.gz"))
    args = p.parse_args(argv)
    dev = str(card_for("conll2003").file_path("validation"))
    for copies in args.repeat or [1, 20]:
        result = {"bench": "train_memory", "copies": copies, **measure(repeated_train(copies), args.steps,
                                                                       args.embeddings, dev)}
        result.update(machine=f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
                      date=datetime.date.today().isoformat())
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
