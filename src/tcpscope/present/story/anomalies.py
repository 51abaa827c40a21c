"""What each analysis flag of a packet means here, with the rule that fired and its evidence.

Every number comes from the engine's annotation of the packet and of the
packets it names as evidence (`evidence_frame`): the original of a
retransmission and how long before, the duplicate ACKs before a fast
retransmission, the window before an update.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...analysis.annotation import FLAG, FLAG_BIT, NOTE
from ...analysis.congestion import EVENTS
from ...analysis.rules import RULES_BY_CODE
from ...wire.seq import MOD, seq_diff
from ...wire.record import OPTION
from .model import Fact, Step

_OPT_TIMESTAMP = OPTION["TIMESTAMP"]

if TYPE_CHECKING:
    from .packets import Teller

__all__ = ["anomaly_facts", "signal_facts", "Hindsight", "DELAYED_ACK_MAX_S"]

#: RFC 1122 §4.2.3.2: an ACK is never delayed more than 500 ms.
DELAYED_ACK_MAX_S = 0.5
_RETX = FLAG["retransmission"]
_OOO = FLAG["out_of_order"]
_EV_RTO = EVENTS.index("rto")
_EV_TLP = EVENTS.index("tlp")


class Hindsight:
    """What the whole connection shows about a packet (improved mode): the later copies of
    its bytes, the ACKs that answer them. Built once per connection from its rows."""

    def __init__(self, t: Teller) -> None:
        a, rows = t.a, t.rows
        self.t = t
        self.rows = rows
        self.side = t.from_server.astype(np.int8)
        self.rel_seq = a.annotations["rel_seq"][rows]
        self.length = a.records["payload_len"][rows].astype(np.int64)
        self.flags = a.annotations["flags"][rows]
        self.rel_ack = a.annotations["rel_ack"][rows]
        self.tcp_flags = a.records["tcp_flags"][rows]
        self.ts = a.ts_ns[rows]
        self.frames = a.frames[rows]
        rec = a.records[rows]
        has_ts = (rec["opt_present"] & _OPT_TIMESTAMP) != 0
        self.ts_val = np.where(has_ts, rec["ts_val"].astype(np.int64), -1)
        self.ts_ecr = np.where(has_ts, rec["ts_ecr"].astype(np.int64), -1)
        self.dup_or_sack = ((self.flags & FLAG["duplicate_ack"]) != 0) | (
            (rec["opt_present"] & OPTION["SACK"]) != 0)
        self.k_of_row = {int(r): k for k, r in enumerate(rows.tolist())}
        self.rtt_ns, self.near = self._handshake()
        # Per position and side, computed once (a story asks about many packets): the last
        # data packet of each side before it, and the end of the highest data it had sent.
        n = len(rows)
        pos = np.arange(n)
        data = self.length > 0
        self._last_data = np.full((2, n + 1), -1, np.int64)
        self._highest = np.full((2, n + 1), -1, np.int64)
        for side in (0, 1):
            mine = data & (self.side == side)
            self._last_data[side, 1:] = np.maximum.accumulate(np.where(mine, pos, -1))
            self._highest[side, 1:] = np.maximum.accumulate(
                np.where(mine, self.rel_seq + self.length, -1))
        self._copies: dict[tuple[int, int], np.ndarray] | None = None

    def last_data(self, k: int, side: int) -> int:
        """The last data packet of `side` before position k (-1: none)."""
        return int(self._last_data[side, k])

    def _handshake(self) -> tuple[int | None, int | None]:
        """The round trip of the handshake, and which side the capture point is near (0
        client, 1 server): near the client the SYN-ACK comes a round trip after the SYN and
        the ACK at once; near the server the other way round."""
        fl = self.tcp_flags
        syn = np.flatnonzero((fl & 0x12) == 0x02)
        synack = np.flatnonzero((fl & 0x12) == 0x12)
        if not syn.size or not synack.size or synack[0] < syn[0]:
            return None, None
        ack = np.flatnonzero(((fl & 0x12) == 0x10) & (self.side == self.side[syn[0]]))
        ack = ack[ack > synack[0]]
        if not ack.size:
            return None, None
        t0, t1, t2 = (int(self.ts[i]) for i in (syn[0], synack[0], ack[0]))
        client = int(self.side[syn[0]])
        return t2 - t0, client if t1 - t0 > t2 - t1 else 1 - client

    def copies(self, k: int, upto: int) -> np.ndarray:
        """Positions (in the connection) of the copies of packet k's bytes sent up to
        position `upto`: same side, same first byte, some payload."""
        if self._copies is None:
            data = np.flatnonzero(self.length > 0)
            keys = self.side[data].astype(np.int64) * (1 << 62) + self.rel_seq[data]
            order = np.argsort(keys, kind="stable")
            groups: dict[tuple[int, int], np.ndarray] = {}
            bounds = np.flatnonzero(np.diff(keys[order])) + 1
            for part in np.split(data[order], bounds):
                if part.size:
                    groups[(int(self.side[part[0]]), int(self.rel_seq[part[0]]))] = part
            self._copies = groups
        part = self._copies.get((int(self.side[k]), int(self.rel_seq[k])), np.zeros(0, np.int64))
        return part[part <= upto]

    def highest_before(self, k: int) -> int | None:
        """The end of the highest data packet k's side sent before it (None: none)."""
        h = int(self._highest[int(self.side[k]), k])
        return h if h >= 0 else None

    def fill(self, k: int, lo: int, hi: int) -> int | None:
        """The first later packet of the same side that carries bytes of [lo, hi)."""
        m = ((self.side == self.side[k]) & (self.length > 0) & (self.rel_seq < hi)
             & (self.rel_seq + self.length > lo))
        m[:k + 1] = False
        hit = np.flatnonzero(m)
        return int(hit[0]) if hit.size else None

    def reported(self, k: int, j: int, lo: int) -> bool:
        """Did the peer, between positions k and j, report byte `lo` missing (a duplicate
        ACK or a SACK with its ack at or below it): the receiver lacked the bytes."""
        peer = self.side != self.side[k]
        acks = (self.tcp_flags & 0x10) != 0
        m = peer & acks & (self.rel_ack <= lo) & (self.dup_or_sack != 0)
        m[:k + 1] = False
        m[j:] = False
        return bool(m.any())

    def acked_past(self, k: int, hi: int) -> int | None:
        """The first later ACK of the peer that covers byte hi - 1."""
        peer = self.side != self.side[k]
        acks = (self.tcp_flags & 0x10) != 0
        m = peer & acks & (self.rel_ack >= hi)
        m[:k + 1] = False
        hit = np.flatnonzero(m)
        return int(hit[0]) if hit.size else None


def anomaly_facts(t: Teller, name: str, step: Step, ann: np.void, x: str,
                  y: str) -> list[Fact] | None:
    """The facts of analysis flag `name` on `step` (x: its sender, y: the peer); None when
    a more precise flag of the same packet says it."""
    bit = FLAG_BIT[name]
    code = int(ann["rule"][bit])
    rule_id = RULES_BY_CODE[code].id if code in RULES_BY_CODE else "?"
    ev = [int(ann["evidence_frame"][i]) for i in range(int(ann["n_evidence"]))
          if int(ann["evidence_flag"][i]) == bit and int(ann["evidence_frame"][i]) > 0]
    base = {"rule": rule_id}
    rel = step.rel_seq or 0
    ts = step.ts_ns
    first = ev[0] if ev else 0
    frow = t.row_of(first) if first else None
    annotations = t.a.annotations

    def dt(frame_row: int | None) -> float | None:
        return None if frame_row is None else (ts - t.ts(frame_row)) / 1e9

    hs: Hindsight | None = t.hindsight
    if name == "retransmission":
        timer = _timer_facts(hs, step, ann) if hs is not None else []
        if rule_id in ("retx.implied_by_fast", "retx.implied_by_spurious"):
            return timer or None
        if hs is not None and step.length and int(ann["new_bytes"]) == step.length:
            return [Fact("anom.retx_first_copy", {**base, "rel_seq": rel,
                                                  "last": rel + step.length - 1}), *timer]
        if frow is None:
            return [Fact("anom.retransmission_noev", {**base, "rel_seq": rel}), *timer]
        if step.length:
            return [Fact("anom.retransmission", {**base, "orig": first, "dt": dt(frow),
                                                 "rel_seq": rel,
                                                 "last": rel + step.length - 1}), *timer]
        return [Fact("anom.retransmission_ctl", {**base, "orig": first, "dt": dt(frow)}),
                *timer]
    if name == "fast_retransmission":
        drow = t.row_of(ev[1]) if len(ev) >= 2 else None
        n = int(annotations[drow]["dup_ack_num"]) if drow is not None else 0
        if n >= 1 and int(annotations[drow]["rel_ack"]) == rel:
            return [Fact("anom.fast_retransmission", {
                **base, "n": n, "rel_seq": rel, "dup_frame": ev[1], "dt": dt(drow),
                "orig_ack": ev[0]})]
        return [Fact("anom.fast_retransmission_noev", {**base, "rel_seq": rel})]
    if name == "spurious_retransmission":
        return [Fact("anom.spurious_retransmission", {**base, "frame": first})]
    if name == "out_of_order":
        return [Fact("anom.out_of_order", {**base, "frame": first, "dt": dt(frow)})]
    if name == "lost_segment":
        expected = None
        if frow is not None:
            expected = int(annotations[frow]["next_rel_seq"])
        if expected is not None and rel > expected:
            args = {**base, "side": x, "expected": expected, "rel_seq": rel,
                    "gap": rel - expected, "frame": first}
            if hs is not None:
                return [_lost_with_hindsight(hs, step, args)]
            return [Fact("anom.lost_segment", args)]
        return [Fact("anom.lost_segment_noev", {**base, "side": x})]
    if name == "ack_lost_segment":
        return [Fact("anom.ack_lost_segment", {**base, "rel_ack": step.rel_ack or 0,
                                               "peer": y, "frame": first})]
    if name == "duplicate_ack":
        again = t.told_dupack == (first, step.rel_ack)
        t.told_dupack = (first, step.rel_ack)
        out = [Fact("anom.duplicate_ack_again" if again else "anom.duplicate_ack",
                    {**base, "n": step.dup_ack_num, "frame": first,
                     "rel_ack": step.rel_ack or 0})]
        blocks = _sack_blocks(t.a.records[step.row], step)
        if blocks:
            out.append(Fact("anom.sack", {"blocks": blocks}))
        return out
    if name == "zero_window":
        return [Fact("anom.zero_window", {**base, "side": x})]
    if name == "zero_window_probe":
        out = [Fact("anom.zero_window_probe" if step.length else "anom.zero_window_probe_empty",
                    {**base, "frame": first, "len": step.length})]
        if hs is not None:
            out += _again(hs, step, FLAG["zero_window_probe"], "anom.persist_backoff")
        return out
    if name == "zero_window_probe_ack":
        return [Fact("anom.zero_window_probe_ack", {**base, "frame": first})]
    if name == "window_full":
        return [Fact("anom.window_full", {**base, "frame": first})]
    if name == "window_update":
        if frow is not None and int(annotations[frow]["win_scaled"]) >= 0 \
                and step.win_scaled is not None:
            return [Fact("anom.window_update", {
                **base, "old": int(annotations[frow]["win_scaled"]),
                "new": step.win_scaled, "frame": first})]
        return [Fact("anom.window_update_noev", base)]
    if name == "keep_alive":
        out = [Fact("anom.keep_alive", {**base, "side": x, "len": step.length})]
        if hs is not None:
            out += _again(hs, step, FLAG["keep_alive"], "anom.keep_alive_again")
        return out
    if name == "keep_alive_ack":
        return [Fact("anom.keep_alive_ack", {**base, "frame": first})]
    if name == "reused_ports":
        return [Fact("anom.reused_ports", {**base, "frame": first})]
    if name == "capture_duplicate":
        return [Fact("anom.capture_duplicate", {**base, "frame": first})]
    return [Fact("anom.other", {**base, "flag": name})]


def _sack_blocks(rec: np.void, step: Step) -> list[str]:
    """The SACK blocks of an ACK, relative to the same base as its ACK number."""
    n = int(rec["sack_count"])
    if not n or step.ack is None or step.rel_ack is None:
        return []
    out = []
    for i in range(min(n, 4)):
        left, right = int(rec["sack"][2 * i]), int(rec["sack"][2 * i + 1])
        lo = step.rel_ack + seq_diff(left, step.ack)
        hi = lo + (right - left) % MOD
        out.append(f"{lo}-{hi - 1}")
    return out



# --- improved mode: hindsight and signals ----------------------------------------------------

def _lost_with_hindsight(hs: Hindsight, step: Step, args: dict) -> Fact:
    """A gap in one side's data, told with what came later: the bytes arrive late
    (reordered), or the receiver asked for them and they were resent (lost before the
    capture point), or the receiver acknowledged them although they never passed (missed
    by the capture)."""
    k = hs.k_of_row[step.row]
    hi = args["rel_seq"]
    lo = hs.highest_before(k)
    if lo is None or lo >= hi:
        return Fact("anom.lost_segment", args)
    args = {**args, "expected": lo, "gap": hi - lo, "last": hi - 1}
    j = hs.fill(k, lo, hi)
    if j is not None:
        later = {**args, "later": int(hs.frames[j]), "dt": (int(hs.ts[j]) - step.ts_ns) / 1e9}
        if int(hs.flags[j]) & _OOO:
            return Fact("anom.lost_segment_reordered", later)
        if hs.reported(k, j, lo):
            return Fact("anom.lost_segment_upstream", later)
        return Fact("anom.lost_segment_resent", later)
    acked = hs.acked_past(k, hi)
    if acked is not None:
        return Fact("anom.lost_segment_missed", {**args, "ack_frame": int(hs.frames[acked])})
    return Fact("anom.lost_segment", {k2: v for k2, v in args.items() if k2 != "last"})


def _timer_facts(hs: Hindsight, step: Step, ann: np.void) -> list[Fact]:
    """Which timer sent a retransmission (the sender model's event): a tail loss probe, or
    the retransmission timer with the intervals between the copies (RFC 6298 §5.5)."""
    ev = int(ann["cc_event"])
    if ev not in (_EV_RTO, _EV_TLP) or not step.length:
        return []
    k = hs.k_of_row[step.row]
    copies = hs.copies(k, k)
    gaps = [(int(hs.ts[b]) - int(hs.ts[a])) / 1e9 for a, b in zip(copies[:-1], copies[1:])]
    if ev == _EV_TLP:
        return [Fact("anom.tlp", {"gap": gaps[-1] if gaps else None})] if gaps else \
            [Fact("anom.tlp_nogap", {})]
    if not gaps:
        return [Fact("anom.rto_nogap", {})]
    doubling = len(gaps) >= 2 and all(1.6 <= b / a <= 2.5 for a, b in zip(gaps[-2:-1], gaps[-1:])
                                      if a > 0)
    return [Fact("anom.rto_backoff" if doubling else "anom.rto",
                 {"n": len(gaps), "gap": gaps[-1], "intervals": gaps})]


def _again(hs: Hindsight, step: Step, mask: int, fact: str) -> list[Fact]:
    """The second and later probes of a side in a row (no data of its own between): their
    number and how long after the previous one (the persist or keep-alive timer's interval)."""
    k = hs.k_of_row[step.row]
    me = int(hs.side[k])
    # the side's last data packet that was not itself a probe starts the run
    start = hs.last_data(k, me)
    while start >= 0 and int(hs.flags[start]) & mask:
        start = hs.last_data(start, me)
    span = slice(start + 1, k)
    run = np.flatnonzero((hs.side[span] == me) & ((hs.flags[span] & mask) != 0)) + start + 1
    if not run.size:
        return []
    prev = int(run[-1])
    return [Fact(fact, {"n": int(run.size) + 1, "gap": (step.ts_ns - int(hs.ts[prev])) / 1e9,
                        "frame": int(hs.frames[prev])})]


def match_ack(hs: Hindsight | None, step: Step, arow: int, rtt_ns: int) -> tuple[int, int | None]:
    """The copy an ACK answers, and how long after it (improved mode): the data was sent
    more than once, so the ACK answers the copy whose TSval its TSecr echoes (RFC 7323
    §4.1), else no RTT can be told (Karn's rule, RFC 6298 §3). Wireshark mode: the first
    copy, as Wireshark matches it."""
    if hs is None:
        return arow, rtt_ns
    k = hs.k_of_row.get(arow)
    me = hs.k_of_row[step.row]
    if k is None:
        return arow, rtt_ns
    copies = hs.copies(k, me)
    if copies.size <= 1:
        return arow, rtt_ns
    ecr = hs.ts_ecr[me]
    if ecr >= 0:
        echo = [int(c) for c in copies if hs.ts_val[c] == ecr]
        if echo:
            c = echo[-1]
            return int(hs.rows[c]), step.ts_ns - int(hs.ts[c])
    return int(hs.rows[copies[-1]]), None


_SIGNALS = ("ecn_ce", "ecn_ece", "ecn_cwr", "urgent", "above_mss", "dsack", "challenge_ack",
            "rst_no_ack")


def signal_facts(t: Teller, step: Step, ann: np.void, rec: np.void, x: str,
                 y: str) -> list[Fact]:
    """What the segment itself signals (improved mode's notes, annotation.h TCPS_NOTES), and
    what its timing shows: a Nagle stall, an answer's think time."""
    out = _timing_facts(t.hindsight, step, x, y) if t.hindsight is not None and step.length else []
    notes = int(ann["notes"])
    if not notes:
        return out
    for name in _SIGNALS:
        if not notes & NOTE[name]:
            continue
        args: dict = {"side": x, "peer": y}
        if name == "urgent":
            args["ptr"] = int(rec["urg"])
        elif name == "above_mss":
            conn = t.conn_row
            mss = int(conn["mss"][0 if step.from_server else 1])
            args.update(len=step.length, mss=mss, n=-(-step.length // mss) if mss else 0)
        elif name == "dsack":
            blocks = _sack_blocks(rec, step)
            args["block"] = blocks[0] if blocks else "?"
        out.append(Fact(f"sig.{name}", args))
    return out


#: An ACK later than this after the data it answers is a delayed one (a Nagle stall's cause).
_STALL_MIN_NS = 20_000_000
#: Data this soon after an ACK was released by it, not written then by the application.
_PROMPT_NS = 1_000_000


def _timing_facts(hs: Hindsight, step: Step, x: str, y: str) -> list[Fact]:
    """A Nagle stall: a small segment sent at once after a pure ACK, delayed by the peer, of
    the side's previous small segment (Nagle's algorithm, RFC 896, holds a small write while
    a small one is unacknowledged; the application cannot react to a pure ACK). Think time:
    data that answers the peer's data, later than the network's round trip explains."""
    k = hs.k_of_row[step.row]
    me = int(hs.side[k])
    out: list[Fact] = []
    mine, theirs = hs.last_data(k, me), hs.last_data(k, 1 - me)
    # "small": below a full segment (the peer's MSS less the options a segment may carry)
    full = (int(hs.t.conn_row["mss"][1 - me]) or 536) - 40
    if k > 0 and mine >= 0 and hs.side[k - 1] != me and hs.length[k - 1] == 0:
        prev, ack = mine, k - 1
        end = int(hs.rel_seq[prev] + hs.length[prev])
        held = int(hs.ts[k] - hs.ts[prev])
        delay = int(hs.ts[ack] - hs.ts[prev])
        if (step.length < full and hs.length[prev] < full and int(hs.rel_ack[ack]) >= end
                and _STALL_MIN_NS <= delay <= DELAYED_ACK_MAX_S * 1e9
                and int(hs.ts[k] - hs.ts[ack]) <= _PROMPT_NS
                and theirs < prev):
            out.append(Fact("sig.nagle", {"side": x, "peer": y, "held": held / 1e9,
                                          "frame": int(hs.frames[prev]),
                                          "ack_frame": int(hs.frames[ack])}))
    if hs.rtt_ns is not None and theirs >= 0 and mine < theirs:
        req = theirs
        gap = int(hs.ts[k] - hs.ts[req])
        think = gap if hs.near == me else gap - hs.rtt_ns
        if think > max(2 * hs.rtt_ns, _STALL_MIN_NS):
            out.append(Fact("sig.think", {"side": x, "peer": y, "gap": gap / 1e9,
                                          "rtt": hs.rtt_ns / 1e9, "think": think / 1e9,
                                          "frame": int(hs.frames[req])}))
    return out
