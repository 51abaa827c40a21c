"""`tcpscope packets`: the per-packet records (DESIGN.md "Per-packet record")."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tcpscope.cli import main
from tcpscope.present.packets import format_batch, write_packets
from tcpscope.wire.options import Mss, Sack, SackPermitted, Timestamp, WindowScale
from tests.analysis_helpers import ISN_C, Script
from tests.conftest import CORPUS

KEYS = ["frame", "ts", "stream", "src", "sport", "dst", "dport", "flags", "seq", "ack", "rel_seq",
        "rel_ack", "len", "win", "win_scaled", "options", "checksum", "analysis", "dup_ack_num",
        "bytes_in_flight", "ack_rtt", "acks_frame", "irtt", "state", "events", "rules",
        "cwnd_est", "ssthresh_est", "in_flight", "cc_phase", "limited_by", "cc_events", "signals"]


def scenario(tmp_path):
    s = Script(c="2001:db8::1", s="2001:db8::2")
    s.c("SEW", 0, 0, opts=(Mss(1460), SackPermitted(), Timestamp(7, 0), WindowScale(7)))
    s.s("S.", 0, 1, opts=(Mss(1400), WindowScale(2)), ms=10)
    s.c(".", 1, 1, ms=10, win=100)
    s.c("P.", 1, 1, length=100)
    s.c("P.", 1, 1, length=100, ms=300)     # 5: retransmission
    s.s(".", 1, 101, ms=10, opts=(Sack((((ISN_C + 1) & 0xFFFFFFFF, (ISN_C + 101) & 0xFFFFFFFF),)),))
    s.c("F.", 101, 1)
    return s.pcap(tmp_path / "s.pcap")


def test_jsonl_records(tmp_path):
    path = scenario(tmp_path)
    out = io.BytesIO()
    write_packets(path, out, "jsonl")
    rows = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert len(rows) == 7
    assert all(list(r) == KEYS for r in rows)
    syn, synack, ack3, data, retx, sackack, fin = rows
    assert syn["flags"] == "SEW" and synack["flags"] == "S." and fin["flags"] == "F."
    assert syn["src"] == "2001:db8::1" and syn["dport"] == 80
    assert syn["seq"] == ISN_C and syn["rel_seq"] == 0 and syn["rel_ack"] is None
    assert synack["ack"] == (ISN_C + 1) & 0xFFFFFFFF and synack["rel_ack"] == 1
    assert syn["options"] == ["mss 1460", "wscale 7", "sackOK", "TS val 7 ecr 0", "eol"]  # padded with EOL
    assert ack3["win"] == 100 and ack3["win_scaled"] == 12800 and ack3["irtt"] == pytest.approx(0.02)
    assert synack["ack_rtt"] == pytest.approx(0.01) and synack["acks_frame"] == 1
    assert data["bytes_in_flight"] == 100 and data["len"] == 100
    assert retx["analysis"] == ["retransmission"]
    assert retx["rules"] == {"retransmission": {"rule": "retx.bytes_seen_before", "evidence": [4]}}
    assert sackack["options"][0].startswith("sack 1 {")
    assert all(r["checksum"] == "ok" for r in rows)
    states = [(r["state"]["client"], r["state"]["server"]) for r in rows]
    assert states == [("SYN_SENT", "SYN_RECEIVED"), ("ESTABLISHED", "SYN_RECEIVED")] + [
        ("ESTABLISHED", "ESTABLISHED")] * 4 + [("FIN_WAIT_1", "CLOSE_WAIT")]
    assert [r["events"] for r in rows] == [["handshake_started"], [], ["handshake_complete"], [], [],
                                          [], ["teardown_started"]]
    assert syn["ts"] == pytest.approx(1_700_000_000.001, abs=1e-6)


def test_csv_has_the_same_rows(tmp_path):
    path = scenario(tmp_path)
    out = io.BytesIO()
    write_packets(path, out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert len(rows) == 7
    assert rows[4]["analysis"] == "retransmission"
    assert rows[4]["rules"] == "retransmission=retx.bytes_seen_before@4"
    assert rows[0]["options"] == "mss 1460;wscale 7;sackOK;TS val 7 ecr 0;eol"
    assert rows[0]["rel_ack"] == "" and rows[1]["rel_ack"] == "1"
    assert (rows[0]["client_state"], rows[0]["server_state"]) == ("SYN_SENT", "SYN_RECEIVED")
    assert rows[0]["events"] == "handshake_started" and rows[3]["events"] == ""
    assert (rows[6]["client_state"], rows[6]["server_state"], rows[6]["events"]) == (
        "FIN_WAIT_1", "CLOSE_WAIT", "teardown_started")


def test_win_scaled_is_null_while_the_scale_is_unknown(tmp_path):
    s = Script()
    s.c(".", 1, 1, win=300)  # midstream: the scale is unknown
    out = io.BytesIO()
    write_packets(s.pcap(tmp_path / "m.pcap"), out)
    row = json.loads(out.getvalue())
    assert row["win_scaled"] is None and row["win"] == 300 and row["rel_seq"] == 1


def test_non_tcp_rows_are_skipped_and_empty_batches_are_empty():
    from tcpscope.analysis.annotation import ANNOTATION_DTYPE
    from tcpscope.wire.record import RECORD_DTYPE

    assert format_batch(np.zeros(0, RECORD_DTYPE), np.zeros(0, ANNOTATION_DTYPE), np.zeros(0, np.int64)) == b""
    recs = np.zeros(2, RECORD_DTYPE)
    ann = np.zeros(2, ANNOTATION_DTYPE)
    ann["stream"] = -1
    assert format_batch(recs, ann, np.zeros(2, np.int64)) == b""
    assert format_batch(recs, ann, np.zeros(2, np.int64), "csv", header=True).startswith(b"frame,ts,")
    with pytest.raises(ValueError):
        format_batch(recs, ann[:1], np.zeros(2, np.int64))


def test_flag_letters_are_wire_texts():
    """The native writer spells all 512 flag values as wire/text.py does (tcpflags.h)."""
    from tcpscope.analysis.annotation import ANNOTATION_DTYPE
    from tcpscope.wire.text import FLAGS_TEXT
    from tests.analysis_helpers import tcp_record

    recs = np.repeat(tcp_record(), 512)
    recs["tcp_flags"] = np.arange(512)
    ann = np.zeros(512, ANNOTATION_DTYPE)
    ann["win_scale"] = -1
    ts = np.zeros(512, np.int64)
    rows = [json.loads(line) for line in format_batch(recs, ann, ts).splitlines()]
    assert [r["flags"] for r in rows] == list(FLAGS_TEXT)
    rows = list(csv.DictReader(io.StringIO(format_batch(recs, ann, ts, "csv", header=True).decode())))
    assert [r["flags"] for r in rows] == list(FLAGS_TEXT)


def test_cli_packets(tmp_path):
    path = scenario(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["packets", str(path), "--format", "jsonl"])
    assert res.exit_code == 0, res.output
    assert len(res.output.splitlines()) == 7
    res = runner.invoke(main, ["packets", str(path), "--format", "csv", "--mode", "improved"])
    assert res.exit_code == 0 and res.output.startswith("frame,ts,stream")
    res = runner.invoke(main, ["packets", str(tmp_path / "missing.pcap")])
    assert res.exit_code == 1


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not found")
def test_every_corpus_line_is_json():
    from tests.conftest import corpus_files

    for p in corpus_files()[:40]:
        out = io.BytesIO()
        try:
            write_packets(p, out)
        except Exception as exc:  # unreadable formats are the capture layer's business
            if type(exc).__name__ == "CaptureError":
                continue
            raise
        for line in out.getvalue().decode().splitlines():
            assert list(json.loads(line)) == KEYS
