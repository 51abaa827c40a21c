"""pandas and Arrow: the same columns as `packets` and `conns`, Parquet, the notebook."""
from __future__ import annotations

import csv
import io
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT

import tcpscope
from tcpscope.filter.fields import PACKET_FIELDS, wireshark_names

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

SRC = FIXTURES / "lossy_transfer.pcap"


def _cli(*args: str) -> bytes:
    res = subprocess.run([sys.executable, "-m", "tcpscope", *args], capture_output=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_packets_df_is_the_packets_csv() -> None:
    df = tcpscope.analyze(SRC).packets_df()
    rows = list(csv.DictReader(io.StringIO(_cli("packets", str(SRC), "--format", "csv")
                                           .decode())))
    assert list(df.columns) == list(rows[0])
    assert len(df) == len(rows)
    for got, want in zip(df.to_dict("records"), rows):
        assert str(got["frame"]) == want["frame"] and got["flags"] == want["flags"]
        assert ";".join(got["analysis"]) == want["analysis"]
        assert ("" if pd.isna(got["rel_ack"]) else str(got["rel_ack"])) == want["rel_ack"]


def test_wireshark_names_name_the_field_that_is_the_column() -> None:
    names = wireshark_names()
    assert names["rel_seq"] == "tcp.seq" and names["seq"] == "tcp.seq_raw"
    assert names["stream"] == "tcp.stream" and names["win_scaled"] == "tcp.window_size"
    for column, field in names.items():
        assert PACKET_FIELDS[field].column == column
    df = tcpscope.analyze(SRC).packets_df(names="wireshark")
    assert {"tcp.seq", "tcp.seq_raw", "tcp.stream", "frame.number"} <= set(df.columns)


def test_conns_df_is_the_conns_csv() -> None:
    df = tcpscope.analyze(SRC).conns_df()
    rows = list(csv.DictReader(io.StringIO(_cli("conns", str(SRC), "--format", "csv")
                                           .decode())))
    assert list(df.columns) == list(rows[0]) and len(df) == len(rows)


def test_parquet_is_the_arrow_table(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "p.parquet"
    _cli("packets", str(SRC), "--format", "parquet", "-o", str(out))
    assert pq.read_table(out).equals(tcpscope.analyze(SRC).to_arrow())
    assert not [p for p in tmp_path.iterdir() if p.name != "p.parquet"]  # no temporary left


def test_the_notebook_runs() -> None:
    runpy.run_path(str(ROOT / "docs" / "examples" / "pandas_notebook.py"), run_name="__main__")


def test_rounds_df_is_the_timeline_csv() -> None:
    src = FIXTURES / "hindsight" / "hs_bulk_loss_sender.pcap.gz"
    df = tcpscope.analyze(src, mode="improved").rounds_df(0)
    rows = list(csv.DictReader(io.StringIO(_cli("timeline", str(src), "--stream", "0",
                                                "--format", "csv").decode())))
    assert list(df.columns) == list(rows[0]) and len(df) == len(rows) > 3
    for got, want in zip(df.to_dict("records"), rows):
        got = {k: ";".join(v) if k == "events" else "" if pd.isna(v) else str(v)
               for k, v in got.items()}
        assert got == want
    with pytest.raises(ValueError, match="improved"):
        tcpscope.analyze(src, mode="wireshark").rounds_df(0)
