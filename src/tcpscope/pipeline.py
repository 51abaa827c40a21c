"""The one loop every command runs: open → dissect → analyse → consumers.

A command builds the consumers it needs (a listing, a packets writer, a
connection table, a story collector, ...) and hands them to `run`, which
reads the input batch by batch and gives each consumer one `Chunk` per batch:

    result = run("trace.pcap", [consumer], Options(mode="improved"))
    result.damage      # where and why reading stopped inside the file, or None

This is the only place, besides `capture/` and the CLI, that opens input.
What a consumer needs decides how far a batch goes: `Options.analyse` (the
engine's annotations and connection table) and `Options.states` (both
endpoints' states and the lifecycle) can be switched off for consumers that
only list frames. Memory is one batch plus the state of active connections.
A consumer that has all it wants (``read -c N``) raises `StopRun` from `feed`:
the run reads no further.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import numpy as np

from .analysis.engine import Analyzer
from .analysis.lifecycle import LifecycleBatch, LifecycleTracker
from .capture import open_capture
from .capture.batch import FrameBatch
from .capture.errors import Damage
from .wire.dissect import dissect_batch

__all__ = ["Chunk", "Consumer", "Options", "Pipeline", "Result", "run", "Source", "source_name",
           "StopRun"]

#: What `run` reads: a path, ``"-"`` for standard input, or an open binary file.
Source = str | os.PathLike | BinaryIO


@dataclass(frozen=True)
class Options:
    """How far each batch goes, and in which analysis mode."""

    mode: str = "wireshark"
    analyse: bool = True       #: run the engine (annotations, connections)
    states: bool = True        #: run the lifecycle tracker (needs analyse)
    #: which streams keep their full list of transitions (True: all; a set; a predicate)
    keep_transitions: Any = True


@dataclass
class Chunk:
    """One batch on its way through the pipeline; rows are parallel arrays."""

    batch: FrameBatch
    records: np.ndarray                 #: RECORD_DTYPE, one row per frame
    annotations: np.ndarray | None      #: ANNOTATION_DTYPE (None without analysis)
    life: LifecycleBatch | None         #: states and events (None without states)
    row0: int                           #: rows of the run before this batch

    @property
    def ts_ns(self) -> np.ndarray:
        return np.asarray(self.batch.ts_ns, dtype=np.int64)


class StopRun(Exception):
    """Raised by a consumer's `feed` when it wants no more input. The other consumers
    still get that chunk; then `run` stops reading and finishes as usual."""


class Consumer(Protocol):
    """What `run` feeds. ``finish`` is called once, after the last chunk; ``feed`` may
    raise `StopRun`."""

    def feed(self, chunk: Chunk) -> None: ...

    def finish(self, result: Result) -> None: ...


@dataclass
class Result:
    """What a run leaves behind once the input is read."""

    name: str                                   #: the input as named to the user
    rows: int = 0                               #: frames read
    damage: Damage | None = None                #: where reading stopped inside the file
    analyzer: Analyzer | None = None
    tracker: LifecycleTracker | None = None
    counters: dict[str, int] = field(default_factory=dict)


def source_name(source: Source) -> str:
    """The name of the input as the user gave it (``-`` for standard input)."""
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return name if isinstance(name, str) else "-"
    return os.fspath(source)


class Pipeline:
    """The loop's body, for input that arrives as batches (live capture):
    `feed` each `FrameBatch`, then `finish` once. `run` drives it over a capture."""

    def __init__(self, consumers: Iterable[Consumer], options: Options = Options(), *,
                 name: str = "-") -> None:
        self.consumers = list(consumers)
        self.options = options
        analyzer = Analyzer(options.mode) if options.analyse else None
        tracker = (LifecycleTracker(keep_transitions=options.keep_transitions)
                   if options.analyse and options.states else None)
        self.result = Result(name, analyzer=analyzer, tracker=tracker)
        self.stopped = False   #: a consumer raised StopRun: feed no more batches

    def feed(self, batch: FrameBatch) -> Chunk:
        """Dissect and analyse one batch and hand it to every consumer."""
        res = self.result
        records = dissect_batch(batch)
        ann = life = None
        if res.analyzer is not None:
            ann = res.analyzer.feed(records, batch.ts_ns, batch.frame_numbers, batch.iface)
            if res.tracker is not None:
                life = res.tracker.feed(records, ann, np.asarray(batch.ts_ns, dtype=np.int64))
        chunk = Chunk(batch, records, ann, life, res.rows)
        for c in self.consumers:
            try:
                c.feed(chunk)
            except StopRun:
                self.stopped = True
        res.rows += len(records)
        return chunk

    def finish(self, damage: Damage | None = None,
               counters: dict[str, int] | None = None) -> Result:
        """Tell every consumer the input has ended; return the run's result."""
        self.result.damage = damage
        self.result.counters = dict(counters or {})
        for c in self.consumers:
            c.finish(self.result)
        return self.result


def run(source: Source, consumers: Iterable[Consumer], options: Options = Options(), *,
        on_batch: Callable[[int], None] | None = None) -> Result:
    """Read `source` once and feed every consumer; return what the run leaves behind.

    `on_batch(frames)` is called after each batch (for a progress display).
    """
    pipe = Pipeline(consumers, options, name=source_name(source))
    with open_capture(source) as cap:
        for batch in cap:
            pipe.feed(batch)
            if on_batch is not None:
                on_batch(len(batch))
            if pipe.stopped:
                break
        damage, counters = cap.damage, cap.counters
    return pipe.finish(damage, counters)
