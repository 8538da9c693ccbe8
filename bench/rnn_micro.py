#!/usr/bin/env python
"""Microbenchmark behind two design choices of the encoder; one JSON line.

1. A packed bidirectional LSTM against textrnn's BiRNNEncoder (each direction a unidirectional LSTM
   over padded input, the backward one on sentences reversed within their length): training step
   (forward + backward) and inference, and the largest difference of their outputs on real tokens
   with the same weights (it should be ~1e-7: the two are the same function).
2. Inference of the encoder in fp32 against bfloat16 autocast (oneDNN's bf16 LSTM kernels).

    python bench/rnn_micro.py [--batch 32 --seq 30 --input 80 --hidden 256]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textrnn.modules.encoder import BiRNNEncoder


def timed(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000  # ms


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=30)
    p.add_argument("--input", type=int, default=80)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--infer-batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args(argv)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(0)
    B, T = args.batch, args.seq
    x = torch.randn(B, T, args.input, requires_grad=True)
    lengths = torch.randint(T - 10, T + 1, (B,))
    lengths[0] = T
    mask = torch.arange(T) < lengths.unsqueeze(1)
    packed_lstm = nn.LSTM(args.input, args.hidden, batch_first=True, bidirectional=True)
    split = BiRNNEncoder(args.input, args.hidden)
    with torch.no_grad():  # the same weights in both, so the outputs can be compared
        f, b = split.forward_rnns[0], split.backward_rnns[0]
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(f, name).copy_(getattr(packed_lstm, name))
            getattr(b, name).copy_(getattr(packed_lstm, name + "_reverse"))

    def packed(inputs):
        out, _ = packed_lstm(pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False))
        return pad_packed_sequence(out, batch_first=True, total_length=T)[0]

    result = {"bench": "rnn_micro", "batch": B, "seq": T, "input": args.input, "hidden": args.hidden,
              "threads": torch.get_num_threads()}
    result["train_ms_packed"] = round(timed(lambda: packed(x).sum().backward(), args.repeats), 1)
    result["train_ms_split"] = round(timed(lambda: split(x, lengths).sum().backward(), args.repeats), 1)
    with torch.inference_mode():
        result["infer_ms_packed"] = round(timed(lambda: packed(x), args.repeats), 1)
        result["infer_ms_split"] = round(timed(lambda: split(x, lengths), args.repeats), 1)
        diff = ((packed(x) - split(x, lengths)).abs() * mask.unsqueeze(-1)).max().item()
        result["max_abs_diff_real_tokens"] = float(f"{diff:.2e}")
        big = torch.randn(args.infer_batch, T, args.input)
        big_lengths = torch.full((args.infer_batch,), T)
        result[f"infer_ms_fp32_b{args.infer_batch}"] = round(timed(lambda: split(big, big_lengths), 5), 1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            result[f"infer_ms_bf16_b{args.infer_batch}"] = round(timed(lambda: split(big, big_lengths), 5), 1)
            bf16 = split(big, big_lengths).float()
        result["bf16_max_abs_diff"] = round((bf16 - split(big, big_lengths)).abs().max().item(), 4)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
