"""Selections: which packets or connections a command shows (docs/filters.md).

- `DisplayFilter` (display.py): Wireshark's display-filter syntax over tcpscope's
  fields (fields.py: `PACKET_FIELDS`, `CONN_FIELDS`), evaluated on columns;
- `StreamSpec` (streams.py): ``--stream N`` or ``--stream ADDR:PORT[-ADDR:PORT]``;
- `RowSelection`: both, as the pipeline's row selection (`pipeline.Input.select`);
- `select_records`: both, over connection records (``conns``).

Capture filters (pcap-filter syntax, libpcap) are the capture layer's:
`tcpscope.capture.bpf`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .display import DisplayFilter, DisplayFilterError
from .fields import CONN_FIELDS, PACKET_FIELDS, Columns, Field, FieldTable, wireshark_names
from .streams import StreamSpec, StreamSpecError, parse_stream

__all__ = ["CONN_FIELDS", "Columns", "DisplayFilter", "DisplayFilterError", "Field",
           "FieldTable", "PACKET_FIELDS", "RowSelection", "StreamSpec", "StreamSpecError",
           "parse_stream", "select_records", "wireshark_names"]


class RowSelection:
    """The packets a display filter and ``--stream`` values keep (any of the streams,
    and the filter): the pipeline's `Selection`."""

    def __init__(self, display: DisplayFilter | None = None,
                 streams: Sequence[StreamSpec] = ()) -> None:
        self.display = display
        self.streams = tuple(streams)
        by_number = any(s.number is not None for s in self.streams)
        self.needs_states = bool(display and display.needs_states)
        self.needs_analysis = bool(display and display.needs_analysis) or by_number

    def __bool__(self) -> bool:
        return self.display is not None or bool(self.streams)

    def mask(self, chunk: Any) -> np.ndarray:
        cols = Columns.from_chunk(chunk)
        keep = np.ones(cols.n, dtype=bool)
        if self.streams:
            any_stream = np.zeros(cols.n, dtype=bool)
            for s in self.streams:
                any_stream |= s.packet_mask(cols)
            keep &= any_stream
        if self.display is not None:
            keep &= self.display.mask(cols)
        return keep


def select_records(records: Sequence[dict], display: DisplayFilter | None,
                   streams: Sequence[StreamSpec] = ()) -> list[int]:
    """Indexes of the connection records that match any of `streams` and `display`."""
    idx = [i for i, r in enumerate(records)
           if not streams or any(s.conn_match(r) for s in streams)]
    if display is None or not idx:
        return idx
    picked = [records[i] for i in idx]
    keep = display.mask(Columns.from_records(picked))
    return [i for i, k in zip(idx, keep.tolist()) if k]
