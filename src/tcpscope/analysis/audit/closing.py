"""TIME_WAIT pile-ups, and 4-tuples reused while in TIME_WAIT.

`TimeWaitDetector`: the side that sent the first FIN of a connection closed by
FINs both ways (and not reset afterwards) enters TIME_WAIT when the second FIN
arrives, and stays there 60 s on Linux (TCP_TIMEWAIT_LEN; RFC 9293 says 2 MSL).
Counting those per host, second by second, gives how many TIME_WAITs it held at
once; `TIME_WAIT_MIN` at the same moment is a pile-up. When the holder is the
client of every one of them toward one server address:port, they use its
ephemeral ports toward that server: the finding says what share of Linux's default
range (32768-60999, `EPHEMERAL_PORTS`) the peak takes.

`PortReuseDetector`: a SYN on a 4-tuple whose earlier connection is in TIME_WAIT
(both FINs seen, less than 60 s before): the holder may accept it (RFC 6191: a
higher ISN or timestamp) or not. Found by the attempt table on the engine's
``reused_ports`` SYNs (attempts.AttemptTable._reuse); reported per host in
TIME_WAIT, at `PORT_REUSE_MIN` and more.
"""
from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from ...wire.text import format_endpoint
from .attempts import Outcome, TIME_WAIT_NS
from .keys import SeenFilter
from .common import NS, Detector, Tracked, addr_columns, addr_dtypes, addr_text
from .findings import EPHEMERAL_PORTS, PORT_REUSE_MIN, TIME_WAIT_MIN, Evidence, Finding

__all__ = ["TimeWaitDetector", "PortReuseDetector"]

_PEERS_MAX = 64


class _Holder:
    __slots__ = ("host", "secs", "peers", "peer_secs", "roles", "evidence", "gaps", "tuples",
                 "accepted", "first_ns", "last_ns")

    def __init__(self, _key: Any) -> None:
        self.host: str | None = None
        self.secs: dict[int, int] = {}
        self.peers: dict[str, int] = {}
        #: server address:port -> second -> TIME_WAITs the host entered as its client
        self.peer_secs: dict[str, dict[int, int]] = {}
        self.roles = {"client": 0, "server": 0}
        self.evidence = Evidence()
        self.gaps: list[float] = []
        self.tuples: list[str] = []
        self.accepted = 0
        self.first_ns = self.last_ns = 0


def _peer_text(cols: dict[str, np.ndarray], r: int, holder_is_client: bool) -> str:
    other = addr_text(cols, r, "o")
    return format_endpoint(other, int(cols["oport"][r])) if holder_is_client else other


def _held(per_second: dict[int, int]) -> tuple[int, int, np.ndarray]:
    """(second, count) of the most TIME_WAITs held at once — those entered in the 60 s
    up to that second — and the seconds with entries."""
    secs = np.array(sorted(per_second), dtype=np.int64)
    total = np.cumsum([per_second[s] for s in secs.tolist()])
    start = np.searchsorted(secs, secs - TIME_WAIT_NS // NS, side="right")
    held = total - np.r_[0, total][start]
    i = int(np.argmax(held))
    return int(secs[i]), int(held[i]), secs


class TimeWaitDetector(Detector):
    kind = "time_wait_pileup"
    COLUMNS = {"ts": np.int64, "frame": np.int64, "client": bool, "oport": np.uint16,
               **addr_dtypes("h"), **addr_dtypes("o")}

    def __init__(self, capacity: int = 256, seen: SeenFilter | None = None) -> None:
        self.tracked = Tracked(capacity, _Holder, self.COLUMNS, seen=seen)

    def attempts(self, att: np.ndarray, out: np.ndarray, now_ns: int) -> None:
        cf, sf = att["cfin_frame"], att["sfin_frame"]
        last_fin = np.maximum(cf, sf)
        reset = np.maximum(att["crst_frame"], att["srst_frame"]) > last_fin
        m = (cf > 0) & (sf > 0) & ~reset
        if not m.any():
            return
        a = att[m]
        client = a["cfin_frame"] < a["sfin_frame"]
        keys = np.where(client, a["ckey"], a["skey"])
        haddr = np.where(client[:, None], a["caddr"], a["saddr"])
        oaddr = np.where(client[:, None], a["saddr"], a["caddr"])
        cols = {"ts": np.maximum(a["cfin_ts"], a["sfin_ts"]),
                "frame": np.where(client, a["cfin_frame"], a["sfin_frame"]), "client": client,
                "oport": np.where(client, a["sport"], a["cport"]),
                **addr_columns(haddr, a["ver"], "h"), **addr_columns(oaddr, a["ver"], "o")}
        self.tracked.feed(keys, cols, self._on)

    def _on(self, e: _Holder, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        if e.host is None:
            e.host = addr_text(cols, int(rows[0]), "h")
        secs, counts = np.unique(cols["ts"][rows] // NS, return_counts=True)
        for s, n in zip(secs.tolist(), counts.tolist()):
            e.secs[s] = e.secs.get(s, 0) + n
        for r in rows.tolist():
            is_client = bool(cols["client"][r])
            e.roles["client" if is_client else "server"] += 1
            peer = _peer_text(cols, r, is_client)
            if peer in e.peers or len(e.peers) < _PEERS_MAX:
                e.peers[peer] = e.peers.get(peer, 0) + 1
                if is_client:
                    per = e.peer_secs.setdefault(peer, {})
                    sec = int(cols["ts"][r]) // NS
                    per[sec] = per.get(sec, 0) + 1
        e.evidence.add(cols["frame"][rows])

    def findings(self) -> list[Finding]:
        out = []
        for _, e in self.tracked.table:
            if not e.secs:
                continue
            at, peak, secs = _held(e.secs)
            if peak < TIME_WAIT_MIN:
                continue
            entered = sum(e.secs.values())
            top, top_n = max(e.peers.items(), key=lambda kv: kv[1])
            role = max(e.roles, key=e.roles.__getitem__)
            # the ports a client's TIME_WAITs hold toward one server address:port
            top_peak = _held(e.peer_secs[top])[1] if top in e.peer_secs else None
            share = round(top_peak / EPHEMERAL_PORTS, 3) if top_peak is not None else None
            fields = {"peak": peak, "peak_ts": float(at), "entered": entered,
                      "role": role, "peers": len(e.peers), "top_peer": top,
                      "top_peer_count": top_n, "top_peer_peak": top_peak,
                      "ephemeral_share": share}
            out.append(Finding(
                kind=self.kind, source=e.host, target=top if len(e.peers) == 1 else None,
                first_ts=float(secs[0]), last_ts=float(secs[-1]) + TIME_WAIT_NS / NS,
                count=peak, fields=fields, evidence=e.evidence, confidence="high",
                message="audit.time_wait_pileup." + ("ports" if share is not None else "what"),
                params={"host": e.host, "peak": peak, "entered": entered,
                        "role": role, "peer": top, "peers": len(e.peers),
                        "peer_peak": top_peak or 0,
                        "pct": round(100 * (share or 0), 1), "ports": EPHEMERAL_PORTS,
                        "min": TIME_WAIT_MIN},
                rule="time_wait_pileup.concurrent",
                thresholds={"concurrent": TIME_WAIT_MIN, "time_wait_s": TIME_WAIT_NS // NS}))
        return out

    def memory(self) -> dict[str, int]:
        return self.tracked.memory()


class PortReuseDetector(Detector):
    kind = "port_reuse"
    COLUMNS = {"ts": np.int64, "frame": np.int64, "gap": np.int32, "accepted": bool,
               "client": bool, "cport": np.uint16, "sport": np.uint16,
               **addr_dtypes("c"), **addr_dtypes("s")}

    def __init__(self, capacity: int = 256, seen: SeenFilter | None = None) -> None:
        self.tracked = Tracked(capacity, _Holder, self.COLUMNS, promote=False, seen=seen)

    def attempts(self, att: np.ndarray, out: np.ndarray, now_ns: int) -> None:
        m = att["reuse_holder"] > 0
        if not m.any():
            return
        a = att[m]
        client = a["reuse_holder"] == 1
        cols = {"ts": a["syn_ts"], "frame": a["syn_frame"], "gap": a["reuse_gap_ms"],
                "accepted": np.isin(out[m], [Outcome.COMPLETED, Outcome.HALF_OPEN,
                                             Outcome.RESET_HALF_OPEN]),
                "client": client, "cport": a["cport"], "sport": a["sport"],
                **addr_columns(a["caddr"], a["ver"], "c"), **addr_columns(a["saddr"], a["ver"], "s")}
        self.tracked.feed(np.where(client, a["ckey"], a["skey"]), cols, self._on)

    def _on(self, e: _Holder, cols: dict[str, np.ndarray], rows: np.ndarray) -> None:
        for r in rows.tolist():
            is_client = bool(cols["client"][r])
            if e.host is None:
                e.host = addr_text(cols, r, "c" if is_client else "s")
            e.roles["client" if is_client else "server"] += 1
            e.gaps.append(int(cols["gap"][r]) / 1000)
            e.accepted += int(cols["accepted"][r])
            ts = int(cols["ts"][r])
            e.first_ns = min(e.first_ns, ts) if e.first_ns else ts
            e.last_ns = max(e.last_ns, ts)
            if len(e.tuples) < 8:
                e.tuples.append(f"{format_endpoint(addr_text(cols, r, 'c'), int(cols['cport'][r]))}"
                                f" > {format_endpoint(addr_text(cols, r, 's'), int(cols['sport'][r]))}")
            e.evidence.add([int(cols["frame"][r])])

    def findings(self) -> list[Finding]:
        out = []
        for _, e in self.tracked.table:
            n = len(e.gaps)
            if n < PORT_REUSE_MIN:
                continue
            role = max(e.roles, key=e.roles.__getitem__)
            fields = {"role": role, "reused": n, "accepted": e.accepted,
                      "gap_min_s": min(e.gaps), "gap_median_s": statistics.median(e.gaps),
                      "tuples": e.tuples}
            out.append(Finding(
                kind=self.kind, source=None, target=e.host, first_ts=e.first_ns / NS,
                last_ts=e.last_ns / NS,
                count=n, fields=fields, evidence=e.evidence, confidence="high",
                message="audit.port_reuse.what",
                params={"host": e.host, "count": n, "role": role, "accepted": e.accepted,
                        "gap": statistics.median(e.gaps), "min": PORT_REUSE_MIN},
                rule="port_reuse.time_wait",
                thresholds={"reuses": PORT_REUSE_MIN, "time_wait_s": TIME_WAIT_NS // NS}))
        return out

    def memory(self) -> dict[str, int]:
        return self.tracked.memory()
