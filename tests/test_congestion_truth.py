"""Ground truth from the kernel: the sender model against the sender's own TCP_INFO.

Each fixture of fixtures/cc_truth/ (scripts/fixtures/congestion.py; fixtures/README.md)
is a bulk transfer through a bottleneck relay with the sender's TCP_INFO sampled
every 5 ms on the capture's clock, captured at the sender and at the receiver.
At every sample during the transfer (from the first data segment until the kernel
counts every byte acknowledged), the model's estimate in force at that instant --
the analyzer fed every frame captured before it, asked as of that instant -- is
compared with the kernel's:

- cwnd: |estimate - snd_cwnd| in segments and as a fraction of snd_cwnd (median,
  90th percentile, share within +-1 segment);
- phase: slow start / congestion avoidance (snd_cwnd < snd_ssthresh, ca_state Open or
  Disorder; for BBR, startup by its pacing gain), CWR, fast recovery, RTO recovery
  (ca_state 2, 3, 4);
- what held the sender back: the kernel's busy / rwnd_limited / sndbuf_limited times
  over the 5 ms before the sample, against the `limited_by` of the sender's next
  segment (the wait that sample fell in);
- the family guessed for the connection.

Asserted, as issue 11 asks, for Reno and CUBIC: median relative cwnd error at most
10% at the sender and 25% at the receiver, phase agreement at least 90% at the
sender (at the receiver at least 85%: it sees a blackhole only when data flows again,
and a sender's idle restart one path delay late -- the figures are printed), and the
family right on every bulk fixture with loss. BBR's figures are printed, not held
(docs/congestion.md says what limits them).
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from tcpscope.analysis import Analyzer
from tcpscope.analysis.congestion import FAMILIES, LIMITS, sender_state
from tcpscope.capture import open_capture
from tcpscope.wire import dissect_batch
from tests.conftest import FIXTURES

TRUTH = FIXTURES / "cc_truth"
NAMES = sorted(p.name[: -len(".truth.json.gz")] for p in TRUTH.glob("*.truth.json.gz"))
SIDES = ("sender", "receiver")
SENDER_IP = bytes([10, 200, 1, 1])
#: bulk transfers with loss: the family must be named right there
BULK_WITH_LOSS = {n for n in NAMES if any(k in n for k in ("loss", "delay", "blackhole"))}

MAX_MEDIAN_REL = {"sender": 0.10, "receiver": 0.25}
MIN_PHASE = {"sender": 0.90, "receiver": 0.85}


@lru_cache(maxsize=None)
def truth(name: str) -> dict:
    with gzip.open(TRUTH / f"{name}.truth.json.gz") as f:
        return json.load(f)


def kernel_phase(ti: dict, i: int, cc: str) -> str:
    st = ti["ca_state"][i]
    if st in (2, 3, 4):
        return {2: "cwr", 3: "fast_recovery", 4: "rto_recovery"}[st]
    if cc == "bbr":  # startup (pacing gain 2.89) is BBR's slow start
        return "slow_start" if ti["bbr_pacing_gain"][i] > 512 else "congestion_avoidance"
    return "slow_start" if ti["snd_cwnd"][i] < ti["snd_ssthresh"][i] else "congestion_avoidance"


def kernel_limit(ti: dict, i: int) -> str:
    """What Linux's chronographs say held the sender over the interval before sample i."""
    dt = (ti["t_ns"][i] - ti["t_ns"][i - 1]) / 1e3
    busy = ti["busy_time"][i] - ti["busy_time"][i - 1]
    rwnd = ti["rwnd_limited"][i] - ti["rwnd_limited"][i - 1]
    sndbuf = ti["sndbuf_limited"][i] - ti["sndbuf_limited"][i - 1]
    if rwnd > dt / 2:
        return "rwnd"
    return "app" if sndbuf > dt / 2 or busy < dt / 2 else "cwnd"


@dataclass
class Figures:
    name: str
    side: str
    cc: str
    samples: int
    median: float
    p90: float
    median_rel: float
    p90_rel: float
    within1: float
    phase: float
    limit: float
    family: str
    confidence: int


def read(path: Path):
    recs, ts, frames, ifaces = [], [], [], []
    with open_capture(path) as cap:
        for b in cap:
            recs.append(dissect_batch(b))
            ts.append(np.asarray(b.ts_ns, np.int64))
            frames.append(b.frame_numbers)
            ifaces.append(np.asarray(b.iface, np.uint16))
    return np.concatenate(recs), np.concatenate(ts), np.concatenate(frames), np.concatenate(ifaces)


@lru_cache(maxsize=None)
def figures(name: str, side: str) -> Figures:
    doc = truth(name)
    ti = doc["tcp_info"]
    rec, ts, frames, ifaces = read(TRUTH / f"{name}_{side}.pcap.gz")
    from_sender = np.array([bytes(a[:4]) == SENDER_IP for a in rec["src"]])
    first_data = ts[from_sender & (rec["payload_len"] > 0)][0]
    t = np.array(ti["t_ns"])
    done = np.array(ti["bytes_acked"]) >= doc["application"]["bytes"]
    end = t[np.argmax(done)] if done.any() else t[-1]
    samples = np.flatnonzero((t >= first_data) & (t <= end))
    samples = samples[samples > 0]

    # the sender's segments with the wait before each (one pass, for limited_by)
    whole = Analyzer("improved").feed(rec, ts, frames, ifaces)
    mine = from_sender & (whole["cwnd_est"] >= 0)
    mine_ts, mine_limit = ts[mine], whole["limited_by"][mine]

    an = Analyzer("improved")
    fed = 0
    err, rel, phase_ok, limit_ok, limit_n = [], [], 0, 0, 0
    stream_side = None
    for i in samples:
        upto = int(np.searchsorted(ts, t[i], side="right"))
        if upto > fed:
            an.feed(rec[fed:upto], ts[fed:upto], frames[fed:upto], ifaces[fed:upto])
            fed = upto
        if stream_side is None:
            stream_side = 0 if bytes(an.connections()[0]["client_addr"][:4]) == SENDER_IP else 1
        state = sender_state(an, 0, stream_side, int(t[i]))
        if state is None:
            continue
        kernel = int(ti["snd_cwnd"][i])
        e = abs(state.cwnd - kernel)
        err.append(e)
        rel.append(e / kernel)
        phase_ok += state.phase == kernel_phase(ti, i, doc["cc"])
        after = int(np.searchsorted(mine_ts, t[i], side="right"))
        if after < len(mine_ts):
            limit_n += 1
            limit_ok += LIMITS[mine_limit[after]] == kernel_limit(ti, i)
    an.feed(rec[fed:], ts[fed:], frames[fed:], ifaces[fed:])
    row = an.connections()[0]
    err_a, rel_a = np.array(err, float), np.array(rel)
    return Figures(name, side, doc["cc"], len(err), float(np.median(err_a)),
                   float(np.percentile(err_a, 90)), float(np.median(rel_a)),
                   float(np.percentile(rel_a, 90)), float(np.mean(err_a <= 1)),
                   phase_ok / len(err), limit_ok / max(limit_n, 1),
                   FAMILIES[int(row["cc_guess"][stream_side])], int(row["cc_confidence"][stream_side]))


def table(rows: list[Figures]) -> str:
    head = (f"{'fixture':<20} {'capture':<8} {'n':>5} {'|err| med':>9} {'p90':>5} {'rel med':>7} "
            f"{'p90':>6} {'±1':>6} {'phase':>6} {'limit':>6}  family")
    lines = [head]
    for f in rows:
        lines.append(f"{f.name:<20} {f.side:<8} {f.samples:>5} {f.median:>9.1f} {f.p90:>5.1f} "
                     f"{f.median_rel:>7.1%} {f.p90_rel:>6.0%} {f.within1:>6.1%} {f.phase:>6.1%} "
                     f"{f.limit:>6.1%}  {f.family} ({f.confidence}%)")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def all_figures() -> list[Figures]:
    if not NAMES:
        pytest.skip("no congestion fixtures in fixtures/cc_truth")
    rows = [figures(n, s) for n in NAMES for s in SIDES]
    print()
    print(table(rows))
    return rows


def test_fixtures_hold_a_transfer_and_its_samples():
    assert len(NAMES) >= 15
    for name in NAMES:
        ti = truth(name)["tcp_info"]
        gaps = np.diff(ti["t_ns"])
        assert gaps.max() <= 20_000_000, f"{name}: TCP_INFO samples {gaps.max() / 1e6:.1f} ms apart"
        assert np.median(gaps) <= 10_000_000, name
    assert {truth(n)["cc"] for n in NAMES} == {"reno", "cubic", "bbr"}


@pytest.mark.parametrize("name", [n for n in NAMES if truth(n)["cc"] in ("reno", "cubic")])
@pytest.mark.parametrize("side", SIDES)
def test_reno_and_cubic_held_to_the_kernel(all_figures, name, side):
    f = figures(name, side)
    assert f.median_rel <= MAX_MEDIAN_REL[side], f"{name} at the {side}: {table([f])}"
    assert f.phase >= MIN_PHASE[side], f"{name} at the {side}: {table([f])}"


@pytest.mark.parametrize("name", sorted(BULK_WITH_LOSS))
@pytest.mark.parametrize("side", SIDES)
def test_family_on_bulk_transfers_with_loss(all_figures, name, side):
    f = figures(name, side)
    if f.cc == "bbr" and side == "receiver":
        pytest.skip("BBR is told by its pacing, which only a capture beside the sender shows")
    assert f.family == f.cc, f"{name} at the {side}: guessed {f.family} ({f.confidence}%)"


def test_bbr_figures_are_reported(all_figures):
    """BBR's window is 2 x its bandwidth-delay estimate while it paces below it: the
    model follows its filters round by round (the figures are in the printed table)."""
    bbr = [f for f in all_figures if f.cc == "bbr" and f.side == "sender"]
    assert bbr and all(f.median_rel < 0.5 for f in bbr)
