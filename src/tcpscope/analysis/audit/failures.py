"""Failed connections: attempts to one destination (address:port) refused, unreachable or
never answered — "why didn't the page load".

Rule: at least `FAILED_MIN` failed attempts to one address:port within a
`FAILED_WINDOW_S` epoch (Zeek's scan window; the count is tcpscope's choice: a
client that retries a dead server once or twice per page is one user's trouble,
five failures is a pattern). A refusal is an RST from the responder before any
SYN-ACK; unreachable an ICMP destination unreachable quoting the SYN; unanswered
SYNs with nothing back. The finding groups them by destination, says how many
clients tried and how many attempts succeeded meanwhile, and the retry schedule
the clients used: the median interval before each repeated SYN, and its shape
(`lifecycle.backoff_verdict`: Linux repeats a SYN after 1 s, 1 s, 1 s, ... then
doubling; RFC 6298 says doubling).

Attempts to a listener that is being SYN-flooded are left to the flood finding
(it counts the legitimate clients that failed), so one cause is reported once.
"""
from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from ..lifecycle import backoff_verdict
from .attempts import Outcome, syn_intervals
from .keys import SeenFilter
from .common import NS, Detector, Tracked, addr_columns, addr_dtypes, addr_text
from .findings import FAILED_MIN, FAILED_WINDOW_S, Evidence, Finding
from .keys import mix

__all__ = ["FailedConnectionDetector"]

_FAILED = {int(Outcome.REFUSED): "refused", int(Outcome.UNREACHABLE): "unreachable",
           int(Outcome.UNANSWERED): "unanswered"}
#: Schedules kept per destination for the retry figures.
_SCHEDULES = 64
_CLIENTS_MAX = 1024
_MAX_SYNS = 8


class _Dest:
    __slots__ = ("target", "port", "epoch", "first_ns", "last_ns", "counts", "ok", "clients",
                 "schedules", "syns", "evidence", "done")

    def __init__(self, _key: Any) -> None:
        self.target: str | None = None
        self.port = 0
        self.done: list[Finding] = []
        self.reset(0)

    def reset(self, epoch: int) -> None:
        self.epoch = epoch
        self.first_ns = self.last_ns = 0
        self.counts = {name: 0 for name in _FAILED.values()}
        self.ok = 0
        self.clients: set[str] = set()
        self.schedules: list[list[float]] = []
        self.syns: dict[int, int] = {}          # SYNs per failed attempt -> attempts
        self.evidence = Evidence()

    @property
    def failed(self) -> int:
        return sum(self.counts.values())


class FailedConnectionDetector(Detector):
    kind = "failed_connections"
    COLUMNS = {"ts": np.int64, "frame": np.int64, "out": np.uint8, "syn_n": np.uint16,
               "port": np.uint16, "iv": (np.float64, _MAX_SYNS - 1), **addr_dtypes(),
               **addr_dtypes("c")}

    def __init__(self, capacity: int = 512, seen: SeenFilter | None = None) -> None:
        self.tracked = Tracked(capacity, _Dest, self.COLUMNS, seen=seen)
        #: listener keys (address:port) with a SYN flood: their failures are the flood's
        self.flooded: set[tuple[str, int]] = set()

    def attempts(self, att: np.ndarray, out: np.ndarray, now_ns: int) -> None:
        m = att["syn_frame"] > 0
        if not m.any():
            return
        a = att[m]
        cols = {"ts": a["syn_ts"], "frame": a["syn_frame"], "out": out[m], "syn_n": a["syn_n"],
                "port": a["sport"], "iv": syn_intervals(a), **addr_columns(a["saddr"], a["ver"]),
                **addr_columns(a["caddr"], a["ver"], "c")}
        self.tracked.feed(mix(a["skey"], a["sport"]), cols, self._on)

    def _on(self, e: _Dest, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        rows = rows[np.argsort(cols["ts"][rows], kind="stable")]
        ts = cols["ts"][rows]
        if e.target is None:
            e.target, e.port = addr_text(cols, int(rows[0])), int(cols["port"][rows[0]])
            e.reset(int(ts[0]))
        window = FAILED_WINDOW_S * NS
        i = 0
        while i < len(rows):          # one epoch at a time
            if ts[i] >= e.epoch + window:
                self._close(e)
                e.reset(int(ts[i]))
            j = int(np.searchsorted(ts, e.epoch + window, side="left"))
            self._add(e, cols, rows[i:j])
            i = j

    def _add(self, e: _Dest, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        out = cols["out"][rows]
        e.ok += int((out == Outcome.COMPLETED).sum())
        for code, name in _FAILED.items():
            e.counts[name] += int((out == code).sum())
        rows = rows[np.isin(out, list(_FAILED))]
        if not len(rows):
            return
        ts = cols["ts"][rows]
        e.first_ns = e.first_ns or int(ts[0])
        e.last_ns = max(e.last_ns, int(ts[-1]))
        if len(e.clients) < _CLIENTS_MAX:
            pairs = np.stack([cols["ca0"][rows], cols["ca1"][rows]], axis=1)
            _, first = np.unique(pairs, axis=0, return_index=True)
            for r in rows[np.sort(first)][: _CLIENTS_MAX - len(e.clients)].tolist():
                e.clients.add(addr_text(cols, r, "c"))
        n = cols["syn_n"][rows]
        for k, c in zip(*np.unique(n, return_counts=True)):
            e.syns[int(k)] = e.syns.get(int(k), 0) + int(c)
        room = _SCHEDULES - len(e.schedules)
        if room > 0:
            for iv in cols["iv"][rows[n > 1][:room]]:
                e.schedules.append([float(x) for x in iv[~np.isnan(iv)]])
        e.evidence.add(cols["frame"][rows])

    def _close(self, e: _Dest) -> None:
        if e.failed >= FAILED_MIN:
            e.done.append(self._finding(e))

    def findings(self) -> list[Finding]:
        out = []
        for _, e in self.tracked.table:
            if e.target is None:
                continue
            self._close(e)
            if (e.target, e.port) not in self.flooded:
                out.extend(e.done)
            e.done = []
        return out

    def _finding(self, e: _Dest) -> Finding:
        longest = max((len(s) for s in e.schedules), default=0)
        schedule = [round(statistics.median(s[i] for s in e.schedules if len(s) > i), 3)
                    for i in range(longest)]
        typical_syns = max(e.syns.items(), key=lambda kv: (kv[1], kv[0]))[0] if e.syns else 0
        clients = sorted(e.clients)
        fields = {"port": e.port, **e.counts, "attempts": e.failed + e.ok, "succeeded": e.ok,
                  "clients": len(clients), "client_sample": clients[:8],
                  "syns_per_attempt": typical_syns,
                  "retry_schedule": schedule, "backoff": backoff_verdict(schedule)}
        main = max(e.counts.items(), key=lambda kv: kv[1])[0]
        return Finding(
            kind=self.kind, source=clients[0] if len(clients) == 1 else None, target=e.target,
            first_ts=e.first_ns / NS, last_ts=e.last_ns / NS, count=e.failed, fields=fields,
            evidence=e.evidence, confidence="high", message=f"audit.failed_connections.{main}",
            params={"target": e.target, "port": e.port, "count": e.failed,
                    "refused": e.counts["refused"], "unreachable": e.counts["unreachable"],
                    "unanswered": e.counts["unanswered"], "clients": len(clients),
                    "ok": e.ok, "dur": (e.last_ns - e.first_ns) / NS,
                    "syns": typical_syns, "schedule": schedule,
                    "threshold": FAILED_MIN, "window": FAILED_WINDOW_S},
            rule="failed_connections.count",
            thresholds={"failed": FAILED_MIN, "window_s": FAILED_WINDOW_S})

    def memory(self) -> dict[str, int]:
        return self.tracked.memory()
