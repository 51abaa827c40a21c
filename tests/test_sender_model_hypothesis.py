"""Random segment sequences through the sender model (improved mode): it never
fails, its estimates stay in range, batches do not change them, and the state a
connection row and `sender_state` report is the one the annotations show.

The sequences are test_analysis_hypothesis's (a few 4-tuples, numbers near the
ISNs, so holes, SACKs, retransmissions and reused ports happen), plus timestamps
and ECN echoes, handshakes that put the capture beside or away from the sender,
and pauses up to a few seconds (timeouts, restarts after idle).
"""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tcpscope.analysis.congestion import FAMILIES, LIMITS, PHASES, sender_state
from tcpscope.analysis.engine import Analyzer
from tcpscope.wire.record import OPTION
from tests.analysis_helpers import feed_in_batches
from tests.test_analysis_hypothesis import SETTINGS, build, segment

ECE = 0x40


@st.composite
def extras(draw, n: int):
    """Per segment: a TSval / TSecr (or none) and whether it echoes ECN."""
    out = []
    for _ in range(n):
        ts = draw(st.one_of(st.none(), st.tuples(st.integers(0, 50), st.integers(0, 50))))
        out.append((ts, draw(st.integers(0, 9)) == 0))
    return out


def records(segs, extra):
    recs, times, _ = build(segs)
    for i, (ts, ece) in enumerate(extra[: len(recs)]):
        if ts is not None:
            recs["opt_present"][i] |= OPTION["TIMESTAMP"]
            recs["ts_val"][i], recs["ts_ecr"][i] = 1000 + ts[0], 1000 + ts[1]
        if ece:
            recs["tcp_flags"][i] |= ECE
    return recs, times


SEQS = st.lists(segment(), min_size=1, max_size=80)


@SETTINGS
@given(SEQS.flatmap(lambda segs: st.tuples(st.just(segs), extras(len(segs)))))
def test_estimates_stay_in_range(case):
    segs, extra = case
    recs, times = records(segs, extra)
    ann = Analyzer("improved").feed(recs, times, np.arange(1, len(recs) + 1))
    have = ann["cwnd_est"] >= 0
    assert (ann["cwnd_est"][have] >= 1).all()
    assert ((ann["ssthresh_est"] == -1) | (ann["ssthresh_est"] >= 2)).all()
    assert (ann["in_flight"][have] >= 0).all() and (ann["in_flight"][~have] == -1).all()
    assert (ann["cc_phase"][have] >= 1).all() and (ann["cc_phase"][~have] == 0).all()
    assert (ann["cc_phase"] < len(PHASES)).all() and (ann["limited_by"] < len(LIMITS)).all()
    assert ((ann["cc_episode_end"] == 0) | (ann["cc_episode_start"] > 0)
            | (ann["cc_episode_trigger"] == 6)).all()  # a CWR starts on the segment that says it
    # a sender's round trips only go forward (a model per direction: the roles may flip
    # when a handshake shows up late, the direction does not)
    for stream in np.unique(ann["stream"][have]):
        for from_port_80 in (False, True):
            mine = have & (ann["stream"] == stream) & ((recs["sport"] == 80) == from_port_80)
            assert (np.diff(ann["cc_round"][mine].astype(np.int64)) >= 0).all()


@SETTINGS
@given(SEQS.flatmap(lambda segs: st.tuples(st.just(segs), extras(len(segs)))),
       st.lists(st.integers(1, 7), min_size=1, max_size=20))
def test_batches_do_not_change_the_estimates(case, cuts):
    segs, extra = case
    recs, times = records(segs, extra)
    frames = np.arange(1, len(recs) + 1)
    whole_an = Analyzer("improved")
    whole = whole_an.feed(recs, times, frames)
    an = Analyzer("improved")
    joined = feed_in_batches(an, recs, times, frames, cuts)
    for name in whole.dtype.names:
        assert np.array_equal(joined[name], whole[name]), name
    a, b = whole_an.connections(), an.connections()
    for name in a.dtype.names:
        assert np.array_equal(a[name], b[name]), name


@SETTINGS
@given(SEQS.flatmap(lambda segs: st.tuples(st.just(segs), extras(len(segs)))),
       st.integers(0, 3_000_000_000))
def test_asking_changes_nothing(case, later_ns):
    """sender_state works time forward on a copy: asking (at any instant) leaves the
    analyzer exactly where it was."""
    segs, extra = case
    recs, times = records(segs, extra)
    frames = np.arange(1, len(recs) + 1)
    half = len(recs) // 2
    plain, asked = Analyzer("improved"), Analyzer("improved")
    plain.feed(recs[:half], times[:half], frames[:half])
    asked.feed(recs[:half], times[:half], frames[:half])
    for stream in range(len(asked.connections())):
        for side in (0, 1):
            s = sender_state(asked, stream, side, int(times[max(half - 1, 0)]) + later_ns)
            if s is not None:
                assert s.cwnd >= 1 and s.in_flight >= 0 and s.family in FAMILIES
                assert s.phase in PHASES and s.limited_by in LIMITS
    x = plain.feed(recs[half:], times[half:], frames[half:])
    y = asked.feed(recs[half:], times[half:], frames[half:])
    for name in x.dtype.names:
        assert np.array_equal(x[name], y[name]), name
