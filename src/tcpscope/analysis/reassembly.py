"""Follow-stream reassembly: each direction's bytes, in sequence order, once.

Sans-IO (h11's shape): the caller feeds one `Segment` per TCP packet of the
streams it asked for -- the payload, the direction, the 64-bit relative
sequence number the analysis engine computed, the ACK -- and gets back, in the
order they happen, typed items:

- `Chunk`: new bytes of one direction, at their relative sequence number, with
  the frames they came from;
- `Gap`: bytes that exist but are not in the capture -- never seen
  (``cause="missing"``) or cut off by the snapshot length / an IP fragment
  (``cause="snaplen"`` ...);
- `OverlapConflict`: a copy of bytes already seen, with *different* content
  (the first copy is kept; a different later copy is a sign of injection, or
  of corruption when a checksum failed);
- `RetransmissionDropped`: bytes seen before, same content, left out;
- `KeepaliveSkipped`: the 1-byte keep-alive (seq = next - 1) whose byte is
  garbage and not stream data;
- `RstPayload`: data carried by a RST (diagnostic text, RFC 9293 §3.5.3; never
  delivered to the application, so not stream data).

Rules, per direction (``from_server`` False = client -> server):

- A direction's bytes start at relative sequence 1 (just after the SYN, or the
  first byte the capture shows: the engine's relative numbers put it there).
- Every byte position is taken once, from the first copy captured (as
  Wireshark's follow does); later copies are compared with it.
- Bytes past a hole wait; the hole is declared a `Gap` when the peer
  acknowledges past it (the receiver had those bytes: the capture missed them),
  when more than `max_pending` bytes wait behind it, or at `finish()`. At the
  end, bytes the peer acknowledged or the sender's later sequence numbers
  prove sent, but never seen, are a gap too.
- Bytes that arrive for a hole already declared, or before the first byte, are
  emitted as a `Chunk` with ``late=True``.
- A zero-window probe is data: its byte is taken when first seen; the probe's
  repeats and the segment that later carries the byte again are retransmissions.

Memory: only the streams asked for; per direction, the pieces seen (which
frame brought which byte range, kept to compare later copies) and the bytes
waiting behind a hole (at most `max_pending`).
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Union

__all__ = [
    "Segment", "Chunk", "Gap", "OverlapConflict", "RetransmissionDropped", "KeepaliveSkipped",
    "RstPayload", "Item", "SideTotals", "Reassembler", "MAX_PENDING",
]

FIN, SYN, RST = 0x001, 0x002, 0x004

#: Bytes a direction may hold behind a hole before the hole is given up as lost.
MAX_PENDING = 64 << 20
#: A direction's first byte: the analysis's relative numbers put it at 1 (just after the
#: SYN, or the first byte the capture shows).
FIRST = 1


@dataclass(frozen=True, slots=True)
class Segment:
    """One TCP packet of a stream, as the reassembler needs it.

    ``rel_seq`` is the packet's relative sequence number (the SYN's own number
    for a SYN); ``length`` the payload length on the wire, of which ``payload``
    holds the captured part (``uncaptured`` says why the rest is missing);
    ``rel_ack`` the relative acknowledgement number of the *other* direction's
    bytes, None without the ACK bit.
    """

    stream: int
    from_server: bool
    frame: int
    rel_seq: int
    payload: bytes = b""
    length: int | None = None
    flags: int = 0
    rel_ack: int | None = None
    uncaptured: str = "snaplen"
    bad_checksum: bool = False
    keepalive: bool = False  #: the analysis flagged the packet as a keep-alive
    zero_window_probe: bool = False  #: the analysis flagged it as a zero-window probe


@dataclass(frozen=True, slots=True)
class Chunk:
    """New bytes of one direction, starting at ``rel_seq``."""

    kind: ClassVar[str] = "chunk"
    stream: int
    from_server: bool
    rel_seq: int
    data: bytes
    frames: tuple[int, ...]
    late: bool = False  #: belongs below bytes already emitted (a declared gap, or before the start)


@dataclass(frozen=True, slots=True)
class Gap:
    """``length`` bytes at ``rel_seq`` that exist but are not in the capture.

    ``cause``: ``missing`` (no packet carried them), ``snaplen`` (the packet was
    cut by the snapshot length), ``ip_fragment`` (the rest is in IP fragments,
    not reassembled), ``truncated`` (the frame ends before the IP length says).
    ``evidence``: what showed the bytes exist -- ``acked`` (the peer
    acknowledged past them), ``data_after`` (later bytes of the direction were
    captured), ``sent_after`` (the sender's later sequence numbers), ``frame``
    (the packet itself, for snaplen cuts), ``buffer_limit`` (given up).
    ``frame``: the packet that is the evidence.
    """

    kind: ClassVar[str] = "gap"
    stream: int
    from_server: bool
    rel_seq: int
    length: int
    cause: str
    evidence: str
    frame: int


@dataclass(frozen=True, slots=True)
class OverlapConflict:
    """Bytes at ``rel_seq`` seen before with different content: ``kept`` (from
    ``kept_frames``, the first copy, which stays in the stream) vs ``sent`` (in
    ``frame``). The range runs from the first to the last differing byte."""

    kind: ClassVar[str] = "overlap_conflict"
    stream: int
    from_server: bool
    rel_seq: int
    kept: bytes
    sent: bytes
    kept_frames: tuple[int, ...]
    frame: int
    bad_checksum: bool = False  #: one of the two copies failed its TCP checksum


@dataclass(frozen=True, slots=True)
class RetransmissionDropped:
    """``length`` bytes of ``frame`` at ``rel_seq`` were seen before (same content)."""

    kind: ClassVar[str] = "retransmission_dropped"
    stream: int
    from_server: bool
    rel_seq: int
    length: int
    frame: int
    original_frames: tuple[int, ...]
    zero_window_probe: bool = False


@dataclass(frozen=True, slots=True)
class KeepaliveSkipped:
    """A 1-byte keep-alive (seq = next - 1): its byte is not stream data.

    ``same_as_original``: whether the byte equals the stream's byte at that
    position (None if that byte is not in the capture)."""

    kind: ClassVar[str] = "keepalive_skipped"
    stream: int
    from_server: bool
    rel_seq: int
    frame: int
    data: bytes
    same_as_original: bool | None


@dataclass(frozen=True, slots=True)
class RstPayload:
    """Data carried by a RST: diagnostic text at most, never stream data."""

    kind: ClassVar[str] = "rst_payload"
    stream: int
    from_server: bool
    rel_seq: int
    frame: int
    data: bytes


Item = Union[Chunk, Gap, OverlapConflict, RetransmissionDropped, KeepaliveSkipped, RstPayload]


@dataclass(slots=True)
class SideTotals:
    """What one direction's reassembly came to."""

    bytes: int = 0  #: stream bytes emitted (late ones included)
    chunks: int = 0
    gaps: int = 0  #: Gap items with cause "missing"
    missing: int = 0  #: bytes never seen (less those filled late)
    uncaptured: int = 0  #: bytes cut by the snaplen / not reassembled
    conflicts: int = 0
    conflict_bytes: int = 0
    retransmitted: int = 0  #: bytes of copies left out
    keepalives: int = 0
    rst_payload: int = 0
    late: int = 0  #: bytes emitted late


@dataclass(slots=True)
class _Piece:
    start: int
    end: int
    data: bytes | None  # None: the bytes exist but were not captured
    frame: int
    bad: bool
    cause: str = ""


@dataclass(slots=True)
class _Side:
    edge: int = FIRST  # every position below is emitted, declared missing, or before FIRST
    starts: list[int] = field(default_factory=list)
    pieces: list[_Piece] = field(default_factory=list)
    pending: int = 0  # bytes of pieces at or above the edge
    high: int = FIRST  # the sender's next sequence number as far as seen (data end, pure ACK seq)
    fin: int | None = None
    fin_frame: int = 0
    high_frame: int = 0
    acked: int | None = None  # highest ACK the peer sent for these bytes
    ack_frame: int = 0
    totals: SideTotals = field(default_factory=SideTotals)


class Reassembler:
    """Reassembles the streams asked for (``streams=None``: every stream).

    Feed every TCP packet of those streams, in capture order, with
    `on_segment`; call `finish` at the end of the capture. Both return the new
    items in the order they happened.
    """

    def __init__(self, streams: Iterable[int] | None = None, *,
                 max_pending: int = MAX_PENDING) -> None:
        self._wanted = None if streams is None else frozenset(streams)
        self._streams: dict[int, tuple[_Side, _Side]] = {}  # client -> server, server -> client
        self.max_pending = max_pending

    # -- inputs -----------------------------------------------------------
    def on_segment(self, seg: Segment) -> list[Item]:
        if self._wanted is not None and seg.stream not in self._wanted:
            return []
        sides = self._streams.get(seg.stream)
        if sides is None:
            sides = self._streams[seg.stream] = (_Side(), _Side())
        out: list[Item] = []
        side, peer = sides[seg.from_server], sides[not seg.from_server]
        if seg.rel_ack is not None and not seg.flags & RST:
            # The ACK first: the peer's bytes it acknowledges were sent before this packet.
            # (A RST's ACK field proves nothing about what the peer received.)
            self._on_ack(seg, peer, not seg.from_server, out)
        self._on_data(seg, side, out)
        return out

    def finish(self) -> list[Item]:
        """The end of the capture: declare what never came, flush what waits."""
        out: list[Item] = []
        for num, sides in self._streams.items():
            for from_server in (False, True):
                self._finish_side(num, from_server, sides[from_server], out)
        return out

    # -- results ----------------------------------------------------------
    def streams(self) -> list[int]:
        return sorted(self._streams)

    def totals(self, stream: int) -> tuple[SideTotals, SideTotals]:
        """(client -> server, server -> client) totals of a stream."""
        sides = self._streams.get(stream)
        if sides is None:
            return SideTotals(), SideTotals()
        return sides[0].totals, sides[1].totals

    # -- data -------------------------------------------------------------
    def _on_data(self, seg: Segment, side: _Side, out: list[Item]) -> None:
        length = len(seg.payload) if seg.length is None else seg.length
        s = seg.rel_seq + (1 if seg.flags & SYN else 0)
        if seg.flags & RST:
            if length:
                out.append(RstPayload(seg.stream, seg.from_server, s, seg.frame,
                                      bytes(seg.payload)))
                side.totals.rst_payload += length
            return
        if (not seg.flags & SYN and s > side.high and not length
                and (side.fin is None or s <= side.fin)):
            # A pure ACK (or FIN) says the sender has sent everything below its seq.
            side.high, side.high_frame = s, seg.frame
        if seg.flags & FIN and side.fin is None:
            side.fin, side.fin_frame = s + length, seg.frame
        if not length:
            return
        nxt = side.high  # the sender's next sequence number
        if (length == 1 and not seg.flags & (SYN | FIN) and s + 1 == nxt
                and (seg.keepalive or side.acked is None or side.acked >= nxt)):
            # RFC 9293 §3.8.4 keep-alive with one garbage byte (BSD, Windows): the byte
            # at next - 1 was sent and acknowledged long ago; this one is not data.
            orig = self._known_byte(side, s)
            out.append(KeepaliveSkipped(seg.stream, seg.from_server, s, seg.frame,
                                        bytes(seg.payload[:1]),
                                        None if orig is None or not seg.payload
                                        else orig == seg.payload[:1]))
            side.totals.keepalives += 1
            return
        if s + length > side.high:
            side.high, side.high_frame = s + length, seg.frame
        cap = min(len(seg.payload), length)
        self._insert(seg, side, s, s + cap, bytes(seg.payload[:cap]), out)
        if cap < length:
            self._insert(seg, side, s + cap, s + length, None, out, cause=seg.uncaptured)
        self._flush(seg.stream, seg.from_server, side, out)

    @staticmethod
    def _known_byte(side: _Side, pos: int) -> bytes | None:
        i = bisect.bisect_right(side.starts, pos) - 1
        if i >= 0:
            p = side.pieces[i]
            if p.start <= pos < p.end and p.data is not None:
                return p.data[pos - p.start : pos - p.start + 1]
        return None

    def _insert(self, seg: Segment, side: _Side, s: int, e: int, data: bytes | None,
                out: list[Item], cause: str = "") -> None:
        """Take the positions of [s, e) not seen before; compare the others."""
        if s >= e:
            return
        starts, pieces = side.starts, side.pieces
        i = bisect.bisect_right(starts, s) - 1
        if i < 0 or pieces[i].end <= s:
            i += 1
        new: list[tuple[int, int]] = []
        dup, dup_at = 0, s
        dup_frames: list[int] = []
        pos = s
        while i < len(pieces) and pieces[i].start < e:
            p = pieces[i]
            if p.start > pos:
                new.append((pos, p.start))
            lo, hi = max(pos, p.start), min(e, p.end)
            if hi > lo:
                if not dup:
                    dup_at = lo
                dup += hi - lo
                if p.frame not in dup_frames:
                    dup_frames.append(p.frame)
                if data is not None and p.data is not None:
                    self._compare(seg, side, p, lo, hi, data[lo - s : hi - s], out)
                pos = hi
            i += 1
        if pos < e:
            new.append((pos, e))
        if dup:
            out.append(RetransmissionDropped(seg.stream, seg.from_server, dup_at, dup, seg.frame,
                                             tuple(dup_frames), seg.zero_window_probe))
            side.totals.retransmitted += dup
        for lo, hi in new:
            # A range straddling the edge is cut there: below it is late, above it waits.
            if lo < side.edge < hi:
                parts = ((lo, side.edge), (side.edge, hi))
            else:
                parts = ((lo, hi),)
            for a, b in parts:
                piece = _Piece(a, b, None if data is None else data[a - s : b - s], seg.frame,
                               seg.bad_checksum, cause)
                j = bisect.bisect_left(starts, a)
                starts.insert(j, a)
                pieces.insert(j, piece)
                if a < side.edge:
                    self._emit_late(seg, side, piece, out)
                else:
                    side.pending += b - a

    def _compare(self, seg: Segment, side: _Side, p: _Piece, lo: int, hi: int, new: bytes,
                 out: list[Item]) -> None:
        old = p.data[lo - p.start : hi - p.start]  # type: ignore[index]
        if old == new:
            return
        first = next(k for k in range(len(new)) if old[k] != new[k])
        last = next(k for k in range(len(new) - 1, -1, -1) if old[k] != new[k])
        out.append(OverlapConflict(seg.stream, seg.from_server, lo + first,
                                   old[first : last + 1], new[first : last + 1], (p.frame,),
                                   seg.frame, p.bad or seg.bad_checksum))
        side.totals.conflicts += 1
        side.totals.conflict_bytes += last + 1 - first

    def _emit_late(self, seg: Segment, side: _Side, piece: _Piece, out: list[Item]) -> None:
        n = piece.end - piece.start
        in_gap = piece.start >= FIRST
        if piece.data is None:
            if in_gap:
                side.totals.missing -= n
                side.totals.uncaptured += n
            out.append(Gap(seg.stream, seg.from_server, piece.start, n, piece.cause, "frame",
                           piece.frame))
            return
        if in_gap:
            side.totals.missing -= n
        out.append(Chunk(seg.stream, seg.from_server, piece.start, piece.data, (piece.frame,),
                         late=True))
        side.totals.bytes += n
        side.totals.chunks += 1
        side.totals.late += n

    # -- moving the edge --------------------------------------------------
    def _next_pending(self, side: _Side) -> int | None:
        j = bisect.bisect_left(side.starts, side.edge)
        return side.starts[j] if j < len(side.starts) else None

    def _advance(self, stream: int, from_server: bool, side: _Side, out: list[Item]) -> None:
        """Emit the run of pieces that starts at the edge."""
        starts, pieces = side.starts, side.pieces
        j = bisect.bisect_left(starts, side.edge)
        run_data: list[bytes] = []
        run_frames: list[int] = []
        run_start = side.edge
        while j < len(pieces) and pieces[j].start == side.edge:
            p = pieces[j]
            if p.data is None:
                self._emit_run(stream, from_server, side, run_start, run_data, run_frames, out)
                run_data, run_frames = [], []
                out.append(Gap(stream, from_server, p.start, p.end - p.start, p.cause, "frame",
                               p.frame))
                side.totals.uncaptured += p.end - p.start
                run_start = p.end
            else:
                run_data.append(p.data)
                if p.frame not in run_frames:
                    run_frames.append(p.frame)
            side.pending -= p.end - p.start
            side.edge = p.end
            j += 1
        self._emit_run(stream, from_server, side, run_start, run_data, run_frames, out)

    @staticmethod
    def _emit_run(stream: int, from_server: bool, side: _Side, start: int, data: list[bytes],
                  frames: list[int], out: list[Item]) -> None:
        if not data:
            return
        blob = b"".join(data)
        out.append(Chunk(stream, from_server, start, blob, tuple(frames)))
        side.totals.bytes += len(blob)
        side.totals.chunks += 1

    def _declare(self, stream: int, from_server: bool, side: _Side, end: int, evidence: str,
                 frame: int, out: list[Item]) -> None:
        """The bytes from the edge to `end` will not come: a gap."""
        n = end - side.edge
        if n <= 0:
            return
        out.append(Gap(stream, from_server, side.edge, n, "missing", evidence, frame))
        side.totals.gaps += 1
        side.totals.missing += n
        side.edge = end

    def _flush(self, stream: int, from_server: bool, side: _Side, out: list[Item]) -> None:
        self._advance(stream, from_server, side, out)
        while True:
            nxt = self._next_pending(side)
            if nxt is None:
                return
            if side.acked is not None and side.acked >= nxt:
                # The receiver had every byte below its ACK: the hole before nxt was
                # there, and the capture missed it (Wireshark's follow does the same).
                self._declare(stream, from_server, side, nxt, "acked", side.ack_frame, out)
            elif side.pending > self.max_pending:
                self._declare(stream, from_server, side, nxt, "buffer_limit", 0, out)
            else:
                return
            self._advance(stream, from_server, side, out)

    def _on_ack(self, seg: Segment, side: _Side, from_server: bool, out: list[Item]) -> None:
        ack = seg.rel_ack
        assert ack is not None
        if side.acked is None or ack > side.acked:
            side.acked, side.ack_frame = ack, seg.frame
            self._flush(seg.stream, from_server, side, out)

    def _finish_side(self, stream: int, from_server: bool, side: _Side, out: list[Item]) -> None:
        while True:
            self._advance(stream, from_server, side, out)
            nxt = self._next_pending(side)
            if nxt is None:
                break
            first = side.pieces[bisect.bisect_left(side.starts, nxt)].frame
            self._declare(stream, from_server, side, nxt, "data_after", first, out)
        # Bytes past the last one seen that the sender's own numbers prove sent...
        end, evidence, frame = side.edge, "", 0
        limit = side.fin if side.fin is not None else None
        if side.high > end:
            end, evidence, frame = side.high, "sent_after", side.high_frame
        # ... or that the peer acknowledged (less the FIN's sequence number).
        if side.acked is not None:
            acked = side.acked
            if limit is not None:
                acked = min(acked, limit)
            elif acked - max(end, side.edge) == 1:
                # One number past the data and no FIN captured: most likely the FIN's own.
                acked -= 1
            if acked > end:
                end, evidence, frame = acked, "acked", side.ack_frame
        if limit is not None:
            end = min(end, limit)
        self._declare(stream, from_server, side, end, evidence, frame, out)

