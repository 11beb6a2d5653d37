"""A background worker of the gateway: finds due work in the database, does it a few items at a time.

Work lives in the database, not in memory, so nothing is lost when the gateway stops: a new process finds
what was left. `wake()` starts a round at once; otherwise the worker looks every `poll` seconds (work put in
the database by another process, retries that became due).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from typing import Any

log = logging.getLogger(__name__)


class Worker(ABC):
    """Subclasses say what is due (`due`: item ids with a key of which one runs at a time) and do it (`work`)."""

    name = "worker"
    poll = 1.0

    def __init__(self, concurrency: int = 8) -> None:
        self.concurrency = concurrency
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._running: dict[int, asyncio.Task[None]] = {}
        self._busy_keys: set[object] = set()
        self._loop_task: asyncio.Task[None] | None = None

    @abstractmethod
    def due(self) -> list[tuple[int, object]]:
        """The items to do now, oldest first, each with the key of which only one may run at a time."""

    @abstractmethod
    async def work(self, item_id: int) -> None:
        """Do one item; it is called again later only if it is still due."""

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, grace: float = 10.0) -> None:
        """Take no new work, let the work in hand finish (up to `grace` seconds)."""
        self._stopping = True
        self.wake()
        if self._loop_task is not None:
            await self._loop_task
        if self._running:
            _, pending = await asyncio.wait(list(self._running.values()), timeout=grace)
            for task in pending:
                log.warning("%s: work still running at stop, cancelled", self.name)
                task.cancel()

    async def _run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            try:
                items = await asyncio.to_thread(self.due)
            except Exception:  # a database hiccup must not kill the worker: try again next round
                log.exception("%s: could not read due work", self.name)
                items = []
            for item_id, key in items:
                if len(self._running) >= self.concurrency or self._stopping:
                    break
                if item_id in self._running or key in self._busy_keys:
                    continue
                self._busy_keys.add(key)
                task = asyncio.create_task(self._guarded(item_id, key))
                self._running[item_id] = task
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll)

    async def _guarded(self, item_id: int, key: Any) -> None:
        try:
            await self.work(item_id)
        except Exception:
            log.exception("%s: item %s failed", self.name, item_id)
        finally:
            self._running.pop(item_id, None)
            self._busy_keys.discard(key)
            self.wake()  # a slot is free, and the same conversation may have its next item
