"""Length-bucketed batches, shared out across processes so that N processes train like one.

The sampler first builds *global* batches of ``batch_size * num_replicas`` sentences of similar
length (sorted by length with a little noise, so the mix changes every epoch), shuffles their order
(seed + epoch) and keeps the one short batch last. Each process then takes its share of every global
batch (``global[rank::num_replicas]``). Step k on N processes therefore sees exactly the sentences
that step k of one process at N times the batch size sees: every sentence once per epoch, nothing
dropped, and all processes take the same number of steps, so none waits for a collective the others
never reach.
"""
from __future__ import annotations

import random
from typing import Iterator, List, Sequence

from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[List[int]]):
    """Batches of indices of similar length for process ``rank`` of ``num_replicas``.

    ``set_epoch(epoch, start=k)`` fixes the epoch's order and skips its first k batches (a run
    resumed mid-epoch); ``global_size(step)`` is the number of sentences that step takes across all
    processes, for losses that average over the global batch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 noise: float = 0.1, num_replicas: int = 1, rank: int = 0):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        if 0 < len(lengths) < num_replicas or (not lengths and num_replicas > 1):
            raise ValueError(f"{len(lengths)} items cannot be shared among {num_replicas} processes")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.noise = noise
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.start = 0
        self._global = self._global_batches()

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if not 0 <= start <= len(self):
            raise ValueError(f"cannot start epoch {epoch} at batch {start}: it has {len(self)} batches")
        if epoch != self.epoch:
            self.epoch = epoch
            self._global = self._global_batches()
        self.start = start

    def _global_batches(self) -> List[List[int]]:
        rng = random.Random(self.seed + self.epoch)
        if self.shuffle:
            keys = [n * (1 + rng.uniform(-self.noise, self.noise)) for n in self.lengths]
        else:
            keys = self.lengths
        order = sorted(range(len(self.lengths)), key=keys.__getitem__)
        size = self.batch_size * self.num_replicas
        batches = [order[i:i + size] for i in range(0, len(order), size)]
        short = batches.pop() if batches and len(batches[-1]) < size else None
        if self.shuffle:
            rng.shuffle(batches)
        if short is not None:
            if len(short) < self.num_replicas:  # too few to give every process one: join the last full batch
                batches[-1] = batches[-1] + short
            else:
                batches.append(short)
        return batches

    def global_size(self, step: int) -> int:
        """Sentences in step ``step`` of the current epoch, summed over all processes."""
        return len(self._global[step])

    def __iter__(self) -> Iterator[List[int]]:
        for batch in self._global[self.start:]:
            yield batch[self.rank::self.num_replicas]

    def __len__(self) -> int:
        """Steps in a whole epoch (the same on every process)."""
        return len(self._global)
