#!/usr/bin/env python
"""Time and peak memory of ``load_corpus``; one JSON line per measurement.

Each measurement runs in a fresh Python process with an empty ``datasets`` cache, so nothing is
served from an earlier run, and reports its wall time and peak RSS (``ru_maxrss``) beside the RSS
after the imports alone. ``--repeat N`` builds (once, under /tmp, never in the repository) a file
of N copies of CoNLL-2003 train and loads that: a reader that streams peaks at about the same RSS
for N = 1 and N = 20. Run it under the CPU lock: timings from a shared machine mean little.

    python bench/data_load.py                      # load_corpus("conll2003"), card checks included
    python bench/data_load.py --repeat 1 --repeat 20
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, resource, sys, time
import datasets, textrnn.data
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
ds = textrnn.data.load_corpus(json.loads(sys.argv[1]), cache_dir=sys.argv[2])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": round(seconds, 2), "rows": {s: d.num_rows for s, d in ds.items()},
                  "rss_after_imports_mb": round(base / 1024), "peak_rss_mb":
                  round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def repeated_train(copies: int) -> str:
    """CoNLL-2003 train, ``copies`` times in one file under /tmp (built once)."""
    from textrnn.data import card_for

    src = card_for("conll2003").file_path("train")
    if copies == 1:
        return str(src)
    out = Path(tempfile.gettempdir()) / "textrnn-bench" / f"conll2003-train-x{copies}.txt"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        data = src.read_bytes()
        data = data if data.endswith(b"\n") else data + b"\n"  # the file ends without a newline
        tmp = out.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for _ in range(copies):
                f.write(data + b"\n")
        os.replace(tmp, out)
    return str(out)


def measure(source) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(source), cache], env=env,
                             capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"loading {source} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, action="append",
                   help="load a file of this many copies of CoNLL-2003 train (may be given several times)")
    p.add_argument("--runs", type=int, default=1, help="measurements per source (default 1)")
    args = p.parse_args()
    sources = [(f"conll2003 train x{n}", repeated_train(n)) for n in args.repeat] if args.repeat \
        else [("conll2003", "conll2003")]
    for name, source in sources:
        for run in range(args.runs):
            row = {"source": name, "run": run + 1, **measure(source), "python": platform.python_version(),
                   "date": datetime.date.today().isoformat()}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
