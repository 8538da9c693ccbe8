"""A stacked bidirectional LSTM or GRU whose padding never reaches the real positions.

Each direction runs as its own unidirectional RNN over *padded* input: the forward one reads the
sentence as is, the backward one reads each sentence reversed within its own length. Padding then
always comes after the real tokens, and a causal RNN never lets it reach them, so the result equals
a packed bidirectional RNN exactly, while PyTorch can use its fused oneDNN kernel on the CPU
(packed input falls back to a per-timestep loop): about 1.7x faster to train and 2x to run here
(docs/benchmarks.md).
"""
from __future__ import annotations

import torch
from torch import nn

ENCODERS = {"lstm": nn.LSTM, "gru": nn.GRU}


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``length`` positions; padding stays where it is (an involution)."""
    batch, seq = x.shape[:2]
    positions = torch.arange(seq, device=x.device).expand(batch, seq)  # (batch, seq)
    lengths = lengths.to(x.device).unsqueeze(1)  # (batch, 1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (batch, seq)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class BiRNNEncoder(nn.Module):
    """(batch, seq, input) -> (batch, seq, 2 * hidden), stacked ``num_layers`` deep."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, rnn: str = "lstm",
                 dropout: float = 0.0):
        super().__init__()
        cell = ENCODERS[rnn]
        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
        self.forward_rnns = nn.ModuleList(cell(n, hidden_size, batch_first=True) for n in sizes)
        self.backward_rnns = nn.ModuleList(cell(n, hidden_size, batch_first=True) for n in sizes)
        self.between = nn.Dropout(dropout if num_layers > 1 else 0.0)
        self.output_size = 2 * hidden_size
        if rnn == "lstm":  # forget-gate bias 1 (Jozefowicz et al., 2015): remember by default early on
            for module in (*self.forward_rnns, *self.backward_rnns):
                with torch.no_grad():
                    module.bias_ih_l0[hidden_size:2 * hidden_size].fill_(1.0)
                    module.bias_hh_l0[hidden_size:2 * hidden_size].zero_()

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = inputs  # (batch, seq, input)
        for i, (fwd, bwd) in enumerate(zip(self.forward_rnns, self.backward_rnns)):
            if i > 0:
                x = self.between(x)
            ahead, _ = fwd(x)  # (batch, seq, hidden)
            behind, _ = bwd(reverse_within_length(x, lengths))  # (batch, seq, hidden), reversed
            x = torch.cat([ahead, reverse_within_length(behind, lengths)], dim=-1)  # (batch, seq, 2*hidden)
        return x  # padded positions hold junk: callers mask them
