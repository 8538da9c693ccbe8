"""A batch-first linear-chain CRF with optional transition constraints (e.g. from a tag scheme).

Public methods validate their inputs and raise ``ValueError`` with actionable messages; the
internals only assert. Everything is vectorised over the batch and loops only over time.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

# Score of a forbidden transition: very negative but finite, so gradients and sums stay finite.
DISALLOWED = -10000.0
REDUCTIONS = ("sum", "mean", "token_mean", "none")


class CRF(nn.Module):
    """Linear-chain CRF over ``num_tags`` tags; ``transitions[i, j]`` scores moving from i to j.

    ``allowed`` (K, K), ``allowed_start`` (K,) and ``allowed_end`` (K,) are boolean masks; where
    False, the score is replaced by ``DISALLOWED``. They are non-persistent buffers: the owner
    rebuilds them from its config, so the saved state holds only the three parameters.
    """

    def __init__(
        self,
        num_tags: int,
        allowed: Optional[torch.Tensor] = None,
        allowed_start: Optional[torch.Tensor] = None,
        allowed_end: Optional[torch.Tensor] = None,
    ) -> None:
        super().__init__()
        if not isinstance(num_tags, int) or num_tags <= 0:
            raise ValueError(f"invalid number of tags: {num_tags!r} (expected a positive int)")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # (from, to)
        self.start_transitions = nn.Parameter(torch.empty(num_tags))  # (num_tags,)
        self.end_transitions = nn.Parameter(torch.empty(num_tags))  # (num_tags,)
        self.reset_parameters()
        for name, value, shape in (
            ("allowed", allowed, (num_tags, num_tags)),
            ("allowed_start", allowed_start, (num_tags,)),
            ("allowed_end", allowed_end, (num_tags,)),
        ):
            self.register_buffer(name, self._check_constraint(name, value, shape), persistent=False)

    @staticmethod
    def _check_constraint(name: str, value: Optional[torch.Tensor], shape: Tuple[int, ...]) -> torch.Tensor:
        if value is None:
            return torch.ones(shape, dtype=torch.bool)
        value = torch.as_tensor(value)
        if value.dtype != torch.bool:
            raise ValueError(f"{name} must be a bool tensor, got dtype {value.dtype}")
        if tuple(value.shape) != shape:
            raise ValueError(f"expected {name} of shape {shape}, got {tuple(value.shape)}")
        return value.clone()

    def reset_parameters(self) -> None:
        """Initialise all scores uniformly in [-0.1, 0.1]."""
        for p in (self.transitions, self.start_transitions, self.end_transitions):
            nn.init.uniform_(p, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}, constrained={self.constrained}"

    @property
    def constrained(self) -> bool:
        """Whether any transition, start or end is forbidden."""
        return not all(bool(m.all()) for m in (self.allowed, self.allowed_start, self.allowed_end))

    def _scores(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Start, transition and end scores with the constraints applied."""
        start = self.start_transitions.masked_fill(~self.allowed_start, DISALLOWED)  # (num_tags,)
        trans = self.transitions.masked_fill(~self.allowed, DISALLOWED)  # (num_tags, num_tags)
        end = self.end_transitions.masked_fill(~self.allowed_end, DISALLOWED)  # (num_tags,)
        return start, trans, end

    # ------------------------------------------------------------------ public API
    def forward(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: Optional[torch.Tensor] = None,
        reduction: str = "sum",
    ) -> torch.Tensor:
        """Negative log-likelihood of ``tags``, reduced by sum, mean (over sentences), token_mean or none."""
        if reduction not in REDUCTIONS:
            raise ValueError(f"invalid reduction: {reduction!r} (expected one of {REDUCTIONS})")
        emissions, mask = self._validate(emissions, mask)
        nll = -self._log_likelihood(emissions, self._validate_tags(tags, emissions, mask), mask)  # (batch,)
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            return nll.mean()
        return nll.sum() / mask.sum()

    def log_likelihood(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Per-sentence log p(tags | emissions), shape (batch,)."""
        emissions, mask = self._validate(emissions, mask)
        return self._log_likelihood(emissions, self._validate_tags(tags, emissions, mask), mask)

    def log_partition(self, emissions: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-sentence log Z(emissions), shape (batch,)."""
        emissions, mask = self._validate(emissions, mask)
        start, trans, end = self._scores()
        alphas = self._alphas(emissions, mask, start, trans)  # (batch, seq, num_tags)
        return torch.logsumexp(alphas[:, -1] + end, dim=1)  # (batch,)

    def forward_backward(self, emissions: torch.Tensor,
                         mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward log-scores, each (batch, seq, num_tags): pass them to ``marginals``
        and ``span_probabilities`` to compute them once for both."""
        emissions, mask = self._validate(emissions, mask)
        start, trans, end = self._scores()
        return self._alphas(emissions, mask, start, trans), self._betas(emissions, mask, trans, end)

    def marginals(self, emissions: torch.Tensor, mask: Optional[torch.Tensor] = None,
                  scores: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        """Posterior p(y_t = k | emissions) by forward-backward, (batch, seq, num_tags); 0 at padding."""
        emissions, mask = self._validate(emissions, mask)
        alphas, betas = scores if scores is not None else self.forward_backward(emissions, mask)
        # Each position's alpha + beta sums to log Z; normalising per position rather than by the
        # global log Z keeps each row summing to 1 despite float32 rounding at large scores.
        probs = torch.softmax(alphas + betas, dim=2)  # (batch, seq, num_tags)
        return probs * mask.unsqueeze(2)

    def span_probabilities(self, emissions: torch.Tensor, mask: Optional[torch.Tensor],
                           spans: Sequence[Tuple[int, int, Sequence[int], Sequence[int]]],
                           scores: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> List[float]:
        """Posterior probability of each span: sentence ``b`` has tags ``path`` on positions
        ``[start, start + len(path))`` and the next tag is none of ``stop_not`` (tags that would
        extend the span, e.g. I-PER after a PER span in IOB2). Spans: (b, start, path, stop_not)."""
        emissions, mask = self._validate(emissions, mask)
        _, trans, end = self._scores()
        alphas, betas = scores if scores is not None else self.forward_backward(emissions, mask)
        lengths = mask.sum(dim=1).tolist()
        log_z = torch.logsumexp(alphas + betas, dim=2)[:, 0].tolist()  # (batch,): same at every position
        # to the host first: MPS has no float64
        al, be, em = (x.detach().cpu().double().numpy() for x in (alphas, betas, emissions))
        tr, en = (x.detach().cpu().double().numpy() for x in (trans, end))
        out = []
        for b, first, path, stop_not in spans:
            score = al[b, first, path[0]]
            for k in range(1, len(path)):
                score += tr[path[k - 1], path[k]] + em[b, first + k, path[k]]
            last, nxt = path[-1], first + len(path)
            if nxt >= lengths[b]:
                tail = en[last]
            else:
                ok = np.ones(self.num_tags, dtype=bool)
                ok[list(stop_not)] = False
                terms = tr[last, ok] + em[b, nxt, ok] + be[b, nxt, ok]
                tail = np.logaddexp.reduce(terms) if terms.size else -np.inf
            out.append(float(np.exp(min(score + tail - log_z[b], 0.0))))
        return out

    def viterbi(
        self, emissions: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Best tag paths (batch, seq), padded with 0, and their scores (batch,)."""
        emissions, mask = self._validate(emissions, mask)
        start, trans, end = self._scores()
        batch, seq, k = emissions.shape
        identity = torch.arange(k, device=emissions.device).expand(batch, k)  # (batch, num_tags)
        score = start + emissions[:, 0]  # (batch, num_tags)
        backpointers = []
        for t in range(1, seq):
            best, prev = (score.unsqueeze(2) + trans).max(dim=1)  # (batch, num_tags) each
            on = mask[:, t].unsqueeze(1)  # (batch, 1)
            score = torch.where(on, best + emissions[:, t], score)  # (batch, num_tags)
            # Past a sentence's end each tag points to itself, so backtracking carries the last tag.
            backpointers.append(torch.where(on, prev, identity))  # (batch, num_tags)
        best_scores, last = (score + end).max(dim=1)  # (batch,) each
        cur = last.unsqueeze(1)  # (batch, 1)
        path = [cur]
        for pointers in reversed(backpointers):
            cur = pointers.gather(1, cur)  # (batch, 1)
            path.append(cur)
        path.reverse()
        best_tags = torch.cat(path, dim=1).masked_fill(~mask, 0)  # (batch, seq)
        return best_tags, best_scores

    def decode(self, emissions: torch.Tensor, mask: Optional[torch.Tensor] = None) -> List[List[int]]:
        """Viterbi best paths as lists of tag ids, each as long as its sentence."""
        best_tags, _ = self.viterbi(emissions, mask)
        lengths = self._default_mask(emissions, mask).sum(dim=1).tolist()
        return [row[:n] for row, n in zip(best_tags.tolist(), lengths)]

    # ------------------------------------------------------------------ internals
    def _alphas(self, emissions, mask, start, trans) -> torch.Tensor:
        """Forward log-scores per position; padded positions repeat the last valid one."""
        alpha = start + emissions[:, 0]  # (batch, num_tags)
        alphas = [alpha]
        for t in range(1, emissions.size(1)):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + emissions[:, t]  # (batch, tags)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)  # (batch, num_tags)
            alphas.append(alpha)
        return torch.stack(alphas, dim=1)  # (batch, seq, num_tags)

    def _betas(self, emissions, mask, trans, end) -> torch.Tensor:
        """Backward log-scores per position; the last valid position (and padding) get ``end``."""
        end = end.expand(emissions.size(0), -1)  # (batch, num_tags)
        beta = end
        betas = [beta]
        for t in range(emissions.size(1) - 2, -1, -1):
            nxt = torch.logsumexp(trans + (emissions[:, t + 1] + beta).unsqueeze(1), dim=2)  # (batch, tags)
            beta = torch.where(mask[:, t + 1].unsqueeze(1), nxt, end)  # (batch, num_tags)
            betas.append(beta)
        betas.reverse()
        return torch.stack(betas, dim=1)  # (batch, seq, num_tags)

    def _log_likelihood(self, emissions, tags, mask) -> torch.Tensor:
        start, trans, end = self._scores()
        maskf = mask.to(emissions.dtype)  # (batch, seq)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # (batch, seq)
        moves = trans[tags[:, :-1], tags[:, 1:]]  # (batch, seq - 1)
        last = tags.gather(1, (mask.sum(dim=1) - 1).unsqueeze(1)).squeeze(1)  # (batch,)
        gold = start[tags[:, 0]] + end[last]  # (batch,)
        gold = gold + (emit * maskf).sum(1) + (moves * maskf[:, 1:]).sum(1)  # (batch,)
        alphas = self._alphas(emissions, mask, start, trans)  # (batch, seq, num_tags)
        return gold - torch.logsumexp(alphas[:, -1] + end, dim=1)  # (batch,)

    @staticmethod
    def _default_mask(emissions: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        if mask is None:
            return torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
        return mask if mask.dtype == torch.bool else mask.bool()

    def _validate(
        self, emissions: torch.Tensor, mask: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Check shapes and mask layout; return float32-or-wider emissions and a bool mask."""
        if emissions.dim() != 3:
            raise ValueError(f"emissions must have dimension of 3 (batch, seq, tags), got {emissions.dim()}")
        if emissions.size(2) != self.num_tags:
            raise ValueError(
                f"expected last dimension of emissions is {self.num_tags}, got {emissions.size(2)}"
            )
        if emissions.size(1) == 0:
            raise ValueError("emissions must have at least one timestep, got seq length 0")
        if mask is not None and mask.shape != emissions.shape[:2]:
            raise ValueError(
                "the first two dimensions of emissions and mask must match, "
                f"got {tuple(emissions.shape[:2])} and {tuple(mask.shape)}"
            )
        mask = self._default_mask(emissions, mask)
        if not bool(mask[:, 0].all()):
            raise ValueError("mask of the first timestep must all be on")
        if bool((mask[:, 1:] & ~mask[:, :-1]).any()):
            raise ValueError(
                "mask must be left-aligned: each row must be some True values followed by False padding"
            )
        if emissions.dtype in (torch.float16, torch.bfloat16):
            emissions = emissions.float()  # long sums of DISALLOWED overflow half precision
        return emissions, mask

    def _validate_tags(self, tags: torch.Tensor, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Check tags against emissions; padded positions may hold anything (e.g. -100)."""
        if tags.shape != emissions.shape[:2]:
            raise ValueError(
                "the first two dimensions of emissions and tags must match, "
                f"got {tuple(emissions.shape[:2])} and {tuple(tags.shape)}"
            )
        if tags.dtype.is_floating_point or tags.dtype == torch.bool:
            raise ValueError(f"tags must be an integer tensor, got dtype {tags.dtype}")
        tags = tags.long().masked_fill(~mask, 0)  # (batch, seq)
        if bool(((tags < 0) | (tags >= self.num_tags)).any()):
            raise ValueError(f"tags must be in [0, {self.num_tags}) at unmasked positions")
        return tags
