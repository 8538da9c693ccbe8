"""Word embeddings: fine-tuned rows for the training vocabulary, frozen rows for the rest."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class WordEmbedding(nn.Module):
    """Ids below ``num_trainable`` index a trained table; ids at or above it a frozen buffer.

    Pretrained vectors of words never seen in training stay where the pretraining put them, so
    text at inference time still benefits from them, while the gradient (and optimiser state)
    covers only the training vocabulary: a 20k-row update instead of a 400k-row one.
    """

    def __init__(self, vocab_size: int, dim: int, num_trainable: Optional[int] = None,
                 init: Optional[torch.Tensor] = None):
        super().__init__()
        self.num_trainable = vocab_size if num_trainable is None else num_trainable
        self.trained = nn.Embedding(self.num_trainable, dim, padding_idx=0)
        num_frozen = vocab_size - self.num_trainable
        self.register_buffer("frozen", torch.zeros(num_frozen, dim))
        if init is not None:
            if tuple(init.shape) != (vocab_size, dim):
                raise ValueError(f"expected an embedding matrix of shape ({vocab_size}, {dim}), "
                                 f"got {tuple(init.shape)}")
            with torch.no_grad():
                self.trained.weight.copy_(init[: self.num_trainable])
                self.frozen.copy_(init[self.num_trainable:])
        else:
            nn.init.uniform_(self.trained.weight, -(3.0 / dim) ** 0.5, (3.0 / dim) ** 0.5)
        with torch.no_grad():
            self.trained.weight[0].zero_()
        self.dim = dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.frozen.size(0) == 0:
            return self.trained(ids)  # (batch, seq, dim)
        is_frozen = ids >= self.num_trainable  # (batch, seq)
        trained = self.trained(ids.masked_fill(is_frozen, 0))  # (batch, seq, dim)
        frozen = F.embedding((ids - self.num_trainable).clamp(min=0), self.frozen)  # (batch, seq, dim)
        return torch.where(is_frozen.unsqueeze(-1), frozen, trained)
