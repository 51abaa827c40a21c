"""Memory follows the active connections, not the capture (docs/architecture.md,
"Resources"): on SYN floods of 50,000 and 200,000 one-packet connections (made by
bench/make_synflood.py, never stored in the repository), the peak memory of `conns`,
`packets`, `explain` and `audit` grows by at most 1.5 KB per connection beyond a fixed
base. Bounds, not timings: each command runs in a child whose peak RSS the kernel reports.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIZES = (50_000, 200_000)
PER_CONNECTION = 1536  # bytes
COMMANDS = {"conns": ["conns"], "packets": ["packets"], "explain": ["explain"], "audit": ["audit"]}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def floods(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = {}
    for n in SIZES:
        path = tmp_path_factory.mktemp("flood") / f"syn-{n}.pcap"
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_synflood.py"), str(path),
                        "--count", str(n)], check=True, stderr=subprocess.DEVNULL, timeout=600)
        out[n] = path
    return out


def peak_rss(args: list[str]) -> int:
    """Peak resident memory (bytes) of `tcpscope ARGS`, its output thrown away."""
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen([sys.executable, "-m", "tcpscope", *args], stdout=null,
                                stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, err
    return usage.ru_maxrss * 1024


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_memory_grows_with_active_connections_only(name: str, floods: dict[int, Path]) -> None:
    small, big = (peak_rss([*COMMANDS[name], str(floods[n])]) for n in SIZES)
    per = (big - small) / (SIZES[1] - SIZES[0])
    print(f"\n{name}: {small / 2**20:.0f} MB at {SIZES[0]}, {big / 2**20:.0f} MB at {SIZES[1]} "
          f"connections: {per:.0f} bytes per connection")
    assert per <= PER_CONNECTION


def test_the_engine_keeps_only_active_connections(floods: dict[int, Path]) -> None:
    """The engine's own count: a bounded number of attempts with their state, the rest
    drained and freed (the tables of engine.h: max_attempts, max_evicted)."""
    from tcpscope.pipeline import Options, Pipeline

    pipe = Pipeline([], Options(states=False, retire=True))
    drained = sum(len(chunk.finished) for chunk in pipe.read(str(floods[SIZES[1]]))
                  if chunk.finished is not None)
    stats = pipe.result.analyzer.stats()
    assert stats["streams"] == SIZES[1]
    assert stats["active_conversations"] <= 4096 and stats["attempts"] <= 4096
    assert drained + len(pipe.result.analyzer.connections()) == SIZES[1]
    assert stats["summary_bytes"] <= 8 * 4096 * 320   # a few blocks of summaries
