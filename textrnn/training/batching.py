"""Length-bucketed batches: sentences of similar length together, so little padding is computed."""
from __future__ import annotations

import random
from typing import Iterator, List, Sequence

from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[List[int]]):
    """Batches of indices of similar length; batch order shuffled each epoch (seed + epoch).

    Sorting by length with a little noise keeps batches dense in real tokens while still mixing
    which sentences share a batch from one epoch to the next.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 noise: float = 0.1):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.noise = noise
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> List[List[int]]:
        rng = random.Random(self.seed + self.epoch)
        if self.shuffle:
            keys = [n * (1 + rng.uniform(-self.noise, self.noise)) for n in self.lengths]
        else:
            keys = self.lengths
        order = sorted(range(len(self.lengths)), key=keys.__getitem__)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[List[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size
