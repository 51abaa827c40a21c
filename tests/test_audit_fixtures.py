"""The audit on its own real-kernel fixtures (fixtures/audit/*.pcap): each finding, with the
counts and ports known from how the capture was made and from the kernel's view recorded
beside it (*.kernel.json); and no finding on any other capture — the project's fixtures and
the shared corpus — except those listed in ACCEPTED, with the reason."""
from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from tcpscope.capture.errors import CaptureError
from tcpscope.present.audit import audit_file

from conftest import FIXTURES, corpus_files, fixture_files


@lru_cache(maxsize=None)
def findings(path: str) -> tuple[dict, ...]:
    return tuple(f.as_dict() for f in audit_file(path).findings)


AUDIT = FIXTURES / "audit"


def kernel(name: str) -> dict:
    return json.loads((AUDIT / f"{name}.kernel.json").read_text())


def of(name: str, kind: str, **match) -> list[dict]:
    return [d for d in findings(str(AUDIT / f"{name}.pcap"))
            if d["kind"] == kind and all(d.get(k) == v for k, v in match.items())]


def kinds(name: str) -> Counter:
    return Counter(d["kind"] for d in findings(str(AUDIT / f"{name}.pcap")))


# -- each fixture: exactly its findings ------------------------------------------------

def test_synflood_findings_and_the_kernel():
    k = kernel("synflood")
    assert kinds("synflood") == Counter(syn_flood=3, syn_cookies=2)
    queue, flood = k["queue"], k["flood"]
    for name, ph in k["phases"].items():
        (f,) = of("synflood", "syn_flood", port=ph["port"])
        assert f["count"] >= flood and f["peak_rate"] >= 100 and f["spoofed_like"] == flood
        assert abs(f["sources"] - flood) <= flood * 0.05                # HyperLogLog estimate
        c = ph["counters"]
        if ph["cookies"] == 0:
            # the SYN queue (backlog + 1) kept requests; every other SYN was dropped
            assert f["half_open_kept"] == queue == ph["ss_syn_recv_peak"]
            assert f["unanswered"] == flood - queue + 1                 # + the real client
            assert c["TcpExt.TCPReqQFullDrop"] >= f["unanswered"]
            assert (f["legit_completed"], f["legit_failed"]) == (0, 1)
            assert not of("synflood", "syn_cookies", port=ph["port"])
            assert c["TcpExt.SyncookiesSent"] == 0
            continue
        (ck,) = of("synflood", "syn_cookies", port=ph["port"])
        assert (f["legit_completed"], f["legit_failed"]) == (1, 0)
        assert c["TcpExt.SyncookiesRecv"] == 1
        if ph["cookies"] == 1:
            # the queue first, then cookies; the real client's cookie is invisible on the
            # wire (its timestamp's random offset hides the encoded options)
            assert ck["queued"] == queue and f["half_open_kept"] == queue
            assert ck["count"] == ck["options_dropped"] == ck["never_retransmitted"]
            assert ck["count"] + 1 == c["TcpExt.SyncookiesSent"]
            assert ck["marks"] == ["options_dropped", "never_retransmitted"]
        else:
            # always cookies; timestamps without offsets: the real client's cookie is seen
            assert ck["count"] == c["TcpExt.SyncookiesSent"] == flood + 1
            assert ck["options_dropped"] == flood // 2 and ck["ts_encoded"] == flood // 2 + 1
            assert ck["completed_via_cookie"] == c["TcpExt.SyncookiesRecv"] == 1
            assert ck["queued"] == 0 and f["half_open_kept"] == 0
        assert ck["confidence"] == "high"


def test_scan_findings():
    k = kernel("scans")
    assert kinds("scans") == Counter(port_scan=6, host_scan=1)
    opened, closed, dropped = (sorted(k[x]) for x in ("open", "closed", "dropped"))
    want = {"syn": (opened, closed, len(dropped)), "connect": (opened, closed, len(dropped)),
            "fin": ([], closed, len(opened) + len(dropped)),
            "null": ([], closed, len(opened) + len(dropped)),
            "xmas": ([], closed, len(opened) + len(dropped)),
            "ack": ([], sorted(opened + closed), len(dropped))}
    for tech, (o, c, filtered) in want.items():
        (f,) = of("scans", "port_scan", technique=tech)
        assert (f["open_ports"], f["closed_ports"], f["filtered_count"]) == (o, c, filtered), tech
        assert f["ports"] == len(k["ports"]) and f["source"] == "10.200.1.1"
        assert f["target"] == "10.200.1.2" and f["confidence"] == "high"
    # what the connect scan's own sockets saw
    saw = k["connect_scan_saw"]
    assert sorted(int(p) for p, s in saw.items() if s == "open") == opened
    (h,) = of("scans", "host_scan")
    # port 22 of 32 addresses, and of the server's own address (the SYN port scan)
    assert h["hosts"] == len(k["hosts"]) + 1 and h["port"] == 22 and h["technique"] == "syn"
    assert sorted(h["open_hosts"]) == sorted(k["hosts_open"] + ["10.200.1.2"])
    assert h["filtered_count"] == len(k["hosts_dropped"])
    # every RST the target sent answered a probe the audit lists as closed
    scans = of("scans", "port_scan") + of("scans", "host_scan")
    assert sum(f["closed_count"] for f in scans) == k["counters"]["target"]["Tcp.OutRsts"]
    # the scanner's kernel reset the raw SYN scans' SYN-ACKs, and connect() aborted the rest
    # (the host scan's open hosts include the server's port 22, reset once already)
    opens = [f["open_count"] for f in scans if f["technique"] in ("syn", "connect")]
    assert sum(opens) - 1 == k["counters"]["scanner"]["Tcp.OutRsts"]


def test_failed_connection_findings():
    k = kernel("failed")
    assert kinds("failed") == Counter(failed_connections=3)
    for what, port in k["ports"].items():
        hits = of("failed", "failed_connections", port=port)
        if what == "ok":
            assert not hits
            continue
        (f,) = hits
        assert f[what] == f["count"] == k["attempts"][what] == k["client_saw"][what]
        assert f["clients"] == 1 and f["succeeded"] == 0
    (drop,) = of("failed", "failed_connections", port=k["ports"]["unanswered"])
    # Linux repeats an unanswered SYN after ~1 s each time at first (tcp_syn_linear_timeouts)
    assert drop["syns_per_attempt"] > 1 and drop["backoff"] == "constant"
    assert all(0.9 < s < 1.2 for s in drop["retry_schedule"])
    c = k["counters"]["client"]
    assert c["Icmp.InDestUnreachs"] == k["attempts"]["unreachable"]
    assert c["Tcp.AttemptFails"] == k["attempts"]["refused"] + k["attempts"]["unreachable"]


def test_isn_findings():
    k = kernel("isn")
    assert kinds("isn") == Counter(isn=1)
    (f,) = of("isn", "isn")
    steps = {b - a for a, b in zip(k["weak_isns"], k["weak_isns"][1:])}
    assert f["source"] == k["weak_host"] and f["verdict"] == "constant_increment"
    assert {f["gcd"]} == steps and f["samples"] == len(k["weak_isns"])
    judged = {h["host"]: h["verdict"] for h in audit_file(AUDIT / "isn.pcap").isn}
    assert all(judged[h] == "random" for h in k["linux_hosts"])
    # the weak host's address is the client namespace's: its kernel reset every SYN-ACK
    assert k["counters"]["client"]["Tcp.OutRsts"] == len(k["weak_isns"])


def test_time_wait_and_reuse_findings():
    k = kernel("timewait")
    assert kinds("timewait") == Counter(time_wait_pileup=1, port_reuse=1)
    (tw,) = of("timewait", "time_wait_pileup")
    assert tw["peak"] == k["pileup"]["connections"] == k["ss"]["client_time_wait_after_pileup"]
    assert tw["source"] == "10.200.1.1" and tw["role"] == "client"
    assert tw["top_peer"] == f"10.200.1.2:{k['pileup']['port']}"
    (ru,) = of("timewait", "port_reuse")
    assert ru["target"] == "10.200.1.2" and ru["role"] == "server"
    assert ru["reused"] == ru["accepted"] == len(k["reuse"]["client_ports"])
    assert k["ss"]["server_time_wait_after_reuse"] == len(k["reuse"]["client_ports"])


def test_storm_findings():
    k = kernel("storms")
    assert kinds("storms") == Counter(retransmission_storm=1, rst_storm=1)
    (r,) = of("storms", "retransmission_storm")
    assert r["source"] == "10.200.1.1" and r["target"] == "10.200.1.2"
    assert 50 <= r["count"] <= k["counters"]["client"]["Tcp.RetransSegs"]
    assert r["share"] >= 0.2
    (s,) = of("storms", "rst_storm")
    assert s["source"] == "10.200.1.2" and s["count"] == k["aborts"]["connections"]
    assert s["count"] == k["counters"]["server"]["Tcp.OutRsts"]


# -- no false finding elsewhere --------------------------------------------------------

#: Findings on captures that are not the audit's fixtures, each checked by hand.
ACCEPTED = {
    "OISF__firewall__tcp-session-syn-flood-drop-precedence__input.pcap": {
        "syn_flood": "a SYN flood test capture: 200 SYNs to 198.51.100.5:443 within a second",
        "isn": "the same capture's SYNs are built with ISNs counting up by one",
    },
    "zeek__echo-connections.pcap.gz": {
        "time_wait_pileup": "500 echo connections the client closes first within a second: it "
                            "holds 500 TIME_WAITs at once, exactly the rule's threshold",
    },
}
UNREADABLE = {"seladb__solaris.snoop"}   # Solaris snoop: not a format tcpscope reads


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_no_finding_on_other_fixtures(path: Path):
    assert findings(str(path)) == ()


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_no_false_finding_on_the_corpus(path: Path):
    if path.name in UNREADABLE:
        with pytest.raises(CaptureError):
            audit_file(path)
        return
    got = Counter(d["kind"] for d in findings(str(path)))
    allowed = ACCEPTED.get(path.name, {})
    assert set(got) <= set(allowed), (path.name, dict(got))


def test_corpus_summary(corpus):
    """Print how many corpus captures have findings (all accepted above)."""
    flagged = {p.name for p in corpus if p.name not in UNREADABLE and findings(str(p))}
    assert flagged == set(ACCEPTED)
    print(f"\naudit on the corpus: {len(corpus) - len(UNREADABLE)} captures, "
          f"{len(flagged)} with findings, all accepted: {sorted(flagged)}")
