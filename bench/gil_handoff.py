#!/usr/bin/env python
"""Why the network does not run in a worker thread on a GPU by default (``TaskModel.overlap_network``).

A worker thread issues 9,000 tiny torch ops (each releases the GIL and must win it back), alone and
beside a thread busy with Python, as the caller's thread is while it builds arrays and results. Each
time the worker wants the GIL back it waits for the switch interval, so a stage of many small
launches, as a GPU batch is, crawls beside busy Python. Long GIL-free calls (an LSTM on the CPU,
onnxruntime) do not suffer this, which is why the thread pays there. Prints one line per switch
interval. Run it alone.

    python bench/gil_handoff.py
"""
from __future__ import annotations

import sys
import threading
import time

import torch


def worker(n: int, x: torch.Tensor, out: list) -> None:
    start = time.perf_counter()
    for _ in range(n):
        y = x + 1
        y = y * 2
        y.sum()
    out.append(time.perf_counter() - start)


def busy(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def main() -> None:
    torch.set_num_threads(1)
    x = torch.ones(8)
    for interval in (0.005, 0.0005):
        sys.setswitchinterval(interval)
        alone: list = []
        worker(3000, x, alone)
        stop = threading.Event()
        other = threading.Thread(target=busy, args=(stop,))
        other.start()
        beside: list = []
        thread = threading.Thread(target=worker, args=(3000, x, beside))
        thread.start()
        thread.join()
        stop.set()
        other.join()
        print(f"switch interval {interval * 1000:.1f} ms: 9,000 small ops alone {alone[0] * 1000:.0f} ms, "
              f"beside a busy Python thread {beside[0] * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
