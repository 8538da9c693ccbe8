"""SoftLexicon embedding (Ma et al., 2020): each token's B/M/E/S word sets as four weighted means."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .embedding import WordEmbedding

NONE_ROW = 1  # the vector of an empty set (textrnn.lexicon.NONE_ROW)


class LexiconEmbedding(nn.Module):
    """Codes ``4 * entry + set`` (0 pads) -> (batch, seq, 4 * dim).

    Each entry has a fixed weight (its frequency) and a vector row; rows below ``num_trainable``
    are fine-tuned and the rest stay frozen (``WordEmbedding``). A set's vector is
    ``4 / Z * sum(weight * vector)`` over its words, where Z sums the weights of all four sets of
    the token, so a set also says how much of the token's evidence it holds; an empty set gets the
    learned ``<none>`` vector.
    """

    def __init__(self, num_entries: int, num_rows: int, dim: int, num_trainable: Optional[int] = None,
                 weights: Optional[torch.Tensor] = None, rows: Optional[torch.Tensor] = None,
                 init: Optional[torch.Tensor] = None):
        super().__init__()
        if num_rows <= NONE_ROW + 1:
            raise ValueError(f"a lexicon needs at least 3 vector rows (<pad>, <none>, <unk>); got {num_rows}")
        self.register_buffer("entry_weights", torch.zeros(num_entries))
        self.register_buffer("entry_rows", torch.zeros(num_entries, dtype=torch.int32))
        if weights is not None:
            self.entry_weights.copy_(weights)
        if rows is not None:
            if int(rows.max()) >= num_rows or int(rows.min()) < 0:
                raise ValueError(f"lexicon rows must lie in [0, {num_rows}); got {int(rows.min())}..{int(rows.max())}")
            self.entry_rows.copy_(rows)
        self.vectors = WordEmbedding(num_rows, dim, num_trainable, init)
        self.dim = dim
        self.output_size = 4 * dim

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        entry = codes // 4  # (batch, seq, k)
        weight = self.entry_weights[entry]  # (batch, seq, k); padding weighs 0
        vectors = self.vectors(self.entry_rows[entry].long())  # (batch, seq, k, dim)
        which = F.one_hot(codes % 4, 4).to(vectors.dtype) * weight.unsqueeze(-1).to(vectors.dtype)  # (batch, seq, k, 4)
        sums = torch.einsum("bskd,bskf->bsfd", vectors, which)  # (batch, seq, 4, dim)
        set_weight = which.sum(dim=2)  # (batch, seq, 4)
        total = set_weight.sum(dim=-1, keepdim=True).clamp(min=1e-12)  # (batch, seq, 1)
        sets = sums * (4.0 / total).unsqueeze(-1)  # (batch, seq, 4, dim)
        none = self.vectors(codes.new_full((1,), NONE_ROW))[0]  # (dim,)
        sets = torch.where((set_weight == 0).unsqueeze(-1), none.to(sets.dtype), sets)
        return sets.flatten(2)  # (batch, seq, 4 * dim)
