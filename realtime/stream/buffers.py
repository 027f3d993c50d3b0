"""Preallocated rolling buffers: nothing in the per-frame path allocates a new stack."""

from __future__ import annotations

import collections
import enum
import threading
from typing import Generic, TypeVar

import numpy as np

from .flow import FlowSettings


class FlowRing:
    """The last L flow fields, stored quantised exactly as the training cache stores them."""

    def __init__(self, settings: FlowSettings, length: int):
        self.settings = settings
        self.codes = np.zeros((length, settings.height, settings.width, 2), np.uint8)
        self._base = np.arange(length)
        self._order = np.arange(length)
        self._head = 0  # slot the next field goes into
        self.count = 0

    @property
    def length(self) -> int:
        return self.codes.shape[0]

    @property
    def ready(self) -> bool:
        return self.count >= self.length

    def push(self, flow: np.ndarray) -> None:
        self.settings.quantise(flow, out=self.codes[self._head])
        self._head = (self._head + 1) % self.length
        self.count += 1

    def order(self) -> np.ndarray:
        """Ring slots from oldest to newest (a preallocated index array, updated in place)."""
        np.add(self._base, self._head, out=self._order)
        self._order %= self.length
        return self._order

    def reset(self) -> None:
        """Forget every field (after a gap in the stream)."""
        self._head = 0
        self.count = 0


T = TypeVar("T")


class End(enum.Enum):
    """The end-of-stream marker a stage hands on after its last item (`LatestSlot.finish`)."""

    END = "end"


END = End.END


class LatestSlot(Generic[T]):
    """A bounded hand-over of T items between two threads.

    Live mode keeps the newest `capacity` items and drops the oldest (counted), so a slow consumer
    never builds a backlog; lossless mode makes the producer wait instead (files read in full).
    After the last item the producer calls `finish()`: the consumer then gets END.
    """

    def __init__(self, capacity: int = 1, drop_oldest: bool = True):
        self._items: collections.deque[T | End] = collections.deque()
        self._capacity = capacity
        self.drop_oldest = drop_oldest
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: T, stop: threading.Event | None = None, timeout: float = 0.05) -> T | End | None:
        """Add an item; returns the item it dropped to make room (or None). Waits in lossless mode
        (returning `item` itself, not added, once `stop` is set)."""
        with self._cond:
            while not self.drop_oldest and len(self._items) >= self._capacity:
                if stop is not None and stop.is_set():
                    return item
                self._cond.wait(timeout)
            evicted = None
            if len(self._items) >= self._capacity:
                evicted = self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()
            return evicted

    def finish(self) -> None:
        """Append the end-of-stream marker beyond capacity: it never evicts real work."""
        with self._cond:
            self._items.append(END)
            self._cond.notify_all()

    def get(self, timeout: float = 0.05) -> T | End | None:
        """The oldest item held (or END), or None after `timeout` seconds with nothing to take."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
                if not self._items:
                    return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item
