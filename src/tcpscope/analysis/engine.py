"""The analysis engine: connection tracking and Wireshark-compatible TCP analysis.

Sans-IO: an `Analyzer` consumes dissected records (wire/, ``RECORD_DTYPE``)
in capture order, batch by batch, and returns one annotation per record
(``ANNOTATION_DTYPE``). It keeps every connection's state between calls, so a
file is fed batch by batch and a live capture in small batches; time comes
only from the capture timestamps passed in, never from the clock. The work is
done by the native ``_engine`` module::

    an = Analyzer(mode="improved")
    for batch in capture:
        records = dissect_batch(batch)
        ann = an.feed(records, batch.ts_ns, batch.frame_numbers, batch.iface)
    an.connections()          # one row per tcp.stream, at any time

Reading files is the pipeline's job (tcpscope/pipeline.py); for notebooks,
``tcpscope.analyze(path)`` reads a whole file into one `Analysis`. See
docs/analysis.md.

Modes:
  ``"improved"`` (the default): tcpscope's own judgement from the whole
      evidence (resent vs. reordered by IP ID and the peer's reports, SACK-aware
      bytes in flight, capture duplicates, probes vs. keep-alives, the sender
      model); each difference is listed in docs/differences.md. Where no rule of
      its own applies it answers as the Wireshark mode does.
  ``"wireshark"``: exactly what tshark 4.0 prints (tcp.stream, tcp.seq/ack,
      tcp.window_size, tcp.analysis.*), its quirks included; measured by
      tests/test_tshark_agreement.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..wire.record import RECORD_DTYPE
from . import _engine
from .annotation import ANNOTATION_DTYPE, CONN_DTYPE
from .connections import connection_dicts

if TYPE_CHECKING:
    from .lifecycle import Lifecycle

__all__ = ["Analyzer", "Analysis", "DEFAULT_MODE", "MODES"]

#: The analysis modes and their engine numbers.
MODES = {"improved": _engine.MODE_IMPROVED, "wireshark": _engine.MODE_WIRESHARK}
#: tcpscope's own judgement is the default everywhere; "wireshark" is the tshark-compatible mode.
DEFAULT_MODE = "improved"


class Analyzer:
    """Stateful TCP analysis over a stream of dissected records.

    Args:
        mode: ``"improved"`` (default, `DEFAULT_MODE`) or ``"wireshark"``.
        close_timeout: seconds of capture time a closed connection (RST, or FIN
            both ways) keeps its full analysis state after its last frame
            (default 60, Linux's TIME_WAIT); then only its stream, base
            sequence numbers and summary are kept.
        max_closed: at most this many closed connections keep their full state
            (the oldest give it up first).
        attempt_timeout: seconds of capture time an attempt (only one side has
            sent: an unanswered SYN) keeps its full state (default 120, longer
            than Linux's SYN retries); at most `max_attempts` attempts keep it.
        max_evicted: at most this many connections that gave up their state stay
            in the table (for port reuse and relative numbers); beyond, the oldest
            leaves it and its stream is final: `drain` hands its row out once, and
            a later frame of that 4-tuple starts a new stream.
    """

    def __init__(self, mode: str = DEFAULT_MODE, *, close_timeout: float = 60.0,
                 max_closed: int = 10000, attempt_timeout: float = 120.0,
                 max_attempts: int = 4096, max_evicted: int = 16384) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown analysis mode {mode!r}; expected one of {sorted(MODES)}")
        self.mode = mode
        self._engine = _engine.Engine(MODES[mode], int(close_timeout * 1e9), int(max_closed),
                                      int(attempt_timeout * 1e9), int(max_attempts),
                                      int(max_evicted))

    def feed(
        self,
        records: np.ndarray,
        ts_ns: np.ndarray,
        frames: np.ndarray,
        iface: np.ndarray | None = None,
    ) -> np.ndarray:
        """Analyse the next records, in capture order; one annotation per record.

        Args:
            records: ``RECORD_DTYPE`` rows (wire.dissect_batch's output).
            ts_ns: capture timestamps, integer nanoseconds.
            frames: 1-based frame numbers (what evidence and acks_frame refer to).
            iface: capture interface of each frame (zeros if omitted).

        Returns:
            ``ANNOTATION_DTYPE`` rows; ``stream == -1`` for frames that are not TCP.
        """
        if records.dtype != RECORD_DTYPE:
            # e.g. np.concatenate drops the padding of the C layout: same fields, repack.
            if records.dtype.names != RECORD_DTYPE.names:
                raise TypeError(f"records must have RECORD_DTYPE, not {records.dtype}")
            records = records.astype(RECORD_DTYPE)
        n = records.shape[0]
        records = np.ascontiguousarray(records)
        ts_ns = np.ascontiguousarray(ts_ns, dtype=np.int64)
        frames = np.ascontiguousarray(frames, dtype=np.int64)
        if iface is None:
            iface = np.zeros(n, dtype=np.uint16)
        else:
            iface = np.ascontiguousarray(iface, dtype=np.uint16)
        if not (ts_ns.shape[0] == frames.shape[0] == iface.shape[0] == n):
            raise ValueError("records, ts_ns, frames and iface must have the same length")
        out = self._engine.feed(records, ts_ns, frames, iface)
        return np.frombuffer(out, dtype=ANNOTATION_DTYPE)

    def connections(self, start: int = 0) -> np.ndarray:
        """One ``CONN_DTYPE`` row per stream seen so far (streams ``start`` and later),
        but those `drain` handed out."""
        return np.frombuffer(self._engine.connections(start), dtype=CONN_DTYPE)

    def drain(self) -> np.ndarray:
        """The rows of the streams that became final since the last call (no frame can
        reach them any more), in that order; the engine frees their summaries. A caller
        that drains keeps memory bounded by the active connections; `connections` no
        longer has the drained rows."""
        return np.frombuffer(self._engine.drain(), dtype=CONN_DTYPE)

    def connection_dicts(self, start: int = 0) -> list[dict[str, Any]]:
        """The connections as plain dicts (addresses as text), for people and JSON."""
        return connection_dicts(self.connections(start))

    def stats(self) -> dict[str, int]:
        """Frames seen, streams, active conversations and the bytes of state held."""
        return dict(self._engine.stats())


@dataclass
class Analysis:
    """A whole file, analysed: parallel arrays, one row per frame, plus connections."""

    path: str
    mode: str
    records: np.ndarray  #: RECORD_DTYPE
    annotations: np.ndarray  #: ANNOTATION_DTYPE
    ts_ns: np.ndarray  #: int64
    frames: np.ndarray  #: int64, 1-based
    iface: np.ndarray  #: uint16
    connections: np.ndarray  #: CONN_DTYPE
    stats: dict[str, int] = field(default_factory=dict)
    #: np.uint8 `states.State` of the client / server after each row (0 = UNKNOWN / not TCP)
    client_state: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    server_state: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    #: row index -> lifecycle events that row caused ("handshake_complete", ...)
    events: dict[int, tuple[str, ...]] = field(default_factory=dict)
    #: stream -> `lifecycle.Lifecycle` (handshake, teardown, transitions, ...)
    lifecycles: dict[int, Lifecycle] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.records.shape[0])

    def stream(self, n: int) -> np.ndarray:
        """Indexes of the frames of stream `n`."""
        return np.flatnonzero(self.annotations["stream"] == n)

    def connection_dicts(self) -> list[dict[str, Any]]:
        return connection_dicts(self.connections)
