"""Helpers for the state machine and lifecycle tests.

`run(script)` takes a `tests.analysis_helpers.Script` (real frames, ISNs near the
2^32 wrap), runs it through the engine and a `LifecycleTracker`, and returns a
`Run`: the (client, server) state names after every frame, the events of every
frame, the lifecycles and the tracker::

    s = Script()
    s.c("S", 0, 0)
    s.s("S.", 0, 1)
    s.c(".", 1, 1)
    r = run(s)
    assert r.states[-1] == ("ESTABLISHED", "ESTABLISHED")
    assert r.events[3] == ("handshake_complete",)     # frame numbers, 1-based
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tcpscope.analysis.engine import Analyzer
from tcpscope.analysis.lifecycle import Lifecycle, LifecycleTracker
from tcpscope.analysis.lifecycle.reference import correct_rows
from tcpscope.analysis.states import State, Transition


@dataclass
class Run:
    states: list[tuple[str, str]]                       # per frame
    events: dict[int, tuple[str, ...]]                  # frame -> events
    lifecycles: dict[int, Lifecycle]
    tracker: LifecycleTracker
    streams: list[int] = field(default_factory=list)
    connections: list[dict] = field(default_factory=list)   # the engine's, as dicts

    @property
    def life(self) -> Lifecycle:
        (only,) = self.lifecycles.values()
        return only

    def transitions(self, side: str | None = None, *, revised: bool = True) -> list[Transition]:
        """The connection's transitions (without those later evidence took back, when
        `revised` is False)."""
        return [t for t in self.life.transitions
                if (side is None or t.side == side) and (revised or not t.revised)]

    def path(self, side: str) -> list[str]:
        """The states one side went through, as the whole capture shows them (start state
        first; revised transitions are not on it)."""
        ts = self.transitions(side, revised=False)
        return [ts[0].old.name] + [t.new.name for t in ts] if ts else []


def hindsight(tr: LifecycleTracker, streams: list[int], frames: list[int],
              states: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Per-row states as the whole capture shows them: the tracker's corrections of rows of
    earlier batches applied (what `tcpscope.analyze`, explain and the ladder show)."""
    fixes = [(st, *c) for st, cors in tr.corrections().items() for c in cors]
    if not fixes:
        return states
    client = np.array([State[c] for c, _ in states], np.uint8)
    server = np.array([State[s] for _, s in states], np.uint8)
    correct_rows(fixes, np.array(streams, np.int64), np.array(frames, np.int64), client, server)
    return [(State(int(c)).name, State(int(s)).name) for c, s in zip(client, server)]


def run(script, *, batch: int | None = None, mode: str = "wireshark",
        ip_ids: dict[int, int] | None = None) -> Run:
    """`ip_ids`: IPv4 identifications by frame number (the script's are 0)."""
    recs = script.records()
    for frame, ip_id in (ip_ids or {}).items():
        recs["ip_id"][frame - 1] = ip_id
    times = np.array([t for t, _ in script.frames], np.int64)
    frames = np.arange(1, len(recs) + 1, dtype=np.int64)
    an = Analyzer(mode)
    tr = LifecycleTracker()
    states: list[tuple[str, str]] = []
    events: dict[int, tuple[str, ...]] = {}
    streams: list[int] = []
    step = batch or max(len(recs), 1)
    for i in range(0, len(recs), step):
        j = i + step
        ann = an.feed(recs[i:j], times[i:j], frames[i:j])
        out = tr.feed(recs[i:j], ann, times[i:j])
        for k in range(len(ann)):
            states.append((State(int(out.client[k])).name, State(int(out.server[k])).name))
            streams.append(int(ann["stream"][k]))
        for k, ev in out.events.items():
            events[i + k + 1] = ev
    states = hindsight(tr, streams, frames.tolist(), states)
    return Run(states, events, tr.lifecycles(), tr, streams)


def run_file(path: Path, batch_frames: int | None = None) -> Run:
    """A capture through engine and tracker, batch by batch as the reader yields them."""
    from tcpscope.capture import open_capture
    from tcpscope.wire import dissect_batch

    an = Analyzer("wireshark")
    tr = LifecycleTracker()
    states, streams, frames = [], [], []
    events: dict[int, tuple[str, ...]] = {}
    kw = {"batch_frames": batch_frames} if batch_frames else {}
    with open_capture(path, **kw) as cap:
        for b in cap:
            recs = dissect_batch(b)
            ann = an.feed(recs, b.ts_ns, b.frame_numbers, b.iface)
            out = tr.feed(recs, ann, b.ts_ns)
            for k in range(len(ann)):
                states.append((State(int(out.client[k])).name, State(int(out.server[k])).name))
                streams.append(int(ann["stream"][k]))
            frames += ann["frame"].tolist()
            for k, ev in out.events.items():
                events[int(b.frame_numbers[k])] = ev
    states = hindsight(tr, streams, frames, states)
    return Run(states, events, tr.lifecycles(), tr, streams, an.connection_dicts())
