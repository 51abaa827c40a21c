"""`tcpscope packets`: one record per TCP packet, dissection plus analysis.

The schema is DESIGN.md's "Per-packet record" (see docs/analysis.md for every
key). Output is streamed batch by batch: `PacketsWriter` is a pipeline consumer
(tcpscope/pipeline.py reads, dissects and analyses; this formats and writes),
with memory bounded by one batch plus the engine's per-connection state. The
text of each batch is built natively (present/_packets.c: no Python object,
no json.dumps per row), which keeps the writer at the speed of the analysis.

JSON Lines (``jsonl``)::

    {"frame":4,"ts":1700000000.012000000,"stream":0,"src":"10.0.0.1","sport":40000,
     "dst":"10.0.0.2","dport":80,"flags":"P.","seq":4294967041,"ack":4294967281,
     "rel_seq":1,"rel_ack":1,"len":100,"win":1000,"win_scaled":128000,"options":[],
     "checksum":"ok","analysis":["retransmission"],"dup_ack_num":null,
     "bytes_in_flight":100,"ack_rtt":null,"acks_frame":null,"irtt":0.020000000,
     "state":{"client":"ESTABLISHED","server":"ESTABLISHED"},"events":[],
     "rules":{"retransmission":{"rule":"retx.seq_below_next","evidence":[2]}}}

``state`` is each endpoint's RFC 9293 state after the packet and ``events`` the
lifecycle events it caused (analysis/lifecycle.py, docs/states.md).

CSV (``csv``): the same columns, lists joined with ``;``, rules as
``flag=rule@frame+frame``; ``state`` becomes ``client_state`` and ``server_state``.
Parquet (``parquet``, tcpscope[arrow]): the CSV's columns, typed (tables.py).

With several input files each record also says where it came from: ``file``
and ``file_frame`` (its number in that file), the last two keys / columns.
"""
from __future__ import annotations

import csv
import io
import json
import os
from typing import Any, BinaryIO

import numpy as np

from ..analysis.engine import DEFAULT_MODE, Analyzer
from ..pipeline import Chunk, Options, Result, run
from . import _packets

__all__ = ["FORMATS", "PacketsWriter", "events_arrays", "format_batch", "write_packets"]

FORMATS = ("jsonl", "csv", "parquet")
_SLICE = 8192  # rows formatted at a time


def events_arrays(events: dict[int, tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray, bytes]:
    """A batch's sparse events as the formatter takes them: rows (ascending),
    offsets into the blob (one more than rows) and the comma-separated names."""
    rows = sorted(events)
    off = [0]
    parts = []
    n = 0
    for r in rows:
        text = ",".join(events[r])
        parts.append(text)
        n += len(text)
        off.append(n)
    return np.array(rows, np.int64), np.array(off, np.int64), "".join(parts).encode("ascii")


def format_batch(records: np.ndarray, annotations: np.ndarray, ts_ns: np.ndarray, fmt: str = "jsonl",
                 *, header: bool = False, client_state: np.ndarray | None = None,
                 server_state: np.ndarray | None = None,
                 events: dict[int, tuple[str, ...]] | None = None) -> bytes:
    """The text of one batch: a line per TCP row (non-TCP rows are skipped).

    ``client_state`` / ``server_state`` (np.uint8 State per row) and ``events``
    (row -> event names) are a `LifecycleTracker` batch's output; without them
    ``state`` is null and ``events`` empty.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    ev = events_arrays(events) if events else (None, None, None)
    return _format(records, annotations, ts_ns, fmt, header, client_state, server_state, *ev)


def _format(records, annotations, ts_ns, fmt, header, client_state, server_state, ev_rows, ev_off,
            ev_blob) -> bytes:
    states = (None, None) if client_state is None else (
        np.ascontiguousarray(client_state, dtype=np.uint8),
        np.ascontiguousarray(server_state, dtype=np.uint8))
    return _packets.format_packets(
        np.ascontiguousarray(records),
        np.ascontiguousarray(annotations),
        np.ascontiguousarray(ts_ns, dtype=np.int64),
        fmt == "csv",
        header,
        *states,
        ev_rows,
        ev_off,
        ev_blob,
    )


class PacketsWriter:
    """A pipeline consumer: one record per TCP packet of each chunk, to the binary
    stream `out` (needs the analysis and the states); ``parquet``: `out` is a
    `tables.ParquetPackets`."""

    def __init__(self, out: Any, fmt: str = "jsonl") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
        self.out = out
        self.fmt = fmt
        self._header = True
        self._files: bool | None = None  # the input has several files (decided at once)

    def feed(self, chunk: Chunk) -> None:
        records, ann, life, ts = chunk.records, chunk.annotations, chunk.life, chunk.ts_ns
        assert ann is not None and life is not None
        if self._files is None:
            self._files = chunk.batch.source is not None
        ev_rows, ev_off, ev_blob = events_arrays(life.events)
        text_fmt = "csv" if self.fmt == "parquet" else self.fmt
        # Format in slices: the text of a whole batch would be ~30 MB at once.
        for i in range(0, len(records), _SLICE):
            j = i + _SLICE
            k0, k1 = np.searchsorted(ev_rows, (i, j))
            header = self._header or self.fmt == "parquet"
            text = _format(records[i:j], ann[i:j], ts[i:j], text_fmt, header,
                           life.client[i:j], life.server[i:j], ev_rows[k0:k1] - i,
                           ev_off[k0:k1 + 1], ev_blob)
            if self._files:
                text = _with_files(text, text_fmt, header, chunk, ann[i:j], slice(i, j))
            self._emit(text)
            self._header = False

    def _emit(self, text: bytes) -> None:
        if self.fmt == "parquet":
            self.out.write_csv(text)
        else:
            self.out.write(text)

    def finish(self, result: Result) -> None:
        if self._header and self.fmt == "csv":  # an empty capture still gets its header
            self.out.write(_packets.format_packets(b"", b"", b"", True, True))
        if self.fmt != "parquet":
            self.out.flush()


def _with_files(text: bytes, fmt: str, header: bool, chunk: Chunk, ann: np.ndarray,
                rows: slice) -> bytes:
    """The records of several files: each ends with its file and its frame there."""
    tcp = np.flatnonzero(ann["stream"] >= 0)
    source = chunk.batch.source[rows][tcp].tolist()
    frame = chunk.batch.source_frame[rows][tcp].tolist()
    names = chunk.files
    lines = text.split(b"\n")
    out = []
    k = 0
    if header and fmt == "csv":
        out.append(lines[0] + b",file,file_frame")
        lines = lines[1:]
    for line in lines:
        if not line:
            continue
        name, fr = names[source[k]], frame[k]
        if fmt == "csv":
            cell = io.StringIO()
            csv.writer(cell, lineterminator="").writerow([name, fr])
            out.append(line + b"," + cell.getvalue().encode())
        else:
            out.append(line[:-1] + f',"file":{json.dumps(name)},"file_frame":{fr}}}'.encode())
        k += 1
    return b"\n".join(out) + b"\n" if out else b""


def write_packets(source: Any, out: BinaryIO | str, fmt: str = "jsonl",
                  mode: str = DEFAULT_MODE, *, write: str | None = None) -> Analyzer:
    """Read `source` (a capture or a `pipeline.Input`), write one record per TCP packet to
    the binary stream or the path `out` (a path is written completely or not at all);
    `write`: also the selected frames to that capture (-w).

    Returns the analyzer: its ``stats()`` describe what was seen (finished connections
    were freed as they ended: ``connections()`` holds those still open at the end).
    """
    from ..capture.subset import SubsetWriter
    from ..capture.writer import AtomicOutput, export_error

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    target: Any
    if fmt == "parquet":
        from ..pipeline import as_input
        from ..capture.inputs import expand_inputs
        from .tables import ParquetPackets

        files = len(expand_inputs(as_input(source).files)) > 1
        target = ParquetPackets(os.fspath(out), files=files)  # type: ignore[arg-type]
    elif isinstance(out, (str, os.PathLike)):
        target = AtomicOutput(out)
    else:
        target = None
    writer = PacketsWriter(target if target is not None else out, fmt)
    if isinstance(target, AtomicOutput):
        writer.out = target.file
    consumers: list[Any] = [writer]
    frames = SubsetWriter(write) if write is not None else None
    if frames is not None:
        consumers.append(frames)
    try:
        # The per-row states and events need neither transitions nor per-connection counts,
        # nor a finished connection: retire them.
        result = run(source, consumers, Options(mode=mode, keep_transitions=False,
                                                summaries=False, retire=True))
    except BaseException as exc:
        for t in (target, frames):
            if t is not None:
                t.abort()
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError) and \
                target is not None:
            raise export_error(os.fspath(out), exc) from None  # type: ignore[arg-type]
        raise
    if target is not None:
        target.close() if fmt == "parquet" else target.commit()
    assert result.analyzer is not None
    return result.analyzer
