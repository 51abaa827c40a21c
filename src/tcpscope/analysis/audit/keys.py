"""Keys and bounded tables: what lets the audit remember sources and targets, not packets.

Addresses become 64-bit keys (`host_keys`): a hash of the 16 address bytes and
the IP version, computed for a whole column at once. Collisions are possible in
principle (2^-64 per pair) and harmless in practice: two hosts would be counted
as one.

What the detectors remember is bounded three ways, each documented in
docs/audit.md ("Memory"):

- `SeenFilter`: one bit array (2^26 bits, 8 MiB, two hash functions, shared by the
  detectors) that says whether a key was seen before. A key seen once costs no
  Python object; its second sighting promotes it into a `BoundedTable`. False
  "seen before" answers (about 0.8 % after three million distinct keys: a million
  spoofed SYNs make that many) promote a key early; they never lose one.
- `RecentEvents`: the last 2^14 events of keys not yet promoted, so that a key
  promoted on its second event gets its first one back.
- `BoundedTable`: at most `2 * capacity` tracked keys; when full, the half with
  the fewest events is forgotten (counted in `evicted`), as a space-saving
  top-K does. A forgotten key can only make a finding smaller, never invent one.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

import numpy as np

__all__ = ["host_keys", "mix", "SeenFilter", "RecentEvents", "BoundedTable", "Promoter",
           "HyperLogLog"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over a uint64 column (a good, cheap 64-bit mixer)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def mix(*cols: np.ndarray) -> np.ndarray:
    """One uint64 key from several integer columns (host keys, ports, ...)."""
    out = np.zeros(len(cols[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:
            out = _splitmix((out * _GOLD) ^ np.asarray(c).astype(np.uint64))
    return out


def host_keys(addr: np.ndarray, version: np.ndarray) -> np.ndarray:
    """The 64-bit key of each (n, 16) address of the given IP versions."""
    a = np.ascontiguousarray(addr, dtype=np.uint8).view(np.uint64).reshape(-1, 2)
    return mix(a[:, 0], a[:, 1], version)


class SeenFilter:
    """Has this key been seen before? A bit array with two hash functions (no false 'no')."""

    BITS = 1 << 26

    def __init__(self) -> None:
        self.bits = np.zeros(self.BITS // 8, dtype=np.uint8)

    def seen_before(self, keys: np.ndarray) -> np.ndarray:
        """For each key, whether it was seen before (in earlier calls or earlier in `keys`);
        then marks them all seen."""
        if not len(keys):
            return np.zeros(0, dtype=bool)
        h1 = (keys & np.uint64(self.BITS - 1)).astype(np.int64)
        h2 = ((keys >> np.uint64(32)) & np.uint64(self.BITS - 1)).astype(np.int64)
        old = self._test(h1) & self._test(h2)
        _, first = np.unique(keys, return_index=True)
        repeat = np.ones(len(keys), dtype=bool)
        repeat[first] = False
        for h in (h1, h2):
            np.bitwise_or.at(self.bits, h >> 3, (1 << (h & 7)).astype(np.uint8))
        return old | repeat

    def _test(self, h: np.ndarray) -> np.ndarray:
        return (self.bits[h >> 3] >> (h & 7).astype(np.uint8)) & 1 == 1

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)


class RecentEvents:
    """The last `capacity` events (a key plus named columns), oldest overwritten first."""

    def __init__(self, columns: dict[str, np.dtype], capacity: int = 1 << 14) -> None:
        self.capacity = capacity
        self.keys = np.zeros(capacity, dtype=np.uint64)
        self.valid = np.zeros(capacity, dtype=bool)
        self.cols = {name: np.zeros(capacity, dtype=dt) for name, dt in columns.items()}
        self.pos = 0

    def add(self, keys: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        n = len(keys)
        if n > self.capacity:
            keys = keys[-self.capacity:]
            cols = {k: v[-self.capacity:] for k, v in cols.items()}
            n = self.capacity
        idx = (self.pos + np.arange(n)) % self.capacity
        self.keys[idx] = keys
        self.valid[idx] = True
        for name, col in cols.items():
            self.cols[name][idx] = col
        self.pos = int((self.pos + n) % self.capacity)

    def take(self, keys: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Remove and return the events of these keys, oldest first."""
        if not len(keys):
            return np.zeros(0, np.uint64), {k: v[:0] for k, v in self.cols.items()}
        order = (self.pos + np.arange(self.capacity)) % self.capacity
        hit = order[self.valid[order] & np.isin(self.keys[order], keys)]
        self.valid[hit] = False
        return self.keys[hit], {k: v[hit] for k, v in self.cols.items()}

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.valid.nbytes + sum(c.nbytes for c in self.cols.values()))


V = TypeVar("V")


class BoundedTable(Generic[V]):
    """Key -> value for at most ``2 * capacity`` keys, each with an event count.

    When a new key would exceed ``2 * capacity``, the ``capacity`` keys with the fewest
    events are dropped (`evicted` counts them, `evicted_events` their events).
    """

    def __init__(self, capacity: int, make: Callable[[Hashable], V]) -> None:
        self.capacity = capacity
        self.make = make
        self.items: dict[Hashable, V] = {}
        self.counts: dict[Hashable, int] = {}
        self.evicted = 0
        self.evicted_events = 0

    def get(self, key: Hashable, events: int = 1) -> V:
        """The value of `key` (made if new), its count raised by `events`."""
        v = self.items.get(key)
        if v is None:
            if len(self.items) >= 2 * self.capacity:
                self._evict()
            v = self.items[key] = self.make(key)
            self.counts[key] = 0
        self.counts[key] += events
        return v

    def peek(self, key: Hashable) -> V | None:
        return self.items.get(key)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[tuple[Hashable, V]]:
        return iter(self.items.items())

    def _evict(self) -> None:
        ranked = sorted(self.counts, key=self.counts.__getitem__)
        for key in ranked[: len(ranked) - self.capacity]:
            self.evicted += 1
            self.evicted_events += self.counts.pop(key)
            del self.items[key]


class Promoter:
    """Events keyed by uint64, handed on from a key's second event (with its first).

    `pass_on(keys, cols, tracked)` returns the events the caller must process, oldest
    first: those of keys it already tracks (`tracked`: a bool per event), and those of
    keys seen before (`SeenFilter`), preceded by their earlier events still in the
    `RecentEvents` ring. The other events (a key's first) go into the ring.
    """

    def __init__(self, columns: dict[str, np.dtype], seen: SeenFilter | None = None) -> None:
        self.seen = seen if seen is not None else SeenFilter()
        self.recent = RecentEvents(columns)

    def pass_on(self, keys: np.ndarray, cols: dict[str, np.ndarray], tracked: np.ndarray
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rest = ~tracked
        again = np.zeros(len(keys), dtype=bool)
        again[rest] = self.seen.seen_before(keys[rest])
        first = rest & ~again
        self.recent.add(keys[first], {k: v[first] for k, v in cols.items()})
        go = tracked | again
        if not go.any():
            return keys[:0], {k: v[:0] for k, v in cols.items()}
        old_keys, old_cols = self.recent.take(np.unique(keys[again]))
        return (np.concatenate([old_keys, keys[go]]),
                {k: np.concatenate([old_cols[k], v[go]]) for k, v in cols.items()})

    @property
    def nbytes(self) -> int:
        """The ring's bytes (the seen-filter may be shared: counted by its owner)."""
        return self.recent.nbytes


class HyperLogLog:
    """Distinct-key count in 4 KiB (2^12 one-byte registers; ~1.6 % standard error)."""

    P = 12

    def __init__(self) -> None:
        self.reg = np.zeros(1 << self.P, dtype=np.uint8)

    def add(self, keys: np.ndarray) -> None:
        if not len(keys):
            return
        idx = (keys >> np.uint64(64 - self.P)).astype(np.int64)
        rest = (keys << np.uint64(self.P)) | np.uint64(1 << (self.P - 1))
        # rank = leading zeros of the remaining bits + 1
        rank = (64 - np.floor(np.log2(rest.astype(np.float64))).astype(np.int64)).astype(np.uint8)
        np.maximum.at(self.reg, idx, rank)

    def count(self) -> int:
        m = float(len(self.reg))
        est = 0.7213 / (1 + 1.079 / m) * m * m / float(np.sum(2.0 ** -self.reg.astype(np.float64)))
        zeros = int((self.reg == 0).sum())
        if est <= 2.5 * m and zeros:
            est = m * math.log(m / zeros)
        return int(round(est))
