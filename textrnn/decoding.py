"""CRF decoding in numpy: Viterbi, forward-backward, token marginals and exact span probabilities.

The same algorithms as ``textrnn.modules.crf.CRF``, for inference only, vectorised over the batch
and looping over time. Both backends decode with it on the CPU (torch computes the emissions, or
onnxruntime does), so an exported model needs no torch, and the two give the same tags for the
same emissions. (A torch model on a GPU decodes there, with ``textrnn.decoding_torch``.)
- Viterbi runs in float32 with the operations of ``CRF.viterbi`` in the same order, so its tags
  are bit-for-bit the torch module's.
- Forward-backward runs in float64 (torch's runs in float32, whose rounding at the large scores
  of long sentences reaches 1e-4 in a span probability), in probability space with a
  per-step rescaling: a (batch, tags) x (tags, tags) product per step instead of a logsumexp
  over (batch, tags, tags). The product is an einsum, not BLAS: BLAS rounds a row differently
  depending on the batch around it, and a sentence's scores must not depend on its batch.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

DISALLOWED = -10000.0  # as in textrnn.modules.crf: a forbidden transition's score


def lengths_mask(lengths: np.ndarray, seq: int) -> np.ndarray:
    """(batch, seq) True on the real positions."""
    return np.arange(seq)[None, :] < np.asarray(lengths)[:, None]


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(x - top).sum(axis=axis)) + np.squeeze(top, axis)


class CRFDecoder:
    """``CRFDecoder(transitions, start, end, allowed, allowed_start, allowed_end)``: scores as
    float arrays ((K, K) from -> to, (K,), (K,)), constraints as bool arrays (None: all allowed)."""

    def __init__(self, transitions: np.ndarray, start: np.ndarray, end: np.ndarray,
                 allowed: Optional[np.ndarray] = None, allowed_start: Optional[np.ndarray] = None,
                 allowed_end: Optional[np.ndarray] = None):
        k = len(start)
        if np.shape(transitions) != (k, k) or np.shape(end) != (k,):
            raise ValueError(f"expected transitions ({k}, {k}) and end ({k},) for {k} start scores; "
                             f"got {np.shape(transitions)} and {np.shape(end)}")

        def constrained(scores, mask):
            scores = np.asarray(scores, dtype=np.float32)
            return scores if mask is None else np.where(mask, scores, np.float32(DISALLOWED))

        self.num_tags = k
        self.start = constrained(start, allowed_start)  # (K,) float32, as the torch module uses them
        self.trans = constrained(transitions, allowed)  # (K, K)
        self.end = constrained(end, allowed_end)  # (K,)
        # probability space for forward-backward: exp(-10000) is exactly 0 in float64, as intended
        self._exp_trans = np.exp(self.trans.astype(np.float64))

    @classmethod
    def for_labels(cls, transitions, start, end, labels: Sequence[str], scheme: str) -> "CRFDecoder":
        """Constrained by the tag scheme, as ``BiRNNTagger`` builds its CRF."""
        from . import tags as tag_schemes

        allowed, allowed_start, allowed_end = tag_schemes.allowed_transitions(list(labels), scheme)
        return cls(transitions, start, end, np.array(allowed, dtype=bool), np.array(allowed_start, dtype=bool),
                   np.array(allowed_end, dtype=bool))

    def decode(self, emissions: np.ndarray, lengths: np.ndarray, scores: bool) -> "CRFDecoded":
        """One batch: the best paths, and with ``scores`` their tokens' marginal probabilities."""
        return CRFDecoded(self, emissions, lengths, scores)

    # ------------------------------------------------------------------ Viterbi
    def viterbi(self, emissions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Best tag paths (batch, seq), 0 past each sentence's end."""
        emissions = np.asarray(emissions, dtype=np.float32)
        batch, seq, k = emissions.shape
        assert k == self.num_tags and seq > 0 and len(lengths) == batch
        mask = lengths_mask(lengths, seq)  # (batch, seq)
        identity = np.broadcast_to(np.arange(k), (batch, k))
        score = self.start + emissions[:, 0]  # (batch, K)
        pointers = np.empty((max(seq - 1, 0), batch, k), dtype=np.intp)
        for t in range(1, seq):
            candidates = score[:, :, None] + self.trans  # (batch, from, to)
            prev = candidates.argmax(axis=1)  # (batch, K): the first best, as torch's max
            best = np.take_along_axis(candidates, prev[:, None, :], axis=1)[:, 0]  # (batch, K)
            on = mask[:, t, None]  # (batch, 1)
            score = np.where(on, best + emissions[:, t], score)
            pointers[t - 1] = np.where(on, prev, identity)  # past the end each tag points to itself
        rows = np.arange(batch)
        cur = (score + self.end).argmax(axis=1)  # (batch,)
        paths = np.empty((batch, seq), dtype=np.intp)
        paths[:, seq - 1] = cur
        for t in range(seq - 2, -1, -1):
            cur = pointers[t][rows, cur]
            paths[:, t] = cur
        paths[~mask] = 0
        return paths

    # ------------------------------------------------------------------ forward-backward
    def forward_backward(self, emissions: np.ndarray, lengths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Forward and backward log-scores (batch, seq, K) in float64, with the conventions of
        ``CRF.forward_backward``: padded positions repeat the last alpha and hold ``end`` as beta."""
        em = np.asarray(emissions, dtype=np.float64)
        batch, seq, k = em.shape
        mask = lengths_mask(lengths, seq)
        alphas = np.empty((batch, seq, k))
        alpha = self.start + em[:, 0]  # (batch, K), log space
        alphas[:, 0] = alpha
        with np.errstate(divide="ignore"):
            for t in range(1, seq):
                top = alpha.max(axis=1, keepdims=True)  # (batch, 1): keeps exp() in range
                nxt = np.log(np.einsum("bi,ij->bj", np.exp(alpha - top), self._exp_trans)) + top + em[:, t]
                alpha = np.where(mask[:, t, None], nxt, alpha)
                alphas[:, t] = alpha
            betas = np.empty((batch, seq, k))
            end = np.broadcast_to(self.end.astype(np.float64), (batch, k))
            beta = end
            betas[:, seq - 1] = beta
            for t in range(seq - 2, -1, -1):
                inner = beta + em[:, t + 1]  # (batch, K)
                top = inner.max(axis=1, keepdims=True)
                nxt = np.log(np.einsum("bj,ij->bi", np.exp(inner - top), self._exp_trans)) + top
                beta = np.where(mask[:, t + 1, None], nxt, end)
                betas[:, t] = beta
        return alphas, betas

    @staticmethod
    def marginals(scores: Tuple[np.ndarray, np.ndarray], lengths: np.ndarray) -> np.ndarray:
        """p(y_t = k | x) (batch, seq, K), normalised per position; 0 at padding."""
        alphas, betas = scores
        total = alphas + betas
        total = np.exp(total - total.max(axis=2, keepdims=True))
        probs = total / total.sum(axis=2, keepdims=True)
        return probs * lengths_mask(lengths, alphas.shape[1])[:, :, None]

    def span_probabilities(self, emissions: np.ndarray, lengths: np.ndarray,
                           scores: Tuple[np.ndarray, np.ndarray], paths: np.ndarray, rows: np.ndarray,
                           starts: np.ndarray, ends: np.ndarray, extends: np.ndarray) -> np.ndarray:
        """P(sentence ``rows[i]`` carries ``paths`` on ``[starts[i], ends[i])`` and the tag after the
        span is none of those marked in ``extends[i]`` (K,) bool): the span is exactly there."""
        alphas, betas = scores
        em = np.asarray(emissions, dtype=np.float64)
        tr, end = self.trans.astype(np.float64), self.end.astype(np.float64)
        batch, seq, _ = em.shape
        log_z = _logsumexp(alphas[:, 0] + betas[:, 0], axis=1)  # (batch,)
        on_path = np.take_along_axis(em, paths[:, :, None], axis=2)[:, :, 0]  # (batch, seq)
        steps = np.zeros((batch, seq))
        steps[:, 1:] = tr[paths[:, :-1], paths[:, 1:]] + on_path[:, 1:]  # score of moving to each tag
        steps = np.cumsum(steps, axis=1)
        last = ends - 1
        score = alphas[rows, starts, paths[rows, starts]] + steps[rows, last] - steps[rows, starts]
        last_tag = paths[rows, last]
        nxt = np.minimum(ends, seq - 1)
        terms = tr[last_tag] + em[rows, nxt] + betas[rows, nxt]  # (n, K): the next tag, if any
        with np.errstate(invalid="ignore"):
            tail = np.where(ends < np.asarray(lengths)[rows],
                            _logsumexp(np.where(extends, -np.inf, terms), axis=1), end[last_tag])
        return np.exp(np.minimum(score + tail - log_z[rows], 0.0))


class CRFDecoded:
    """A batch decoded by a ``CRFDecoder``; what a tagger's front end reads off a decoder (the torch
    decoders give the same): ``paths`` (batch, seq) best tags and ``picked`` (batch, seq) their
    marginal probabilities (None without scores), numpy; ``span_probabilities`` of spans on the
    paths. The forward-backward scores are computed once for both."""

    def __init__(self, decoder: CRFDecoder, emissions: np.ndarray, lengths: np.ndarray, scores: bool):
        self.decoder, self.emissions, self.lengths = decoder, emissions, lengths
        self.paths = decoder.viterbi(emissions, lengths)  # (batch, seq)
        self.picked = self.state = None
        if scores:
            self.state = decoder.forward_backward(emissions, lengths)
            probs = decoder.marginals(self.state, lengths)
            self.picked = np.take_along_axis(probs, self.paths[:, :, None], axis=2)[:, :, 0]  # (batch, seq)

    def span_probabilities(self, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                           extends: np.ndarray) -> List[float]:
        """See ``CRFDecoder.span_probabilities``; needs ``scores``."""
        assert self.state is not None
        values = self.decoder.span_probabilities(self.emissions, self.lengths, self.state, self.paths, rows,
                                                 starts, ends, extends)
        return values.tolist()


class SoftmaxDecoder:
    """Decoding for a tagger without a CRF: each token's best tag, independently."""

    def decode(self, emissions: np.ndarray, lengths: np.ndarray, scores: bool) -> "SoftmaxDecoded":
        return SoftmaxDecoded(emissions, lengths, scores)


class SoftmaxDecoded:
    """``CRFDecoded``'s fields for softmax tags. A span's probability is the product of its tokens'
    probabilities times that of the next tag not continuing the span."""

    def __init__(self, emissions: np.ndarray, lengths: np.ndarray, scores: bool):
        self.lengths = lengths
        self.paths = emissions.argmax(axis=2)  # (batch, seq)
        self.picked = self.probs = None
        if scores:
            self.probs = softmax(emissions, axis=2)  # (batch, seq, K) float64
            self.picked = np.take_along_axis(self.probs, self.paths[:, :, None], axis=2)[:, :, 0]

    def span_probabilities(self, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                           extends: np.ndarray) -> List[float]:
        probs, paths, out = self.probs, self.paths, []
        assert probs is not None
        for b, first, end, stop_not in zip(rows, starts, ends, extends):
            p = float(np.prod(probs[b, np.arange(first, end), paths[b, first:end]]))
            if end < self.lengths[b] and stop_not.any():
                p *= 1.0 - float(probs[b, end, stop_not].sum())
            out.append(p)
        return out


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
