"""The improved mode: where tcpscope's judgement differs from Wireshark's, on purpose.

Each rule has a scripted case here, and docs/differences.md lists it with the
capture that shows it. tests/test_ground_truth.py holds the mode to the
fixtures whose every loss, delay and copy is known.
"""
from __future__ import annotations

import numpy as np
import pytest

from tcpscope.analysis.annotation import FLAG_BIT, flag_names
from tcpscope.analysis.engine import Analyzer
from tcpscope.analysis.rules import RULES, RULES_BY_CODE
from tcpscope.pipeline import analyze
from tcpscope.wire import dissect_frames
from tcpscope.wire.builder import IPv4, IPv6
from tcpscope.wire.options import Mss, Sack, SackPermitted, WindowScale
from tests.analysis_helpers import ISN_C, Script, evidence, flags_of, tcp_record
from tests.conftest import corpus_files, fixture_files


def rule_of(row, flag: str) -> str | None:
    code = int(row["rule"][FLAG_BIT[flag]])
    return RULES_BY_CODE[code].id if code else None


def handshake(s: Script, rtt_ms: float = 20) -> None:
    s.c("S", 0, 0, opts=(Mss(1460), SackPermitted(), WindowScale(7)))
    s.s("S.", 0, 1, opts=(Mss(1460), SackPermitted(), WindowScale(7)), ms=rtt_ms / 2)
    s.c(".", 1, 1, ms=rtt_ms / 2)


def with_ip_ids(s: Script, ids: dict[int, int]) -> np.ndarray:
    """Records of the script with IPv4 identifications set per frame number."""
    recs = s.records()
    for frame, ipid in ids.items():
        recs["ip_id"][frame - 1] = ipid
    return recs


def run(recs: np.ndarray, s: Script, mode: str = "improved", iface=None) -> np.ndarray:
    ts = np.array([t for t, _ in s.frames], np.int64)
    return Analyzer(mode).feed(recs, ts, np.arange(1, len(recs) + 1), iface)


# ---------------------------------------------------------------------------
# Capture duplicates
# ---------------------------------------------------------------------------

def dup_script() -> Script:
    s = Script()
    handshake(s)
    s.c("P.", 1, 1, length=100)       # 4
    s.c("P.", 1, 1, length=100, ms=0.1)  # 5: the same frame again, 0.1 ms later
    s.s(".", 1, 101, ms=20)           # 6
    s.s(".", 1, 101, ms=0.1)          # 7: the same ACK again
    return s


def test_capture_duplicates_by_ip_id():
    s = dup_script()
    recs = with_ip_ids(s, {4: 7, 5: 7, 6: 9, 7: 9})
    ws, imp = run(recs, s, "wireshark"), run(recs, s)
    assert flags_of(ws[4]) == {"retransmission"} and flags_of(ws[6]) == {"duplicate_ack"}
    assert flags_of(imp[4]) == {"capture_duplicate"} and rule_of(imp[4], "capture_duplicate") == "retx.capture_duplicate"
    assert evidence(imp[4], "capture_duplicate") == [4]
    assert flags_of(imp[6]) == {"capture_duplicate"} and evidence(imp[6], "capture_duplicate") == [6]
    assert int(imp[4]["rel_seq"]) == 1 and int(imp[6]["rel_ack"]) == 101


@pytest.mark.parametrize("ids", [{4: 0, 5: 0}, {4: 7, 5: 8}])
def test_no_duplicate_without_a_matching_nonzero_ip_id(ids):
    s = dup_script()
    imp = run(with_ip_ids(s, ids), s)
    assert "capture_duplicate" not in flags_of(imp[4])


def test_a_copy_on_another_interface_is_a_duplicate_even_in_ipv6():
    s = Script(c="2001:db8::1", s="2001:db8::2")
    handshake(s)
    s.c("P.", 1, 1, length=100)
    s.c("P.", 1, 1, length=100, ms=0.1)
    recs = s.records()
    assert "capture_duplicate" not in flags_of(run(recs, s)[4])  # same interface, no IP ID
    iface = np.array([0, 0, 0, 0, 1], np.uint16)
    assert flags_of(run(recs, s, iface=iface)[4]) == {"capture_duplicate"}


def test_a_duplicate_leaves_the_analysis_untouched():
    s = dup_script()
    recs = with_ip_ids(s, {4: 7, 5: 7, 6: 9, 7: 9})
    ts = np.array([t for t, _ in s.frames], np.int64)
    frames = np.arange(1, len(recs) + 1)
    imp = Analyzer("improved").feed(recs, ts, frames)
    keep = [0, 1, 2, 3, 5]  # the same capture without the two copies
    alone = Analyzer("improved").feed(recs[keep], ts[keep], frames[keep])
    for name in ("flags", "acked_frame", "ack_rtt_ns", "bytes_in_flight", "rel_seq", "rel_ack"):
        assert list(imp[keep][name]) == list(alone[name]), name


# ---------------------------------------------------------------------------
# Retransmission or out of order: what was seen, not a timer
# ---------------------------------------------------------------------------

def test_bytes_sent_before_are_a_retransmission_however_soon():
    s = Script()
    handshake(s, rtt_ms=100)
    s.c("P.", 1, 1, length=100)
    s.c("P.", 101, 1, length=100)
    s.c("P.", 1, 1, length=100, ms=0.5)   # 6: within the iRTT: Wireshark says out-of-order
    ws, imp = s.run("wireshark"), s.run("improved")
    assert flags_of(ws[5]) == {"out_of_order"}
    assert flags_of(imp[5]) == {"retransmission"} and rule_of(imp[5], "retransmission") == "retx.bytes_seen_before"
    assert evidence(imp[5], "retransmission") == [4]


def reorder_script(late_ms: float) -> Script:
    s = Script()
    handshake(s, rtt_ms=20)
    s.c("P.", 1, 1, length=100)                 # 4
    s.c("P.", 201, 1, length=100, ms=1)         # 5: 101..201 missing
    s.s(".", 1, 101, ms=0.05)                   # 6
    s.s(".", 1, 101, ms=0.05, opts=(Sack((((ISN_C + 201) & 0xFFFFFFFF, (ISN_C + 301) & 0xFFFFFFFF),)),))  # 7: dup + SACK
    s.c("P.", 101, 1, length=100, ms=late_ms)   # 8: the missing bytes, first copy seen
    return s


def test_a_late_original_before_any_reaction_is_out_of_order():
    imp = reorder_script(0.2).run("improved")
    assert flags_of(imp[7]) == {"out_of_order"} and rule_of(imp[7], "out_of_order") == "ooo.sack_hole_fill"


def test_first_copy_a_round_trip_after_the_report_is_a_retransmission():
    ws, imp = reorder_script(50).run("wireshark"), reorder_script(50).run("improved")
    assert flags_of(ws[7]) == {"retransmission"}
    assert flags_of(imp[7]) == {"retransmission"}
    assert rule_of(imp[7], "retransmission") == "retx.hole_reported_by_peer"


# ---------------------------------------------------------------------------
# Zero-window probes
# ---------------------------------------------------------------------------

def zwp_script() -> Script:
    s = Script()
    handshake(s)
    s.c("P.", 1, 1, length=100)           # 4
    s.s(".", 1, 101, win=0, ms=20)        # 5: window closed
    s.c(".", 100, 1, ms=200)              # 6: Linux probes with seq snd_una - 1, no data
    s.s(".", 1, 101, win=0, ms=20)        # 7
    return s


def test_keepalive_style_probe_into_a_closed_window():
    ws, imp = zwp_script().run("wireshark"), zwp_script().run("improved")
    assert flags_of(ws[5]) == {"keep_alive"} and flags_of(ws[6]) == {"zero_window"}
    assert flags_of(imp[5]) == {"zero_window_probe"}
    assert rule_of(imp[5], "zero_window_probe") == "zwp.keepalive_while_closed"
    assert flags_of(imp[6]) == {"zero_window", "zero_window_probe_ack"}


def test_the_probe_byte_acked_is_a_window_update():
    s = Script()
    handshake(s)
    s.c("P.", 1, 1, length=100)
    s.s(".", 1, 101, win=0, ms=20)
    s.c("P.", 101, 1, length=1, ms=200)   # 6: probe with one byte
    s.s(".", 1, 102, win=100, ms=20)      # 7: takes the byte, reopens
    s.c("P.", 102, 1, length=100)         # 8
    ws, imp = s.run("wireshark"), s.run("improved")
    assert flags_of(ws[6]) == {"ack_lost_segment"} and flags_of(ws[7]) == {"lost_segment"}
    assert flags_of(imp[6]) == {"window_update"} and rule_of(imp[6], "window_update") == "wupdate.probe_byte_acked"
    assert flags_of(imp[7]) == set()


# ---------------------------------------------------------------------------
# Bytes in flight: sequence-based, less the SACK scoreboard
# ---------------------------------------------------------------------------

def test_bytes_in_flight_subtracts_every_sacked_block():
    s = Script()
    handshake(s)
    for i in range(5):                                     # 4..8: 5 x 100 bytes
        s.c("P.", 1 + 100 * i, 1, length=100)
    blk = lambda a, b: ((ISN_C + a) & 0xFFFFFFFF, (ISN_C + b) & 0xFFFFFFFF)  # noqa: E731
    s.s(".", 1, 101, ms=20)                                # 9
    s.s(".", 1, 101, opts=(Sack((blk(201, 301),)),))       # 10
    s.s(".", 1, 101, opts=(Sack((blk(401, 501),)),))       # 11: a different block
    s.c("P.", 501, 1, length=100)                          # 12
    ws, imp = s.run("wireshark"), s.run("improved")
    # Wireshark: 600 outstanding (101..601) less the last SACK only (100)
    assert int(ws[11]["bytes_in_flight"]) == 400
    # improved: 500 outstanding from the ack, less both SACKed blocks (200)
    assert int(imp[11]["bytes_in_flight"]) == 300


def test_bytes_in_flight_zero_is_shown():
    recs = [tcp_record(src="10.0.0.2", dst="10.0.0.1", sport=80, dport=40000, seq=5, ack=1000, flags="."),
            tcp_record(seq=1000, ack=5, flags="P.", length=0),
            tcp_record(seq=1000, ack=5, flags="P.", length=10)]
    ann = Analyzer("improved").feed(np.concatenate(recs), np.array([1, 2, 3]), np.arange(1, 4))
    assert int(ann[2]["bytes_in_flight"]) == 10


# ---------------------------------------------------------------------------
# Everything else is Wireshark's answer
# ---------------------------------------------------------------------------

IMPROVED_ONLY = {r.code for r in RULES.values() if r.modes == ("improved",)}


@pytest.mark.skipif(not corpus_files(), reason="shared corpus not found")
def test_improved_differs_only_where_an_improved_rule_fires():
    """On every capture, a frame whose flags differ between the modes carries an
    improved-only rule, or answers a frame that does (a probe's ACK)."""
    for path in corpus_files() + fixture_files():
        try:
            ws, imp = analyze(path, "wireshark"), analyze(path, "improved")
        except Exception as exc:
            if type(exc).__name__ == "CaptureError":
                continue
            raise
        a, b = ws.annotations, imp.annotations
        assert (a["stream"] == b["stream"]).all(), path.name
        assert ((a["rel_seq"] == b["rel_seq"]) | (b["flags"] != 0)).all(), path.name
        for i in np.flatnonzero(a["flags"] != b["flags"]):
            codes = {int(c) for c in b["rule"][i] if c}
            if codes & IMPROVED_ONLY:
                continue
            ev = [int(f) for f in b["evidence_frame"][i][: b["n_evidence"][i]]]
            prior = {int(c) for f in ev for c in b["rule"][np.searchsorted(imp.frames, f)] if c}
            assert prior & IMPROVED_ONLY, (path.name, int(imp.frames[i]), flag_names(int(a["flags"][i])),
                                           flag_names(int(b["flags"][i])))
