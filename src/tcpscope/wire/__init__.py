"""wire/: pure dissection of link -> IP -> TCP (+ options), checksums, and a packet builder.

Bulk path (native, columnar)::

    records = dissect_batch(batch)          # numpy array of RECORD_DTYPE, one row per frame
    damage_counters(records)                # {"truncated_tcp": 3, "bad_tcp_checksum": 1, ...}

Per packet, for display::

    Packet.from_record(records[i], batch.frame_bytes(i), frame=..., ts_ns=...)

See docs/dissection.md.
"""
from __future__ import annotations

from .dissect import COUNTER_NAMES, damage_counters, dissect_arrays, dissect_batch, dissect_frame, dissect_frames
from .options import parse_options
from .packet import Packet, records_to_columns
from .record import CSUM, KIND, LAYER, OPTION, REASON, RECORD_DTYPE, WARNING

__all__ = [
    "COUNTER_NAMES",
    "CSUM",
    "KIND",
    "LAYER",
    "OPTION",
    "REASON",
    "RECORD_DTYPE",
    "WARNING",
    "Packet",
    "damage_counters",
    "dissect_arrays",
    "dissect_batch",
    "dissect_frame",
    "dissect_frames",
    "parse_options",
    "records_to_columns",
]
