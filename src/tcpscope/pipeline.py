"""The one loop every command runs: open → filter → dissect → analyse → select → consume.

A command builds the consumers it needs (a listing, a packets writer, a
connection table, a story collector, ...) and hands them to `run`, which
reads the input batch by batch and gives each consumer one `Chunk` per batch:

    result = run("trace.pcap", [consumer], Options(mode="improved"))
    result.damage      # where and why reading stopped inside the file, or None

This is the only place, besides `capture/` and the CLI, that opens input. An
`Input` says what a command reads: one or more files (merged by time, as
mergecap does), a capture filter (libpcap's, run on each batch before
dissection: the frames keep their numbers), ``-c N`` (frames that passed the
filter) and a row selection (a display filter, ``--stream``), applied after
the analysis, so that stream numbers, relative numbers and verdicts are those
of everything read; consumers get only the selected rows.
What a consumer needs decides how far a batch goes: `Options.analyse` (the
engine's annotations and connection table) and `Options.states` (both
endpoints' states and the lifecycle) can be switched off for consumers that
only list frames, and `Options.summaries` (the lifecycle's per-connection
counts) for consumers that need only the per-row states. Memory is one batch
plus the state of the connections the engine tracks; with `Options.retire`
finished connections are handed to the consumers (`Chunk.finished`) and freed,
so that it follows the active connections (docs/architecture.md, "Resources").

Three ways to drive the loop, all the same loop (`Pipeline.feed`):

- `run(source, consumers, options)`: read a capture, push every chunk to the
  consumers (every command);
- `Pipeline(consumers, options).read(source)`: the same, yielding each chunk
  after the consumers had it, for a caller that wants a loop of its own (a
  notebook, a test); the result is ``pipe.result`` once the loop ends;
- `Pipeline.feed(batch)` / `Pipeline.finish()`: batches that arrive one by one
  (live capture).

`analyze(source, mode)` (``tcpscope.analyze``) keeps every row of a capture in
one `Analysis` (`Collect` does it for any consumer list). `find_streams` reads an
input once to learn which streams a selection names (per-stream commands are
told stream numbers). A consumer that is
asked for a stream the input does not have raises `StreamNotFound`, which the
CLI turns into one line and exit code 1. A consumer that has all it wants
(``read -c N``) raises `StopRun` from `feed`: the run reads no further.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import numpy as np

from .analysis.annotation import ANNOTATION_DTYPE
from .analysis.engine import DEFAULT_MODE, Analysis, Analyzer
from .analysis.lifecycle import LifecycleBatch, LifecycleTracker
from .analysis.lifecycle.reference import correct_rows
from .capture.batch import FrameBatch, Interface
from .capture.errors import CaptureDamageWarning, Damage
from .capture.inputs import open_inputs
from .wire.dissect import dissect_batch
from .wire.record import RECORD_DTYPE

__all__ = ["Chunk", "Collect", "Consumer", "Input", "Options", "Pipeline", "Result", "Selection",
           "Source", "StopRun", "StreamNotFound", "analyze", "collect", "find_streams", "run",
           "source_name", "take_rows", "warn_damage", "watch_results"]

#: One capture: a path, ``"-"`` for standard input, or an open binary file.
File = str | os.PathLike | BinaryIO


class Selection(Protocol):
    """Which rows of a chunk go on to the consumers (filter/: a display filter, a
    stream selection). It says what it reads: the analysis, the endpoint states."""

    needs_analysis: bool
    needs_states: bool

    def mask(self, chunk: Chunk) -> np.ndarray: ...


@dataclass(frozen=True)
class Input:
    """What a command reads: `files` (paths, directories, glob patterns, ``"-"``, binary
    files; several are merged by time), then `capture_filter` (a pcap-filter
    expression), `count` (stop after that many frames passed it) and `select` (the rows
    consumers get, chosen after the analysis)."""

    files: tuple[File, ...]
    capture_filter: str | None = None
    count: int | None = None
    select: Selection | None = None


#: What `run` reads: one capture, or an `Input`.
Source = File | Input


def as_input(source: Source) -> Input:
    return source if isinstance(source, Input) else Input((source,))


class StreamNotFound(LookupError):
    """The input has no TCP stream with the number asked for (the message says which)."""

    @classmethod
    def number(cls, stream: int | None, total: int | None = None) -> StreamNotFound:
        """No stream `stream` (None: no TCP stream at all) among `total` (None: unknown)."""
        if stream is None or total == 0:
            return cls("no TCP stream in the capture")
        if total is None:
            return cls(f"no TCP stream {stream} in the capture")
        return cls(f"no TCP stream {stream} in the capture "
                   f"({total} stream{'s' if total != 1 else ''}: 0-{total - 1})")


@dataclass(frozen=True)
class Options:
    """How far each batch goes, and in which analysis mode."""

    mode: str = DEFAULT_MODE
    analyse: bool = True       #: run the engine (annotations, connections)
    states: bool = True        #: run the lifecycle tracker (needs analyse)
    #: the tracker counts packets, bytes and flags per connection (its `lifecycles()`)
    summaries: bool = True
    #: which streams keep their full list of transitions (True: all; a set; a predicate)
    keep_transitions: Any = True
    #: hand finished connections to the consumers as they end (`Chunk.finished`) and free
    #: them: memory follows the active connections, and at the end the analyzer's
    #: ``connections()`` and the tracker's ``lifecycles()`` hold only the rest
    retire: bool = False


@dataclass
class Chunk:
    """One batch on its way through the pipeline; rows are parallel arrays."""

    batch: FrameBatch
    records: np.ndarray                 #: RECORD_DTYPE, one row per frame
    annotations: np.ndarray | None      #: ANNOTATION_DTYPE (None without analysis)
    life: LifecycleBatch | None         #: states and events (None without states)
    row0: int                           #: rows of the run before this batch
    #: the input's interfaces (`batch.iface` indexes them); grows as pcapng IDBs come
    interfaces: list[Interface] = field(default_factory=list)
    #: the input files (`batch.source` indexes them when there are several)
    files: list[str] = field(default_factory=list)
    #: with `Options.retire`: the connections (CONN_DTYPE rows) that ended with this batch
    #: or before (no row reaches them again), and their lifecycles when the tracker keeps
    #: summaries; the pipeline has freed them
    finished: np.ndarray | None = None
    finished_lifecycles: dict[int, Any] = field(default_factory=dict)

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
    rows: int = 0                               #: rows given to the consumers
    damage: Damage | None = None                #: where reading stopped inside the file
    #: (file, damage) for every file that was damaged (several inputs: several)
    damages: list[tuple[str, Damage]] = field(default_factory=list)
    #: (file, reason) for the files of a directory that are not captures
    skipped: list[tuple[str, str]] = field(default_factory=list)
    interfaces: list[Interface] = field(default_factory=list)  #: the input's interfaces
    analyzer: Analyzer | None = None
    tracker: LifecycleTracker | None = None
    counters: dict[str, int] = field(default_factory=dict)


def source_name(source: Source) -> str:
    """The name of the input as the user gave it (``-`` for standard input)."""
    if isinstance(source, Input):
        return ", ".join(source_name(f) for f in source.files)
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return name if isinstance(name, str) else "-"
    return os.fspath(source)


#: Functions told each run's `Result` once its consumers finished (`watch_results`).
_watchers: list[Callable[[Result], None]] = []


@contextmanager
def watch_results(watcher: Callable[[Result], None]) -> Iterator[None]:
    """Tell `watcher` the result of every run that finishes inside the ``with``: the CLI
    reports each run's damage this way, whichever presenter ran it."""
    _watchers.append(watcher)
    try:
        yield
    finally:
        _watchers.remove(watcher)


class Pipeline:
    """The loop's body, for input that arrives as batches (live capture):
    `feed` each `FrameBatch`, then `finish` once. `run` drives it over a capture."""

    def __init__(self, consumers: Iterable[Consumer], options: Options = Options(), *,
                 name: str = "-") -> None:
        self.consumers = list(consumers)
        self.options = options
        self.result = Result(name)
        self.select: Selection | None = None
        self.interfaces: list[Interface] = []
        self.files: list[str] = []
        self._layers(options.analyse, options.analyse and options.states)
        self.stopped = False   #: a consumer raised StopRun: feed no more batches

    def _layers(self, analyse: bool, states: bool) -> None:
        """Run the engine (and the lifecycle tracker) from now on, if not yet."""
        res, options = self.result, self.options
        if analyse and res.analyzer is None:
            res.analyzer = Analyzer(options.mode)
        if states and res.tracker is None:
            res.tracker = LifecycleTracker(keep_transitions=options.keep_transitions,
                                           summaries=options.summaries)

    def feed(self, batch: FrameBatch) -> Chunk:
        """Dissect and analyse one batch and hand its selected rows to every consumer."""
        res = self.result
        records = dissect_batch(batch)
        ann = life = None
        if res.analyzer is not None:
            ann = res.analyzer.feed(records, batch.ts_ns, batch.frame_numbers, batch.iface)
            if res.tracker is not None:
                life = res.tracker.feed(records, ann, np.asarray(batch.ts_ns, dtype=np.int64))
        chunk = Chunk(batch, records, ann, life, res.rows, self.interfaces, self.files)
        if self.options.retire and res.analyzer is not None:
            chunk.finished = res.analyzer.drain()
            if res.tracker is not None and chunk.finished.size:
                chunk.finished_lifecycles = res.tracker.retire(chunk.finished["stream"].tolist())
        if self.select is not None:
            chunk = take_rows(chunk, np.flatnonzero(self.select.mask(chunk)))
        for c in self.consumers:
            try:
                c.feed(chunk)
            except StopRun:
                self.stopped = True
        res.rows += len(chunk.records)
        return chunk

    def finish(self, damage: Damage | None = None,
               counters: dict[str, int] | None = None,
               damages: list[tuple[str, Damage]] | None = None) -> Result:
        """Tell every consumer the input has ended; return the run's result."""
        res = self.result
        res.damages = list(damages) if damages is not None else (
            [(res.name, damage)] if damage is not None else [])
        res.damage = res.damages[0][1] if res.damages else None
        res.counters = dict(counters or {})
        for c in self.consumers:
            c.finish(res)
        for w in list(_watchers):
            w(res)
        return res

    def read(self, source: Source) -> Iterator[Chunk]:
        """Read `source` through the pipeline, yielding each chunk once the consumers
        had it, until the input ends or a consumer raised `StopRun`; `finish` runs after
        the last one (not when the caller leaves the loop early)."""
        inp = as_input(source)
        self.select = inp.select
        if inp.select is not None:
            self._layers(inp.select.needs_analysis or inp.select.needs_states,
                         inp.select.needs_states)
        with open_inputs(inp.files, capture_filter=inp.capture_filter, count=inp.count) as cap:
            self.result.name = cap.name
            self.result.skipped = cap.skipped
            self.interfaces = self.result.interfaces = cap.interfaces
            self.files = cap.names
            for batch in cap:
                yield self.feed(batch)
                if self.stopped:
                    break
            # a consumer that stopped the run had all it wanted: damage past it does not count
            damages = [] if self.stopped else cap.damages
            counters = cap.counters
        self.finish(counters=counters, damages=damages)


def take_rows(chunk: Chunk, rows: np.ndarray) -> Chunk:
    """The chunk with only the rows at `rows` (ascending indexes): each column, the
    states and the events (renumbered) kept for those rows."""
    if rows.size == len(chunk.records):
        return chunk
    life = chunk.life
    if life is not None:
        pos = {int(r): k for k, r in enumerate(rows.tolist())} if life.events else {}
        life = LifecycleBatch(life.client[rows], life.server[rows],
                              {pos[r]: ev for r, ev in life.events.items() if r in pos})
    return Chunk(chunk.batch.take(rows), _take(chunk.records, rows),
                 None if chunk.annotations is None else _take(chunk.annotations, rows), life,
                 chunk.row0, chunk.interfaces, chunk.files, chunk.finished,
                 chunk.finished_lifecycles)


def _take(rows_of: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows of a structured array, copied as whole byte rows (numpy copies a structured
    row field by field, ten times slower for the records' hundred fields)."""
    arr = np.ascontiguousarray(rows_of)
    raw = arr.view(np.uint8).reshape(arr.shape[0], arr.dtype.itemsize)
    return raw[rows].view(arr.dtype).reshape(-1)


def run(source: Source, consumers: Iterable[Consumer], options: Options = Options(), *,
        on_batch: Callable[[int], None] | None = None) -> Result:
    """Read `source` once and feed every consumer; return what the run leaves behind.

    `on_batch(frames)` is called after each batch (for a progress display).
    """
    pipe = Pipeline(consumers, options)
    for chunk in pipe.read(source):
        if on_batch is not None:
            on_batch(len(chunk.records))
    return pipe.result


class Collect:
    """A consumer that keeps rows in one `Analysis`: every row, or those `select(chunk)`
    picks (row indexes into the chunk). Needs the analysis and the states; the
    lifecycles are there when the tracker keeps summaries. With `Options.retire`, of
    the connections that finish during the run it keeps those it has rows of (their
    connection row and lifecycle): ``stats["streams"]`` counts them all."""

    def __init__(self, select: Callable[[Chunk], np.ndarray] | None = None) -> None:
        self.select = select
        self.analysis: Analysis | None = None  #: set by `finish`
        self._parts: dict[str, list[np.ndarray]] = {
            k: [] for k in ("records", "annotations", "ts_ns", "frames", "iface", "client",
                            "server")}
        self._events: dict[int, tuple[str, ...]] = {}
        self._kept = 0
        self._streams: set[int] = set()      # streams with kept rows (with a selection)
        self._finished: list[np.ndarray] = []
        self._lifecycles: dict[int, Any] = {}

    def _keep_finished(self, chunk: Chunk) -> None:
        """The finished connections this consumer has rows of (all, without a selection)."""
        rows = chunk.finished
        if rows is None or not rows.size:
            return
        if self.select is not None:
            rows = rows[np.isin(rows["stream"], np.fromiter(self._streams, np.int64))]
        self._finished.append(rows.copy())
        kept = set(rows["stream"].tolist())
        self._lifecycles.update((st, lc) for st, lc in chunk.finished_lifecycles.items()
                                if st in kept)

    def feed(self, chunk: Chunk) -> None:
        if chunk.annotations is None or chunk.life is None:
            raise ValueError("Collect needs Options(analyse=True, states=True)")
        idx = None if self.select is None else self.select(chunk)
        batch, life = chunk.batch, chunk.life
        columns = {
            "records": chunk.records, "annotations": chunk.annotations, "ts_ns": chunk.ts_ns,
            "frames": batch.frame_numbers, "iface": np.asarray(batch.iface, dtype=np.uint16),
            "client": life.client, "server": life.server,
        }
        if idx is None:
            for key, col in columns.items():
                self._parts[key].append(col)
            self._events.update((self._kept + row, ev) for row, ev in sorted(life.events.items()))
            self._kept += len(chunk.records)
            self._keep_finished(chunk)
            return
        if idx.size:
            for key, col in columns.items():
                self._parts[key].append(col[idx])
            pos = {int(row): self._kept + k for k, row in enumerate(idx.tolist())}
            self._events.update((pos[row], ev) for row, ev in sorted(life.events.items())
                                if row in pos)
            self._kept += int(idx.size)
            s = chunk.annotations["stream"][idx]
            self._streams.update(np.unique(s[s >= 0]).tolist())
        self._keep_finished(chunk)

    def finish(self, result: Result) -> None:
        an, tracker = result.analyzer, result.tracker
        if an is None or tracker is None:
            raise ValueError("Collect needs Options(analyse=True, states=True)")

        def cat(key: str, dtype: Any) -> np.ndarray:
            # each column's parts are let go as soon as they are joined: the peak is the
            # kept rows and one column's copy, not twice the kept rows
            parts, self._parts[key] = self._parts[key], []
            return np.concatenate(parts).astype(dtype, copy=False) if parts else \
                np.empty(0, dtype=dtype)

        client, server = cat("client", np.uint8), cat("server", np.uint8)
        ann = cat("annotations", ANNOTATION_DTYPE)
        fixes = [(st, *c) for st, cors in tracker.corrections().items() for c in cors]
        if fixes:   # what the whole capture shows about rows of earlier batches
            correct_rows(fixes, ann["stream"], ann["frame"], client, server)
        conns = an.connections()
        lifecycles = tracker.lifecycles() if tracker.summaries else {}
        if self._finished:   # the connections that finished during the run, then the rest
            conns = np.concatenate(self._finished + [conns])
            conns = conns[np.argsort(conns["stream"], kind="stable")]
            lifecycles = dict(sorted({**self._lifecycles, **lifecycles}.items()))
        self.analysis = Analysis(
            path=result.name, mode=an.mode,
            records=cat("records", RECORD_DTYPE), annotations=ann,
            ts_ns=cat("ts_ns", np.int64), frames=cat("frames", np.int64),
            iface=cat("iface", np.uint16), connections=conns.copy(), stats=an.stats(),
            client_state=client, server_state=server,
            events=self._events, lifecycles=lifecycles,
        )


def find_streams(source: Source, mode: str = DEFAULT_MODE) -> list[int]:
    """The streams that have a row the input's selection keeps (in stream order): what a
    per-stream command is told when a stream is named by address or by a display filter.
    Reads the input once more; standard input cannot be read twice (see the CLI)."""
    inp = as_input(source)
    found: set[int] = set()

    class _Streams:
        def feed(self, chunk: Chunk) -> None:
            assert chunk.annotations is not None
            s = chunk.annotations["stream"]
            found.update(np.unique(s[s >= 0]).tolist())

        def finish(self, result: Result) -> None:
            pass

    states = inp.select is not None and inp.select.needs_states
    run(inp, [_Streams()], Options(mode=mode, states=states, summaries=False,
                                   keep_transitions=False))
    return sorted(found)


def warn_damage(result: Result) -> None:
    """A `CaptureDamageWarning` per damaged file of a run (the Python API's report; the
    CLI prints its own lines)."""
    for name, damage in result.damages:
        warnings.warn(f"{name}: {damage}", CaptureDamageWarning, stacklevel=3)


def collect(source: Source, mode: str = DEFAULT_MODE) -> tuple[Analysis, Result]:
    """Every row of `source` in one `Analysis`, and the run's `Result` (its damage)."""
    c = Collect()
    result = run(source, [c], Options(mode=mode))
    assert c.analysis is not None
    return c.analysis, result


def analyze(source: Source, mode: str = DEFAULT_MODE) -> Analysis:
    """Read, dissect and analyse a whole capture into one `Analysis` (it holds every row:
    for notebooks and tests; commands stream with `run`).

    Example::

        a = tcpscope.analyze("trace.pcap")
        a.annotations["flags"], a.connection_dicts()
        a.client_state, a.server_state, a.events   # endpoint states after each row
        a.lifecycles[0].handshake, a.lifecycles[0].transitions
    """
    return collect(source, mode)[0]
