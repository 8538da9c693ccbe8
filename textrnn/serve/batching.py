"""Dynamic batching: requests that arrive together share one model call, run off the event loop.

Every input text is one item. A model call takes up to ``max_batch_size`` waiting items, oldest
first. Once the worker is free, it waits at most ``max_wait_ms`` for company, and only for items
it has reason to expect: as many as the last call took plus those that arrived while it ran. Clients that send again once answered come back in that number, so
under load the batches fill up, while a lone client (last call: one item, nothing arrived) is
answered at once instead of waiting out ``max_wait_ms``.

The model runs in one worker thread, so the event loop keeps accepting requests (and filling the
next batch) while a batch is computed. Items with different parameters may share a batch; each
parameter group is one call of ``run``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

Params = Tuple[Tuple[str, Any], ...]  # sorted (name, value) pairs: hashable, so items can be grouped
RunBatch = Callable[[List[str], Dict[str, Any]], List[Any]]


@dataclass
class _Item:
    text: str
    params: Params
    future: "asyncio.Future[Any]"
    arrived: float


@dataclass
class BatchStats:
    """What /health reports: model calls, items, the largest batch, and the seconds the model ran
    (against wall time, that tells whether the model or the HTTP side is the bottleneck)."""

    batches: int = 0
    items: int = 0
    largest_batch: int = 0
    model_seconds: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {"batches": self.batches, "items": self.items, "largest_batch": self.largest_batch,
                "mean_batch_size": round(mean, 2), "model_seconds": round(self.model_seconds, 3)}


class DynamicBatcher:
    """``await batcher.submit(texts, params)`` -> one result per text, computed in shared batches.

    ``run(texts, params)`` is called in the worker thread and must return one result per text.
    Create and ``start()`` it inside the running event loop; ``close()`` fails what still waits.
    """

    def __init__(self, run: RunBatch, max_batch_size: int = 64, max_wait_ms: float = 5.0,
                 thread_initializer: Optional[Callable[[], None]] = None):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1; got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be 0 or more; got {max_wait_ms}")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.stats = BatchStats()
        self._pending: Deque[_Item] = collections.deque()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textrnn-model",
                                            initializer=thread_initializer)
        self._arrivals = 0  # items submitted so far
        self._expected = 1  # items to wait for (up to max_wait) before the next model call
        self._free_since = 0.0  # event-loop time at which the worker finished its last call
        self._wakeup: Optional[asyncio.Event] = None
        self._task: Optional["asyncio.Task[None]"] = None

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._pending:
            item = self._pending.popleft()
            if not item.future.done():
                item.future.set_exception(RuntimeError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, texts: Sequence[str], params: Dict[str, Any]) -> List[Any]:
        if self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running; call start() inside the event loop first")
        loop = asyncio.get_running_loop()
        key: Params = tuple(sorted(params.items()))
        futures = [loop.create_future() for _ in texts]
        now = loop.time()
        self._arrivals += len(futures)
        self._pending.extend(_Item(text, key, future, now) for text, future in zip(texts, futures))
        assert self._wakeup is not None
        self._wakeup.set()
        # a request whose client went away cancels its futures; the batcher then skips them
        return list(await asyncio.gather(*futures))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            # the wait is counted from when the worker became free, or from the oldest item's
            # arrival if that is later: items that queued during the last call still get a chance
            # to gather the company expected from it
            deadline = max(self._pending[0].arrived, self._free_since) + self.max_wait
            while len(self._pending) < min(self._expected, self.max_batch_size):
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                self._wakeup.clear()
                try:  # a lost wake-up is harmless: the items themselves are in self._pending
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
                except asyncio.TimeoutError:
                    break
            take = min(self.max_batch_size, len(self._pending))
            batch = [self._pending.popleft() for _ in range(take)]
            batch = [item for item in batch if not item.future.done()]
            if batch:
                arrivals = self._arrivals
                await self._run_batch(loop, batch)
                self._expected = len(batch) + self._arrivals - arrivals
                self._free_since = loop.time()

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: List[_Item]) -> None:
        """One model call per parameter group; the answers go out when the whole batch is done.

        Answering each group or chunk as soon as it is done was tried: the event loop then sends
        answers while the next call computes, and the two threads' Python code contends for the
        GIL. At 64 clients that served ~15% less (docs/benchmarks.md)."""
        groups: Dict[Params, List[_Item]] = {}
        for item in batch:
            groups.setdefault(item.params, []).append(item)
        began = time.perf_counter()
        outcomes = [await loop.run_in_executor(self._executor, self._compute, [item.text for item in items],
                                               dict(key)) for key, items in groups.items()]
        self.stats.model_seconds += time.perf_counter() - began
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for items, (ok, value) in zip(groups.values(), outcomes):
            for i, item in enumerate(items):
                if item.future.done():  # cancelled while it ran
                    continue
                if ok:
                    item.future.set_result(value[i])
                else:
                    item.future.set_exception(value)

    def _compute(self, texts: List[str], params: Dict[str, Any]) -> Tuple[bool, Any]:
        """In the worker thread: (True, one result per text) or (False, the exception)."""
        try:
            results = self.run(texts, params)
            if len(results) != len(texts):
                raise RuntimeError(f"the model returned {len(results)} results for {len(texts)} inputs")
            return True, results
        except Exception as err:  # noqa: BLE001 - handed to the waiting requests, not swallowed
            logger.exception("model call failed on %d inputs", len(texts))
            return False, err
