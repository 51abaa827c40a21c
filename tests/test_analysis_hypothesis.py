"""Random segment sequences: the engine never fails, keeps its invariants, and
agrees with the literal Python model of Wireshark's algorithm (wireshark_model.py).

The sequences are built to collide often: a few 4-tuples, sequence and ack
numbers drawn near each side's ISN (close to the 2^32 wrap) from a small set of
offsets, so retransmissions, duplicate ACKs, holes, probes and reused ports all
happen.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcpscope.analysis.annotation import ANN_KIND, FLAG_BIT
from tcpscope.analysis.engine import Analyzer
from tests.analysis_helpers import feed_in_batches, tcp_record
from tests.wireshark_model import Model

ISNS = (0xFFFF_FF00, 0xFFFF_FFF0, 0x7FFF_FF00, 0)
OFFSETS = (0, 1, 2, 100, 101, 200, 201, 1000, 1001, 1449, 2897, 65536)
FLAGS = ("S", "S.", ".", "P.", "F.", "R", "R.", "FP.", ".", ".", "P.", "P.")
LENGTHS = (0, 0, 0, 1, 10, 100, 1448)
WINDOWS = (0, 100, 1000, 1000, 65535)
STEPS_NS = (0, 1_000, 1_000_000, 5_000_000, 50_000_000, 2_000_000_000)


@st.composite
def segment(draw):
    conn = draw(st.integers(0, 2))
    from_client = draw(st.booleans())
    isn = draw(st.sampled_from(ISNS))
    peer = draw(st.sampled_from(ISNS))
    seq = (isn + draw(st.sampled_from(OFFSETS))) & 0xFFFFFFFF
    ack = (peer + draw(st.sampled_from(OFFSETS))) & 0xFFFFFFFF
    flags = draw(st.sampled_from(FLAGS))
    length = draw(st.sampled_from(LENGTHS))
    win = draw(st.sampled_from(WINDOWS))
    wscale = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, 16)))
    sack = ()
    if draw(st.integers(0, 4)) == 0:
        n = draw(st.integers(1, 4))
        sack = tuple(((isn + draw(st.sampled_from(OFFSETS))) & 0xFFFFFFFF,
                      (isn + draw(st.sampled_from(OFFSETS))) & 0xFFFFFFFF) for _ in range(n))
    step = draw(st.sampled_from(STEPS_NS))
    return conn, from_client, seq, ack, flags, length, win, wscale, sack, step


def build(segs):
    recs, times, raw = [], [], []
    t = 1_700_000_000 * 10**9
    for conn, from_client, seq, ack, flags, length, win, wscale, sack, step in segs:
        t += step
        c, s = ("10.0.0.1", 40000 + conn), ("10.0.0.2", 80)
        (src, sport), (dst, dport) = (c, s) if from_client else (s, c)
        recs.append(tcp_record(src=src, dst=dst, sport=sport, dport=dport, seq=seq, ack=ack, flags=flags,
                               win=win, length=length, wscale=wscale, sack=sack))
        times.append(t)
        m = 0xFFFFFFFF
        raw.append((src, sport, dst, dport, seq & m, ack & m, flags, win, length, wscale,
                    tuple((a & m, b & m) for a, b in sack), t))
    return np.concatenate(recs), np.array(times, np.int64), raw


def engine_view(a) -> dict:
    d = {"stream": int(a["stream"]), "seq": int(a["rel_seq"]) & 0xFFFFFFFF,
         "ack": int(a["rel_ack"]) & 0xFFFFFFFF, "window_size": int(a["win_scaled"]),
         "flags": int(a["flags"])}
    if a["acked_frame"]:
        d["acks_frame"] = int(a["acked_frame"])
    if a["ack_rtt_ns"] != -1:
        d["ack_rtt"] = int(a["ack_rtt_ns"])
    if a["irtt_ns"] != -1:
        d["initial_rtt"] = int(a["irtt_ns"])
    if a["bytes_in_flight"] != -1:
        d["bytes_in_flight"] = int(a["bytes_in_flight"])
        d["push_bytes_sent"] = int(a["push_bytes_sent"])
    if a["dup_ack_num"]:
        d["duplicate_ack_num"] = int(a["dup_ack_num"])
    return d


def model_view(raw) -> list[dict]:
    from tcpscope.wire.builder import tcp_flags

    m = Model()
    out = []
    for i, (src, sport, dst, dport, seq, ack, flags, win, length, wscale, sack, t) in enumerate(raw):
        sb = bytes(int(x) for x in src.split("."))
        db = bytes(int(x) for x in dst.split("."))
        out.append(m.feed(i + 1, t, sb, sport, db, dport, seq, ack, tcp_flags(flags), win, length, wscale,
                          [tuple(b) for b in sack]))
    return out


SETTINGS = settings(max_examples=int(__import__("os").environ.get("TCPSCOPE_HYPOTHESIS_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _agrees_with_the_model(segs) -> None:
    """The engine's view of every frame is the model's."""
    recs, times, raw = build(segs)
    ann = Analyzer("wireshark").feed(recs, times, np.arange(1, len(recs) + 1))
    expected = model_view(raw)
    for i, (a, e) in enumerate(zip(ann, expected)):
        assert engine_view(a) == e, f"frame {i + 1}"


@SETTINGS
@given(st.lists(segment(), min_size=1, max_size=60))
def test_engine_agrees_with_the_model(segs):
    _agrees_with_the_model(segs)


@SETTINGS
@given(st.lists(segment(), min_size=1, max_size=60), st.lists(st.integers(1, 7), min_size=1, max_size=20))
def test_batches_do_not_change_the_answer(segs, cuts):
    recs, times, _ = build(segs)
    frames = np.arange(1, len(recs) + 1)
    whole = Analyzer("wireshark").feed(recs, times, frames)
    joined = feed_in_batches(Analyzer("wireshark"), recs, times, frames, cuts)
    for name in whole.dtype.names:
        assert np.array_equal(joined[name], whole[name]), name


@SETTINGS
@given(st.lists(segment(), min_size=1, max_size=80))
def test_invariants(segs):
    recs, times, _ = build(segs)
    an = Analyzer("wireshark")
    ann = an.feed(recs, times, np.arange(1, len(recs) + 1))
    streams = ann["stream"]
    assert (streams >= 0).all()
    # Streams are numbered in order of first appearance, without gaps.
    seen = []
    for s in streams:
        if s not in seen:
            assert s == len(seen)
            seen.append(s)
    assert (ann["kind"] == ANN_KIND["analysed"]).all()
    # Fast and spurious retransmissions are also retransmissions; flags have rules.
    for a in ann:
        flags = int(a["flags"])
        for bit in range(15):
            assert bool(flags & (1 << bit)) == bool(a["rule"][bit])
        if flags & ((1 << FLAG_BIT["fast_retransmission"]) | (1 << FLAG_BIT["spurious_retransmission"])):
            assert flags & (1 << FLAG_BIT["retransmission"])
        assert a["n_evidence"] <= len(a["evidence_flag"])
        for i in range(int(a["n_evidence"])):
            assert 1 <= a["evidence_frame"][i] <= a["frame"]
        assert a["bytes_in_flight"] == -1 or 0 < a["bytes_in_flight"] < 2_000_000_000
    conns = an.connections()
    assert len(conns) == len(seen)
    assert int(conns["pkts"].sum()) == len(recs)
    stats = an.stats()
    assert stats["tcp_frames"] == len(recs)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=4000))
def test_any_record_bytes_never_crash(blob):
    """Whatever the records say (garbage included), feed() returns one row each."""
    from tcpscope.wire.record import RECORD_DTYPE

    size = RECORD_DTYPE.itemsize
    n = len(blob) // size
    recs = np.frombuffer(blob[: n * size], dtype=RECORD_DTYPE).copy()
    if n:
        recs["kind"] = 3
        recs["ip_version"] = np.where(recs["ip_version"] & 1, 4, 6)
    ann = Analyzer("wireshark").feed(recs, np.arange(n, dtype=np.int64) * 1000, np.arange(1, n + 1))
    assert len(ann) == n


@st.composite
def bulk(draw):
    """One transfer with long segment lists: data in order with random resends,
    skips and reordering, ACKs at random (partial, old, duplicate) points."""
    isn_c = draw(st.sampled_from(ISNS))
    isn_s = draw(st.sampled_from(ISNS))
    segs = [(0, True, isn_c, 0, "S", 0, 1000, 7, (), 0),
            (0, False, isn_s, isn_c + 1, "S.", 0, 1000, 7, (), 1_000_000),
            (0, True, isn_c + 1, isn_s + 1, ".", 0, 1000, None, (), 1_000_000)]
    sent = 1
    for _ in range(draw(st.integers(1, 150))):
        op = draw(st.integers(0, 9))
        step = draw(st.sampled_from(STEPS_NS[:4]))
        if op <= 5:  # next data segment, sometimes skipping ahead
            length = draw(st.sampled_from((1, 100, 1448, 1448, 2896)))
            if draw(st.integers(0, 15)) == 0:
                sent += draw(st.sampled_from((100, 1448)))
            segs.append((0, True, isn_c + sent, isn_s + 1, "P.", length, 1000, None, (), step))
            sent += length
        elif op == 6:  # resend something earlier (possibly overlapping / bigger)
            back = draw(st.integers(1, max(1, sent - 1)))
            length = draw(st.sampled_from((1, 100, 1448, 5000)))
            segs.append((0, True, isn_c + sent - back, isn_s + 1, ".", length, 1000, None, (), step))
        else:  # an ACK somewhere in what was sent (or a bit beyond), maybe with SACK
            point = sent - draw(st.integers(-10, max(0, min(sent - 1, 20000))))
            sack = ()
            if draw(st.booleans()):
                a = point + draw(st.integers(1, 3000))
                sack = ((isn_c + a, isn_c + a + draw(st.integers(1, 3000))),)
            win = draw(st.sampled_from((0, 1000, 1000, 2000)))
            segs.append((0, False, isn_s + 1, isn_c + point, ".", 0, win, None, sack, step))
    return segs


@SETTINGS
@given(bulk())
def test_bulk_transfers_agree_with_the_model(segs):
    _agrees_with_the_model(segs)
