"""CRF decoding in torch, on the device that holds the emissions (a GPU): ``textrnn.decoding``'s
twin for a torch model that does not sit on the CPU.

On a GPU, copying the emissions to the host and looping over time in numpy costs more than the
network itself (issue 10.1: 12,900 sentences/s with span scores on an H100 against 35,000 for the
network and Viterbi alone). Here the loops run on the device and only the results come back:
paths, the picked tokens' probabilities and the span probabilities. Each time step is a handful
of kernel launches, so the Python that launches them is the cost; the steps are written to need
few of them.

- Viterbi runs in float32 with the operations of ``CRFDecoder.viterbi`` at every real position,
  so its tags are bit for bit the numpy decoder's (and the torch CRF module's) for the same
  emissions. Padded positions take a transition matrix that keeps each tag where it is at no cost
  (0 on the diagonal, -inf elsewhere) and add 0, instead of two ``where``s per step: the score
  and the back-pointer carry over exactly as numpy's ``where`` carries them.
- Forward-backward runs in float64, as numpy's (the device work is tiny, (batch, K) x (K, K) per
  step, so even a GPU slow at float64 is not slowed by it), in probability space with per-step
  rescaling (Rabiner's scaling): ``v = (v * exp(em - max)) @ exp(trans)``, then ``v /= max(v)``,
  the logs of the scales summed afterwards. The backward pass runs over each sentence reversed,
  so that it starts at position 0 like the forward pass, and both run in one batched matmul: four
  kernels per time step for both directions, against sixteen for two logsumexp recursions. The
  results match the numpy decoder's to about 1e-12 (tests/test_decoding_torch.py).

``lengths`` stay on the host (numpy, as the front end has them): the decoder needs them there to
plan its steps and copies them to the device once.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from .decoding import DISALLOWED

Scores = Tuple[torch.Tensor, torch.Tensor]


def lengths_mask(lengths: torch.Tensor, seq: int) -> torch.Tensor:
    """(batch, seq) True on the real positions, on the device of ``lengths``."""
    return torch.arange(seq, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def _host_lengths(lengths) -> np.ndarray:
    if isinstance(lengths, torch.Tensor):
        lengths = lengths.cpu().numpy()
    return np.asarray(lengths, dtype=np.int64)


class TorchCRFDecoder:
    """``TorchCRFDecoder(transitions, start, end, allowed, allowed_start, allowed_end)``: as
    ``CRFDecoder``, with tensors (or arrays) for scores and masks; everything is moved to
    ``device`` (default: that of ``transitions``). Methods take emissions on that device and
    lengths on the host, and return tensors on the device."""

    on_device = True  # decoded where the emissions are: the front end runs it beside the network

    def __init__(self, transitions, start, end, allowed=None, allowed_start=None, allowed_end=None,
                 device=None):
        transitions, start, end = (torch.as_tensor(x) for x in (transitions, start, end))
        device = torch.device(device) if device is not None else transitions.device
        k = start.shape[0]
        if tuple(transitions.shape) != (k, k) or tuple(end.shape) != (k,):
            raise ValueError(f"expected transitions ({k}, {k}) and end ({k},) for {k} start scores; "
                             f"got {tuple(transitions.shape)} and {tuple(end.shape)}")

        def constrained(scores: torch.Tensor, mask) -> torch.Tensor:
            scores = scores.detach().to(device=device, dtype=torch.float32)
            if mask is None:
                return scores
            mask = torch.as_tensor(mask, dtype=torch.bool).to(device)
            return scores.masked_fill(~mask, DISALLOWED)  # as np.where(mask, scores, DISALLOWED)

        self.num_tags, self.device = k, device
        self.start = constrained(start, allowed_start)  # (K,) float32
        self.trans = constrained(transitions, allowed)  # (K, K) from -> to
        self.end = constrained(end, allowed_end)  # (K,)
        # at a padded step each tag stays where it is, at no cost
        stay = torch.full((k, k), float("-inf")).fill_diagonal_(0.0).to(device)  # (K, K)
        self._choices = torch.stack([stay, self.trans])  # (2, K, K): [padded, real]
        # probability space for forward-backward: exp(-10000) is exactly 0 in float64, as intended
        exp_trans = self.trans.double().exp()  # (K, K)
        self._both_ways = torch.stack([exp_trans, exp_trans.t()])  # (2, K, K): forward, backward

    @classmethod
    def for_labels(cls, transitions, start, end, labels: Sequence[str], scheme: str,
                   device=None) -> "TorchCRFDecoder":
        """Constrained by the tag scheme, as ``BiRNNTagger`` builds its CRF."""
        from . import tags as tag_schemes

        allowed, allowed_start, allowed_end = tag_schemes.allowed_transitions(list(labels), scheme)
        return cls(transitions, start, end, allowed, allowed_start, allowed_end, device=device)

    def decode(self, emissions: torch.Tensor, lengths, scores: bool) -> "TorchCRFDecoded":
        """One batch, decoded on the device; see ``textrnn.decoding.CRFDecoded``."""
        return TorchCRFDecoded(self, emissions, lengths, scores)

    # ------------------------------------------------------------------ Viterbi
    def viterbi(self, emissions: torch.Tensor, lengths) -> torch.Tensor:
        """Best tag paths (batch, seq) int64 on the device, 0 past each sentence's end."""
        host = _host_lengths(lengths)
        emissions = emissions.float()
        batch, seq, k = emissions.shape
        assert k == self.num_tags and seq > 0 and len(host) == batch
        mask = lengths_mask(torch.from_numpy(host).to(emissions.device), seq)  # (batch, seq)
        em = emissions.masked_fill(~mask.unsqueeze(2), 0.0)  # (batch, seq, K): padding adds exactly 0
        real = mask.t().long().unbind(0)  # per step (batch,): which transition matrix each sentence takes
        shortest = int(host.min())
        steps = em.unbind(1)  # per step (batch, K); views taken at once, not one Python call each
        score = self.start + steps[0]  # (batch, K)
        pointers = []
        for t in range(1, seq):
            # all sentences are still going up to the shortest one's end: no choice to make
            trans = self.trans if t < shortest else self._choices[real[t]]  # (K, K) or (batch, K, K)
            best, prev = (score.unsqueeze(2) + trans).max(dim=1)  # (batch, K) each: the first best, as numpy
            score = best + steps[t]  # (batch, K)
            pointers.append(prev)
        cur = (score + self.end).argmax(dim=1, keepdim=True)  # (batch, 1)
        path = [cur]
        for prev in reversed(pointers):
            cur = prev.gather(1, cur)  # (batch, 1)
            path.append(cur)
        path.reverse()
        return torch.cat(path, dim=1).masked_fill(~mask, 0)  # (batch, seq)

    # ------------------------------------------------------------------ forward-backward
    def forward_backward(self, emissions: torch.Tensor, lengths) -> Scores:
        """Forward and backward log-scores (batch, seq, K) in float64, with the conventions of
        ``CRFDecoder.forward_backward``: padded positions repeat the last alpha and hold ``end``
        as beta."""
        host = _host_lengths(lengths)
        em = emissions.double()  # (batch, seq, K)
        batch, seq, k = em.shape
        assert k == self.num_tags and seq > 0 and len(host) == batch
        device = em.device
        lengths_t = torch.from_numpy(host).to(device)  # (batch,)
        steps = torch.arange(seq, device=device)
        # position t of the reversed sentence is L-1-t (position 0 past its start: any finite value)
        backwards = (lengths_t.unsqueeze(1) - 1 - steps).clamp_min(0)  # (batch, seq)
        top = em.amax(dim=2)  # (batch, seq): exp() of emissions minus it stays in (0, 1]
        weights = torch.exp(em - top.unsqueeze(2))  # (batch, seq, K)
        weights_back = weights.gather(1, backwards.unsqueeze(2).expand(batch, seq, k))  # (batch, seq, K)
        z = torch.stack([weights, weights_back])  # (2, batch, seq, K)
        # v[0] at step t: sum over paths to t of exp(score without em_t); v[1] the same from the end
        v = torch.stack([self.start.double().exp().expand(batch, k),
                         self.end.double().exp().expand(batch, k)])  # (2, batch, K)
        values, scales = [v], []
        z_steps = z.unbind(2)  # per step (2, batch, K)
        for t in range(1, seq):
            v = torch.matmul(v * z_steps[t - 1], self._both_ways)  # (2, batch, K)
            scale = v.amax(dim=2, keepdim=True)  # (2, batch, 1)
            v = v / scale
            values.append(v)
            scales.append(scale)
        log_v = torch.stack(values, dim=2).log()  # (2, batch, seq, K)
        if scales:
            log_scales = torch.cat(scales, dim=2).log().cumsum(dim=2)  # (2, batch, seq - 1)
            log_v[:, :, 1:] += log_scales.unsqueeze(3)
        # forward: alpha_t = log v + the emission maxima before t + em_t; at t = 0 exactly numpy's
        before = top.cumsum(dim=1) - top  # (batch, seq)
        alphas = log_v[0] + before.unsqueeze(2) + em  # (batch, seq, K)
        alphas[:, 0] = self.start.double() + em[:, 0]
        last = (lengths_t - 1).unsqueeze(1)  # (batch, 1)
        alphas = alphas.gather(1, torch.minimum(steps.unsqueeze(0), last).unsqueeze(2).expand(batch, seq, k))
        # backward: in reversed time, plus the emission maxima after t; end at the last position
        top_back = top.gather(1, backwards)  # (batch, seq)
        betas_back = log_v[1] + (top_back.cumsum(dim=1) - top_back).unsqueeze(2)  # (batch, seq, K)
        betas = betas_back.gather(1, backwards.unsqueeze(2).expand(batch, seq, k))  # (batch, seq, K)
        on = (steps.unsqueeze(0) < last).unsqueeze(2)  # (batch, seq, 1): before the last position
        betas = torch.where(on, betas, self.end.double())
        return alphas, betas

    @staticmethod
    def marginals(scores: Scores, lengths) -> torch.Tensor:
        """p(y_t = k | x) (batch, seq, K) float64, normalised per position; 0 at padding."""
        alphas, betas = scores
        probs = torch.softmax(alphas + betas, dim=2)  # (batch, seq, K)
        lengths_t = torch.from_numpy(_host_lengths(lengths)).to(alphas.device)
        return probs * lengths_mask(lengths_t, alphas.shape[1]).unsqueeze(2)

    def span_probabilities(self, emissions: torch.Tensor, lengths, scores: Scores, paths: torch.Tensor,
                           rows: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor,
                           extends: torch.Tensor) -> torch.Tensor:
        """As ``CRFDecoder.span_probabilities``, with every argument but ``lengths`` on the device:
        (spans,) float64."""
        alphas, betas = scores
        em = emissions.double()  # (batch, seq, K)
        trans, end = self.trans.double(), self.end.double()
        batch, seq, _ = em.shape
        lengths_t = torch.from_numpy(_host_lengths(lengths)).to(em.device)
        log_z = torch.logsumexp(alphas[:, 0] + betas[:, 0], dim=1)  # (batch,)
        on_path = em.gather(2, paths.unsqueeze(2)).squeeze(2)  # (batch, seq)
        moves = trans[paths[:, :-1], paths[:, 1:]] + on_path[:, 1:]  # (batch, seq - 1): moving to each tag
        steps = torch.cat([torch.zeros_like(on_path[:, :1]), moves], dim=1).cumsum(dim=1)  # (batch, seq)
        last = ends - 1
        first_tag = paths[rows, starts]  # (spans,)
        score = alphas[rows, starts, first_tag] + steps[rows, last] - steps[rows, starts]  # (spans,)
        last_tag = paths[rows, last]
        nxt = ends.clamp_max(seq - 1)
        terms = trans[last_tag] + em[rows, nxt] + betas[rows, nxt]  # (spans, K): the next tag, if any
        inner = torch.logsumexp(terms.masked_fill(extends, float("-inf")), dim=1)  # (spans,)
        tail = torch.where(ends < lengths_t[rows], inner, end[last_tag])
        return torch.exp((score + tail - log_z[rows]).clamp_max(0.0))


class TorchCRFDecoded:
    """A batch decoded on the device; ``paths`` and ``picked`` come back to the host (numpy) as
    ``textrnn.decoding.CRFDecoded``'s, the forward-backward scores stay on the device."""

    def __init__(self, decoder: TorchCRFDecoder, emissions: torch.Tensor, lengths, scores: bool):
        self.decoder, self.emissions, self.lengths = decoder, emissions, _host_lengths(lengths)
        with torch.inference_mode():
            paths = decoder.viterbi(emissions, self.lengths)  # (batch, seq)
            self.state: Optional[Scores] = None
            picked = None
            if scores:
                self.state = decoder.forward_backward(emissions, self.lengths)
                probs = decoder.marginals(self.state, self.lengths)  # (batch, seq, K)
                picked = probs.gather(2, paths.unsqueeze(2)).squeeze(2)  # (batch, seq)
        self.device_paths = paths
        self.paths = paths.cpu().numpy()
        self.picked = None if picked is None else picked.cpu().numpy()

    def span_probabilities(self, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                           extends: np.ndarray) -> List[float]:
        assert self.state is not None
        device = self.emissions.device
        with torch.inference_mode():
            rows_t, starts_t, ends_t, extends_t = _on_device(device, rows, starts, ends, extends)
            values = self.decoder.span_probabilities(self.emissions, self.lengths, self.state, self.device_paths,
                                                     rows_t, starts_t, ends_t, extends_t)
            return values.tolist()


def _on_device(device, *arrays: np.ndarray) -> Tuple[torch.Tensor, ...]:
    """Host arrays (the spans a front end found) as tensors on ``device``."""
    return tuple(torch.from_numpy(np.ascontiguousarray(x)).to(device) for x in arrays)


class TorchSoftmaxDecoder:
    """Each token's best tag, on the device (a tagger without a CRF)."""

    on_device = True  # decoded where the emissions are: the front end runs it beside the network

    def decode(self, emissions: torch.Tensor, lengths, scores: bool) -> "TorchSoftmaxDecoded":
        return TorchSoftmaxDecoded(emissions, lengths, scores)


class TorchSoftmaxDecoded:
    """``textrnn.decoding.SoftmaxDecoded`` on the device: a span's probability is the product of its
    tokens' probabilities (summed as logs: each is its token's largest, at least 1/K) times that
    of the next tag not continuing the span."""

    def __init__(self, emissions: torch.Tensor, lengths, scores: bool):
        self.lengths = _host_lengths(lengths)
        with torch.inference_mode():
            paths = emissions.argmax(dim=2)  # (batch, seq)
            self.probs = picked = None
            if scores:
                self.probs = torch.softmax(emissions.double(), dim=2)  # (batch, seq, K)
                picked = self.probs.gather(2, paths.unsqueeze(2)).squeeze(2)  # (batch, seq)
                self._device_picked = picked
        self.paths = paths.cpu().numpy()
        self.picked = None if picked is None else picked.cpu().numpy()

    def span_probabilities(self, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                           extends: np.ndarray) -> List[float]:
        assert self.probs is not None
        probs = self.probs
        batch, seq, _ = probs.shape
        device = probs.device
        with torch.inference_mode():
            rows_t, starts_t, ends_t, extends_t = _on_device(device, rows, starts, ends, extends)
            lengths_t = torch.from_numpy(self.lengths).to(device)
            logs = self._device_picked.log()  # (batch, seq)
            cum = torch.cat([torch.zeros_like(logs[:, :1]), logs.cumsum(dim=1)], dim=1)  # (batch, seq + 1)
            inside = torch.exp(cum[rows_t, ends_t] - cum[rows_t, starts_t])  # (spans,)
            nxt = ends_t.clamp_max(seq - 1)
            continuing = (probs[rows_t, nxt] * extends_t).sum(dim=1)  # (spans,)
            follows = (ends_t < lengths_t[rows_t]) & extends_t.any(dim=1)
            return (inside * torch.where(follows, 1.0 - continuing, torch.ones_like(continuing))).tolist()
