"""The sender model's rules, one scripted transfer each (docs/congestion.md).

A client sends 1000-byte segments to a server; the capture sits beside the client
(the SYN-ACK comes a whole RTT after the SYN), so every ACK reaches the sender as
the capture sees it. Each test writes what a Linux sender would do and checks the
model's annotations on the sender's segments: slow start counted per segment
delivered (RFC 3465), CUBIC's 0.7 and Reno's 1/2 (learned from the first back-off),
PRR during the recovery (RFC 6937), the RTO's collapse to one segment (RFC 5681
§3.1), undo on D-SACK (RFC 2883 / 3708), restart after idle (RFC 5681 §4.1).
"""
from __future__ import annotations

import numpy as np

from tcpscope.analysis import Analyzer
from tcpscope.analysis.congestion import EVENTS, FAMILIES, PHASES, conn_facts, episodes
from tests.analysis_helpers import tcp_record

MSS = 1000
RTT_MS = 20.0
ISN_C, ISN_S = 0xFFFF_F000, 1000
START_NS = 1_700_000_000_000_000_000


class Transfer:
    """A sender-side capture of a client sending data; times in milliseconds."""

    def __init__(self) -> None:
        self.recs: list[np.ndarray] = []
        self.ts: list[int] = []
        self.t = 0.0
        self.nxt = 1  # relative seq of the next new byte
        self._rec(0.0, True, "S", 0, 0, mss=1460, sack_perm=True)
        self._rec(RTT_MS, False, "S.", 0, 1, mss=MSS, sack_perm=True)
        self._rec(0.05, True, ".", 1, 1)

    def _rec(self, dt: float, client: bool, flags: str, seq: int, ack: int, length: int = 0,
             **kw) -> None:
        self.t += dt
        if client:
            r = tcp_record(src="10.0.0.1", dst="10.0.0.2", sport=40000, dport=80,
                           seq=ISN_C + seq, ack=ISN_S + ack, flags=flags, length=length, win=60000, **kw)
        else:
            r = tcp_record(src="10.0.0.2", dst="10.0.0.1", sport=80, dport=40000,
                           seq=ISN_S + seq, ack=ISN_C + ack, flags=flags, win=60000, **kw)
        self.recs.append(r)
        self.ts.append(START_NS + int(self.t * 1e6))

    def send(self, n: int = 1, dt: float = 0.01) -> None:
        """n new segments, back to back."""
        for i in range(n):
            self._rec(dt if i == 0 else 0.01, True, ".", self.nxt, 1, MSS)
            self.nxt += MSS

    def resend(self, seg: int, dt: float = 0.01) -> None:
        """Segment number `seg` (0-based) again."""
        self._rec(dt, True, ".", 1 + seg * MSS, 1, MSS)

    def ack(self, upto_seg: int, dt: float = 0.5, sack: tuple[tuple[int, int], ...] = (),
            flags: str = ".") -> None:
        """The server acknowledges segments [0, upto_seg); sack: (first, end) segment numbers."""
        blocks = tuple((ISN_C + 1 + a * MSS, ISN_C + 1 + b * MSS) for a, b in sack)
        self._rec(dt, False, flags, 1, 1 + upto_seg * MSS, sack=blocks)

    def run(self) -> tuple[np.ndarray, np.ndarray]:
        an = Analyzer("improved")
        recs = np.concatenate(self.recs)
        ann = an.feed(recs, np.array(self.ts, np.int64), np.arange(1, len(recs) + 1, dtype=np.int64))
        return ann, an.connections()


def sender_rows(ann: np.ndarray) -> np.ndarray:
    return ann[(ann["from_server"] == 0) & (ann["cwnd_est"] >= 0)]


def window(tr: Transfer, acked: int, n: int) -> int:
    """Grow a clean slow start to n segments in flight; returns segments acked."""
    tr.send(10)
    while tr.nxt // MSS - acked < n:
        tr.ack(acked + 1, dt=RTT_MS if acked == 0 else 0.5)
        acked += 1
        tr.send(min(2, n - (tr.nxt // MSS - acked)))
    return acked


def test_slow_start_counts_segments_delivered():
    tr = Transfer()
    tr.send(10)
    tr.ack(2, dt=RTT_MS)      # a delayed ACK for two segments: +2, not +1 (RFC 3465)
    tr.send(4)
    tr.ack(4)
    tr.send(4)
    tr.ack(5)                 # one segment: +1
    tr.send(2)
    rows = sender_rows(tr.run()[0])
    assert list(rows["cwnd_est"][:10]) == [10] * 10
    assert list(rows["cwnd_est"][10:14]) == [12] * 4
    assert list(rows["cwnd_est"][14:18]) == [14] * 4
    assert list(rows["cwnd_est"][18:20]) == [15] * 2
    assert {PHASES[p] for p in rows["cc_phase"]} == {"slow_start"}
    assert all(rows["ssthresh_est"] == -1)     # infinite until a reduction
    assert list(rows["in_flight"][-2:]) == [14 * MSS, 15 * MSS]


def recovery(tr: Transfer, acked: int, lost: int) -> int:
    """Segment `lost` (unacked, in flight) is lost: three SACKed segments above it, the fast
    retransmission, then ACKs that SACK the rest; PRR lets out what the model says."""
    top = tr.nxt // MSS
    for k in range(3):
        tr.ack(lost, sack=((lost + 1, lost + 2 + k),))
    tr.resend(lost)
    for k in range(3, top - lost - 1):
        tr.ack(lost, sack=((lost + 1, lost + 2 + k),))
    tr.ack(top)               # the retransmission arrives: everything up to the recovery point
    return top


def test_cubic_backs_off_to_07_with_prr_then_ssthresh():
    tr = Transfer()
    acked = window(tr, 0, 20)
    done = recovery(tr, acked, acked)
    tr.send(14)
    ann, conns = tr.run()
    rows = sender_rows(ann)
    start = np.flatnonzero(rows["cc_event"] == EVENTS.index("fast_recovery"))
    assert start.size == 1
    r = rows[start[0]]
    assert PHASES[r["cc_phase"]] == "fast_recovery"
    assert r["ssthresh_est"] == 20 * 717 // 1024 == 14       # CUBIC's beta (RFC 9438 §4.6)
    assert r["cwnd_est"] <= 20                                # PRR: in flight + what may go
    end = np.flatnonzero(rows["cc_episode_end"] == EVENTS.index("recovery_end"))
    assert end.size == 1 and rows["cc_episode_retx"][end[0]] == 1
    after = rows[end[0]:]
    assert after["cwnd_est"][0] == 14 and PHASES[after["cc_phase"][0]] == "congestion_avoidance"
    assert done == tr.nxt // MSS - 14
    facts = conn_facts(conns[0])["client"]
    assert facts["loss_episodes"] == 1 and facts["rto_count"] == 0
    eps = episodes(ann, np.array(tr.ts), 0)
    assert [(e.trigger, e.retransmitted, e.spurious) for e in eps] == [("sack", 1, False)]


def test_reno_halves_once_its_back_off_is_seen():
    tr = Transfer()
    acked = window(tr, 0, 20)
    acked = recovery(tr, acked, acked)
    # a Reno sender leaves recovery at half its window: 10 in flight, ACK-clocked
    tr.send(10)
    for _ in range(2):
        acked += 1
        tr.ack(acked)
        tr.send(1)
    # grow to 16 in flight and lose again
    while tr.nxt // MSS - acked < 16:
        acked += 1
        tr.ack(acked)
        tr.send(2)
    recovery(tr, acked, acked)
    ann, conns = tr.run()
    rows = sender_rows(ann)
    starts = rows[rows["cc_event"] == EVENTS.index("fast_recovery")]
    assert len(starts) == 2
    assert starts["ssthresh_est"][0] == 14           # the first guess is CUBIC's 0.7 of 20
    second = int(np.flatnonzero(rows["cc_event"] == EVENTS.index("fast_recovery"))[1])
    assert rows["ssthresh_est"][second - 1] == 10    # ... the window it settled at says 1/2
    assert rows["cwnd_est"][second - 1] == 16
    assert starts["ssthresh_est"][1] == 8            # so the next decrease is Reno's (RFC 5681 §3.1)
    assert FAMILIES[int(conns[0]["cc_guess"][0])] == "reno"


def test_rto_collapses_the_window_and_backs_off():
    tr = Transfer()
    acked = window(tr, 0, 10)
    tr.resend(acked, dt=260)   # nothing heard for longer than SRTT + 200 ms
    tr.resend(acked, dt=520)   # lost again: the timer doubled
    tr.ack(acked + 1, dt=RTT_MS)
    tr.resend(acked + 1)
    ann, conns = tr.run()
    rows = sender_rows(ann)
    rto = rows[rows["cc_event"] == EVENTS.index("rto")]
    assert len(rto) == 2
    assert list(rto["cwnd_est"]) == [1, 1]
    assert {PHASES[p] for p in rto["cc_phase"]} == {"rto_recovery"}
    assert rto["ssthresh_est"][0] == 10 * 717 // 1024   # from the window before the timeout
    assert rows["cwnd_est"][-1] == 2                      # slow start again: +1 per segment
    assert conn_facts(conns[0])["client"]["rto_count"] == 2


def test_dsack_undoes_a_needless_reduction():
    tr = Transfer()
    acked = window(tr, 0, 20)
    lost = acked
    for k in range(3):
        tr.ack(lost, sack=((lost + 1, lost + 2 + k),))
    tr.resend(lost)
    top = tr.nxt // MSS
    # the original arrived after all (reordered): the ACK covers it, then a D-SACK
    # reports the retransmission received twice
    tr.ack(top)
    tr.ack(top, sack=((lost, lost + 1),))
    tr.send(1)
    rows = sender_rows(tr.run()[0])
    undo = rows[rows["cc_episode_end"] == EVENTS.index("undo")]
    assert len(undo) == 1
    assert undo["cwnd_est"][0] >= 20 and undo["ssthresh_est"][0] == -1
    assert PHASES[undo["cc_phase"][0]] == "slow_start"


def test_restart_after_idle():
    tr = Transfer()
    acked = window(tr, 0, 20)
    top = tr.nxt // MSS
    tr.ack(top)
    tr.send(5, dt=1000)        # a second later, longer than the RTO
    rows = sender_rows(tr.run()[0])
    restart = rows[rows["cc_event"] == EVENTS.index("restart")]
    assert len(restart) == 1
    assert restart["cwnd_est"][0] == 10                   # the initial window, at most
    assert restart["ssthresh_est"][0] == -1               # max(ssthresh, 3/4 cwnd): still infinite


def test_only_improved_mode_and_only_data_senders_carry_estimates():
    tr = Transfer()
    window(tr, 0, 12)
    recs = np.concatenate(tr.recs)
    frames = np.arange(1, len(recs) + 1, dtype=np.int64)
    ts = np.array(tr.ts, np.int64)
    ws = Analyzer("wireshark").feed(recs, ts, frames)
    assert (ws["cwnd_est"] == -1).all() and (ws["in_flight"] == -1).all()
    im = Analyzer("improved").feed(recs, ts, frames)
    assert (im["cwnd_est"][im["from_server"] == 1] == -1).all()
    assert (im["cwnd_est"][(im["from_server"] == 0) & (recs["payload_len"] > 0)] > 0).all()
