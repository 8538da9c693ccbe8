"""An exponential moving average of the trainable weights (Polyak averaging), used to score and keep.

The network trains on its own weights; dev is scored, and the best model kept, with the average.
Small text corpora make the last steps' weights noisy, and the average smooths that noise away.
Only trainable tensors are averaged, in place with one fused ``lerp`` per step, so frozen
pretrained rows (hundreds of MB for a large vectors file) cost nothing. The decay warms up as
``min(decay, (1 + t) / (10 + t))`` so that the first epochs are not dominated by the initial weights.

(`torch.optim.swa_utils.AveragedModel` deep-copies the whole model, frozen rows included, and
averages every parameter; that is why this is a few lines of its own.)
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, List

import torch


class WeightAverage:
    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the averaging decay must lie between 0 and 1, not {decay}")
        self.decay = decay
        self.names: List[str] = [n for n, p in model.named_parameters() if p.requires_grad]
        self.shadow: List[torch.Tensor] = [p.detach().clone() for p in self._live(model)]
        self.updates = 0

    def _live(self, model: torch.nn.Module) -> List[torch.Tensor]:
        params = dict(model.named_parameters())
        return [params[n] for n in self.names]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the model's current weights into the average (after each optimiser step)."""
        t = self.updates
        decay = min(self.decay, (1.0 + t) / (10.0 + t))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self._live(model)], 1.0 - decay)
        self.updates += 1

    @contextmanager
    @torch.no_grad()
    def applied(self, model: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """The model with the averaged weights inside the block, its own weights again after it."""
        live = self._live(model)
        own = [p.detach().clone() for p in live]
        torch._foreach_copy_(live, self.shadow)
        try:
            yield model
        finally:
            torch._foreach_copy_(live, own)

    # checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {name: t for name, t in zip(self.names, self.shadow)}

    @torch.no_grad()
    def load_state_dict(self, tensors: Dict[str, torch.Tensor], updates: int) -> None:
        missing = [n for n in self.names if n not in tensors]
        if missing:
            raise KeyError(f"the saved weight average lacks {', '.join(missing[:3])}")
        for name, t in zip(self.names, self.shadow):
            t.copy_(tensors[name].to(t.device, t.dtype))
        self.updates = updates
