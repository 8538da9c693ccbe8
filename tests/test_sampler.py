"""The length-bucketed sampler shared out across processes: every sentence once, the same steps."""
import itertools
import random

import pytest

from textrnn.training.batching import BucketBatchSampler


def epoch_batches(lengths, batch_size, replicas, epoch, seed=3):
    """Per step, the batches of every rank: [[rank0, rank1, ...], ...]."""
    samplers = [BucketBatchSampler(lengths, batch_size, seed=seed, num_replicas=replicas, rank=r)
                for r in range(replicas)]
    for s in samplers:
        s.set_epoch(epoch)
    assert len({len(s) for s in samplers}) == 1  # every rank takes the same number of steps
    per_rank = [list(s) for s in samplers]
    assert all(len(batches) == len(samplers[0]) for batches in per_rank)
    return [list(step) for step in zip(*per_rank)], samplers[0]


@pytest.mark.parametrize("n,batch_size,replicas", [c for c in itertools.product([1, 2, 7, 101, 128, 257], [1, 3, 8],
                                                                                   [1, 2, 3, 4]) if c[0] >= c[2]])
def test_every_item_once_per_epoch_no_rank_idle(n, batch_size, replicas):
    lengths = [random.Random(i).randint(1, 40) for i in range(n)]
    steps, sampler = epoch_batches(lengths, batch_size, replicas, epoch=0)
    seen = [i for step in steps for batch in step for i in batch]
    assert sorted(seen) == list(range(n))  # once each, nothing dropped
    for k, step in enumerate(steps):
        assert all(batch for batch in step), f"step {k}: a process got an empty batch"
        assert sum(map(len, step)) == sampler.global_size(k)
    sizes = [sum(map(len, step)) for step in steps]
    assert all(s == batch_size * replicas for s in sizes[:-1])  # only the last step differs
    assert sizes[-1] < batch_size * replicas + replicas


def test_n_processes_at_b_see_what_one_process_at_n_b_sees():
    lengths = [random.Random(i).randint(1, 30) for i in range(211)]
    for epoch in range(3):
        two, _ = epoch_batches(lengths, 8, 2, epoch)
        one, _ = epoch_batches(lengths, 16, 1, epoch)
        assert [sorted(a + b) for a, b in two] == [sorted(s[0]) for s in one]


def test_order_changes_every_epoch_and_the_short_batch_comes_last():
    lengths = [random.Random(i).randint(1, 30) for i in range(101)]
    orders = []
    for epoch in range(3):
        steps, _ = epoch_batches(lengths, 8, 2, epoch)
        orders.append([i for step in steps for b in step for i in b])
        assert sum(map(len, steps[-1])) == 101 % 16  # the short global batch is last
    assert orders[0] != orders[1] != orders[2]


def test_start_skips_the_steps_a_resumed_run_already_took():
    lengths = list(range(1, 60))
    sampler = BucketBatchSampler(lengths, 4, seed=1)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start=5)
    assert list(sampler) == full[5:]
    with pytest.raises(ValueError):
        sampler.set_epoch(2, start=len(full) + 1)
    with pytest.raises(ValueError, match="cannot be shared among 4 processes"):
        BucketBatchSampler([3, 4, 5], 2, num_replicas=4, rank=0)


def test_sorted_inference_batches_keep_lengths_together():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    batches = list(BucketBatchSampler(lengths, 3, shuffle=False))
    assert [[lengths[i] for i in b] for b in batches] == [[1, 2, 3], [5, 7, 8], [9]]
    assert list(BucketBatchSampler([], 4, shuffle=False)) == []
