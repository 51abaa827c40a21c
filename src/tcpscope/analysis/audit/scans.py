"""Port scans (one source, many ports of one target) and host scans (one source, one
port, many targets), with the technique the packets show.

The rule is Zeek's (policy/misc/scan.zeek): a source whose *failed* attempts reach
`PORT_SCAN_PORTS` distinct ports of one host, or `HOST_SCAN_HOSTS` distinct hosts
on one port, within a `SCAN_WINDOW_S` epoch. Zeek counts an attempt as failed when
it was refused, never answered, or reset without data after the SYN-ACK (its
``is_failed_conn``); tcpscope counts those and also stealth probes (a lone FIN,
NULL, Xmas or ACK segment), which Zeek leaves to other scripts. A completed
connection that carried data is a success: it never counts toward the threshold,
and it lowers the confidence, which is TRW's likelihood ratio (findings.py): high
once failures outweigh successes by ln(99) (at least four more failures than
successes), medium while positive, low otherwise.

What each probe found (one attempt per stream, `attempts.outcomes`):

| probe | open | closed | filtered (no answer, or ICMP unreachable) |
|---|---|---|---|
| SYN (half-open) | SYN-ACK, then the scanner's RST or nothing | RST | — |
| connect | the handshake completes, no data | RST | — |
| FIN, NULL, Xmas | (silent: counted as filtered) | RST | — |
| ACK | (RST means unfiltered: listed as closed) | | — |

A SYN scan and a connect scan look alike on closed and filtered ports; the
technique is decided by the open ones (completed handshakes without data:
connect; SYN-ACKs never acknowledged: SYN).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .attempts import First, Outcome
from .keys import SeenFilter
from .common import NS, Detector, Tracked, addr_columns, addr_dtypes, addr_text
from .findings import (
    HOST_SCAN_HOSTS, PORT_SCAN_PORTS, SCAN_WINDOW_S, TRW_ETA1, Evidence, Finding,
    trw_log_ratio,
)
from .keys import mix

__all__ = ["PortScanDetector", "HostScanDetector", "probe_states", "STATES"]

# What one attempt found at its port.
OPEN_HALF, OPEN_CONNECT, CLOSED, FILTERED, SUCCESS = 1, 2, 3, 4, 5
STATES = {OPEN_HALF: "open", OPEN_CONNECT: "open", CLOSED: "closed", FILTERED: "filtered",
          SUCCESS: "success"}
#: Most listed per port list (the counts are always complete).
_LIST_MAX = 1024
#: Most targets remembered per host scan (more are counted).
_TARGETS_MAX = 4096
_TECHNIQUE = {int(First.FIN): "fin", int(First.NULL): "null", int(First.XMAS): "xmas",
              int(First.ACK): "ack"}


def probe_states(att: np.ndarray, out: np.ndarray) -> np.ndarray:
    """What each attempt found (OPEN_HALF ... SUCCESS; 0: not a probe or a connection)."""
    st = np.zeros(len(att), dtype=np.uint8)
    data = (att["cdata_frame"] > 0) | (att["sdata_frame"] > 0)
    st[(out == Outcome.HALF_OPEN) | (out == Outcome.RESET_HALF_OPEN)] = OPEN_HALF
    st[(out == Outcome.COMPLETED) & ~data] = OPEN_CONNECT
    st[(out == Outcome.COMPLETED) & data] = SUCCESS
    st[(out == Outcome.REFUSED) | (out == Outcome.PROBE_RST)] = CLOSED
    st[np.isin(out, [Outcome.UNANSWERED, Outcome.UNREACHABLE, Outcome.PROBE_SILENT,
                     Outcome.PROBE_UNREACHABLE])] = FILTERED
    return st


def _family(att: np.ndarray) -> np.ndarray:
    """The probe family: the probe's first kind, and for SYNs also the options they
    carry (SACK, window scale, timestamps): a scanner's crafted SYNs and a kernel's
    connect() SYNs from the same source are two scans."""
    syn = att["syn_frame"] > 0
    return np.where(syn, int(First.SYN) | (att["syn_opt"] & 7).astype(np.uint8) << 4,
                    att["first"]).astype(np.uint8)


class _Scan:
    __slots__ = ("source", "target", "port", "family", "epoch", "first_ns", "last_ns", "items",
                 "success", "attempts", "evidence", "done", "overflow")

    def __init__(self, _key: Any) -> None:
        self.source: str | None = None
        self.target: str | None = None
        self.port = 0
        self.family = 0
        self.done: list[Finding] = []
        self._reset(0)

    def _reset(self, epoch: int) -> None:
        self.epoch = epoch
        self.first_ns = self.last_ns = 0
        self.items: dict[Any, int] = {}   # port (or target) -> what it found
        self.success = self.attempts = self.overflow = 0
        self.evidence = Evidence()


class _ScanDetector(Detector):
    """What port and host scans share: the events, the epochs, the verdict."""

    threshold = 0
    COLUMNS = {"ts": np.int64, "frame": np.int64, "state": np.uint8, "family": np.uint8,
               "port": np.uint16, **addr_dtypes("s"), **addr_dtypes("t")}

    def __init__(self, capacity: int = 512, seen: SeenFilter | None = None) -> None:
        self.tracked = Tracked(capacity, _Scan, self.COLUMNS, seen=seen)

    def keys(self, att: np.ndarray, fam: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def attempts(self, att: np.ndarray, out: np.ndarray, now_ns: int) -> None:
        st = probe_states(att, out)
        m = st > 0
        if not m.any():
            return
        a, fam = att[m], _family(att[m])
        cols = {"ts": a["first_ts"], "frame": a["first_frame"], "state": st[m], "family": fam,
                "port": a["sport"],
                **addr_columns(a["caddr"], a["ver"], "s"), **addr_columns(a["saddr"], a["ver"], "t")}
        self.tracked.feed(self.keys(a, fam), cols, self._on)

    def _on(self, e: _Scan, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        rows = rows[np.argsort(cols["ts"][rows], kind="stable")]
        if e.source is None:
            r = int(rows[0])
            e.source, e.target = addr_text(cols, r, "s"), addr_text(cols, r, "t")
            e.port, e.family = int(cols["port"][r]), int(cols["family"][r])
            e._reset(int(cols["ts"][r]))
        window = SCAN_WINDOW_S * NS
        for r in rows.tolist():
            ts = int(cols["ts"][r])
            if ts >= e.epoch + window:
                self._close(e)
                e._reset(ts)
            e.first_ns = e.first_ns or ts
            e.last_ns = max(e.last_ns, ts)
            e.attempts += 1
            state = int(cols["state"][r])
            if state == SUCCESS:
                e.success += 1
                continue
            item = self.item_value(cols, r)
            old = e.items.get(item)
            if old is None and len(e.items) >= _TARGETS_MAX and self.capped:
                e.overflow += 1
                continue
            # open beats closed beats filtered (a repeated probe keeps its best answer)
            e.items[item] = state if old is None else min(old, state)
            e.evidence.add([int(cols["frame"][r])])

    capped = False

    def item_value(self, cols: dict[str, np.ndarray], row: int) -> Any:
        raise NotImplementedError

    def _close(self, e: _Scan) -> None:
        if len(e.items) + e.overflow >= self.threshold:
            e.done.append(self.finding(e))

    def findings(self) -> list[Finding]:
        out = []
        for _, e in self.tracked.table:
            if e.source is None:
                continue
            self._close(e)
            out.extend(e.done)
            e.done = []
        return out

    def verdict(self, e: _Scan) -> tuple[str, list, list, int, str]:
        """(technique, open items, closed items, filtered count, confidence)."""
        states = e.items
        half = sum(1 for s in states.values() if s == OPEN_HALF)
        conn = sum(1 for s in states.values() if s == OPEN_CONNECT)
        if e.family & 0x0F == First.SYN:
            technique = "connect" if conn > half else "syn"
        else:
            technique = _TECHNIQUE.get(e.family, "syn")
        opened = sorted(k for k, s in states.items() if s in (OPEN_HALF, OPEN_CONNECT))
        closed = sorted(k for k, s in states.items() if s == CLOSED)
        filtered = sum(1 for s in states.values() if s == FILTERED)
        failures = len(states) + e.overflow
        llr = trw_log_ratio(failures, e.success)
        conf = "high" if llr >= math.log(TRW_ETA1) else ("medium" if llr > 0 else "low")
        return technique, opened, closed, filtered, conf

    noun = ""   #: what the count counts: "ports" or "hosts"
    rule = ""

    def where(self, e: _Scan) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
        """(the finding's target, its own fields, its own sentence parameters)."""
        raise NotImplementedError

    def finding(self, e: _Scan) -> Finding:
        technique, opened, closed, filtered, conf = self.verdict(e)
        n, noun = len(e.items) + e.overflow, self.noun
        target, own, own_params = self.where(e)
        fields = {"technique": technique, **own, noun: n, f"open_{noun}": opened[:_LIST_MAX],
                  f"closed_{noun}": closed[:_LIST_MAX], "filtered_count": filtered,
                  "open_count": len(opened), "closed_count": len(closed),
                  "probes": e.attempts, "successes": e.success}
        return Finding(
            kind=self.kind, source=e.source, target=target, first_ts=e.first_ns / NS,
            last_ts=e.last_ns / NS, count=n, fields=fields, evidence=e.evidence,
            confidence=conf, message=f"audit.{self.kind}.what",
            params={"source": e.source, **own_params, noun: n, "technique": technique,
                    "open": len(opened), "closed": len(closed), "filtered": filtered,
                    "dur": (e.last_ns - e.first_ns) / NS, "threshold": self.threshold,
                    "window": SCAN_WINDOW_S},
            rule=self.rule, thresholds={noun: self.threshold, "window_s": SCAN_WINDOW_S})

    def memory(self) -> dict[str, int]:
        return self.tracked.memory()


class PortScanDetector(_ScanDetector):
    kind = "port_scan"
    threshold = PORT_SCAN_PORTS
    noun = "ports"
    rule = "zeek.port_scan"

    def keys(self, att: np.ndarray, fam: np.ndarray) -> np.ndarray:
        return mix(att["ckey"], att["skey"], fam)

    def item_value(self, cols: dict[str, np.ndarray], row: int) -> Any:
        return int(cols["port"][row])

    def where(self, e: _Scan) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
        return e.target, {}, {"target": e.target}


class HostScanDetector(_ScanDetector):
    kind = "host_scan"
    threshold = HOST_SCAN_HOSTS
    capped = True
    noun = "hosts"
    rule = "zeek.address_scan"

    def keys(self, att: np.ndarray, fam: np.ndarray) -> np.ndarray:
        return mix(att["ckey"], att["sport"], fam)

    def item_value(self, cols: dict[str, np.ndarray], row: int) -> Any:
        return addr_text(cols, row, "t")

    def where(self, e: _Scan) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
        return None, {"port": e.port, "hosts_at_least": e.overflow > 0}, {"port": e.port}
