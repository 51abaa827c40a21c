"""The fuzz targets over their committed seeds, without a fuzzer: each seed runs clean.

The seeds (fuzz/corpus/) include every input a campaign found a bug with
(``finding-*``), so this is also the regression test of those findings. The
short coverage-guided run itself is `scripts/fuzz --ci`, a step of scripts/test.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))

import targets  # noqa: E402

SEEDS = [(name, path) for name in sorted(targets.TARGETS)
         for path in sorted((ROOT / "fuzz" / "corpus" / targets.SEEDS[name]).iterdir())]


@pytest.mark.parametrize("name, path", SEEDS, ids=[f"{n}-{p.name}" for n, p in SEEDS])
def test_seed(name, path):
    targets.TARGETS[name](path.read_bytes())


def test_every_target_has_seeds():
    for name in targets.TARGETS:
        assert sum(1 for n, _ in SEEDS if n == name) >= 10, name


def test_frames_format_round_trip():
    data = targets.format_frames(targets.FLAG_TRUNCATED, 101, [(0, b"\x45abc"), (3, b"")])
    f = targets.parse_frames(data)
    assert (f.flags, f.linktype, f.data) == (targets.FLAG_TRUNCATED, 101, b"\x45abc")
    assert f.caplen.tolist() == [4, 0] and f.origlen.tolist() == [104, 100]
    assert (f.ts_ns - targets.T0_NS).tolist() == [0, 3 * targets.TIME_STEP_NS]
    assert len(targets.parse_frames(b"")) == 0  # any input parses
