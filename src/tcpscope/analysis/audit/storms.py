"""Retransmission storms and RST storms: counted per window of capture time, packet by packet.

`RetransmissionStormDetector`: in a `RETX_STORM_WINDOW_S` window, one host sent
another at least `RETX_STORM_MIN` retransmitted data segments, and they were at
least `RETX_STORM_SHARE` of its data segments to that host. Retransmissions are
the engine's verdicts (retransmission, fast and spurious retransmission; never a
capture duplicate, out-of-order or a window probe). One percent random loss, or a
queue dropping a few percent, stays well below; a path losing a fifth of its
segments, or a peer that stopped answering while data kept being resent, is a
storm.

`RstStormDetector`: in a `RST_STORM_WINDOW_S` window, one host aborted at least
`RST_STORM_MIN` connections that had carried data, each with an RST (its first
RST on that connection is counted). RSTs refusing a SYN (failed connections),
answering scan probes, or tearing down half-open or empty connections are not
counted here: the other findings cover them.

Both keep, per tracked direction or host, only the current window's counts and
the totals of the windows where the rule held.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...wire.record import RST
from ..annotation import FLAG
from .common import NS, Detector, address
from .findings import (
    RETX_STORM_MIN, RETX_STORM_SHARE, RETX_STORM_WINDOW_S, RST_STORM_MIN, RST_STORM_WINDOW_S,
    Evidence, Finding,
)
from .keys import BoundedTable, host_keys, mix

__all__ = ["RetransmissionStormDetector", "RstStormDetector"]

_RETX = FLAG["retransmission"] | FLAG["fast_retransmission"] | FLAG["spurious_retransmission"]
_NOT_RETX = FLAG["capture_duplicate"] | FLAG["keep_alive"] | FLAG["zero_window_probe"]
_PEERS_MAX = 64


class _Window:
    """One key's current window and the totals of its hot windows."""

    __slots__ = ("source", "target", "peers", "bucket", "n", "base", "frames", "hot_n",
                 "hot_base", "windows", "first_ns", "last_ns", "peak_n", "peak_share", "evidence")

    def __init__(self, _key: Any) -> None:
        self.source: str | None = None
        self.target: str | None = None
        self.peers: set[str] = set()
        self.bucket = -1
        self.n = self.base = 0           # counted events, and what they are a share of
        self.frames: list[int] = []
        self.hot_n = self.hot_base = self.windows = self.peak_n = 0
        self.peak_share = 0.0
        self.first_ns = self.last_ns = 0
        self.evidence = Evidence()


def _groups(keys: np.ndarray, bucket: np.ndarray):
    """(key, bucket, row indexes) per distinct pair, rows in order."""
    order = np.lexsort((bucket, keys))
    k, b = keys[order], bucket[order]
    cut = np.r_[0, np.flatnonzero((k[1:] != k[:-1]) | (b[1:] != b[:-1])) + 1, len(k)]
    for lo, hi in zip(cut[:-1], cut[1:]):
        yield int(k[lo]), int(b[lo]), order[lo:hi]


class _WindowDetector(Detector):
    """Counts per key and window; `hot(n, base)` says whether a finished window holds."""

    window_s = 1

    def __init__(self, capacity: int = 256) -> None:
        self.table: BoundedTable = BoundedTable(capacity, _Window)

    def hot(self, n: int, base: int) -> bool:
        raise NotImplementedError

    def _add(self, e: _Window, bucket: int, n: int, base: int, frames: np.ndarray) -> None:
        if bucket > e.bucket:
            self._finish_window(e)
            e.bucket, e.n, e.base, e.frames = bucket, 0, 0, []
        e.n += n
        e.base += base
        if len(e.frames) < 8:
            e.frames.extend(int(f) for f in frames[: 8 - len(e.frames)])

    def _finish_window(self, e: _Window) -> None:
        if e.bucket < 0 or not self.hot(e.n, e.base):
            return
        start = e.bucket * self.window_s * NS
        e.first_ns = e.first_ns or start
        e.last_ns = start + self.window_s * NS
        e.hot_n += e.n
        e.hot_base += e.base
        e.windows += 1
        e.peak_n = max(e.peak_n, e.n)
        e.peak_share = max(e.peak_share, e.n / e.base if e.base else 1.0)
        e.evidence.add(e.frames, e.n)

    def findings(self) -> list[Finding]:
        out = []
        for _, e in self.table:
            self._finish_window(e)
            e.bucket = -1
            if e.windows:
                out.append(self.finding(e))
        return out

    def finding(self, e: _Window) -> Finding:
        raise NotImplementedError

    def memory(self) -> dict[str, int]:
        return {"entries": len(self.table), "evicted": self.table.evicted}


class RetransmissionStormDetector(_WindowDetector):
    kind = "retransmission_storm"
    window_s = RETX_STORM_WINDOW_S

    def hot(self, n: int, base: int) -> bool:
        return n >= RETX_STORM_MIN and n >= RETX_STORM_SHARE * base

    def rows(self, chunk: Any, feed: Any, table: Any) -> None:
        rec, ann = chunk.records, chunk.annotations
        m = np.flatnonzero((ann["stream"] >= 0) & (rec["payload_len"] > 0))
        if not len(m):
            return
        af = ann["flags"][m]
        retx = ((af & _RETX) != 0) & ((af & _NOT_RETX) == 0)
        bucket = chunk.ts_ns[m] // (self.window_s * NS)
        # Count per stream direction and window with integers first; only one row per
        # group then needs its addresses turned into host keys.
        direction = ann["stream"][m] * 2 + ann["from_server"][m]
        order = np.lexsort((bucket, direction))
        d, b = direction[order], bucket[order]
        cut = np.r_[0, np.flatnonzero((d[1:] != d[:-1]) | (b[1:] != b[:-1])) + 1]
        first = m[order[cut]]
        n_data = np.diff(np.r_[cut, len(order)])
        n_retx = np.add.reduceat(retx[order].astype(np.int64), cut)
        ver = rec["ip_version"][first]
        keys = mix(host_keys(rec["src"][first], ver), host_keys(rec["dst"][first], ver))
        known = self.table.items
        frames = chunk.batch.frame_numbers
        group_of_row = np.repeat(np.arange(len(cut)), n_data)   # in `order`
        for key, bk, groups in _groups(keys, b[cut]):
            n = int(n_retx[groups].sum())
            if not n and key not in known:
                continue
            e = self.table.get(key, n)
            if e.source is None:
                i = int(first[groups[0]])
                e.source = address(rec["src"][i], rec["ip_version"][i])
                e.target = address(rec["dst"][i], rec["ip_version"][i])
            sample = np.zeros(0, np.int64)
            if n:
                rows = order[np.isin(group_of_row, groups) & retx[order]]
                sample = frames[m[np.sort(rows)][:8]]
            self._add(e, bk, n, int(n_data[groups].sum()), sample)

    def finding(self, e: _Window) -> Finding:
        share = e.hot_n / e.hot_base if e.hot_base else 1.0
        fields = {"data_segments": e.hot_base, "share": round(share, 3),
                  "peak_share": round(e.peak_share, 3), "peak_count": e.peak_n,
                  "windows": e.windows, "window_s": self.window_s}
        return Finding(
            kind=self.kind, source=e.source, target=e.target, first_ts=e.first_ns / NS,
            last_ts=e.last_ns / NS, count=e.hot_n, fields=fields, evidence=e.evidence,
            confidence="high", message="audit.retransmission_storm.what",
            params={"source": e.source, "target": e.target, "count": e.hot_n,
                    "data": e.hot_base, "pct": round(100 * share, 1),
                    "windows": e.windows, "window": self.window_s,
                    "min": RETX_STORM_MIN, "share": round(100 * RETX_STORM_SHARE)},
            rule="retransmission_storm.window",
            thresholds={"retransmissions": RETX_STORM_MIN, "share": RETX_STORM_SHARE,
                        "window_s": self.window_s})


class RstStormDetector(_WindowDetector):
    kind = "rst_storm"
    window_s = RST_STORM_WINDOW_S

    def hot(self, n: int, base: int) -> bool:
        return n >= RST_STORM_MIN

    def rows(self, chunk: Any, feed: Any, table: Any) -> None:
        rec = chunk.records
        if not len(feed.rows):
            return
        m = (rec["tcp_flags"][feed.rows] & RST) != 0
        if not m.any():
            return
        rows, slots = feed.rows[m], feed.slots[m]
        ring = table.ring
        frames = chunk.batch.frame_numbers[rows]
        cd, sd = ring["cdata_frame"][slots], ring["sdata_frame"][slots]
        carried = ((cd > 0) & (cd < frames)) | ((sd > 0) & (sd < frames))
        first = np.zeros(len(rows), dtype=bool)
        _, idx = np.unique(slots, return_index=True)
        first[idx] = True
        take = carried & first & (ring["rst_counted"][slots] == 0)
        if not take.any():
            return
        ring["rst_counted"][slots[take]] = 1
        rows, frames = rows[take], frames[take]
        r = rec[rows]
        keys = host_keys(r["src"], r["ip_version"])
        bucket = chunk.ts_ns[rows] // (self.window_s * NS)
        for key, b, g in _groups(keys, bucket):
            e = self.table.get(key, len(g))
            if e.source is None:
                e.source = address(r["src"][g[0]], r["ip_version"][g[0]])
            for i in g.tolist():
                if len(e.peers) < _PEERS_MAX:
                    e.peers.add(address(r["dst"][i], r["ip_version"][i]))
            self._add(e, b, len(g), len(g), frames[g])

    def finding(self, e: _Window) -> Finding:
        peers = sorted(e.peers)
        fields = {"connections": e.hot_n, "peers": len(peers), "peer_sample": peers[:8],
                  "peak_count": e.peak_n, "windows": e.windows, "window_s": self.window_s}
        return Finding(
            kind=self.kind, source=e.source, target=peers[0] if len(peers) == 1 else None,
            first_ts=e.first_ns / NS, last_ts=e.last_ns / NS, count=e.hot_n, fields=fields,
            evidence=e.evidence, confidence="high", message="audit.rst_storm.what",
            params={"source": e.source, "count": e.hot_n, "peers": len(peers),
                    "peak": e.peak_n, "window": self.window_s, "min": RST_STORM_MIN},
            rule="rst_storm.window",
            thresholds={"aborts": RST_STORM_MIN, "window_s": self.window_s})
