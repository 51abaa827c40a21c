"""What each analysis flag of a packet means here, with the rule that fired and its evidence.

Every number comes from the engine's annotation of the packet and of the
packets it names as evidence (`evidence_frame`): the original of a
retransmission and how long before, the duplicate ACKs before a fast
retransmission, the window before an update.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...analysis.annotation import FLAG_BIT
from ...analysis.rules import RULES_BY_CODE
from ...wire.seq import MOD, seq_diff
from .model import Fact, Step

if TYPE_CHECKING:
    from .packets import Teller

__all__ = ["anomaly_facts"]


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

    if name == "retransmission":
        if rule_id in ("retx.implied_by_fast", "retx.implied_by_spurious"):
            return None
        if frow is None:
            return [Fact("anom.retransmission_noev", {**base, "rel_seq": rel})]
        if step.length:
            return [Fact("anom.retransmission", {**base, "orig": first, "dt": dt(frow),
                                                 "rel_seq": rel,
                                                 "last": rel + step.length - 1})]
        return [Fact("anom.retransmission_ctl", {**base, "orig": first, "dt": dt(frow)})]
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
            return [Fact("anom.lost_segment", {**base, "side": x, "expected": expected,
                                               "rel_seq": rel, "gap": rel - expected,
                                               "frame": first})]
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
        return [Fact("anom.zero_window_probe", {**base, "frame": first})]
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
        return [Fact("anom.keep_alive", {**base, "side": x})]
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

