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

``launch`` is what a front end calls: it also finds the spans on the device (``dense_spans``, the
front end's ``SpanReader`` tables as tensors) with their probabilities, and starts every result on
its way to the host without waiting (``Launched``: pinned, non-blocking copies behind a CUDA
event), so a batch costs one wait, and a front end may queue the next batch before reading this one.
Uploads go through pinned memory too (``upload``): a copy from pageable memory would first wait for
everything queued on the stream.
"""
from __future__ import annotations

import functools
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from .decoding import DISALLOWED

Scores = Tuple[torch.Tensor, torch.Tensor]


def lengths_mask(lengths: torch.Tensor, seq: int) -> torch.Tensor:
    """(batch, seq) True on the real positions, on the device of ``lengths``."""
    return torch.arange(seq, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def upload(array, device) -> torch.Tensor:
    """A host array (or CPU tensor) on ``device``: on a GPU through pinned memory and without
    waiting. A copy from pageable memory first waits for all the work queued on the stream, which
    would stall a batch queued ahead of the one being read (``Launched``)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array)) if isinstance(array, np.ndarray) else array
    device = torch.device(device)
    if _real_cuda(device):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def _real_cuda(device: torch.device) -> bool:
    """Whether ``device`` takes CUDA's own paths (pinned memory, streams, events): not on a CPU
    build, where tests/fake_device.py's tensors only say ``cuda``."""
    return device.type == "cuda" and torch.backends.cuda.is_built()


def _host_lengths(lengths) -> np.ndarray:
    if isinstance(lengths, torch.Tensor):
        lengths = lengths.cpu().numpy()
    return np.asarray(lengths, dtype=np.int64)


class _DeviceDecoder:
    """What a front end asks of a decoder on the device: ``launch`` (not ``decode``, which its
    subclasses define) and the span tables it takes."""

    on_device = True  # decoded where the emissions are

    def decode(self, emissions: torch.Tensor, lengths, scores: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def span_tables(reader) -> "SpanTables":
        """A front end's ``SpanReader``, for ``launch``."""
        return SpanTables(reader)

    def launch(self, emissions: torch.Tensor, lengths, scores: bool, tables: Optional["SpanTables"] = None
               ) -> "Launched":
        """``decode``, with its spans found on the device (``tables``) and everything on its way
        back to the host without waiting for it (``Launched.result()`` waits)."""
        return Launched(self.decode(emissions, lengths, scores), scores, tables)


class TorchCRFDecoder(_DeviceDecoder):
    """``TorchCRFDecoder(transitions, start, end, allowed, allowed_start, allowed_end)``: as
    ``CRFDecoder``, with tensors (or arrays) for scores and masks; everything is moved to
    ``device`` (default: that of ``transitions``). Methods take emissions on that device and
    lengths on the host, and return tensors on the device."""

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
        mask = lengths_mask(upload(host, emissions.device), seq)  # (batch, seq)
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
        lengths_t = upload(host, device)  # (batch,)
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
        lengths_t = upload(_host_lengths(lengths), alphas.device)
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
        lengths_t = upload(_host_lengths(lengths), em.device)
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


class _DeviceDecoded:
    """A batch decoded on the device: ``device_paths`` and ``device_picked`` there, ``paths`` and
    ``picked`` on the host (numpy, as ``textrnn.decoding``'s) when first read, and span
    probabilities for spans given on the host or (``device_span_values``) on the device."""

    device_paths: torch.Tensor
    device_picked: Optional[torch.Tensor]

    @functools.cached_property
    def paths(self) -> np.ndarray:
        return self.device_paths.cpu().numpy()

    @functools.cached_property
    def picked(self) -> Optional[np.ndarray]:
        return None if self.device_picked is None else self.device_picked.cpu().numpy()

    def span_probabilities(self, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                           extends: np.ndarray) -> List[float]:
        device = self.device_paths.device
        with torch.inference_mode():
            return self.device_span_values(*(upload(x, device) for x in (rows, starts, ends, extends))).tolist()

    def device_span_values(self, rows: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor,
                           extends: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """``span_probabilities`` of spans given on the device: (spans,) float64 there."""
        raise NotImplementedError


class TorchCRFDecoded(_DeviceDecoded):
    """``textrnn.decoding.CRFDecoded`` on the device; the forward-backward scores stay there."""

    def __init__(self, decoder: TorchCRFDecoder, emissions: torch.Tensor, lengths, scores: bool):
        self.decoder, self.emissions, self.lengths = decoder, emissions, _host_lengths(lengths)
        with torch.inference_mode():
            self.device_paths = decoder.viterbi(emissions, self.lengths)  # (batch, seq)
            self.state: Optional[Scores] = None
            self.device_picked = None
            if scores:
                self.state = decoder.forward_backward(emissions, self.lengths)
                probs = decoder.marginals(self.state, self.lengths)  # (batch, seq, K)
                self.device_picked = probs.gather(2, self.device_paths.unsqueeze(2)).squeeze(2)  # (batch, seq)

    def device_span_values(self, rows: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor,
                           extends: torch.Tensor) -> torch.Tensor:
        assert self.state is not None
        return self.decoder.span_probabilities(self.emissions, self.lengths, self.state, self.device_paths,
                                               rows, starts, ends, extends)


class TorchSoftmaxDecoder(_DeviceDecoder):
    """Each token's best tag, on the device (a tagger without a CRF)."""

    def decode(self, emissions: torch.Tensor, lengths, scores: bool) -> "TorchSoftmaxDecoded":
        return TorchSoftmaxDecoded(emissions, lengths, scores)


class TorchSoftmaxDecoded(_DeviceDecoded):
    """``textrnn.decoding.SoftmaxDecoded`` on the device: a span's probability is the product of its
    tokens' probabilities (summed as logs: each is its token's largest, at least 1/K) times that
    of the next tag not continuing the span."""

    def __init__(self, emissions: torch.Tensor, lengths, scores: bool):
        self.lengths = _host_lengths(lengths)
        with torch.inference_mode():
            self.device_paths = emissions.argmax(dim=2)  # (batch, seq)
            self.probs = self.device_picked = None
            if scores:
                self.probs = torch.softmax(emissions.double(), dim=2)  # (batch, seq, K)
                self.device_picked = self.probs.gather(2, self.device_paths.unsqueeze(2)).squeeze(2)  # (batch, seq)

    def device_span_values(self, rows: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor,
                           extends: torch.Tensor) -> torch.Tensor:
        assert self.probs is not None
        probs = self.probs
        batch, seq, _ = probs.shape
        lengths_t = upload(self.lengths, probs.device)
        logs = self.device_picked.log()  # (batch, seq)
        cum = torch.cat([torch.zeros_like(logs[:, :1]), logs.cumsum(dim=1)], dim=1)  # (batch, seq + 1)
        inside = torch.exp(cum[rows, ends] - cum[rows, starts])  # (spans,)
        nxt = ends.clamp_max(seq - 1)
        continuing = (probs[rows, nxt] * extends).sum(dim=1)  # (spans,)
        follows = (ends < lengths_t[rows]) & extends.any(dim=1)
        return inside * torch.where(follows, 1.0 - continuing, torch.ones_like(continuing))


# one batch ahead on a GPU: queue the work, copy back without waiting, read after an event ----------
class SpanTables:
    """``textrnn.frontend.SpanReader``'s tables as tensors, to find spans on a device: ``on(device)``
    -> (starts, ends, extends, type_of), moved there once."""

    def __init__(self, reader):
        self.reader, self.outside, self.type_names = reader, reader.outside, reader.type_names
        self._moved = {}

    def on(self, device: torch.device) -> Tuple[torch.Tensor, ...]:
        if device not in self._moved:
            r = self.reader
            self._moved[device] = tuple(upload(np.asarray(x), device) for x in
                                        (r.starts, r.ends, r.extends, np.asarray(r.type_of, dtype=np.int64)))
        return self._moved[device]


def dense_spans(tables: SpanTables, paths: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """``SpanReader`` on the device, with no host-side count: (batch, seq) ``is_start``, the
    (exclusive) ``end`` of the span starting at each start, and its ``type``; where ``is_start`` is
    False the other two mean nothing."""
    batch, seq = paths.shape
    starts_table, ends_table, _, type_of = tables.on(paths.device)
    tags = paths.new_full((batch, seq + 1), tables.outside)  # (batch, seq + 1): outside past the ends
    tags[:, :seq] = torch.where(lengths_mask(lengths, seq), paths, tables.outside)
    before = torch.cat([tags.new_full((batch, 1), tables.outside), tags[:, :-1]], dim=1)  # (batch, seq + 1)
    is_start = starts_table[before, tags][:, :seq]  # (batch, seq)
    positions = torch.arange(seq + 1, device=paths.device).expand(batch, seq + 1)
    end_at = torch.where(ends_table[before, tags], positions, seq + 1)  # (batch, seq + 1)
    first_end = end_at.flip(1).cummin(dim=1).values.flip(1)  # (batch, seq + 1): the first end at or after t
    return is_start, first_end[:, 1:], type_of[tags[:, :seq]]  # spans end after they start


class Launched:
    """A batch decoded on the device whose results are on their way to the host: ``result()``
    waits for them (on a GPU, for a CUDA event) and returns (paths, picked or None, spans or
    None), spans as ``(row, type name, first, end, probability)``."""

    def __init__(self, decoded, scores: bool, tables: Optional[SpanTables]):
        paths = decoded.device_paths
        batch, seq = paths.shape
        device = paths.device
        with torch.inference_mode():
            tensors = [paths] + ([decoded.device_picked] if scores else [])
            if tables is not None:
                lengths = upload(decoded.lengths, device)
                is_start, end, typ = dense_spans(tables, paths, lengths)
                rows = torch.arange(batch, device=device).repeat_interleave(seq)  # every position, as a span
                starts = torch.arange(seq, device=device).repeat(batch)
                ends = end.reshape(-1).clamp_max(seq)  # a non-start's "end" is only kept valid
                extends = tables.on(device)[2][typ.reshape(-1).clamp_min(0)]  # (batch * seq, K)
                values = decoded.device_span_values(rows, starts, ends, extends).reshape(batch, seq)
                tensors += [is_start, end, typ, values]
            self.copies = [t.to("cpu", non_blocking=True) for t in tensors]  # pinned, asynchronous on a GPU
            self.event = None
            if _real_cuda(device):
                self.event = torch.cuda.Event()
                self.event.record(torch.cuda.current_stream(device))
        self.scores, self.tables = scores, tables

    def result(self) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[List[Tuple[int, str, int, int, float]]]]:
        if self.event is not None:
            self.event.synchronize()
        host = [t.numpy() for t in self.copies]
        paths, picked = host[0], host[1] if self.scores else None
        if self.tables is None:
            return paths, picked, None
        is_start, end, typ, values = host[-4:]
        rows, starts = np.nonzero(is_start)
        names = self.tables.type_names
        found = [(row, names[t], first, last, value) for row, first, last, t, value in
                 zip(rows.tolist(), starts.tolist(), end[rows, starts].tolist(), typ[rows, starts].tolist(),
                     values[rows, starts].tolist())]
        return paths, picked, found
