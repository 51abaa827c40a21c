"""`tcpscope read` as a command: flags, time zone, frame numbers, pipes, compressed input."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FIXTURES

from tcpscope.present.tcpdump import TcpdumpOptions, format_timestamp, write_listing

LO = FIXTURES / "lo_ipv4.pcap"


def run(*args: str, tz: str = "UTC") -> subprocess.CompletedProcess:
    env = dict(os.environ, TZ=tz)
    return subprocess.run([sys.executable, "-m", "tcpscope", "read", *args], env=env,
                          capture_output=True, timeout=120)


def listing(path: Path, **opts) -> str:
    out = io.StringIO()
    write_listing(str(path), TcpdumpOptions(**opts), out)
    return out.getvalue()


@pytest.fixture
def utc():
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path.name} is not in fixtures/")
    return path


def test_flags_reach_the_listing(utc) -> None:
    path = require(LO)
    res = run("-vv", "-S", "-tttt", "-#", "-c", "4", str(path))
    assert res.returncode == 0, res.stderr
    expected = listing(path, verbose=2, absolute=True, tstyle=4, count=4, number=True)
    assert res.stdout.decode() == expected
    first = expected.splitlines()[0]
    assert first.startswith("    1  20") and "IP (tos " in first
    assert sum(1 for line in expected.splitlines() if re.match(r" *\d+  ", line)) == 4


def test_default_timestamps_are_local_time() -> None:
    path = require(LO)
    utc_line = run("-c", "1", str(path)).stdout.decode()
    tokyo_line = run("-c", "1", str(path), tz="Asia/Tokyo").stdout.decode()
    assert utc_line[8:] == tokyo_line[8:]
    assert (int(tokyo_line[:2]) - int(utc_line[:2])) % 24 == 9


def test_compressed_and_plain_files_list_the_same(utc) -> None:
    plain = require(LO)
    for suffix in (".gz", ".xz", ".zst"):
        packed = plain.with_name(plain.name + suffix)
        if packed.exists():
            assert listing(packed) == listing(plain)


def test_a_closed_pipe_ends_quietly() -> None:
    path = require(LO)
    proc = subprocess.Popen([sys.executable, "-m", "tcpscope", "read", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert b"Traceback" not in err


@pytest.mark.parametrize("tstyle, text", [
    (0, "12:26:40.000001 "),
    (1, ""),
    (2, "1600000000.000001 "),
    (3, " 00:00:00.000000 "),
    (4, "2020-09-13 12:26:40.000001 "),
])
def test_timestamp_styles(utc, tstyle: int, text: str) -> None:
    assert format_timestamp(1_600_000_000_000_001_999, tstyle) == text
