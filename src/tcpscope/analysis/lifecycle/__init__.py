"""Connection lifecycles: both endpoints' states after every packet, and what happened.

Sans-IO, fed the same batches as the engine (it reads only the dissected
records, the engine's annotations and the capture timestamps)::

    tracker = LifecycleTracker()
    for chunk in batches:                  # pipeline.Chunk: records, annotations, ts_ns
        out = tracker.feed(chunk.records, chunk.annotations, chunk.ts_ns)
        out.client, out.server   # np.uint8 State after each row (0 = UNKNOWN / not TCP)
        out.events               # {row index: ("handshake_complete", ...)}
    tracker.lifecycles()         # {stream: Lifecycle}

The states come from `states.ConnectionStates` (the transition table); what a
row does to its connection's lifecycle is `connection.ConnectionLife`. Two
drivers feed them: `ReferenceTracker` (reference.py) sends every TCP row
through the machine; `LifecycleTracker` (fast.py), what the commands run, gives
the same answers with Python only for rows that can change them. See
docs/states.md.
"""
from __future__ import annotations

from .fast import LifecycleTracker
from .model import (
    BACKOFF_VERDICTS, HANDSHAKE_KINDS, LIFECYCLE_EVENTS, TEARDOWN_KINDS, Lifecycle,
    LifecycleBatch, SideOptions, backoff_verdict,
)
from .reference import ReferenceTracker

__all__ = [
    "LifecycleTracker", "ReferenceTracker", "LifecycleBatch", "Lifecycle", "SideOptions",
    "LIFECYCLE_EVENTS", "HANDSHAKE_KINDS", "TEARDOWN_KINDS", "BACKOFF_VERDICTS",
    "backoff_verdict",
]
