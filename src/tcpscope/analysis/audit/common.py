"""What every detector shares: the interface, the keyed table of tracked entries, and
the text of the addresses a finding names."""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from ...wire.text import format_address
from .keys import BoundedTable, Promoter, SeenFilter

__all__ = ["Detector", "Tracked", "address", "addr_columns", "addr_dtypes", "addr_text",
           "NS"]

NS = 1_000_000_000


def address(addr: np.ndarray, version: int) -> str:
    """The text of one address (a 16-byte row) of this IP version."""
    return format_address(addr, int(version)) or "?"


def addr_columns(addr: np.ndarray, version: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
    """Event columns that carry (n, 16) addresses: two uint64 halves and the version."""
    halves = np.ascontiguousarray(addr, dtype=np.uint8).view(np.uint64).reshape(-1, 2)
    return {prefix + "a0": halves[:, 0], prefix + "a1": halves[:, 1], prefix + "ver": version}


def addr_dtypes(prefix: str = "") -> dict[str, Any]:
    """The dtypes of `addr_columns` (for a detector's COLUMNS)."""
    return {prefix + "a0": np.uint64, prefix + "a1": np.uint64, prefix + "ver": np.uint8}


def addr_text(cols: dict[str, np.ndarray], row: int, prefix: str = "") -> str:
    """The address of one event, from its `addr_columns`."""
    raw = np.array([cols[prefix + "a0"][row], cols[prefix + "a1"][row]], dtype=np.uint64)
    return address(raw.view(np.uint8), int(cols[prefix + "ver"][row]))


class Detector:
    """A detector sees retired attempts (`attempts`) and, if it wants them, the rows of
    every chunk (`rows`); `findings` says what it found once the input has ended."""

    kind: str = ""

    def attempts(self, att: np.ndarray, out: np.ndarray, now_ns: int) -> None:
        """Retired attempts (ATTEMPT_DTYPE) and their `Outcome`s; `now_ns` is the capture
        time they were retired at."""

    def rows(self, chunk: Any, feed: Any, table: Any) -> None:
        """One pipeline chunk and what the attempt table made of it."""

    def findings(self) -> list:
        raise NotImplementedError

    def memory(self) -> dict[str, int]:
        """Entries tracked and bytes of fixed-size structures, for the audit's report."""
        return {}


class Tracked:
    """Entries per uint64 key, in a `BoundedTable` fed through a `Promoter` (a key's
    first event costs no entry; with ``promote=False`` every event goes straight to the
    table). `feed` hands each key's events to `on_events` as row indexes into the
    columns."""

    def __init__(self, capacity: int, make: Callable[[Hashable], Any],
                 columns: dict[str, np.dtype], *, promote: bool = True,
                 seen: SeenFilter | None = None) -> None:
        self.table: BoundedTable = BoundedTable(capacity, make)
        self.promoter = Promoter(columns, seen) if promote else None

    def feed(self, keys: np.ndarray, cols: dict[str, np.ndarray],
             on_events: Callable[[Any, dict[str, np.ndarray], np.ndarray], None]) -> None:
        if not len(keys):
            return
        if self.promoter is not None:
            known = np.fromiter((k for k in self.table.items), dtype=np.uint64,
                                count=len(self.table.items))
            tracked = np.isin(keys, known) if len(known) else np.zeros(len(keys), dtype=bool)
            keys, cols = self.promoter.pass_on(keys, cols, tracked)
        if not len(keys):
            return
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        cuts = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1, len(sk)]
        for a, b in zip(cuts[:-1], cuts[1:]):
            rows = order[a:b]
            entry = self.table.get(int(sk[a]), int(b - a))
            on_events(entry, cols, rows)

    def memory(self) -> dict[str, int]:
        return {"entries": len(self.table), "evicted": self.table.evicted,
                "fixed_bytes": self.promoter.nbytes if self.promoter is not None else 0}
