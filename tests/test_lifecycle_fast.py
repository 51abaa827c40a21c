"""The fast lifecycle tracker against the reference, on every capture we have.

`ReferenceTracker` sends every TCP row through its connection's state machine;
`LifecycleTracker` (what the commands run) skips the steady rows with numpy and
replays what they do. On every fixture, the demo and every capture of the shared
corpus, batch by batch as the reader yields them and in small batches, the two
must give the same states after every row, the same events and the same
lifecycles (transitions, anomalies and counts included).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tcpscope.analysis.engine import Analyzer
from tcpscope.analysis.lifecycle import LifecycleTracker, ReferenceTracker
from tcpscope.capture import open_capture
from tcpscope.capture.errors import CaptureError
from tcpscope.wire import dissect_batch
from tests.conftest import ROOT, corpus_files, fixture_files

CAPTURES = [*fixture_files(), ROOT / "src" / "tcpscope" / "data" / "demo.pcap"]


def both(path: Path, batch_frames: int | None = None) -> tuple[tuple, tuple]:
    """(states, events, lifecycles) of the reference and of the fast tracker."""
    an = Analyzer("wireshark")
    trackers = (ReferenceTracker(), LifecycleTracker())
    out = [([], [], {}) for _ in trackers]
    row0 = 0
    kw = {"batch_frames": batch_frames} if batch_frames else {}
    with open_capture(path, **kw) as cap:
        for batch in cap:
            records = dissect_batch(batch)
            ann = an.feed(records, batch.ts_ns, batch.frame_numbers, batch.iface)
            for tracker, (client, server, events) in zip(trackers, out):
                life = tracker.feed(records, ann, batch.ts_ns)
                client.append(life.client)
                server.append(life.server)
                events.update((row0 + k, v) for k, v in life.events.items())
            row0 += len(records)
    return tuple(
        (np.concatenate(c).tolist() if c else [], np.concatenate(s).tolist() if s else [], ev,
         {k: v.as_dict() for k, v in tracker.lifecycles().items()})
        for tracker, (c, s, ev) in zip(trackers, out))


def check(path: Path, batch_frames: int | None = None) -> None:
    ref, fast = both(path, batch_frames)
    for what, r, f in zip(("client states", "server states"), ref[:2], fast[:2]):
        diffs = [(i + 1, a, b) for i, (a, b) in enumerate(zip(r, f)) if a != b]
        assert not diffs, f"{path.name}: {what} differ at (frame, reference, fast) {diffs[:5]}"
    assert ref[2] == fast[2], f"{path.name}: events differ"
    for stream, life in ref[3].items():
        assert fast[3][stream] == life, f"{path.name}: stream {stream}'s lifecycle differs"
    assert ref[3].keys() == fast[3].keys()


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
@pytest.mark.parametrize("batch_frames", [None, 3])
def test_fixtures(path, batch_frames):
    check(path, batch_frames)


@pytest.mark.skipif(not corpus_files(), reason="shared corpus not found")
def test_the_shared_corpus():
    n = 0
    for path in corpus_files():
        try:
            check(path)
            check(path, 64)
        except CaptureError:
            continue
        n += 1
    assert n > 100
