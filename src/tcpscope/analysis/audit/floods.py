"""SYN floods, and SYN cookies: two detectors over the attempts to each listener
(address:port).

`SynFloodDetector`: a listener that received at least `SYN_FLOOD_RATE` SYNs in one
second (of capture time) of attempts that never completed (unanswered, or answered
and never acknowledged) is flooded. The finding says how many, from how many
sources (a HyperLogLog estimate), how many look spoofed (one SYN, never repeated,
nothing else from that source's port), the peak rate (the most in any one second,
counted in 100 ms ticks) and the mean, what the listener
did with them — kept a request (its SYN-ACK retransmitted), answered without state
(never retransmitted: a SYN cookie), or not at all — and whether real clients still
got through (handshakes completed during the flood; attempts that repeated their
SYN, as a real TCP does, and never completed).

`SynCookieDetector`: a listener answered with SYN cookies (RFC 4987 §3.6) when its
SYN-ACKs carry a cookie's marks, as Linux makes them (net/ipv4/syncookies.c,
tcp_conn_request in tcp_input.c):

1. *options dropped*: the SYN offered SACK or window scaling without timestamps,
   and the SYN-ACK carries neither, although this listener does offer them (a
   cookie without timestamps has nowhere to keep them);
2. *timestamp-encoded*: the SYN had timestamps, and the SYN-ACK's TSval's low six
   bits are the SYN's options as cookie_init_timestamp encodes them (window
   scale, or 0xF for none; bit 4 SACK; bit 5 ECN). Only visible when the listener
   adds no random offset to its timestamps (net.ipv4.tcp_timestamps = 2); with the
   default offsets the bits are random and this mark is simply not seen. A clock
   value matches by chance once in 64, and a burst of SYN-ACKs sent within one
   millisecond shares one value: the mark counts distinct TSvals;
3. *never retransmitted*: a half-open SYN-ACK never repeated although the capture
   went on past the first SYN-ACK retransmission, while the same listener did
   retransmit others (it keeps request sockets for those).

Marks 1 or 2 on `SYN_COOKIE_MIN` SYN-ACKs (for mark 2, `SYN_COOKIE_MIN` distinct
TSvals and at least `SYN_COOKIE_TS_SHARE` of the distinct TSvals of the
listener's timestamped SYN-ACKs) give ``high`` confidence; mark 3
alone on `SYN_COOKIE_STATELESS_MIN` gives ``medium``. A completed handshake whose
SYN-ACK carries mark 1 or 2 came in through a cookie.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .attempts import O_ECN, O_SACK, O_TS, O_WS, Outcome, synack_stateless
from .keys import SeenFilter
from .common import NS, Detector, Tracked, addr_columns, addr_dtypes, addr_text
from .findings import (
    SYN_COOKIE_MIN, SYN_COOKIE_STATELESS_MIN, SYN_COOKIE_TS_SHARE, SYN_FLOOD_RATE, Evidence,
    Finding,
)
from .keys import HyperLogLog, mix

__all__ = ["SynFloodDetector", "SynCookieDetector", "cookie_marks"]

_INCOMPLETE = [int(Outcome.UNANSWERED), int(Outcome.HALF_OPEN), int(Outcome.RESET_HALF_OPEN)]
#: Distinct SYN-ACK TSvals remembered per listener, for the timestamp mark.
_TS_VALUES = 4096
#: Seconds of rate shown in a flood finding (the busiest ones around the peak).
_TIMELINE = 30
#: The rate is counted in 100 ms ticks, so that the busiest second is any second.
_TICK = NS // 10
_TICKS = NS // _TICK


def cookie_marks(att: np.ndarray, now_ns: int) -> dict[str, np.ndarray]:
    """Per attempt, the cookie marks its SYN-ACK shows (see the module docstring), and
    where each mark could have been seen at all."""
    so, ao = att["syn_opt"], att["synack_opt"]
    answered = att["synack_frame"] > 0
    offered = (so & (O_SACK | O_WS)) != 0
    no_ts = (so & O_TS) == 0
    dropped_ok = answered & offered & no_ts
    dropped = dropped_ok & ((ao & (O_SACK | O_WS)) == 0)
    ts_ok = answered & ((so & O_TS) != 0) & ((ao & O_TS) != 0)
    ws = np.where((so & O_WS) != 0, np.minimum(att["syn_ws"], 14), 0xF).astype(np.uint32)
    code = ws | np.where((so & O_SACK) != 0, 0x10, 0) | np.where((ao & O_ECN) != 0, 0x20, 0)
    ts_marked = ts_ok & ((att["synack_tsval"] & 0x3F) == code)
    half = answered & (att["done_frame"] == 0)
    stateless = half & synack_stateless(att, now_ns)
    honours = answered & ((ao & (O_SACK | O_WS)) != 0)
    return {"dropped": dropped, "dropped_ok": dropped_ok, "ts_mark": ts_marked, "ts_ok": ts_ok,
            "stateless": stateless, "kept": answered & (att["synack_retx"] > 0),
            "honours": honours}


def _peak(ticks: dict[int, int]) -> tuple[int, int]:
    """(first tick, count) of the busiest second: the most attempts within any 10
    consecutive 100 ms ticks."""
    t = np.array(sorted(ticks), dtype=np.int64)
    c = np.cumsum([ticks[k] for k in t.tolist()])
    start = np.searchsorted(t, t - (_TICKS - 1), side="left")
    window = c - np.r_[0, c][start]
    i = int(np.argmax(window))
    return int(t[start[i]]), int(window[i])


def _cookie(marks: dict[str, np.ndarray]) -> np.ndarray:
    """SYN-ACKs that show any cookie mark: answered without keeping state."""
    return marks["dropped"] | marks["ts_mark"] | marks["stateless"]


def _listener_keys(att: np.ndarray) -> np.ndarray:
    return mix(att["skey"], att["sport"])


class _Flood:
    __slots__ = ("target", "port", "secs", "first_ns", "last_ns", "syns", "incomplete", "kept",
                 "stateless", "dropped", "client_rst", "spoofed", "sources", "evidence", "comp",
                 "legit_failed_secs")

    def __init__(self, _key: Any) -> None:
        self.target: str | None = None
        self.port = 0
        self.secs: dict[int, int] = {}          # 100 ms tick -> incomplete attempts begun then
        self.comp: dict[int, int] = {}          # second -> completed attempts begun then
        self.legit_failed_secs: dict[int, int] = {}
        self.first_ns = self.last_ns = 0
        self.syns = self.incomplete = self.kept = self.stateless = self.dropped = 0
        self.client_rst = self.spoofed = 0
        self.sources = HyperLogLog()
        self.evidence = Evidence()


class SynFloodDetector(Detector):
    kind = "syn_flood"
    COLUMNS = {"ts": np.int64, "frame": np.int64, "out": np.uint8, "syn_n": np.uint16,
               "cpkts": np.uint32, "retx": np.uint16, "stateless": bool, "src": np.uint64,
               "port": np.uint16, **addr_dtypes()}

    def __init__(self, capacity: int = 256, seen: SeenFilter | None = None) -> None:
        self.tracked = Tracked(capacity, _Flood, self.COLUMNS, seen=seen)

    def attempts(self, att: np.ndarray, out: np.ndarray, now_ns: int) -> None:
        syn = att["syn_frame"] > 0
        if not syn.any():
            return
        a, o = att[syn], out[syn]
        cols = {"ts": a["syn_ts"], "frame": a["syn_frame"], "out": o, "syn_n": a["syn_n"],
                "cpkts": a["cpkts"], "retx": a["synack_retx"],
                "stateless": _cookie(cookie_marks(a, now_ns)), "src": a["ckey"],
                "port": a["sport"], **addr_columns(a["saddr"], a["ver"])}
        self.tracked.feed(_listener_keys(a), cols, self._on)

    def _on(self, e: _Flood, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        if e.target is None:
            e.target, e.port = addr_text(cols, rows[0]), int(cols["port"][rows[0]])
        ts, out = cols["ts"][rows], cols["out"][rows]
        e.syns += int(cols["syn_n"][rows].sum())
        inc = np.isin(out, _INCOMPLETE)
        comp = out == Outcome.COMPLETED
        for d, m, unit in ((e.secs, inc, _TICK), (e.comp, comp, NS),
                           (e.legit_failed_secs, inc & (cols["syn_n"][rows] >= 2), NS)):
            for s, n in zip(*np.unique(ts[m] // unit, return_counts=True)):
                d[int(s)] = d.get(int(s), 0) + int(n)
        if inc.any():
            t = ts[inc]
            e.first_ns = int(t.min()) if not e.first_ns else min(e.first_ns, int(t.min()))
            e.last_ns = max(e.last_ns, int(t.max()))
            e.incomplete += int(inc.sum())
            e.kept += int((inc & (cols["retx"][rows] > 0)).sum())
            e.stateless += int((inc & cols["stateless"][rows]).sum())
            e.dropped += int((out == Outcome.UNANSWERED).sum())
            e.client_rst += int((out == Outcome.RESET_HALF_OPEN).sum())
            e.spoofed += int((inc & (cols["syn_n"][rows] == 1) & (cols["cpkts"][rows] == 1)
                              & (out != Outcome.RESET_HALF_OPEN)).sum())
            e.sources.add(cols["src"][rows][inc])
            e.evidence.add(cols["frame"][rows][inc])

    def findings(self) -> list[Finding]:
        out = []
        for _, e in self.tracked.table:
            if not e.secs:
                continue
            peak_at, peak = _peak(e.secs)
            if peak < SYN_FLOOD_RATE:
                continue
            span = (e.last_ns - e.first_ns) / NS
            lo, hi = e.first_ns // NS, e.last_ns // NS
            legit_ok = sum(n for s, n in e.comp.items() if lo <= s <= hi)
            legit_failed = sum(e.legit_failed_secs.values())
            start = max(lo, peak_at // _TICKS - _TIMELINE // 2)
            per_sec: dict[int, int] = {}
            for t, n in e.secs.items():
                per_sec[t // _TICKS] = per_sec.get(t // _TICKS, 0) + n
            timeline = [per_sec.get(s, 0) for s in range(start, min(hi, start + _TIMELINE - 1) + 1)]
            sources = e.sources.count()
            fields = {
                "port": e.port, "syns": e.syns, "sources": sources, "spoofed_like": e.spoofed,
                "peak_rate": peak, "mean_rate": round(e.incomplete / max(1.0, span), 1),
                "rate_timeline": timeline, "rate_timeline_start": start,
                "half_open_kept": e.kept, "answered_stateless": e.stateless,
                "unanswered": e.dropped, "client_resets": e.client_rst,
                "legit_completed": legit_ok, "legit_failed": legit_failed,
            }
            spoofed = e.spoofed >= e.incomplete / 2
            out.append(Finding(
                kind=self.kind, source=None, target=e.target, first_ts=e.first_ns / NS,
                last_ts=e.last_ns / NS, count=e.incomplete, fields=fields, evidence=e.evidence,
                confidence="high" if spoofed or sources >= 10 else "medium",
                message="audit.syn_flood.what",
                params={"target": e.target, "port": e.port, "count": e.incomplete,
                        "sources": sources, "spoofed": e.spoofed, "dur": span,
                        "peak": peak, "mean": fields["mean_rate"], "kept": e.kept,
                        "stateless": e.stateless, "dropped": e.dropped,
                        "legit_ok": legit_ok, "legit_failed": legit_failed,
                        "threshold": SYN_FLOOD_RATE},
                rule="syn_flood.rate", thresholds={"syns_per_second": SYN_FLOOD_RATE}))
        return out

    def memory(self) -> dict[str, int]:
        return self.tracked.memory()


class _Cookies:
    __slots__ = ("target", "port", "answered", "dropped", "dropped_ok", "ts_mark", "ts_ok",
                 "stateless", "kept", "honours", "via_cookie", "first_ns", "last_ns",
                 "evidence", "via_evidence", "ts_values", "ts_marked_values")

    def __init__(self, _key: Any) -> None:
        self.target: str | None = None
        self.port = 0
        self.answered = self.dropped = self.dropped_ok = self.ts_mark = self.ts_ok = 0
        self.stateless = self.kept = self.honours = self.via_cookie = 0
        self.first_ns = self.last_ns = 0
        self.evidence = Evidence()
        self.via_evidence = Evidence()
        self.ts_values: set[int] = set()          # distinct TSvals of timestamped SYN-ACKs
        self.ts_marked_values: set[int] = set()   # ... of those carrying the mark


class SynCookieDetector(Detector):
    kind = "syn_cookies"
    _MARKS = ("dropped", "dropped_ok", "ts_mark", "ts_ok", "stateless", "kept", "honours")
    COLUMNS = {"ts": np.int64, "frame": np.int64, "completed": bool, "port": np.uint16,
               "tsval": np.uint32, **addr_dtypes(), **{m: bool for m in _MARKS}}

    def __init__(self, capacity: int = 256, seen: SeenFilter | None = None) -> None:
        self.tracked = Tracked(capacity, _Cookies, self.COLUMNS, seen=seen)

    def attempts(self, att: np.ndarray, out: np.ndarray, now_ns: int) -> None:
        ans = (att["synack_frame"] > 0) & (att["syn_frame"] > 0)
        if not ans.any():
            return
        a = att[ans]
        marks = cookie_marks(a, now_ns)
        cols = {"ts": a["synack_ts"], "frame": a["synack_frame"],
                "completed": out[ans] == Outcome.COMPLETED, "port": a["sport"],
                "tsval": a["synack_tsval"],
                **addr_columns(a["saddr"], a["ver"]),
                **{m: marks[m] for m in self._MARKS}}
        self.tracked.feed(_listener_keys(a), cols, self._on)

    def _on(self, e: _Cookies, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        if e.target is None:
            e.target, e.port = addr_text(cols, rows[0]), int(cols["port"][rows[0]])
        e.answered += len(rows)
        for m in self._MARKS:
            setattr(e, m, getattr(e, m) + int(cols[m][rows].sum()))
        for col, values in (("ts_ok", e.ts_values), ("ts_mark", e.ts_marked_values)):
            if len(values) < _TS_VALUES:
                values.update(cols["tsval"][rows][cols[col][rows]].tolist()[:_TS_VALUES])
        marked = cols["dropped"][rows] | cols["ts_mark"][rows]
        cookie = marked | cols["stateless"][rows]
        if cookie.any():
            t = cols["ts"][rows][cookie]
            e.first_ns = int(t.min()) if not e.first_ns else min(e.first_ns, int(t.min()))
            e.last_ns = max(e.last_ns, int(t.max()))
            e.evidence.add(cols["frame"][rows][cookie])
        via = marked & cols["completed"][rows]
        e.via_cookie += int(via.sum())
        e.via_evidence.add(cols["frame"][rows][via])

    def findings(self) -> list[Finding]:
        out = []
        for _, e in self.tracked.table:
            by_options = e.dropped >= SYN_COOKIE_MIN and e.honours > 0
            # distinct TSvals, not SYN-ACKs: a burst within one clock tick shares one TSval,
            # and matches (or not) all together
            marked_values = len(e.ts_marked_values)
            by_ts = marked_values >= SYN_COOKIE_MIN and \
                marked_values >= SYN_COOKIE_TS_SHARE * len(e.ts_values)
            by_state = e.stateless >= SYN_COOKIE_STATELESS_MIN and e.kept > 0
            if not (by_options or by_ts or by_state):
                continue
            count = e.evidence.total
            marks = [m for m, ok in (("options_dropped", by_options), ("ts_encoded", by_ts),
                                     ("never_retransmitted", by_state)) if ok]
            fields = {"port": e.port, "answered": e.answered, "options_dropped": e.dropped,
                      "ts_encoded": e.ts_mark, "ts_checked": e.ts_ok,
                      "never_retransmitted": e.stateless, "queued": e.kept,
                      "completed_via_cookie": e.via_cookie,
                      "completed_via_cookie_frames": e.via_evidence.as_dict(), "marks": marks}
            out.append(Finding(
                kind=self.kind, source=None, target=e.target, first_ts=e.first_ns / NS,
                last_ts=e.last_ns / NS, count=count, fields=fields, evidence=e.evidence,
                confidence="high" if (by_options or by_ts) else "medium",
                message="audit.syn_cookies.what",
                params={"target": e.target, "port": e.port, "count": count,
                        "answered": e.answered, "dropped": e.dropped, "ts": e.ts_mark,
                        "stateless": e.stateless, "queued": e.kept, "via": e.via_cookie,
                        "min": SYN_COOKIE_MIN, "min_stateless": SYN_COOKIE_STATELESS_MIN},
                rule="syn_cookies.marks",
                thresholds={"marked_synacks": SYN_COOKIE_MIN,
                            "ts_share": SYN_COOKIE_TS_SHARE,
                            "never_retransmitted": SYN_COOKIE_STATELESS_MIN}))
        return out

    def memory(self) -> dict[str, int]:
        return self.tracked.memory()
