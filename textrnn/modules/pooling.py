"""Sentence vectors from encoder states; every pooling ignores padded positions exactly."""
from __future__ import annotations

import torch
from torch import nn


class LastPooling(nn.Module):
    """The forward direction's state at the last token and the backward one's at the first."""

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        half = states.size(-1) // 2
        lengths = mask.sum(dim=1)  # (batch,)
        rows = torch.arange(states.size(0), device=states.device)
        return torch.cat([states[rows, lengths - 1, :half], states[:, 0, half:]], dim=-1)  # (batch, dim)


class MeanPooling(nn.Module):
    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(states.dtype)  # (batch, seq, 1)
        return (states * m).sum(dim=1) / m.sum(dim=1)  # (batch, dim)


class MaxPooling(nn.Module):
    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return states.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values  # (batch, dim)


class AttentionPooling(nn.Module):
    """Additive attention (Bahdanau; Yang et al. 2016): a learned query scores each position."""

    def __init__(self, dim: int, attention_dim: int = 128):
        super().__init__()
        self.proj = nn.Linear(dim, attention_dim)
        self.query = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.query(torch.tanh(self.proj(states))).squeeze(-1)  # (batch, seq)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=1)  # (batch, seq)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (batch, dim)


POOLINGS = {"last": LastPooling, "mean": MeanPooling, "max": MaxPooling, "attention": AttentionPooling}


def pooling(kind: str, dim: int) -> nn.Module:
    """The registry: ``pooling("max", 512)``."""
    return AttentionPooling(dim) if kind == "attention" else POOLINGS[kind]()
