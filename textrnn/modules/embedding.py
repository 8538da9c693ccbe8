"""Word embeddings: fine-tuned rows for the training vocabulary, frozen rows for the rest."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


BIGRAM_INITS = ("normal", "uniform")


def uniform_rows_(weight: torch.Tensor) -> None:
    """Random vectors at textrnn's scale, uniform(±√(3/dim)) (unit variance per vector), row 0 (padding) zero."""
    bound = (3.0 / weight.shape[1]) ** 0.5
    with torch.no_grad():
        weight.uniform_(-bound, bound)
        weight[0].zero_()


def check_bigram_init(how: str) -> None:
    """Refuse an unknown ``--bigram-init`` before a model is built (building may train vectors first)."""
    if how not in BIGRAM_INITS:
        raise ConfigError(f"--bigram-init must be one of {', '.join(BIGRAM_INITS)}, not {how!r}")


def init_bigrams_(embedding: nn.Embedding, how: str) -> None:
    """How the bigram vectors of a character model start (``--bigram-init``): "uniform" (``uniform_rows_``,
    near the scale of gensim's character vectors they are joined to) or "normal" (torch's N(0, 1), five
    times larger; it trained worse on ChnSentiCorp, docs/benchmarks.md)."""
    check_bigram_init(how)
    if how == "uniform":
        uniform_rows_(embedding.weight)


class WordEmbedding(nn.Module):
    """Ids below ``num_trainable`` index a trained table; ids at or above it a frozen buffer.

    Pretrained vectors of words never seen in training stay where the pretraining put them, so
    text at inference time still benefits from them, while the gradient (and optimiser state)
    covers only the training vocabulary: a 20k-row update instead of a 400k-row one.
    """

    def __init__(self, vocab_size: int, dim: int, num_trainable: Optional[int] = None,
                 init: Optional[torch.Tensor] = None, num_buckets: int = 0,
                 ngrams: Optional[torch.Tensor] = None):
        super().__init__()
        # fastText n-gram rows (frozen): out-of-vocabulary words get the mean of their n-grams.
        # Absent parts are None, not empty tensors: empty buffers alias one another, and
        # checkpointing (safetensors) would drop them as "shared".
        if num_buckets:
            self.register_buffer("ngrams", torch.zeros(num_buckets, dim) if ngrams is None else ngrams.clone())
        else:
            self.register_buffer("ngrams", None)
        self.num_trainable = vocab_size if num_trainable is None else num_trainable
        self.trained = nn.Embedding(self.num_trainable, dim, padding_idx=0)
        num_frozen = vocab_size - self.num_trainable
        self.register_buffer("frozen", torch.zeros(num_frozen, dim) if num_frozen else None)
        if init is not None:
            if tuple(init.shape) != (vocab_size, dim):
                raise ValueError(f"expected an embedding matrix of shape ({vocab_size}, {dim}), "
                                 f"got {tuple(init.shape)}")
            with torch.no_grad():
                self.trained.weight.copy_(init[: self.num_trainable])
                if self.frozen is not None:
                    self.frozen.copy_(init[self.num_trainable:])
                self.trained.weight[0].zero_()
        else:
            uniform_rows_(self.trained.weight)
        self.dim = dim

    def forward(self, ids: torch.Tensor, oov_positions: Optional[torch.Tensor] = None,
                oov_buckets: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``oov_positions`` (n,) index the flattened (batch * seq) positions of unknown words and
        ``oov_buckets`` (n, max_ngrams) their n-gram rows, -1 for padding."""
        if self.frozen is None:
            out = self.trained(ids)  # (batch, seq, dim)
        else:
            is_frozen = ids >= self.num_trainable  # (batch, seq)
            trained = self.trained(ids.masked_fill(is_frozen, 0))  # (batch, seq, dim)
            frozen = F.embedding((ids - self.num_trainable).clamp(min=0), self.frozen)  # (batch, seq, dim)
            out = torch.where(is_frozen.unsqueeze(-1), frozen, trained)
        if oov_positions is None or oov_positions.numel() == 0 or self.ngrams is None:
            return out
        valid = (oov_buckets >= 0).unsqueeze(-1)  # (n, max_ngrams, 1)
        rows = F.embedding(oov_buckets.clamp(min=0), self.ngrams) * valid  # (n, max_ngrams, dim)
        vectors = rows.sum(dim=1) / valid.sum(dim=1).clamp(min=1)  # (n, dim)
        flat = out.reshape(-1, self.dim).index_copy(0, oov_positions, vectors.to(out.dtype))
        return flat.view_as(out)
