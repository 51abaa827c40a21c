"""The graphs' data: a small capture built with the packet builder, with one retransmission,
one SACK block, one zero window, one CE mark (and its ECE, CWR), and the series each graph
draws hold exactly those marks at the right coordinates (the data plotted, not pixels)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis_helpers import write_pcap
from tcpscope.present.graph import GraphSet, graphs
from tcpscope.present.graph.sliding import MOMENTS
from tcpscope.pipeline import Options, run
from tcpscope.wire.builder import IPv4, TCP, Ether, Frame
from tcpscope.wire.options import Mss, Sack, SackPermitted, WindowScale

ISN_C, ISN_S = 0xFFFF_FF80, 0x7FFF_FFF0     # the client's seq wraps inside the transfer
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
C, S = "10.0.0.1", "10.0.0.2"
OPTS = (Mss(1000), SackPermitted(), WindowScale(2))

#: (ms, from client, flags, rel seq, rel ack, payload, raw window, ip tos, SACK (rel) or None)
SCRIPT = [
    (0, True, "SEW", 0, 0, 0, 1000, 0, None),        # 1  SYN, ECN setup
    (10, False, "SE.", 0, 1, 0, 1000, 0, None),      # 2  SYN-ACK, ECN setup
    (11, True, ".", 1, 1, 0, 1000, 0, None),         # 3
    (12, True, ".", 1, 1, 100, 1000, 2, None),       # 4  data 1..101 (ECT(0))
    (13, True, ".", 101, 1, 100, 1000, 2, None),     # 5  data 101..201: lost after the capture
    (14, True, ".", 201, 1, 100, 1000, 3, None),     # 6  data 201..301 with CE
    (22, False, ".", 1, 101, 0, 1000, 0, None),      # 7  ack 101, window 4000 (scale 2)
    (24, False, "E.", 1, 101, 0, 1000, 0, (201, 301)),  # 8  dup ACK, SACK 201..301, ECE
    (40, True, "W.", 101, 1, 100, 1000, 2, None),    # 9  retransmission of 101..201, CWR
    (50, False, ".", 1, 301, 0, 0, 0, None),         # 10 zero window
    (60, False, ".", 1, 301, 0, 1000, 0, None),      # 11 window update
    (61, True, "P.", 301, 1, 100, 1000, 2, None),    # 12 data 301..401
    (71, False, ".", 1, 401, 0, 1000, 0, None),      # 13
    (72, True, "F.", 401, 1, 0, 1000, 0, None),      # 14 FIN (takes seq 401)
    (82, False, "F.", 1, 402, 0, 1000, 0, None),     # 15
    (83, True, ".", 402, 2, 0, 1000, 0, None),       # 16
]


def build(path: Path) -> Path:
    frames = []
    for ms, client, flags, seq, ack, length, win, tos, sack in SCRIPT:
        isn, peer = (ISN_C, ISN_S) if client else (ISN_S, ISN_C)
        opts = OPTS if "S" in flags else ()
        if sack:
            opts = (Sack((((peer + sack[0]) & 0xFFFFFFFF, (peer + sack[1]) & 0xFFFFFFFF),)),)
        ip = IPv4(src=C, dst=S, tos=tos) if client else IPv4(src=S, dst=C, tos=tos)
        tcp = TCP(sport=40000 if client else 80, dport=80 if client else 40000,
                  seq=(isn + seq) & 0xFFFFFFFF, ack=(peer + ack) & 0xFFFFFFFF if "." in flags else 0,
                  flags=flags, win=win, options=opts)
        frames.append((T0 + ms * MS, Frame(Ether(), ip, tcp, payload=b"x" * length).build()))
    write_pcap(path, frames)
    return path


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("graph") / "marks.pcap")


def t(ms: float) -> float:
    return ms / 1000


def layers(fig) -> dict:
    return {ly.key: ly.cols for ly in fig.layers}


def rows(cols: dict, *names: str) -> list[tuple]:
    return [tuple(v.item() for v in vals) for vals in zip(*(cols[n] for n in names))]


@pytest.fixture(scope="module")
def figs(capture):
    kinds = ("tcptrace", "stevens", "throughput", "rtt", "window")
    return dict(zip(kinds, graphs(capture, 0, kinds)))


def test_tcptrace_marks_at_their_coordinates(figs):
    ly = layers(figs["tcptrace"])
    # the I-beams of first transmissions: seq .. seq + len, at their times, one frame each
    assert rows(ly["data"], "t", "lo", "hi", "n", "frame") == [
        (t(12), 1, 101, 1, 4), (t(13), 101, 201, 1, 5), (t(14), 201, 301, 1, 6), (t(61), 301, 401, 1, 12)]
    assert rows(ly["retx"], "t", "lo", "hi", "frame") == [(t(40), 101, 201, 9)]
    # the SACK block of frame 8, made relative to the client's ISN across the 2^32 wrap
    assert rows(ly["sack"], "t", "lo", "hi", "frame") == [(t(24), 201, 301, 8)]
    assert len(ly["sack_old"]["t"]) == 0
    assert rows(ly["zero_window"], "t", "y", "frame") == [(t(50), 301, 10)]
    assert rows(ly["ce"], "t", "y", "frame") == [(t(14), 301, 6)]       # at the segment's end
    assert rows(ly["ece"], "t", "y", "frame") == [(t(24), 101, 8)]      # on the ACK line
    assert rows(ly["cwr"], "t", "y", "frame") == [(t(40), 101, 9)]      # at the segment's start
    assert rows(ly["syn"], "t", "y", "frame") == [(0.0, 0, 1)]
    assert rows(ly["fin"], "t", "y", "frame") == [(t(72), 401, 14)]
    assert len(ly["rst"]["t"]) == 0 and len(ly["ooo"]["t"]) == 0
    assert rows(ly["dupack"], "t", "y", "frame") == [(t(24), 101, 8)]
    # the ACK line: every ACK of the receiver; the window edge: ack + window << 2 once scaled
    assert rows(ly["ack"], "frame", "y") == [(2, 1), (7, 101), (8, 101), (10, 301), (11, 301),
                                             (13, 401), (15, 402)]
    assert rows(ly["rwnd_edge"], "frame", "y") == [(7, 4101), (8, 4101), (10, 301), (11, 4301),
                                                   (13, 4401), (15, 4402)]


def test_legend_names_every_mark_that_is_drawn(figs):
    fig = figs["tcptrace"]
    keys = [k for k, _, _ in fig.legend()]
    assert set(keys) == {ly.key for ly in fig.layers if len(ly)}
    assert all(label for _, _, label in fig.legend())


def test_stevens_dots(figs):
    ly = layers(figs["stevens"])
    assert rows(ly["stevens"], "t", "y", "frame") == [(t(12), 1, 4), (t(13), 101, 5), (t(14), 201, 6),
                                                      (t(61), 301, 12)]
    assert rows(ly["retx"], "t", "y", "frame") == [(t(40), 101, 9)]


def test_window_and_rtt(figs):
    ly = layers(figs["window"])
    assert rows(ly["zero_window_at"], "t", "y", "frame") == [(t(50), 0, 10)]
    assert rows(ly["rwnd"], "frame", "y") == [(7, 4000), (8, 4000), (10, 0), (11, 4000), (13, 4000),
                                              (15, 4000)]
    assert rows(ly["bif"], "frame", "y")[:3] == [(4, 100), (5, 200), (6, 300)]
    rtt = layers(figs["rtt"])
    samples = rows(rtt["rtt"], "frame", "y") + rows(rtt["rtt_karn"], "frame", "y")
    assert samples and all(y > 0 for _, y in samples)
    # frame 10 acknowledges the retransmission (frame 9): Karn's rule sets it apart
    assert [f for f, _ in rows(rtt["rtt_karn"], "frame", "y")] == [10]


def test_throughput_counts_every_byte(figs):
    ly = layers(figs["throughput"])
    tp = ly["throughput"]
    # the moving average integrates to the bytes sent (5 segments of 100 bytes, in bits)
    dt = np.diff(np.r_[0.0, tp["t"]])
    window = float(figs["throughput"].notes[0].split()[-2].replace("\u00a0", ""))  # "… over 0.9 ms."
    assert window > 0
    assert rows(ly["seglen"], "frame", "y") == [(4, 100), (5, 100), (6, 100), (9, 100), (12, 100)]
    assert tp["y"].max() > 0 and len(tp["t"]) == len(dt)


def test_sliding_window_at_a_frame(capture):
    # wireshark mode: no sender model, so only the receiver's window bounds what may be sent
    (fig,) = graphs(capture, 0, ["slidingwindow"], frames=[8], mode="wireshark")
    bands = {ly.key: rows(ly.cols, "lo", "hi", "row") for ly in fig.layers if ly.draw == "band"}
    # after frame 8: SND.UNA 101, SND.NXT 301, SND.WND 4000; 201..301 SACKed
    assert bands["sent"] == [(101, 301, 0)]
    assert bands["sacked"] == [(201, 301, 0)]
    assert bands["usable"] == [(301, 4101, 0)]
    assert bands["rwnd_span"] == [(101, 4101, 1)]
    edges = [ly.text for ly in fig.layers if ly.draw == "edge"]
    assert edges == ["SND.UNA = 101", "SND.NXT = 301", "SND.UNA+SND.WND = 4101"]
    assert any("3800" in n for n in fig.notes)    # the sender may send 3800 more bytes


def test_sliding_window_is_bounded_by_the_cwnd_estimate_in_improved_mode(capture):
    (fig,) = graphs(capture, 0, ["slidingwindow"], frames=[8])
    bands = {ly.key: rows(ly.cols, "lo", "hi", "row") for ly in fig.layers if ly.draw == "band"}
    # the sender model's cwnd (10 segments of 100 bytes from SND.UNA 101) is below the rwnd edge
    assert bands["usable"] == [(301, 1101, 0)]
    assert any("800" in n for n in fig.notes)


def test_sliding_window_zero_and_the_ack_frame_shows_the_data_it_acknowledges(capture):
    (fig,) = graphs(capture, 0, ["slidingwindow"], frames=[10], lang="zh")
    assert "SND.UNA" in fig.notes[0] and "301" in fig.notes[0]
    assert "零窗口探测" in fig.notes[-1]
    bands = {ly.key: rows(ly.cols, "lo", "hi", "row") for ly in fig.layers if ly.draw == "band"}
    assert "usable" not in bands and "rwnd_span" not in bands


def test_key_moments(capture):
    g = GraphSet(0, ["slidingwindow"], moments=True)
    run(capture, [g.consumer], Options(states=False))
    figs = g.figures()
    found = [s.reason for s in g.collectors["slidingwindow"].key_moments(0)]
    assert set(found) <= set(MOMENTS)
    assert found[:1] == ["first_data"]
    assert {"zero_window", "window_reopened", "first_retx"} <= set(found)
    frames = {s.reason: s.frame for s in g.collectors["slidingwindow"].key_moments(0)}
    assert frames["zero_window"] == 10 and frames["window_reopened"] == 11 and frames["first_retx"] == 9
    assert len(figs) == len(found)


def test_a_frame_outside_the_stream_is_named(capture):
    with pytest.raises(LookupError, match="frame 99"):
        graphs(capture, 0, ["slidingwindow"], frames=[99])
    with pytest.raises(LookupError, match="stream 5"):
        graphs(capture, 5, ["tcptrace"])
