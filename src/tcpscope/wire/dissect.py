"""Bulk dissection: FrameBatch -> numpy array of RECORD_DTYPE, one row per frame.

The work is done by the native module (`_dissect.c`) in one pass over the
batch, without one Python object per frame. See docs/dissection.md for what
each field, stop reason and warning means.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import _dissect
from .record import RECORD_DTYPE, REASON, WARNING

if TYPE_CHECKING:  # wire/ needs only the batch's arrays, not the capture package
    from ..capture.batch import FrameBatch

__all__ = [
    "dissect_arrays",
    "dissect_batch",
    "dissect_frame",
    "dissect_frames",
    "damage_counters",
    "COUNTER_NAMES",
]


def dissect_arrays(
    data: bytes | bytearray | memoryview,
    offset: np.ndarray,
    caplen: np.ndarray,
    origlen: np.ndarray,
    linktype: int | np.ndarray,
    *,
    verify_checksums: bool = True,
) -> np.ndarray:
    """Dissect frames ``data[offset[i] : offset[i] + caplen[i]]``; one record each.

    `linktype` is one link type for all frames or a per-frame array. Raises
    ValueError if a frame lies outside `data` (a caller's bug, not damage).
    """
    offset = np.ascontiguousarray(offset, dtype=np.int64)
    caplen = np.ascontiguousarray(caplen, dtype=np.uint32)
    origlen = np.ascontiguousarray(origlen, dtype=np.uint32)
    if not isinstance(linktype, (int, np.integer)):
        linktype = np.ascontiguousarray(linktype, dtype=np.uint16)
    else:
        linktype = int(linktype)
    out = np.empty(offset.shape[0], dtype=RECORD_DTYPE)
    _dissect.dissect(data, offset, caplen, origlen, linktype, out, verify_checksums)
    return out


def dissect_batch(batch: FrameBatch, *, verify_checksums: bool = True) -> np.ndarray:
    """Dissect every frame of a batch: ``records[i]`` describes ``batch`` frame i."""
    return dissect_arrays(
        batch.data,
        batch.offset,
        batch.caplen,
        batch.origlen,
        batch.linktype,
        verify_checksums=verify_checksums,
    )


def dissect_frame(
    data: bytes | bytearray | memoryview,
    linktype: int,
    origlen: int | None = None,
    *,
    verify_checksums: bool = True,
) -> np.void:
    """Dissect one frame (the same native code, a batch of one).

    `origlen` is the frame's length on the wire; by default the captured length.
    """
    n = len(data)
    rec = dissect_arrays(
        data,
        np.zeros(1, np.int64),
        np.array([n], np.uint32),
        np.array([n if origlen is None else origlen], np.uint32),
        linktype,
        verify_checksums=verify_checksums,
    )
    return rec[0]


def dissect_frames(
    frames: Sequence[bytes] | Iterable[bytes],
    linktype: int | Sequence[int],
    *,
    origlen: Sequence[int] | None = None,
    verify_checksums: bool = True,
) -> np.ndarray:
    """Dissect a list of frames (joined into one buffer): for tests and small inputs."""
    frames = [bytes(f) for f in frames]
    caplen = np.array([len(f) for f in frames], dtype=np.uint32)
    offset = np.zeros(len(frames), dtype=np.int64)
    if len(frames) > 1:
        offset[1:] = np.cumsum(caplen[:-1], dtype=np.int64)
    orig = caplen if origlen is None else np.asarray(origlen, dtype=np.uint32)
    lt = linktype if isinstance(linktype, int) else np.asarray(linktype, dtype=np.uint16)
    return dissect_arrays(b"".join(frames), offset, caplen, orig, lt, verify_checksums=verify_checksums)


_REASONS = [(name.lower(), value) for name, value in REASON.items() if value != 0]
_WARNINGS = [(name.lower(), mask) for name, mask in WARNING.items()]

#: Every damage counter name: the stop reasons, then the warnings (record.py order).
COUNTER_NAMES: tuple[str, ...] = tuple(n for n, _ in _REASONS) + tuple(n for n, _ in _WARNINGS)


def damage_counters(records: np.ndarray) -> dict[str, int]:
    """How many records have each stop reason and each warning, by name.

    Every name of `COUNTER_NAMES` is present (zero counts included), reasons
    first, in the order of record.h.
    """
    reasons = np.bincount(records["stop_reason"], minlength=len(REASON) + 1)
    counts = {name: int(reasons[value]) for name, value in _REASONS}
    warnings = records["warnings"]
    for name, mask in _WARNINGS:
        counts[name] = int(np.count_nonzero(warnings & mask))
    return counts
