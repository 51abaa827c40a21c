"""The sender model's facts where people read them: `packets` columns, the round-trip
timeline, the episodes, the connection's facts and the Python API (docs/congestion.md)."""
from __future__ import annotations

import csv
import gzip
import io
import json

import numpy as np
import pytest

import tcpscope
from tcpscope.analysis import ANNOTATION_DTYPE, CONN_DTYPE
from tcpscope.analysis.congestion import (
    CONN_KEYS, EVENTS, FAMILIES, LIMITS, PHASES, ROUND_DTYPE, conn_facts, data_sender_facts,
    episodes, rounds,
)
from tcpscope.present.packets import write_packets
from tcpscope.present.timeline import COLUMNS, StreamNotFound, render, timeline, write_timeline
from tests.conftest import FIXTURES

TRUTH = FIXTURES / "cc_truth"
RENO = TRUTH / "cc_reno_loss1_sender.pcap.gz"


def truth(name: str) -> dict:
    with gzip.open(TRUTH / f"{name}.truth.json.gz") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def reno():
    return tcpscope.analyze(RENO, mode="improved")


def test_api_columns(reno):
    for name in ("cwnd_est", "ssthresh_est", "in_flight", "cc_phase", "limited_by", "cc_round",
                 "cc_event", "cc_trigger", "cc_episode_end", "cc_episode_start"):
        assert name in ANNOTATION_DTYPE.names
    for name in ("max_cwnd_est", "loss_episodes", "rto_count", "time_limited_ms", "cc_guess",
                 "cc_confidence"):
        assert name in CONN_DTYPE.names
    a = reno.annotations
    sender = (a["from_server"] == 0) & (a["stream"] == 0)
    data = sender & (reno.records["payload_len"] > 0)
    assert (a["cwnd_est"][data] >= 1).all()
    assert (a["cwnd_est"][a["from_server"] == 1] == -1).all()
    assert {PHASES[p] for p in a["cc_phase"][data]} >= {"slow_start", "congestion_avoidance",
                                                        "fast_recovery"}


def test_connection_facts_match_the_kernel(reno):
    facts = conn_facts(reno.connections[0])
    client = facts["client"]
    nstat = truth("cc_reno_loss1")["nstat"]["sender"]
    assert client["cc_guess"] == "reno" and client["cc_confidence"] >= 50
    assert client["loss_episodes"] == nstat["TcpExtTCPSackRecovery"]
    assert client["rto_count"] == nstat.get("TcpExtTCPTimeouts", 0) == 0
    limited = client["time_limited_by"]
    assert set(limited) == {"cwnd", "rwnd", "app", "unknown"}
    assert limited["cwnd"] > 4 * limited["app"]
    assert facts["server"]["max_cwnd_est"] is None and facts["server"]["cc_guess"] == "unknown"
    assert data_sender_facts(reno.connections[0]) == client and tuple(client) == CONN_KEYS


def test_episodes_are_the_kernel_recoveries(reno):
    eps = episodes(reno.annotations, reno.ts_ns, 0)
    assert len(eps) == truth("cc_reno_loss1")["nstat"]["sender"]["TcpExtTCPSackRecovery"]
    assert all(e.end_frame and e.end_frame > e.start_frame and e.end_ns >= e.start_ns for e in eps)
    assert sum(e.retransmitted for e in eps) == truth("cc_reno_loss1")["nstat"]["sender"]["TcpRetransSegs"]
    assert {e.trigger for e in eps} <= {"sack", "rack", "dupacks"}


def test_rtos_are_counted_and_named():
    a = tcpscope.analyze(TRUTH / "cc_cubic_blackhole_sender.pcap.gz", mode="improved")
    kernel = truth("cc_cubic_blackhole")["tcp_info"]["total_rto"][-1]
    assert conn_facts(a.connections[0])["client"]["rto_count"] == kernel
    rto = a.annotations["cc_event"] == EVENTS.index("rto")
    assert int(np.count_nonzero(rto)) == kernel
    assert (a.annotations["cwnd_est"][rto] == 1).all()


def test_rounds(reno):
    r = rounds(reno.records, reno.annotations, reno.ts_ns, 0)
    assert r.dtype == ROUND_DTYPE and len(r) > 50
    assert (np.diff(r["round"].astype(int)) > 0).all()
    rtt = np.median(r["duration_ns"]) / 1e6
    assert 38 < rtt < 60  # 40 ms of path delay plus a little queue
    assert r["retransmitted"].sum() == 1448 * truth("cc_reno_loss1")["nstat"]["sender"]["TcpRetransSegs"]
    assert r["delivered"].sum() <= truth("cc_reno_loss1")["application"]["bytes"] + 1
    assert (r["cwnd"] >= 1).all()


def test_timeline_formats():
    tl = timeline(RENO, 0)
    assert tl.sender == "client"
    rows = [json.loads(line) for line in render(tl, "jsonl").splitlines()]
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0]["round"] == 0 and rows[0]["phase"] == "slow_start"
    assert any("fast_recovery" in r["events"] for r in rows)
    table = list(csv.reader(io.StringIO(render(tl, "csv"))))
    assert tuple(table[0]) == COLUMNS and len(table) == len(rows) + 1
    text = render(tl, "table")
    assert text.splitlines()[1].split()[:4] == ["round", "time", "rtt", "cwnd"]
    assert max(len(line) for line in text.splitlines()) <= 100
    out = io.StringIO()
    write_timeline(RENO, out, 0, "csv", sender="client")
    assert out.getvalue() == render(tl, "csv")


def test_timeline_needs_a_stream_with_data():
    with pytest.raises(StreamNotFound):
        timeline(RENO, 7)
    with pytest.raises(StreamNotFound):
        timeline(RENO, 0, sender="server")


def test_packets_columns_in_both_modes():
    out = io.BytesIO()
    write_packets(RENO, out, "jsonl", mode="improved")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    data = [r for r in rows if r["src"] == "10.200.1.1" and r["len"] > 0]
    acks = [r for r in rows if r["src"] == "10.200.1.2"]
    assert all(r["cwnd_est"] >= 1 and r["in_flight"] >= 0 and r["cc_phase"] in PHASES for r in data)
    assert all(r["limited_by"] in LIMITS for r in data)
    assert all(r["cwnd_est"] is None and r["cc_phase"] is None and r["cc_events"] == [] for r in acks)
    events = [e for r in data for e in r["cc_events"]]
    assert events.count("fast_recovery") == events.count("recovery_end") > 0
    out = io.BytesIO()
    write_packets(RENO, out, "jsonl", mode="wireshark")
    assert all(json.loads(line)["cwnd_est"] is None for line in out.getvalue().splitlines())


def test_family_names():
    assert FAMILIES == ("unknown", "reno", "cubic", "bbr")
    assert PHASES[1:] == ("slow_start", "congestion_avoidance", "fast_recovery", "rto_recovery", "cwr")


def test_timeline_command():
    from click.testing import CliRunner

    from tcpscope.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["timeline", str(RENO), "--stream", "0", "--format", "jsonl"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.splitlines()[0])["round"] == 0
    res = runner.invoke(main, ["timeline", str(RENO), "--stream", "9"])
    assert res.exit_code == 1 and "no TCP stream 9" in res.output
    res = runner.invoke(main, ["timeline", str(RENO)])
    assert res.exit_code == 2
