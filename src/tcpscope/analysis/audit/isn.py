"""Initial sequence numbers, per host: random (RFC 6528) or predictable.

Every host that chose ISNs in the capture (in its SYNs, or in its SYN-ACKs) gets
them judged once it has chosen `ISN_MIN_SAMPLES` on distinct 4-tuples (the same
4-tuple is left out on purpose: RFC 6528 makes a host's ISNs for one 4-tuple
increase with its clock, to protect old segments, and that is not a weakness).
The figures are nmap's (osscan2.cc, its SEQ tests), from the ISNs in time order:

- ``gcd``: the greatest common divisor of the differences between consecutive ISNs
  (each taken the short way round the 2^32 circle);
- ``isr``: the average rate at which the ISN moves, as 8·log2(increments per
  second), rounded (0 below one per second);
- ``sp``: the sequence predictability index, 8·log2 of the standard deviation of
  those rates (divided by the GCD when it is above 9), rounded (0 when at most 1).

and the verdict, the first that holds:

- ``constant``: the same ISN every time;
- ``repeated``: some ISN chosen again on another 4-tuple;
- ``constant_increment``: every step forward by the same amount (e.g. 64,000: the
  old BSD "64K rule"; 1: a counter);
- ``time_linear``: steps forward in proportion to the time between them (rates
  within 10 % of their mean): a clock, as RFC 793 had it (250 kHz), without the
  secret hash of RFC 6528;
- ``small_increments``: every step forward by less than 2^24 (so the next one is
  within a guessable window);
- ``random``: none of these.

Only the predictable verdicts are findings (kind ``isn``); every judged host is
listed in the report (`AuditReport.isn`). Confidence: ``high`` from 20 ISNs on,
``medium`` below.
"""
from __future__ import annotations

import math
from functools import reduce
from typing import Any

import numpy as np

from .keys import SeenFilter
from .common import NS, Detector, Tracked, addr_columns, addr_dtypes, addr_text
from .findings import ISN_MIN_SAMPLES, Evidence, Finding

__all__ = ["IsnDetector", "isn_figures", "PREDICTABLE"]

PREDICTABLE = ("constant", "repeated", "constant_increment", "time_linear", "small_increments")
#: ISNs kept per host (the first ones, on distinct 4-tuples).
_SAMPLES = 64
_CONFIDENT = 20


def _mod_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a.astype(np.int64) - b.astype(np.int64)) % (1 << 32)
    return np.minimum(d, (1 << 32) - d)


def isn_figures(ts_ns: list[int], isns: list[int]) -> dict[str, Any]:
    """nmap's figures and tcpscope's verdict for ISNs chosen at these times."""
    order = np.argsort(np.asarray(ts_ns, dtype=np.int64), kind="stable")
    t = np.asarray(ts_ns, dtype=np.int64)[order]
    s = np.asarray(isns, dtype=np.uint32)[order]
    diffs = _mod_diff(s[1:], s[:-1])
    forward = (s[1:].astype(np.int64) - s[:-1].astype(np.int64)) % (1 << 32)
    dt = np.maximum((t[1:] - t[:-1]) / 1e9, 1e-6)
    gcd = int(reduce(math.gcd, diffs.tolist(), 0))
    rates = diffs / dt
    avg = float(rates.mean()) if len(rates) else 0.0
    isr = round(8 * math.log2(avg)) if avg >= 1 else 0
    r = rates / gcd if gcd > 9 else rates
    sd = float(np.std(r, ddof=1)) if len(r) > 1 else 0.0
    sp = round(8 * math.log2(sd)) if sd > 1 else 0
    values, counts = np.unique(s, return_counts=True)
    fwd_rates = forward / dt
    monotone = bool((forward < (1 << 31)).all() & (forward > 0).all())
    if len(values) == 1:
        verdict = "constant"
    elif (counts > 1).any():
        verdict = "repeated"
    elif monotone and len(set(forward.tolist())) == 1:
        verdict = "constant_increment"
    elif monotone and len(fwd_rates) > 2 and \
            float(np.std(fwd_rates)) <= 0.1 * float(np.mean(fwd_rates)):
        verdict = "time_linear"
    elif monotone and (forward < (1 << 24)).all():
        verdict = "small_increments"
    else:
        verdict = "random"
    return {"samples": int(len(s)), "gcd": gcd, "isr": isr, "sp": sp, "verdict": verdict,
            "mean_step": round(float(forward.mean()), 1) if len(forward) else 0.0}


class _Host:
    __slots__ = ("host", "tuples", "ts", "isn", "evidence")

    def __init__(self, _key: Any) -> None:
        self.host: str | None = None
        self.tuples: set[int] = set()
        self.ts: list[int] = []
        self.isn: list[int] = []
        self.evidence = Evidence()


class IsnDetector(Detector):
    kind = "isn"
    COLUMNS = {"ts": np.int64, "isn": np.uint32, "frame": np.int64, "tuple": np.uint64,
               **addr_dtypes()}

    def __init__(self, capacity: int = 512, seen: SeenFilter | None = None) -> None:
        self.tracked = Tracked(capacity, _Host, self.COLUMNS, seen=seen)
        self.report: list[dict[str, Any]] = []

    def rows(self, chunk: Any, feed: Any, table: Any) -> None:
        ev = feed.isn
        if not len(ev.host):
            return
        cols = {"ts": ev.ts, "isn": ev.isn, "frame": ev.frame, "tuple": ev.tuple,
                **addr_columns(ev.addr, ev.ver)}
        self.tracked.feed(ev.host, cols, self._on)

    def _on(self, e: _Host, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        if e.host is None:
            e.host = addr_text(cols, int(rows[0]))
        for r in rows.tolist():
            tup = int(cols["tuple"][r])
            if len(e.ts) >= _SAMPLES or tup in e.tuples:
                continue
            e.tuples.add(tup)
            e.ts.append(int(cols["ts"][r]))
            e.isn.append(int(cols["isn"][r]))
            e.evidence.add([int(cols["frame"][r])])

    def findings(self) -> list[Finding]:
        out, self.report = [], []
        for _, e in self.tracked.table:
            if len(e.ts) < ISN_MIN_SAMPLES:
                continue
            fig = isn_figures(e.ts, e.isn)
            conf = "high" if fig["samples"] >= _CONFIDENT else "medium"
            self.report.append({"host": e.host, **fig, "confidence": conf})
            if fig["verdict"] not in PREDICTABLE:
                continue
            out.append(Finding(
                kind=self.kind, source=e.host, target=None, first_ts=min(e.ts) / NS,
                last_ts=max(e.ts) / NS, count=fig["samples"], fields=dict(fig),
                evidence=e.evidence, confidence=conf, message="audit.isn.what",
                params={"host": e.host, "count": fig["samples"], "verdict": fig["verdict"],
                        "gcd": fig["gcd"], "isr": fig["isr"], "sp": fig["sp"],
                        "step": fig["mean_step"], "min": ISN_MIN_SAMPLES},
                rule="isn.nmap_seq", thresholds={"samples": ISN_MIN_SAMPLES}))
        return out

    def memory(self) -> dict[str, int]:
        return self.tracked.memory()
