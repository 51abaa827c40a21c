"""The analysis engine's output: numpy dtypes mirroring annotation.h.

Both layouts come from the native module itself (offsetof of every field), so
the C structs in ``_native/annotation.h`` are the single source of truth, as
for the dissected records (wire/record.py).

``ANNOTATION_DTYPE``: one row per input record (``stream == -1``: not TCP).
``CONN_DTYPE``: one row per connection (Wireshark's ``tcp.stream``); in the
two-element fields index 0 is the client -> server side, 1 the other.
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

from . import _engine

__all__ = [
    "ANNOTATION_DTYPE",
    "CONN_DTYPE",
    "FLAG",
    "FLAG_BIT",
    "FLAG_NAMES",
    "SIDE",
    "ANN_KIND",
    "MAX_EVIDENCE",
    "NOTE",
    "note_names",
    "flag_names",
]


def _dtype(fields: list[tuple[str, int, str]], itemsize: int) -> np.dtype:
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[2] for f in fields],
            "offsets": [f[1] for f in fields],
            "itemsize": itemsize,
        }
    )


_LAYOUT = _engine.layout()
ANNOTATION_DTYPE: np.dtype = _dtype(*_LAYOUT["annotation"])
CONN_DTYPE: np.dtype = _dtype(*_LAYOUT["conn"])

_ENUMS = _engine.enums()
#: Bit number of each analysis flag, by Wireshark field name (``retransmission``, ...).
FLAG_BIT = MappingProxyType({k.lower(): v for k, v in _ENUMS["flag"].items()})
#: Bit mask of each analysis flag, by Wireshark field name.
FLAG = MappingProxyType({k: 1 << v for k, v in FLAG_BIT.items()})
#: Flag names in bit order (index = bit number).
FLAG_NAMES: tuple[str, ...] = tuple(sorted(FLAG_BIT, key=FLAG_BIT.__getitem__))
#: Bit masks of tcps_conn.side_flags, by name (``saw_syn``, ``sack_perm``, ...).
SIDE = MappingProxyType({k.lower(): 1 << v for k, v in _ENUMS["side"].items()})
#: What the engine did with a row (``not_tcp``, ``analysed``, ``no_seglen``).
ANN_KIND = MappingProxyType({k.removeprefix("ANN_").lower(): v for k, v in _ENUMS["kind"].items()})
MAX_EVIDENCE: int = _ENUMS["max_evidence"]
#: Bit mask of each improved-mode signal of a frame (``notes``), by name (``ecn_ce``, ...).
NOTE = MappingProxyType({k.lower(): 1 << v for k, v in _ENUMS["note"].items()})
_NOTE_ORDER = tuple(sorted(NOTE, key=NOTE.__getitem__))

# Wireshark's display order of the flags in a packet's analysis, for lists shown to people.
_DISPLAY_ORDER = (
    "reused_ports", "retransmission", "fast_retransmission", "spurious_retransmission",
    "out_of_order", "lost_segment", "ack_lost_segment", "window_update", "window_full",
    "keep_alive", "keep_alive_ack", "duplicate_ack", "zero_window_probe", "zero_window",
    "zero_window_probe_ack", "capture_duplicate",
)
_DISPLAY = tuple((name, FLAG[name]) for name in _DISPLAY_ORDER)
assert set(_DISPLAY_ORDER) == set(FLAG_BIT), "annotation.h and _DISPLAY_ORDER disagree"


def note_names(notes: int) -> list[str]:
    """The names of the signals set in `notes`, in bit order."""
    return [name for name in _NOTE_ORDER if notes & NOTE[name]]


def flag_names(flags: int) -> list[str]:
    """The names of the flags set in `flags`, in Wireshark's display order."""
    return [name for name, mask in _DISPLAY if flags & mask]
