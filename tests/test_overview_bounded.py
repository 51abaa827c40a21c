"""The capture overview keeps bounded lists, not a row per connection (docs/architecture.md,
"Resources"): what it tells is the same as from every row."""
from __future__ import annotations

import pytest

from conftest import CORPUS

import tcpscope.present.overview as overview
from tcpscope.pipeline import Options, run

ECHO = CORPUS / "zeek__echo-connections.pcap.gz"


def _overview() -> overview.Overview:
    c = overview.OverviewCollector()
    run(ECHO, [c], Options(mode="improved", retire=True))
    return c.overview()


@pytest.mark.skipif(not ECHO.exists(), reason="shared capture missing")
def test_bounded_rows_tell_what_all_rows_tell(monkeypatch):
    full = _overview()
    assert full.connections == len(full.rows) > 100
    monkeypatch.setattr(overview, "ROWS_KEPT", 20)
    monkeypatch.setattr(overview, "EXAMPLES", 2)
    small = _overview()
    assert small.connections == full.connections and len(small.rows) == 20
    best = sorted(full.rows, key=lambda r: (-r.score, r.stream))[:20]
    assert [r.stream for r in small.rows] == sorted(r.stream for r in best)
    assert [r.stream for r in small.biggest()] == \
        [r.stream for r in sorted(full.rows, key=lambda r: (-sum(r.bytes), r.stream))[:overview.TOP]]
    assert small.handshakes == full.handshakes and small.teardowns == full.teardowns
    assert (small.first_ts, small.last_ts) == (full.first_ts, full.last_ts)
    assert overview.overview_lines(small) == overview.overview_lines(full)
