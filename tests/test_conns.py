"""`tcpscope conns`: every format on fixtures, golden files, widths, Parquet, atomic -o.

Golden files live in tests/golden/conns/ (jsonl and zeek for the demo capture and a
few fixtures); refresh them with ``TCPSCOPE_UPDATE_GOLDEN=1 pytest tests/test_conns.py``
after checking the difference by eye.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tcpscope.capture.errors import ExportError
from tcpscope.cli import main
from tcpscope.present import conns as C

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "fixtures"
DEMO = ROOT / "src" / "tcpscope" / "data" / "demo.pcap"
GOLDEN = Path(__file__).parent / "golden" / "conns"
UPDATE = os.environ.get("TCPSCOPE_UPDATE_GOLDEN") == "1"

GOLDEN_CASES = {
    "demo": DEMO,
    "handshake_retries": FIX / "handshake_retries.pcap",
    "refused": FIX / "refused.pcap",
    "rst_abort": FIX / "rst_abort.pcap",
    "lossy_transfer": FIX / "lossy_transfer.pcap",
    "lo_ipv6": FIX / "lo_ipv6.pcap",
}


def run(*args: str) -> str:
    res = CliRunner().invoke(main, ["conns", *args])
    assert res.exit_code == 0, res.output
    return res.stdout


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_jsonl_golden(name):
    text = run("-C", "--format", "jsonl", str(GOLDEN_CASES[name]))
    rows = [json.loads(line) for line in text.splitlines()]
    for r in rows:
        assert tuple(r) == C.RECORD_KEYS
        assert set(r["anomalies"]) == set(C.ANOMALIES)
    _check_golden(f"{name}.jsonl", text)


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_zeek_golden(name):
    text = run("-C", "--format", "zeek", str(GOLDEN_CASES[name]))
    lines = text.splitlines()
    assert lines[0] == "#separator \\x09"
    assert lines[1:5] == ["#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
                          "#path\tconn"]
    assert lines[5].startswith("#open\t") and lines[-1].startswith("#close\t")
    fields = lines[6].split("\t")[1:]
    types = lines[7].split("\t")[1:]
    assert fields[:21] == ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p",
                           "proto", "service", "duration", "orig_bytes", "resp_bytes",
                           "conn_state", "local_orig", "local_resp", "missed_bytes", "history",
                           "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
                           "tunnel_parents"]
    assert len(types) == len(fields)
    for line in lines[8:-1]:
        assert len(line.split("\t")) == len(fields)
    _check_golden(f"{name}.zeek.log", text)


def test_zeek_log_reads_back_as_zeek_does():
    """Our own baseline reader (the one the agreement test uses) parses the output."""
    from zeek_baselines import read_log

    text = run("-C", "--format", "zeek", str(FIX / "handshake_retries.pcap"))
    p = GOLDEN.parent / "_tmp_conn.log"
    try:
        p.write_text(text)
        rows = read_log(p)
    finally:
        p.unlink()
    assert rows and all(r["proto"] == "tcp" for r in rows)
    assert {r["conn_state"] for r in rows} <= {"SF", "S0", "S1", "REJ", "OTH", "RSTO", "RSTR",
                                               "S2", "S3", "SH", "SHR", "RSTOS0", "RSTRH"}


def test_csv_has_every_column_and_row():
    text = run("-C", "--format", "csv", str(FIX / "lossy_transfer.pcap"))
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == C.CSV_COLUMNS
    js = run("-C", "--format", "jsonl", str(FIX / "lossy_transfer.pcap")).splitlines()
    assert len(rows) - 1 == len(js)
    first = dict(zip(rows[0], rows[1]))
    j = json.loads(js[0])
    assert first["stream"] == str(j["stream"]) and first["history"] == j["history"]
    assert first["anomaly_retransmission"] == str(j["anomalies"]["retransmission"])


@pytest.mark.parametrize("path", sorted(FIX.glob("*.pcap*")), ids=lambda p: p.name)
def test_table_fits_100_columns(path):
    text = run(str(path))  # piped (CliRunner): plain text
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["#", "client", "server"]
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)


def test_table_plain_text_is_stable_and_color_only_on_request():
    plain = run("-C", str(DEMO))
    assert plain == run("-C", "--no-color", str(DEMO))
    buf = io.StringIO()
    c = C.collect(str(DEMO), ignore_checksums=True)
    C.print_rich_table(c, buf, color=True)
    colored = buf.getvalue()
    assert "\x1b[" in colored
    assert all(len(line) <= 100 for line in C.format_plain_table(c).splitlines())


def test_parquet_round_trip(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "c.parquet"
    run("-C", "--format", "parquet", "-o", str(out), str(FIX / "lossy_transfer.pcap"))
    table = pq.read_table(out)
    assert table.schema.equals(C.parquet_schema())
    js = [json.loads(x) for x in
          run("-C", "--format", "jsonl", str(FIX / "lossy_transfer.pcap")).splitlines()]
    assert table.to_pylist() == js


def test_parquet_needs_output():
    res = CliRunner().invoke(main, ["conns", "--format", "parquet", str(DEMO)])
    assert res.exit_code == 2


def test_output_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "conns.jsonl"
    run("-C", "--format", "jsonl", "-o", str(out), str(DEMO))
    good = out.read_text()
    assert good and good == run("-C", "--format", "jsonl", str(DEMO))

    def boom(r):   # JSON Lines are written a record at a time, as connections finish
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(C, "jsonl_line", boom)
    with pytest.raises(RuntimeError):
        C.write_conns(str(DEMO), "jsonl", out=str(out), ignore_checksums=True)
    assert out.read_text() == good  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["conns.jsonl"]  # no temporary left

    def half(c, file):
        file.write(b"PAR1 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(C, "write_parquet", half)
    pq_out = tmp_path / "c.parquet"
    with pytest.raises(ExportError, match="c.parquet: cannot write: No space left on device"):
        C.write_conns(str(DEMO), "parquet", out=str(pq_out))
    assert not pq_out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["conns.jsonl"]


def test_checksum_note_and_zeek_default():
    """Zeek's default drops offloaded checksums ('C'); -C keeps them, as zeek -C does."""
    res = CliRunner().invoke(main, ["conns", "--format", "jsonl", str(DEMO)])
    assert res.exit_code == 0
    rec = json.loads(res.stdout.splitlines()[0])
    assert "C" in rec["history"] and rec["conn_state"] == "OTH"
    assert "offloaded" in res.stderr
    rec = json.loads(run("-C", "--format", "jsonl", str(DEMO)).splitlines()[0])
    assert rec["history"] == "ShAdDaFf" and rec["conn_state"] == "SF"


def test_unusable_input_exits_1(tmp_path):
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"not a capture at all")
    res = CliRunner().invoke(main, ["conns", str(bad)])
    assert res.exit_code == 1
