"""Improved mode's signals (annotation ``notes``, annotation.h TCPS_NOTES) and the byte counts
of a connection, on one scripted conversation: each signal on the frame that carries it, the
per-side counts in the connection row, nothing in wireshark mode; unique bytes count each byte
once (a hole's first copy included), retransmitted bytes the flagged resends.

The same verdicts on real kernels' captures: tests/test_hindsight_verdicts.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from tcpscope.analysis.annotation import NOTE, note_names
from tcpscope.analysis.engine import Analyzer
from tcpscope.wire import dissect_frames
from tcpscope.wire.builder import TCP, Ether, Frame, IPv4
from tcpscope.wire.options import Mss, Sack, SackPermitted

C, S = "10.0.0.1", "10.0.0.2"
ISN_C, ISN_S = 1000, 5000


def conversation() -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Frames (records, times) and the frame number of each event, by name."""
    frames: list[bytes] = []
    names: dict[str, int] = {}
    ip_id = {C: 100, S: 900}

    def add(name, src, flags, seq, ack, length=0, tos=0, opts=(), urg=0):
        dst = S if src == C else C
        ip_id[src] += 1
        tcp = TCP(sport=40000 if src == C else 80, dport=80 if src == C else 40000,
                  seq=seq, ack=ack, flags=flags, win=4000, options=tuple(opts), urg=urg)
        frames.append(Frame(Ether(), IPv4(src=src, dst=dst, id=ip_id[src], tos=tos), tcp,
                            payload=b"x" * length).build())
        names[name] = len(frames)

    c1, s1 = ISN_C + 1, ISN_S + 1
    add("syn", C, "SEW", ISN_C, 0, opts=(Mss(100), SackPermitted()))
    add("synack", S, "SE.", ISN_S, c1, opts=(Mss(100), SackPermitted()))
    add("ack", C, ".", c1, s1)
    add("d1", C, "P.", c1, s1, 100)
    add("ce", C, "P.", c1 + 100, s1, 100, tos=3)                       # CE on the way
    add("ece", S, "E.", s1, c1 + 200)                                   # echoed
    add("cwr", C, "PW.", c1 + 200, s1, 100)                             # window reduced
    add("urg", C, "PU.", c1 + 300, s1, 100, urg=1)
    add("big", C, "P.", c1 + 400, s1, 300)                              # 3 x MSS: TSO
    add("hole", C, "P.", c1 + 800, s1, 100)                             # 700..800 not seen
    add("fill", C, "P.", c1 + 700, s1, 100)                             # the hole's first copy
    add("again", C, "P.", c1 + 700, s1, 100)                            # a resend
    add("dsack", S, ".", s1, c1 + 900, opts=(Sack(((c1 + 700, c1 + 800),)),))
    add("late", S, "P.", s1, c1 + 900, 10)
    add("rst", C, "R", c1 + 900, 0)                                     # no ACK: no TCB
    recs = dissect_frames(frames, 1)
    times = np.arange(1, len(frames) + 1, dtype=np.int64) * 1_000_000
    return recs, times, names


@pytest.fixture(scope="module")
def runs():
    recs, times, names = conversation()
    out = {}
    for mode in ("improved", "wireshark"):
        an = Analyzer(mode)
        ann = an.feed(recs, times, np.arange(1, len(recs) + 1, dtype=np.int64))
        out[mode] = (ann, an.connections()[0])
    return out, names


def test_each_signal_is_on_its_frame(runs):
    (out, names) = runs
    ann, _ = out["improved"]
    want = {"ce": {"ecn_ce"}, "ece": {"ecn_ece"}, "cwr": {"ecn_cwr"}, "urg": {"urgent"},
            "big": {"above_mss"}, "dsack": {"dsack"}, "rst": {"rst_no_ack"}}
    for name, frame in names.items():
        got = set(note_names(int(ann["notes"][frame - 1])))
        assert got == want.get(name, set()), name
    # the handshake's ECN negotiation (ECE+CWR on the SYN, ECE on the SYN-ACK) is no signal
    assert not ann["notes"][names["syn"] - 1] and not ann["notes"][names["synack"] - 1]


def test_connection_counts(runs):
    (out, _names) = runs
    _, conn = out["improved"]
    assert list(conn["ecn_ce"]) == [1, 0] and list(conn["ecn_ece"]) == [0, 1]
    assert list(conn["ecn_cwr"]) == [1, 0] and list(conn["urgent"]) == [1, 0]
    assert list(conn["above_mss"]) == [1, 0] and list(conn["dsack"]) == [0, 1]


def test_bytes_count_each_byte_once(runs):
    (out, names) = runs
    for mode in ("improved", "wireshark"):
        ann, conn = out[mode]
        # 900 bytes written; the hole's first copy is new, its resend is not
        assert int(conn["unique_bytes"][0]) == 900 and int(conn["bytes"][0]) == 1000
        assert int(ann["new_bytes"][names["fill"] - 1]) == 100
        assert int(ann["new_bytes"][names["again"] - 1]) == 0
    assert int(out["improved"][1]["retrans_bytes"][0]) == 100


def test_wireshark_mode_has_no_signals(runs):
    (out, _names) = runs
    ann, conn = out["wireshark"]
    assert not ann["notes"].any()
    assert not any(int(conn[k].sum()) for k in ("ecn_ce", "ecn_ece", "urgent", "dsack"))


def test_note_names_follow_the_header():
    assert set(NOTE) == {"ecn_ce", "ecn_ece", "ecn_cwr", "urgent", "above_mss", "dsack",
                         "challenge_ack", "rst_no_ack"}
