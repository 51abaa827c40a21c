"""`tcpscope packets`: one record per TCP packet, dissection plus analysis.

The schema is DESIGN.md's "Per-packet record" (see docs/analysis.md for every
key). Output is streamed batch by batch: read, dissect, analyse, format, write,
with memory bounded by one batch plus the engine's per-connection state. The
text of each batch is built natively (analysis/_format.c: no Python object,
no json.dumps per row), which keeps the writer at the speed of the analysis.

JSON Lines (``jsonl``)::

    {"frame":4,"ts":1700000000.012000000,"stream":0,"src":"10.0.0.1","sport":40000,
     "dst":"10.0.0.2","dport":80,"flags":"P.","seq":4294967041,"ack":4294967281,
     "rel_seq":1,"rel_ack":1,"len":100,"win":1000,"win_scaled":128000,"options":[],
     "checksum":"ok","analysis":["retransmission"],"dup_ack_num":null,
     "bytes_in_flight":100,"ack_rtt":null,"acks_frame":null,"irtt":0.020000000,
     "state":{"client":null,"server":null},"events":[],
     "rules":{"retransmission":{"rule":"retx.seq_below_next","evidence":[2]}}}

CSV (``csv``): the same columns, lists joined with ``;``, rules as
``flag=rule@frame+frame``; ``state`` and ``events`` are left out.
"""
from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np

from ..analysis import _engine
from ..analysis.engine import Analyzer, iter_file

__all__ = ["FORMATS", "format_batch", "write_packets"]

FORMATS = ("jsonl", "csv")
_SLICE = 8192  # rows formatted at a time


def format_batch(records: np.ndarray, annotations: np.ndarray, ts_ns: np.ndarray, fmt: str = "jsonl",
                 *, header: bool = False) -> bytes:
    """The text of one batch: a line per TCP row (non-TCP rows are skipped)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    return _engine.format_packets(
        np.ascontiguousarray(records),
        np.ascontiguousarray(annotations),
        np.ascontiguousarray(ts_ns, dtype=np.int64),
        fmt == "csv",
        header,
    )


def write_packets(source: str | os.PathLike | BinaryIO, out: BinaryIO, fmt: str = "jsonl",
                  mode: str = "wireshark") -> Analyzer:
    """Read `source`, write one record per TCP packet to the binary stream `out`.

    Returns the analyzer, whose ``connections()`` and ``stats()`` describe what
    was seen.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    an = Analyzer(mode)
    first = True
    for batch, records, ann in iter_file(source, mode, an):
        ts = np.asarray(batch.ts_ns, dtype=np.int64)
        # Format in slices: the text of a whole batch would be ~30 MB at once.
        for i in range(0, len(records), _SLICE):
            j = i + _SLICE
            out.write(format_batch(records[i:j], ann[i:j], ts[i:j], fmt, header=first))
            first = False
    if first and fmt == "csv":  # an empty capture still gets its header
        out.write(_engine.format_packets(b"", b"", b"", True, True))
    out.flush()
    return an
