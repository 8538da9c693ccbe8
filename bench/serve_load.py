#!/usr/bin/env python
"""Load on `textrnn serve`: throughput and p50/p99 latency, dynamic batching against batch size 1.

Starts the server (a subprocess, `python -m textrnn.cli serve`) once per serving mode and drives it
over loopback with 1, 16 and 64 concurrent clients for a bounded time each. Every request is one
CoNLL-2003 test sentence (tokens joined by spaces) as {"inputs": "..."}. The clients are a raw
asyncio HTTP/1.1 keep-alive loop in this process, with requests encoded beforehand, so the load
generator stays light; it still shares the machine's cores with the server. Prints one JSON line
per (mode, clients) run, then one summary line.

    python bench/serve_load.py --model /work/models/conll03-e3
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List

from textrnn.serve.settings import ServeSettings  # both light: no torch in the load generator
from textrnn.utils import default_data_dir

ROOT = Path(__file__).resolve().parent.parent
MODES = {"dynamic": None, "batch1": 1}  # None: the server's --max-batch-size as given


def conll_sentences(path: Path) -> List[str]:
    """Plain sentences from a CoNLL column file: first column, -DOCSTART- lines skipped."""
    sentences, tokens = [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if tokens:
                sentences.append(" ".join(tokens))
            tokens = []
        elif not line.startswith("-DOCSTART-"):
            tokens.append(line.split()[0])
    return sentences


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> Dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def server(model: str, port: int, batch_size: int, wait_ms: float, threads: int, precision: str = "fp32",
           runtime: tuple = ()):
    cmd = [sys.executable, "-m", "textrnn.cli", "serve", model, "--port", str(port), "--max-batch-size",
           str(batch_size), "--max-wait-ms", str(wait_ms), "--threads", str(threads), "--precision", precision,
           *runtime]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {process.stderr.read().decode()[-2000:]}")
            try:
                get_json(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not answer /health within 120 s")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def encode_requests(sentences: List[str]) -> List[bytes]:
    out = []
    for text in sentences:
        body = json.dumps({"inputs": text}).encode()
        out.append(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return out


async def one_client(port: int, requests: List[bytes], start: int, stop_at: float, latencies: List[float],
                     errors: List[int]) -> None:
    """Send requests one after another on one keep-alive connection until ``stop_at``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = start
    try:
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            writer.write(requests[i % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            if head[9:12] != b"200":
                errors.append(int(head[9:12]))
            i += 1
    finally:
        writer.close()


async def drive(port: int, requests: List[bytes], clients: int, seconds: float) -> Dict:
    latencies: List[float] = []
    errors: List[int] = []
    rng = random.Random(clients)
    began = time.perf_counter()
    await asyncio.gather(*(one_client(port, requests, rng.randrange(len(requests)), began + seconds, latencies,
                                      errors) for _ in range(clients)))
    elapsed = time.perf_counter() - began
    latencies.sort()

    def quantile(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)

    return {"requests": len(latencies), "seconds": round(elapsed, 2),
            "requests_per_second": round(len(latencies) / elapsed, 1),
            "p50_ms": quantile(0.50), "p99_ms": quantile(0.99), "errors": len(errors)}


def main(argv=None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder, e.g. from recipes/ner_conll2003.py")
    p.add_argument("--data", default=str(default_data_dir() / "conll2003" / "test.txt"),
                   help="CoNLL file whose sentences are sent (default: CoNLL-2003 test)")
    p.add_argument("--clients", default="1,16,64", help="concurrent clients, one run each")
    p.add_argument("--seconds", type=float, default=10.0, help="measured time per run")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured load before each run")
    p.add_argument("--modes", default="dynamic,batch1", help=f"serving modes: {', '.join(MODES)}")
    p.add_argument("--max-batch-size", type=int, default=64, help="of the dynamic mode")
    p.add_argument("--max-wait-ms", type=float, default=ServeSettings().max_wait_ms)
    p.add_argument("--threads", type=int, default=1,
                   help="the server's torch threads (1: the fastest here in both modes; see docs/benchmarks.md)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--backend", choices=("torch", "onnx"), help="as textrnn serve --backend")
    p.add_argument("--quantize", choices=("int8",), help="as textrnn serve --quantize")
    args = p.parse_args(argv)
    requests = encode_requests(conll_sentences(Path(args.data)))
    clients = [int(c) for c in args.clients.split(",")]
    runtime = (*(("--backend", args.backend) if args.backend else ()),
               *(("--quantize", args.quantize) if args.quantize else ()))
    runs = []
    for mode in args.modes.split(","):
        batch_size = MODES[mode] or args.max_batch_size
        with server(args.model, free_port(), batch_size, args.max_wait_ms, args.threads, args.precision,
                    runtime) as url:
            port = int(url.rsplit(":", 1)[1])
            for n in clients:
                asyncio.run(drive(port, requests, n, args.warmup))
                before = get_json(url + "/health")
                run = {"mode": mode, "max_batch_size": batch_size, "max_wait_ms": args.max_wait_ms, "clients": n,
                       **asyncio.run(drive(port, requests, n, args.seconds))}
                after = get_json(url + "/health")
                batches = after["batches"] - before["batches"]
                run["mean_batch_size"] = round((after["items"] - before["items"]) / max(batches, 1), 1)
                # the share of the run the model thread was computing: near 1, the model is the bottleneck
                run["model_busy"] = round((after["model_seconds"] - before["model_seconds"]) / run["seconds"], 2)
                print(json.dumps(run), flush=True)
                runs.append(run)
    rate = {(r["mode"], r["clients"]): r["requests_per_second"] for r in runs}
    summary = {"bench": "serve_load", "model": args.model, "sentences": len(requests), "threads": args.threads,
               "precision": args.precision, "backend": args.backend, "quantize": args.quantize, "seconds_per_run": args.seconds, "runs": runs}
    for n in clients:
        if ("dynamic", n) in rate and ("batch1", n) in rate:
            summary[f"speedup_at_{n}_clients"] = round(rate["dynamic", n] / rate["batch1", n], 2)
    summary["machine"] = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"
    summary["date"] = datetime.date.today().isoformat()
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
