"""ZeekTracker's numpy fast path (analysis/zeek/fast.py) gives exactly what the reference
model (analysis/zeek/model.py, `ZeekModel`) gives.

`ZeekTracker` applies runs of ordinary rows with numpy and sends every other row
through the model it extends; `ZeekModel` takes every row one at a time. The two must
agree on every field of every Zeek connection (`rows()`, `fields()`) and on the
dropped-packet counters, whatever the batches:

- every capture of the shared corpus and every fixture, with Zeek's options at their
  defaults, with ``-C``, and as ``zeek -b`` with ``report_gaps_for_partial``;
- every Zeek agreement case, with that run's options;
- generated conversations (hypothesis): handshakes or not, payload in order, holes,
  resends, ACKs behind / at / past what was sent, zero windows, bad checksums,
  unreadable headers, payload cut by a snap length (all, none, or all but small
  segments, as in the benchmark capture), FIN / RST / SYN in the middle, idle times
  that fire Zeek's timers, sequence numbers near the 2^32 wrap, random batch cuts;
- the start of bench/out/bench.pcap when it exists.

Each comparison also runs the fast path with its thresholds at their most eager
(it then starts wherever it can, so almost every row it can take goes through it), with
the event-by-event reassembler path switched off and forced on, and in slices that start
at one row.
"""
from __future__ import annotations

import os
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcpscope.analysis.engine import Analyzer
from tcpscope.analysis.zeek import (
    LIKELY_SERVER_PORTS,
    TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS,
    ZeekModel,
    ZeekTracker,
)
from tcpscope.capture.errors import CaptureError
from tcpscope.pipeline import Options, Pipeline
from tcpscope.wire.record import CSUM, REASON
from tests.analysis_helpers import tcp_record
from tests.conftest import ROOT, corpus_files, fixture_files
from zeek_baselines import CASES, FILES, Case

#: Fast-path settings to compare with the per-packet model ({} = the defaults).
EAGER = dict(min_group=1, min_run=1, min_backoff=1, max_backoff=1, min_chunk=1)
KNOBS: dict[str, dict] = {
    "default": {},
    "eager": EAGER,
    "eager_no_sim": dict(EAGER, sim_max=0),
    "eager_all_sim": dict(EAGER, sim_max=1 << 30),
    "tiny_chunks": dict(EAGER, first_chunk=1),
}
BENCH = ROOT / "bench" / "out" / "bench.pcap"
DEMO = ROOT / "src" / "tcpscope" / "data" / "demo.pcap"


def run(batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]], *, fast: bool,
        knobs: dict | None = None, **options) -> ZeekModel:
    """The fast path (with `knobs` set) or the model, over the batches."""
    z = ZeekTracker(**options) if fast else ZeekModel(**options)
    for name, value in (knobs or {}).items():
        assert hasattr(ZeekTracker, name), name
        setattr(z, name, value)
    for rec, ann, ts in batches:
        z.feed(rec, ann, ts)
    return z


def outcome(z: ZeekModel) -> tuple:
    return z.rows(), z.fields(), z.offloaded, z.bad_checksums


def assert_same(batches, knobs: dict[str, dict] = KNOBS, **options) -> dict[str, int]:
    """The model and the fast path on the same batches: identical results. Returns the rows
    the fast path took in bulk, per knob set."""
    want = outcome(run(batches, fast=False, **options))
    fast = {}
    for name, kn in knobs.items():
        z = run(batches, fast=True, knobs=kn, **options)
        got = outcome(z)
        if got != want:
            for a, b in zip(got[0], want[0]):
                assert a == b, f"{name}: first differing connection"
        assert got == want, name
        fast[name] = z.fast_rows
    return fast


def read(path: Path, cut: int | None = None, port: int | None = None) -> list[tuple]:
    """A capture's batches (records, annotations, timestamps), re-cut to `cut` rows if given."""
    out = []
    for chunk in Pipeline([], Options(states=False)).read(path):
        rec, ann, ts = chunk.records, chunk.annotations, chunk.ts_ns
        if port is not None:
            keep = (rec["sport"] == port) | (rec["dport"] == port)
            rec, ann, ts = rec[keep], ann[keep], ts[keep]
        if cut is None:
            out.append((rec, ann, ts))
        else:
            out.extend((rec[i:i + cut], ann[i:i + cut], ts[i:i + cut])
                       for i in range(0, len(rec), cut))
    return out


def readable(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        try:
            for _ in Pipeline([], Options(states=False)).read(p):
                pass
        except CaptureError:
            continue  # formats tcpscope does not read (snoop, ...)
        out.append(p)
    return out


CAPTURES = readable(corpus_files() + fixture_files() + [DEMO])


#: Zeek's options the captures are compared under: its defaults, ``zeek -C``, and ``zeek -b``
#: (no likely server ports) counting the gaps of partial connections.
CAPTURE_OPTIONS = {
    "defaults": {},
    "-C": {"ignore_checksums": True},
    "-b_partial_gaps": {"likely_server_ports": frozenset(), "report_gaps_for_partial": True},
}


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("options", CAPTURE_OPTIONS.values(), ids=CAPTURE_OPTIONS.keys())
def test_captures(path: Path, options: dict) -> None:
    assert_same(read(path), **options)
    assert_same(read(path, cut=7), {"eager": KNOBS["eager"]}, **options)


def test_the_fast_path_is_used() -> None:
    """Not a vacuous comparison: most rows of the corpus go through the fast path when eager."""
    rows = fast = 0
    for path in CAPTURES:
        batches = read(path)
        rows += sum(len(b[0]) for b in batches)
        fast += run(batches, fast=True, knobs=KNOBS["eager"], ignore_checksums=True).fast_rows
    assert rows > 50_000
    assert fast > 0.6 * rows, (fast, rows)


@pytest.mark.parametrize("case", [c for c in CASES if (FILES / c.capture).exists()],
                         ids=lambda c: c.baseline)
def test_zeek_agreement_cases(case: Case) -> None:
    assert_same(
        read(FILES / case.capture, port=case.port_filter),
        ignore_checksums=case.ignore_checksums, likely_server_ports=case.likely,
        report_gaps_for_partial=case.report_gaps_for_partial,
        excessive_data_without_further_acks=case.options.get(
            "excessive_data", TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS))


@pytest.mark.slow
@pytest.mark.skipif(not BENCH.exists(), reason="bench/out/bench.pcap not made (bench/README.md)")
def test_bench_capture_start() -> None:
    """The bulk transfers of the benchmark (snap length 128, loss, reordering): where the
    fast path matters. The first 300k rows, with and without -C."""
    batches = list(islice(((c.records, c.annotations, c.ts_ns)
                           for c in Pipeline([], Options(states=False)).read(BENCH)), 12))
    assert sum(len(b[0]) for b in batches) > 100_000
    for ic in (True, False):
        fast = assert_same(batches, {"default": {}, "eager": KNOBS["eager"]}, ignore_checksums=ic)
        assert fast["default"] > 0.8 * sum(len(b[0]) for b in batches)


# --- generated conversations ---------------------------------------------------------------

ISNS = (0xFFFF_FF00, 0xFFFF_FFF0, 0x7FFF_FF00, 12345, 0)
STEPS = (0, 1_000, 1_000_000, 1_000_000, 1_000_000, 20_000_000, 2_000_000_000)
RARE_STEPS = (70 * 10**9, 400 * 10**9)  # past Zeek's 60 s / 5 min inactivity timers
LENGTHS = (1, 56, 100, 1448, 1448)


@st.composite
def conversation(draw, port: int):
    """One connection's segments: (t, from_client, seq, ack, flags, length, cap, win, csum,
    hdr_bad)."""
    isn_c, isn_s = draw(st.sampled_from(ISNS)), draw(st.sampled_from(ISNS))
    snap = draw(st.sampled_from(("full", "full", "cut", "cut_big_only")))
    segs = []
    t = draw(st.integers(0, 10**9))
    c_next, s_next = isn_c, isn_s  # next sequence number each side sends
    c_acked, s_acked = isn_c, isn_s  # highest each side has acknowledged of the other

    def add(fc, seq, ack, flags, length=0, win=1000, step=None):
        nonlocal t
        t += draw(st.sampled_from(STEPS)) if step is None else step
        if draw(st.integers(0, 60)) == 0:
            t += draw(st.sampled_from(RARE_STEPS))
        cap = length
        if snap == "cut" or (snap == "cut_big_only" and length > 62):
            cap = min(length, 62)
        csum = CSUM["OK"]
        if draw(st.integers(0, 20)) == 0:
            csum = draw(st.sampled_from((CSUM["BAD"], CSUM["OFFLOAD"])))
        hdr_bad = draw(st.integers(0, 50)) == 0
        segs.append((t, fc, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, length, cap, win, csum,
                     hdr_bad))

    start = draw(st.sampled_from(("3way", "3way", "3way", "midstream", "synack", "syn")))
    if start in ("3way", "syn"):
        add(True, isn_c, 0, "S")
        c_next = isn_c + 1
    if start in ("3way", "synack"):
        add(False, isn_s, c_next, "S.")
        s_next = isn_s + 1
    if start in ("3way", "synack"):
        add(True, c_next, s_next, ".")
    for _ in range(draw(st.integers(1, 150))):
        op = draw(st.integers(0, 24))
        if op <= 9:  # client payload, in order or (sometimes) past a hole
            length = draw(st.sampled_from(LENGTHS))
            if draw(st.integers(0, 12)) == 0:
                c_next += draw(st.sampled_from((56, 1448, 2896)))
            add(True, c_next, s_next, draw(st.sampled_from(("P.", "."))), length)
            c_next += length
        elif op == 10:  # a resend of something earlier
            back = draw(st.integers(1, max(1, (c_next - isn_c) % (1 << 32) or 1)))
            add(True, c_next - min(back, 5000), s_next, ".", draw(st.sampled_from(LENGTHS)))
        elif op <= 16:  # the server acknowledges (behind, at, or past what was sent)
            point = c_next - draw(st.sampled_from((0, 0, 0, 56, 1448, 3000)))
            if draw(st.integers(0, 15)) == 0:
                point = c_next + draw(st.sampled_from((1, 100, 5000)))
            s_acked = max(s_acked, point)
            win = 0 if draw(st.integers(0, 12)) == 0 else 1000
            add(False, s_next, point, ".", 0, win)
        elif op <= 18:  # server payload
            length = draw(st.sampled_from(LENGTHS))
            add(False, s_next, c_next, "P.", length)
            s_next += length
        elif op == 19:  # the client acknowledges the server
            add(True, c_next, s_next, ".", 0, 0 if draw(st.integers(0, 8)) == 0 else 1000)
        elif op == 20:  # a keep-alive (one byte before the next)
            add(draw(st.booleans()), c_next - 1, s_next, ".", draw(st.sampled_from((0, 1))))
        elif op == 21:  # no flags at all, or an ACK of 0
            add(True, c_next, draw(st.sampled_from((0, s_next))), draw(st.sampled_from(("", "."))))
        elif op == 22:  # a FIN
            fc = draw(st.booleans())
            add(fc, c_next if fc else s_next, s_next if fc else c_next, "F.")
            if fc:
                c_next += 1
            else:
                s_next += 1
        elif op == 23:  # a RST
            fc = draw(st.booleans())
            add(fc, c_next if fc else s_next, 0, draw(st.sampled_from(("R", "R."))))
        else:  # a SYN in the middle (same or new ISN)
            isn = draw(st.sampled_from((isn_c, c_next + 100_000)))
            add(True, isn, 0, "S")
    return [(port,) + s for s in segs]


@st.composite
def capture(draw):
    convs = [draw(conversation(40000 + i)) for i in range(draw(st.integers(1, 3)))]
    segs = sorted((s for c in convs for s in c), key=lambda s: s[1])
    recs, times = [], []
    for port, t, fc, seq, ack, flags, length, cap, win, csum, hdr_bad in segs:
        c, s = ("10.0.0.1", port), ("10.0.0.2", 80)
        (src, sport), (dst, dport) = (c, s) if fc else (s, c)
        r = tcp_record(src=src, dst=dst, sport=sport, dport=dport, seq=seq, ack=ack,
                       flags=flags, win=win, length=length)
        r["payload_cap"] = cap
        r["ip_len"] = 40 + length
        r["tcp_csum_status"] = csum
        r["ip_csum_status"] = CSUM["OK"]
        if hdr_bad:
            r["stop_reason"] = REASON["TRUNCATED_TCP_OPTIONS"]
        recs.append(r)
        times.append(1_700_000_000 * 10**9 + t)
    recs = np.concatenate(recs)
    times = np.array(times, dtype=np.int64)
    ann = Analyzer("wireshark").feed(recs, times, np.arange(1, len(recs) + 1))
    cuts = draw(st.lists(st.integers(1, 200), min_size=1, max_size=8))
    batches, i, k = [], 0, 0
    while i < len(recs):
        n = cuts[k % len(cuts)]
        batches.append((recs[i:i + n], ann[i:i + n], times[i:i + n]))
        i += n
        k += 1
    return batches


KNOB_SETS = st.fixed_dictionaries({
    "min_group": st.sampled_from((1, 2, 8, 64)),
    "min_run": st.sampled_from((1, 3, 64)),
    "min_backoff": st.sampled_from((1, 16)),
    "max_backoff": st.sampled_from((1, 4, 1024)),
    "sim_max": st.sampled_from((0, 1, 3, 64, 1 << 30)),
    "first_chunk": st.sampled_from((1, 7, 4096)),
    "min_chunk": st.sampled_from((1, 5, 256)),
})
OPTIONS = st.fixed_dictionaries({
    "ignore_checksums": st.booleans(),
    "report_gaps_for_partial": st.booleans(),
    "likely_server_ports": st.sampled_from((LIKELY_SERVER_PORTS, frozenset())),
    "excessive_data_without_further_acks": st.sampled_from(
        (TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS, 0, 3000, 20_000)),
})

EXAMPLES = int(os.environ.get("TCPSCOPE_HYPOTHESIS_EXAMPLES", "300"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.data_too_large])
@given(capture(), KNOB_SETS, OPTIONS)
def test_generated_conversations(batches, knobs, options) -> None:
    assert_same(batches, {"drawn": knobs, "eager": KNOBS["eager"]}, **options)
