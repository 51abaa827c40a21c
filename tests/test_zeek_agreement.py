"""Agreement with Zeek's own conn.log baselines (tcpscope's ZeekTracker vs Zeek).

For every capture of the shared corpus that has a Zeek baseline with TCP connections
(tests/zeek_baselines.py: which trace, which options), run ZeekTracker with the
options of that Zeek run and compare, connection by connection (matched on the
4-tuple, then in order of first packet), every field the baseline has among
conn_state, history, packets, IP bytes, payload bytes, missed bytes, duration and
the originator. The agreement table is printed; each field must agree on at least
98% of the baseline connections, and every difference is listed below with its
reason (docs/differences.md, "Zeek (conns)"), so a new one fails.
"""
from __future__ import annotations

import pytest

from tcpscope.analysis.zeek import TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS, ZeekTracker
from tcpscope.pipeline import Options, Pipeline

from zeek_baselines import CASES, EXCLUDED, FILES, ZEEK, Case, baseline_rows

pytestmark = pytest.mark.oracle

FIELDS = ("conn_state", "history", "orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes",
          "orig_bytes", "resp_bytes", "missed_bytes", "duration", "id.orig_h", "id.orig_p",
          "orig_size", "resp_size", "orig_state", "resp_state")
#: The fields the brief holds to >= 98%.
REQUIRED = ("conn_state", "history", "orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes",
            "orig_bytes", "resp_bytes")

#: History letters that Zeek's scripts or application analyzers add, not its TCP analyzer:
#: 'X' ("connection analysis partial") comes from Reporter::limit_reached_weird and from
#: analyzers hitting their limits. They are removed from Zeek's history before comparing,
#: and each connection where that happens is listed in NORMALIZED.
SCRIPT_LETTERS = "X"

#: (baseline, connection, field) -> reason, for each baseline value compared after removing
#: letters tcpscope cannot produce.
NORMALIZED = {
    ("core.reporter-limit-reached-weird/conn.log", "#1", "history"):
        "the test script calls Reporter::limit_reached_weird, which adds 'X' (ShADXadFf)",
    ("scripts.base.protocols.login.nvt-contentline-length/conn-long.log", "#1", "history"):
        "Zeek's telnet (NVT) analyzer exceeds its line limit and adds 'X' (ShADXFf)",
}

#: (baseline, connection, field) -> reason: the remaining known differences.
DIFFERENCES: dict[tuple[str, str, str], str] = {}


def _ours(case: Case) -> list[dict]:
    z = ZeekTracker(
        ignore_checksums=case.ignore_checksums, likely_server_ports=case.likely,
        report_gaps_for_partial=case.report_gaps_for_partial,
        excessive_data_without_further_acks=case.options.get(
            "excessive_data", TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS))
    for chunk in Pipeline([], Options(states=False)).read(FILES / case.capture):
        rec, ann, ts = chunk.records, chunk.annotations, chunk.ts_ns
        if case.port_filter is not None:  # the run's BPF "port N"
            keep = (rec["sport"] == case.port_filter) | (rec["dport"] == case.port_filter)
            rec, ann, ts = rec[keep], ann[keep], ts[keep]
        z.feed(rec, ann, ts)
    out = []
    for r in sorted(z.rows(), key=lambda r: r.ts_ns):
        d = r.as_dict()
        d.update(orig_size=r.orig_size, resp_size=r.resp_size, orig_state=r.orig_state,
                 resp_state=r.resp_state)
        if r.duration is not None:
            d["duration"] = f"{r.duration:.6f}"
        out.append({k: "-" if v is None else ("T" if v is True else "F" if v is False else str(v))
                    for k, v in d.items()})
    return out


def _key(row: dict) -> frozenset:
    return frozenset([(row["id.orig_h"], row["id.orig_p"]), (row["id.resp_h"], row["id.resp_p"])])


def _pairs(base: list[dict], mine: list[dict]) -> list[tuple[str, dict, dict | None]]:
    if base and "id.orig_p" in base[0]:
        pool: dict = {}
        for m in mine:
            pool.setdefault(_key(m), []).append(m)
        out = []
        for b in base:
            cand = pool.get(_key(b))
            name = f"{b['id.orig_h']}:{b['id.orig_p']}>{b['id.resp_h']}:{b['id.resp_p']}"
            out.append((name, b, cand.pop(0) if cand else None))
        return out
    return [(f"#{i + 1}", b, mine[i] if i < len(mine) else None) for i, b in enumerate(base)]


def compare() -> tuple[dict[str, list[int]], list[tuple[str, str, str, str, str]], set]:
    totals: dict[str, list[int]] = {f: [0, 0] for f in FIELDS + ("rows",)}
    diffs = []
    used_norm = set()
    for case in CASES:
        base, mine = baseline_rows(case), _ours(case)
        if case.kind == "log" and base and "id.orig_p" in base[0]:
            # Whole conn.logs: tcpscope must not log a TCP connection Zeek did not.
            totals["rows"][1] += 1
            if len(mine) == len(base):
                totals["rows"][0] += 1
            else:
                diffs.append((case.baseline, "*", "rows", str(len(base)), str(len(mine))))
        for name, b, m in _pairs(base, mine):
            for f in FIELDS:
                if f not in b:
                    continue
                want = b[f]
                if f == "history" and any(ch in want for ch in SCRIPT_LETTERS):
                    used_norm.add((case.baseline, name, f))
                    want = "".join(ch for ch in want if ch not in SCRIPT_LETTERS)
                got = None if m is None else m.get(f)
                totals[f][1] += 1
                if got == want:
                    totals[f][0] += 1
                else:
                    diffs.append((case.baseline, name, f, b[f], str(got)))
    return totals, diffs, used_norm


def test_zeek_conn_log_agreement():
    missing = [c.capture for c in CASES if not (FILES / c.capture).exists()]
    if missing:
        pytest.skip(f"shared captures missing: {missing[:3]}")
    totals, diffs, used_norm = compare()
    print("\nZeek conn.log agreement (tcpscope ZeekTracker vs Zeek baselines)")
    print(f"{'field':<15} {'agree':>6} {'of':>5} {'%':>7}")
    for f, (ok, n) in totals.items():
        if n:
            print(f"{f:<15} {ok:>6} {n:>5} {100 * ok / n:>6.1f}%")
    for d in diffs:
        print("  differs:", d)
    unexplained = [d for d in diffs if (d[0], d[1], d[2]) not in DIFFERENCES]
    assert not unexplained, f"differences without a listed reason: {unexplained}"
    stale = set(DIFFERENCES) - {(d[0], d[1], d[2]) for d in diffs}
    assert not stale, f"listed differences that no longer occur: {stale}"
    assert used_norm == set(NORMALIZED), used_norm ^ set(NORMALIZED)
    for f in REQUIRED:
        ok, n = totals[f]
        assert n and ok / n >= 0.98, (f, ok, n)


def test_every_zeek_conn_baseline_is_compared_or_excluded():
    """A new baseline with TCP rows in the corpus must be added to CASES or EXCLUDED."""
    covered = {c.baseline.partition("#")[0] for c in CASES} | set(EXCLUDED)
    found = set()
    for path in ZEEK.glob("*/conn*.log*"):
        rel = f"{path.parent.name}/{path.name}"
        text = path.read_text()
        if "\ttcp\t" in text or "\ttcp" in text or rel in EXCLUDED or rel in covered:
            found.add(rel)
        elif "proto" not in text and "udp" not in text:
            found.add(rel)  # zeek-cut without proto: cannot tell, must be listed
    assert found <= covered, sorted(found - covered)
