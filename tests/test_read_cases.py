"""`tcpscope read` on hand-made frames: each rule of tcpdump's TCP line, pinned.

The expected lines (golden/read_cases.json) are what tcpdump 4.99 printed for
the cases of read_cases.py; `test_golden_is_tcpdump` checks them against the
installed tcpdump, and TCPSCOPE_UPDATE_GOLDEN=1 rewrites them from it. The
other tests need no tcpdump: tcpscope must print the golden lines through its
fast path and through its reference path alike.
"""
from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import require_tool
from read_cases import CASES, Case

from tcpscope.capture.batch import FrameBatch
from tcpscope.capture.writer import PcapWriter
from tcpscope.present.tcpdump import TcpdumpListing, TcpdumpOptions

GOLDEN = Path(__file__).parent / "golden" / "read_cases.json"


def options_of(flags: str, **extra) -> TcpdumpOptions:
    args = shlex.split(flags)
    count = None
    if "-c" in args:
        count = int(args[args.index("-c") + 1])
    return TcpdumpOptions(
        verbose=sum(a.count("v") for a in args if a.startswith("-v")),
        absolute="-S" in args,
        tstyle=sum(a.count("t") for a in args if a.startswith("-t")),
        count=count,
        **extra,
    )


def batch_of(case: Case) -> FrameBatch:
    frames = case.raw_frames()
    caplen = np.array([len(b) for b, _ in frames], dtype=np.uint32)
    offset = np.zeros(len(frames), dtype=np.int64)
    offset[1:] = np.cumsum(caplen[:-1], dtype=np.int64)
    return FrameBatch(
        data=b"".join(b for b, _ in frames),
        offset=offset,
        caplen=caplen,
        origlen=np.array([o for _, o in frames], dtype=np.uint32),
        ts_ns=np.array(case.times(), dtype=np.int64),
        iface=np.zeros(len(frames), dtype=np.uint16),
        linktype=np.full(len(frames), case.link, dtype=np.uint16),
    )


class TimeZone:
    """Set TZ for the duration (tcpdump's default timestamps are local time)."""

    def __init__(self, tz: str) -> None:
        self.tz = tz

    def __enter__(self) -> None:
        self.saved = os.environ.get("TZ")
        os.environ["TZ"] = self.tz
        time.tzset()

    def __exit__(self, *exc) -> None:
        if self.saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = self.saved
        time.tzset()


def tcpscope_lines(case: Case) -> list[str]:
    with TimeZone(case.tz):
        listing = TcpdumpListing(options_of(case.flags), io.StringIO())
        return listing.format_batch(batch_of(case)).splitlines()


def tcpdump_lines(case: Case, tmp: Path) -> list[str]:
    tcpdump = require_tool("tcpdump")
    path = tmp / f"{case.name}.pcap"
    with PcapWriter(path, case.link, nanosecond=True) as w:
        for (data, origlen), ts in zip(case.raw_frames(), case.times()):
            w.write_record(ts, data, origlen)
    env = dict(os.environ, TZ=case.tz)
    out = subprocess.run([tcpdump, "-nn", *shlex.split(case.flags), "-r", str(path)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    return out.stdout.decode("utf-8", "replace").splitlines()


def golden() -> dict[str, list[str]]:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case(case: Case) -> None:
    expected = golden().get(case.name)
    if expected is None:
        pytest.skip("no golden lines yet (TCPSCOPE_UPDATE_GOLDEN=1 with tcpdump installed)")
    assert tcpscope_lines(case) == expected


@pytest.mark.oracle
def test_golden_is_tcpdump(tmp_path: Path) -> None:
    """The golden lines are tcpdump's own; TCPSCOPE_UPDATE_GOLDEN=1 rewrites them."""
    current = golden()
    fresh = {case.name: tcpdump_lines(case, tmp_path) for case in CASES}
    if os.environ.get("TCPSCOPE_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(fresh, indent=1, ensure_ascii=False) + "\n")
        current = fresh
    stale = [name for name in fresh if current.get(name) != fresh[name]]
    assert not stale, f"golden lines differ from tcpdump's for {stale}"
