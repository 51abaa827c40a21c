"""Per-flag scenarios of the Wireshark mode: exact segment sequences, ISNs near 2^32.

Every scenario states what tshark 4.0.17 prints for it (flags per frame, and the
numbers that matter), and `test_scenarios_agree_with_tshark` runs all of them
through tshark too, so the expectations here are the oracle's, not ours.
Relative numbers are given on top of ISN_C = 0xFFFFFF00 / ISN_S = 0xFFFFFFF0,
so every scenario crosses the 2^32 wrap within its first 256 bytes.
"""
from __future__ import annotations

import shutil

import pytest

from tcpscope.analysis.annotation import FLAG_BIT
from tcpscope.analysis.rules import rule
from tcpscope.wire.options import Mss, Sack, SackPermitted, WindowScale
from tests.analysis_helpers import ISN_C, Script, evidence, flags_of

SYNOPT = (Mss(1460), SackPermitted(), WindowScale(7))


def handshake(s: Script, *, rtt_ms: float = 20, c_ws: int | None = 7, s_ws: int | None = 7) -> None:
    copt = (Mss(1460), SackPermitted()) + ((WindowScale(c_ws),) if c_ws is not None else ())
    sopt = (Mss(1460), SackPermitted()) + ((WindowScale(s_ws),) if s_ws is not None else ())
    s.c("S", 0, 0, opts=copt)
    s.s("S.", 0, 1, opts=sopt, ms=rtt_ms / 2)
    s.c(".", 1, 1, ms=rtt_ms / 2)


def sack(s: Script, *blocks: tuple[int, int]) -> tuple:
    """SACK option with blocks relative to the client's ISN."""
    return (Sack(tuple(((ISN_C + a) & 0xFFFFFFFF, (ISN_C + b) & 0xFFFFFFFF) for a, b in blocks)),)


# ---------------------------------------------------------------------------
# Scenarios: name -> (script, {frame: expected flags}, extra checks)
# ---------------------------------------------------------------------------

def sc_handshake_and_data():
    s = Script()
    handshake(s)
    s.c("P.", 1, 1, length=100)             # 4
    s.c("P.", 101, 1, length=100)           # 5
    s.s(".", 1, 201, ms=20)                 # 6: acks 5
    s.c("F.", 201, 1)                       # 7
    s.s("F.", 1, 202)                       # 8
    s.c(".", 202, 2)                        # 9
    return s, {i: set() for i in range(1, 10)}


def sc_syn_retransmission_same_isn():
    s = Script()
    s.c("S", 0, 0, opts=SYNOPT)
    s.c("S", 0, 0, opts=SYNOPT, ms=1000)    # 2: same ISN: a retransmission, same stream
    s.s("S.", 0, 1, opts=SYNOPT, ms=10)     # 3: acks frame 1 (the oldest of the two)
    s.c(".", 1, 1, ms=10)
    return s, {1: set(), 2: {"retransmission"}, 3: set(), 4: set()}


def sc_reused_ports():
    s = Script()
    handshake(s)
    s.c("F.", 1, 1)                         # 4
    s.s("F.", 1, 2)                         # 5
    s.c(".", 2, 2)                          # 6
    s.c("S", 0, 0, opts=SYNOPT, ms=1000)    # 7: same ISN after FIN: still a retransmission
    s.s("S.", 5000, 1, opts=SYNOPT, ms=10)  # 8: SYN-ACK with a new ISN: reused, new base, lost
    s.c(".", 2, 5001, ms=10)                # 9: acks beyond what S was seen sending
    s.c("S", 0x1000, 0, opts=SYNOPT, ms=1000, abs_seq=True)  # 10: new ISN: new stream
    return s, {7: {"retransmission"}, 8: {"reused_ports", "lost_segment"}, 9: {"ack_lost_segment"},
               10: {"reused_ports"}}


def sc_loss_dupacks_fast_retransmission():
    s = Script()
    handshake(s)
    s.c("P.", 1, 1, length=100)             # 4
    s.c("P.", 201, 1, length=100)           # 5: 101..201 not captured
    s.c("P.", 301, 1, length=100)           # 6
    s.s(".", 1, 101, ms=20)                 # 7
    s.s(".", 1, 101, opts=sack(s, (201, 301)))   # 8: dup #1
    s.s(".", 1, 101, opts=sack(s, (201, 401)))   # 9: dup #2
    s.c("P.", 401, 1, length=100)           # 10: bytes in flight 100 (300 - SACKed 200)
    s.c("P.", 101, 1, length=100, ms=5)     # 11: fast retransmission (also a retransmission)
    s.s(".", 1, 501, ms=20)                 # 12
    return s, {5: {"lost_segment"}, 8: {"duplicate_ack"}, 9: {"duplicate_ack"},
               11: {"retransmission", "fast_retransmission"}, 12: set()}


def sc_spurious_and_out_of_order():
    s = Script()
    handshake(s, rtt_ms=100)
    s.c("P.", 1, 1, length=100)             # 4
    s.c("P.", 101, 1, length=100)           # 5
    s.s(".", 1, 201, ms=20)                 # 6
    s.c("P.", 1, 1, length=100)             # 7: already acked: spurious (and retransmission)
    s.c("P.", 301, 1, length=100)           # 8: lost 201..301
    s.c("P.", 201, 1, length=100)           # 9: out of order (within the handshake RTT)
    s.c("P.", 201, 1, length=100, ms=300)   # 10: retransmission
    return s, {7: {"retransmission", "spurious_retransmission"}, 8: {"lost_segment"},
               9: {"out_of_order"}, 10: {"retransmission"}}


def sc_window_update_and_full():
    s = Script()
    handshake(s, c_ws=None, s_ws=None)      # no scaling either way
    s.s(".", 1, 1, win=1000)                # 4: repeats the SYN-ACK's ack and window: duplicate
    s.s(".", 1, 1, win=2000)                # 5: window update
    s.c("P.", 1, 1, length=2000)            # 6: ends exactly at S's window edge: window full
    return s, {4: {"duplicate_ack"}, 5: {"window_update"}, 6: {"window_full"}}


def sc_zero_window_and_probe():
    s = Script()
    handshake(s)
    s.c("P.", 1, 1, length=100)             # 4
    s.s(".", 1, 101, win=0, ms=20)          # 5: zero window
    s.c("P.", 101, 1, length=1, ms=200)     # 6: zero-window probe
    s.s(".", 1, 101, win=0, ms=20)          # 7: probe ACK
    s.c("P.", 101, 1, length=1, ms=400)     # 8: probe again
    s.s(".", 1, 101, win=0, ms=20)          # 9: probe ACK
    s.s(".", 1, 102, win=100, ms=50)        # 10: window opens, acks the probe byte
    return s, {5: {"zero_window"}, 6: {"zero_window_probe"}, 7: {"zero_window", "zero_window_probe_ack"},
               8: {"zero_window_probe"}, 9: {"zero_window", "zero_window_probe_ack"},
               10: {"ack_lost_segment"}}


def sc_keep_alive():
    s = Script()
    handshake(s)
    s.c("P.", 1, 1, length=10)              # 4
    s.s(".", 1, 11, ms=20)                  # 5
    s.c(".", 10, 1, ms=5000)                # 6: keep-alive
    s.s(".", 1, 11, ms=20)                  # 7: keep-alive ACK
    s.c(".", 10, 1, length=1, ms=5000)      # 8: keep-alive with one garbage byte
    s.s(".", 1, 11, ms=20)                  # 9
    return s, {6: {"keep_alive"}, 7: {"keep_alive_ack"}, 8: {"keep_alive"}, 9: {"keep_alive_ack"}}


def sc_ack_lost_suppression():
    s = Script()
    handshake(s)
    s.c("P.", 1, 1, length=100)             # 4
    s.s(".", 1, 201, ms=30)                 # 5: ACKed unseen
    s.s(".", 1, 301, ms=30)                 # 6: not again...
    s.c("P.", 101, 1, length=100)           # 7: (spurious: already acked)
    s.s(".", 1, 401, ms=30)                 # 8: ...not even after in-order data
    s.c("P.", 501, 1, length=100)           # 9: the client skips ahead (lost)
    s.s(".", 1, 701, ms=30)                 # 10: flagged again
    s.c(".", 601, 11)                       # 11: (client's ack changes)
    return s, {5: {"ack_lost_segment"}, 6: set(), 7: {"retransmission", "spurious_retransmission"},
               8: set(), 9: {"lost_segment"}, 10: {"ack_lost_segment"}}


def sc_window_scale_on_data_segment():
    s = Script()                            # midstream: no handshake
    s.c(".", 1, 1, win=100)
    s.c(".", 1, 1, win=100, opts=(WindowScale(3),))
    s.c(".", 1, 1, win=100)                 # scaled by 8 from here on (Wireshark: any segment's WS)
    s.s(".", 1, 1, win=100)
    return s, {2: {"duplicate_ack"}, 3: {"duplicate_ack"}}


SCENARIOS = {
    name.removeprefix("sc_"): fn
    for name, fn in dict(globals()).items()
    if name.startswith("sc_") and callable(fn)
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_flags(name):
    script, expected = SCENARIOS[name]()
    ann = script.run()
    for frame, flags in expected.items():
        assert flags_of(ann[frame - 1]) == flags, f"{name} frame {frame}"


# ---------------------------------------------------------------------------
# Numbers and evidence on the scenarios
# ---------------------------------------------------------------------------

def test_relative_numbers_cross_the_wrap():
    script, _ = sc_handshake_and_data()
    ann = script.run()
    assert [int(a["rel_seq"]) for a in ann] == [0, 0, 1, 1, 101, 1, 201, 1, 202]
    assert [int(a["rel_ack"]) for a in ann] == [0, 1, 1, 1, 1, 201, 1, 202, 2]
    assert int(ann[3]["win_scaled"]) == 1000 << 7


def test_duplicate_ack_numbers_and_frame():
    script, _ = sc_loss_dupacks_fast_retransmission()
    ann = script.run()
    assert [int(ann[i]["dup_ack_num"]) for i in (7, 8)] == [1, 2]
    assert int(ann[8]["dup_ack_frame"]) == 7
    assert evidence(ann[8], "duplicate_ack") == [7]


def test_fast_retransmission_evidence_is_the_dup_acks():
    script, _ = sc_loss_dupacks_fast_retransmission()
    ann = script.run()
    assert evidence(ann[10], "fast_retransmission") == [7, 9]
    assert int(ann[9]["bytes_in_flight"]) == 100  # 300 outstanding - 200 SACKed
    assert rule(int(ann[10]["rule"][FLAG_BIT["fast_retransmission"]])).id == "fast_retx.dupacks"
    assert rule(int(ann[10]["rule"][FLAG_BIT["retransmission"]])).id == "retx.implied_by_fast"


def test_retransmission_evidence_is_the_first_carrier():
    script, _ = sc_spurious_and_out_of_order()
    ann = script.run()
    assert evidence(ann[9], "retransmission") == [9]   # frame 9 first carried 201..301
    assert evidence(ann[6], "spurious_retransmission") == [6]  # the ACK that covered it
    assert evidence(ann[8], "out_of_order") == [8]      # the frame that advanced nextseq


def test_lost_segment_evidence_is_the_previous_frame():
    script, _ = sc_loss_dupacks_fast_retransmission()
    ann = script.run()
    assert evidence(ann[4], "lost_segment") == [4]


def test_probe_and_keepalive_acks_point_at_the_probe():
    script, _ = sc_zero_window_and_probe()
    ann = script.run()
    assert evidence(ann[6], "zero_window_probe_ack") == [6]
    script, _ = sc_keep_alive()
    ann = script.run()
    assert evidence(ann[6], "keep_alive_ack") == [6]


def test_irtt_from_the_third_packet_and_ack_rtt():
    script, _ = sc_handshake_and_data()
    ann = script.run()
    assert int(ann[0]["irtt_ns"]) == -1 and int(ann[1]["irtt_ns"]) == -1
    assert int(ann[2]["irtt_ns"]) == 20_000_000
    assert int(ann[1]["acked_frame"]) == 1 and int(ann[1]["ack_rtt_ns"]) == 10_000_000
    assert int(ann[5]["acked_frame"]) == 5 and int(ann[5]["ack_rtt_ns"]) == 20_000_000
    assert [int(ann[i]["bytes_in_flight"]) for i in (3, 4)] == [100, 200]
    assert [int(ann[i]["push_bytes_sent"]) for i in (3, 4)] == [100, 100]


def test_syn_ack_acks_the_oldest_syn():
    script, _ = sc_syn_retransmission_same_isn()
    ann = script.run()
    assert int(ann[2]["acked_frame"]) == 1
    assert {int(a["stream"]) for a in ann} == {0}


def test_reused_ports_streams():
    script, _ = sc_reused_ports()
    ann = script.run()
    assert [int(a["stream"]) for a in ann] == [0] * 9 + [1]
    assert int(ann[7]["rel_seq"]) == 0  # the SYN-ACK's new ISN is the new base
    assert evidence(ann[9], "reused_ports") == [9]


# ---------------------------------------------------------------------------
# The oracle: every scenario through tshark
# ---------------------------------------------------------------------------

@pytest.mark.oracle
def test_scenarios_agree_with_tshark(tmp_path):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    from tests.tshark_oracle import analyse_file

    problems = []
    for name, fn in sorted(SCENARIOS.items()):
        script, _ = fn()
        path = script.pcap(tmp_path / f"{name}.pcap")
        res = analyse_file(path)
        problems += [f"{name} frame {fr} {f}: tshark={t!r} ours={o!r}" for fr, f, t, o in res.diffs]
    assert not problems, "\n".join(problems)
