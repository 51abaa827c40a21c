"""The sender model's display-filter fields select exactly the packets whose column says so."""
from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest

CAPTURE = Path(__file__).resolve().parent.parent / "fixtures" / "hindsight" / "hs_bulk_loss_sender.pcap.gz"


def _packets(*args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "tcpscope", "packets", str(CAPTURE), "--mode",
                          "improved", "--format", "csv", *args],
                         check=True, capture_output=True, text=True).stdout
    return list(csv.DictReader(io.StringIO(out)))


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _packets()


@pytest.mark.parametrize(("expr", "pick"), [
    ('tcpscope.cc_phase == "fast_recovery"', lambda r: r["cc_phase"] == "fast_recovery"),
    ('tcpscope.cc_phase == "slow_start"', lambda r: r["cc_phase"] == "slow_start"),
    ('tcpscope.limited_by == "cwnd"', lambda r: r["limited_by"] == "cwnd"),
    ("tcpscope.cwnd_est > 20", lambda r: r["cwnd_est"] != "" and int(r["cwnd_est"]) > 20),
    ("tcpscope.in_flight >= 30000", lambda r: r["in_flight"] != "" and int(r["in_flight"]) >= 30000),
    ("tcpscope.ssthresh_est", lambda r: r["ssthresh_est"] != ""),
    ('tcpscope.cc_event == "fast_recovery"', lambda r: "fast_recovery" in r["cc_events"].split(";")),
])
def test_sender_field_selects_its_column(rows: list[dict], expr: str, pick) -> None:
    want = [r["frame"] for r in rows if pick(r)]
    got = [r["frame"] for r in _packets("-Y", expr)]
    assert got == want
    assert want, "the capture has such packets"
