"""A small in-process cache shared by threads, for the buyer pages' per-version reads.

The event snapshots, the hall layouts and the hall's rendered markup are each
kept under a key that names the rows' version, so an entry is never stale,
only unused; this forgets the least recently used entry once there are too many.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentlyUsed(Generic[K, V]):
    def __init__(self, kept: int) -> None:
        self._kept = kept
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self._kept:
                self._entries.popitem(last=False)
