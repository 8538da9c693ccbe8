"""Dynamic batching: requests that arrive together share one model call, run off the event loop.

Every input text is one item. The batcher takes the oldest waiting item and runs it together
with whatever else is waiting, up to ``max_batch_size`` items, waiting at most ``max_wait_ms``
after that oldest item arrived for more to come. The model runs in one worker thread, so the
event loop keeps accepting requests (and filling the next batch) while a batch is computed.
Items with different parameters may share a batch; each parameter group is one call of ``run``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
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
    """What /health reports: how many model calls, how many items, the largest batch so far."""

    batches: int = 0
    items: int = 0
    largest_batch: int = 0

    def to_dict(self) -> Dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {"batches": self.batches, "items": self.items, "largest_batch": self.largest_batch,
                "mean_batch_size": round(mean, 2)}


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
            deadline = self._pending[0].arrived + self.max_wait
            while len(self._pending) < self.max_batch_size:
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
                await self._run_batch(loop, batch)

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: List[_Item]) -> None:
        groups: Dict[Params, List[_Item]] = {}
        for item in batch:
            groups.setdefault(item.params, []).append(item)
        calls = [([item.text for item in items], dict(key)) for key, items in groups.items()]
        outcomes = await loop.run_in_executor(self._executor, self._compute, calls)
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

    def _compute(self, calls: List[Tuple[List[str], Dict[str, Any]]]) -> List[Tuple[bool, Any]]:
        """In the worker thread: one ``run`` per parameter group; a failure stays in its group."""
        outcomes: List[Tuple[bool, Any]] = []
        for texts, params in calls:
            try:
                results = self.run(texts, params)
                if len(results) != len(texts):
                    raise RuntimeError(f"the model returned {len(results)} results for {len(texts)} inputs")
                outcomes.append((True, results))
            except Exception as err:  # noqa: BLE001 - handed to the waiting requests, not swallowed
                logger.exception("model call failed on a batch of %d", len(texts))
                outcomes.append((False, err))
        return outcomes
