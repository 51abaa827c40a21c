"""The audit's parts: the attempt facts derived from packets, the ISN figures, the bounded
tables, and memory that grows with tracked keys, not with packets."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from tcpscope.analysis.audit import Audit
from tcpscope.analysis.audit.attempts import ATTEMPT_DTYPE, Outcome, outcomes, syn_intervals
from tcpscope.analysis.audit.isn import isn_figures
from tcpscope.analysis.audit.keys import (
    BoundedTable, HyperLogLog, Promoter, SeenFilter, host_keys, mix,
)
from tcpscope.capture.writer import PcapWriter
from tcpscope.pipeline import Options, run
from tcpscope.wire import linktypes
from tcpscope.wire.builder import TCP, Ether, Frame, IPv4

from conftest import FIXTURES


def attempts_of(path, capacity: int = 1 << 16):
    """Every attempt the audit retired, with its outcome."""
    audit = Audit(capacity)
    got = []
    retire = audit._retire
    audit._retire = lambda att: (got.append(att.copy()), retire(att))
    run(path, [audit], Options(mode="improved", states=False))
    att = np.concatenate(got) if got else np.zeros(0, ATTEMPT_DTYPE)
    return att, outcomes(att), audit


# -- what an attempt came to, from the packets ---------------------------------------

@pytest.mark.parametrize("name, want", [
    ("life_unanswered.pcap", [Outcome.UNANSWERED]),
    ("life_rejected.pcap", [Outcome.REFUSED]),
    ("refused.pcap", [Outcome.REFUSED, Outcome.REFUSED]),
    ("life_4way.pcap", [Outcome.COMPLETED]),
    ("life_synack_retry.pcap", [Outcome.COMPLETED]),
    ("life_midstream.pcap", [Outcome.MIDSTREAM]),
    ("handshake_retries.pcap", [Outcome.COMPLETED, Outcome.COMPLETED, Outcome.UNANSWERED]),
])
def test_outcomes_on_kernel_captures(name, want):
    att, out, _ = attempts_of(FIXTURES / name)
    assert [Outcome(o) for o in out[np.argsort(att["sid"])]] == want


def test_synack_retransmissions_count_as_kept_state():
    # stream 1 of handshake_retries: the client's ACKs are dropped, the server resends its
    # SYN-ACK twice (fixtures/README.md)
    att, out, _ = attempts_of(FIXTURES / "handshake_retries.pcap")
    row = att[att["sid"] == 1][0]
    assert row["synack_retx"] == 2 and row["done_frame"] > row["synack_frame"]
    row = att[att["sid"] == 0][0]
    assert row["syn_n"] == 3     # SYN at 0, 1 s and 2 s
    assert np.allclose(syn_intervals(att[att["sid"] == 0])[0][:2], [1.0, 1.0], atol=0.05)


def test_half_open_is_not_completed():
    """A SYN scan's open ports: SYN, SYN-ACK, the scanner's RST — never completed."""
    att, out, _ = attempts_of(FIXTURES / "audit" / "scans.pcap")
    half = att[out == Outcome.RESET_HALF_OPEN]
    assert len(half) and (half["done_frame"] == 0).all() and (half["crst_frame"] > 0).all()


def test_small_ring_follows_short_attempts_the_same():
    """A ring of 16 attempts (slices of 8 rows) still sees every short scan probe."""
    full, out_full, _ = attempts_of(FIXTURES / "audit" / "scans.pcap")
    small, out_small, audit = attempts_of(FIXTURES / "audit" / "scans.pcap", capacity=16)
    assert sorted(out_full.tolist()) == sorted(out_small.tolist())
    assert [(f.kind, f.count) for f in audit.report.findings] == \
        [(f.kind, f.count) for f in attempts_of(FIXTURES / "audit" / "scans.pcap")[2].report.findings]


# -- ISN figures -----------------------------------------------------------------------

T = [i * 50_000_000 for i in range(12)]   # every 50 ms
_RNG = random.Random(3)
RANDOM = [_RNG.getrandbits(32) for _ in range(12)]


@pytest.mark.parametrize("isns, verdict", [
    ([7] * 12, "constant"),
    ([5, 9, 5, 11, 13, 17, 19, 23, 29, 31, 37, 41], "repeated"),
    ([1_000_000 + 64_000 * k for k in range(12)], "constant_increment"),
    ([(12345 + t // 4000 + (k % 3)) % 2**32 for k, t in enumerate(T)], "time_linear"),
    ([1000 + sum(range(k * 37, k * 37 + k)) for k in range(12)], "small_increments"),
    (RANDOM, "random"),
])
def test_isn_verdicts(isns, verdict):
    assert isn_figures(T, isns)["verdict"] == verdict


def test_isn_figures_as_nmap_computes_them():
    fig = isn_figures(T, [1_000_000 + 64_000 * k for k in range(12)])
    assert fig["gcd"] == 64_000
    assert fig["isr"] == round(8 * np.log2(64_000 / 0.05))   # 1.28 M increments/s
    assert fig["sp"] == 0                                     # no variance at all


# -- bounded structures ----------------------------------------------------------------

def test_seen_filter_never_forgets():
    f = SeenFilter()
    keys = mix(np.arange(200_000), np.arange(200_000))
    assert not f.seen_before(keys[:100_000]).any()
    assert f.seen_before(keys[:100_000]).all()
    assert f.seen_before(keys[100_000:]).mean() < 0.01     # false "seen": rare


def test_promoter_hands_on_first_event_with_second():
    p = Promoter({"v": np.int64})
    k = np.array([1, 2, 3], dtype=np.uint64)
    keys, cols = p.pass_on(k, {"v": np.array([10, 20, 30])}, np.zeros(3, bool))
    assert len(keys) == 0
    keys, cols = p.pass_on(k[:1], {"v": np.array([11])}, np.zeros(1, bool))
    assert keys.tolist() == [1, 1] and cols["v"].tolist() == [10, 11]


def test_bounded_table_keeps_the_busiest():
    t = BoundedTable(4, lambda k: [k])
    for k in range(6):
        t.get(k, 10 + k)
    for k in range(100, 110):
        t.get(k, 1)
    assert len(t) <= 8 and all(k in t for k in (4, 5)) and t.evicted > 0


def test_hyperloglog_counts_distinct_keys():
    h = HyperLogLog()
    keys = mix(np.arange(100_000))
    h.add(keys)
    h.add(keys[:50_000])
    assert abs(h.count() - 100_000) < 5_000


def test_host_keys_tell_versions_apart():
    a = np.zeros((2, 16), np.uint8)
    a[:, :4] = [10, 0, 0, 1]
    k = host_keys(a, np.array([4, 6], np.uint8))
    assert k[0] != k[1]


# -- memory grows with tracked keys, not with packets ---------------------------------

def spoofed_flood(path, count: int, seed: int = 1) -> None:
    """`count` SYNs from as many random sources to 10.0.0.2:80 (a built template, its
    source address, port and ISN patched; checksums are not checked by the audit)."""
    rng = random.Random(seed)
    tmpl = bytearray(Frame(Ether(), IPv4(src="1.1.1.1", dst="10.0.0.2"),
                           TCP(sport=1, dport=80, flags="S")).build())
    with PcapWriter(path, linktypes.ETHERNET) as w:
        for i in range(count):
            tmpl[26:30] = struct.pack(">I", rng.getrandbits(32) | 1 << 24)
            tmpl[34:36] = struct.pack(">H", rng.randrange(1024, 65536))
            tmpl[38:42] = struct.pack(">I", rng.getrandbits(32))
            w.write(10**18 + i * 10**5, bytes(tmpl))


def test_a_spoofed_flood_costs_no_entry_per_source(tmp_path):
    path = tmp_path / "flood.pcap"
    spoofed_flood(path, 40_000)
    audit = Audit(capacity=4096)
    run(path, [audit], Options(mode="improved", states=False))
    rep = audit.report
    (flood,) = [f for f in rep.findings if f.kind == "syn_flood"]
    assert flood.count == 40_000 and flood.fields["unanswered"] == 40_000
    assert abs(flood.fields["sources"] - 40_000) < 2_000
    assert flood.fields["peak_rate"] == 10_000
    assert [f.kind for f in rep.findings] == ["syn_flood"]
    det = rep.stats["detectors"]
    # 40,000 sources: each detector tracks a handful of keys (seen-filter false positives)
    assert all(d["entries"] < 400 for d in det.values()), det
    assert rep.stats["attempt_table_bytes"] == 4096 * ATTEMPT_DTYPE.itemsize
