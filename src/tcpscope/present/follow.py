"""`tcpscope follow FILE --stream N`: a connection's two byte streams, reassembled.

The pipeline (tcpscope/pipeline.py) reads, dissects and analyses the capture
batch by batch; `Follower`, its consumer here, hands the packets of the streams
asked for to the sans-IO reassembler (analysis/reassembly.py), whose items
(chunks, gaps, overlap conflicts, ...) are kept for those streams only, then
shown:

- ``ascii``: the text of both directions in the order the chunks became
  complete, like Wireshark's Follow TCP Stream. On a terminal the client's
  bytes are red and the server's blue (Wireshark's colours), with no other
  marks; piped or with ``--no-color``, each turn starts with a marker line
  (``==> client: N bytes, frames A-B`` / ``<== server: ...``). Bytes that are
  not printable ASCII are shown as ``.``; CR LF is shown as a line break.
- ``hex``: a hex dump of each chunk (``hexdump -C`` style), the offset being
  the byte's position in its direction's stream (relative sequence - 1); the
  server's lines are indented by four spaces, as in Wireshark's hex view.
- ``raw``: tshark's ``-z follow,tcp,raw`` text: one line of hex per chunk, the
  server's lines indented by a tab, inside tshark's frame (Node 0 = client,
  Node 1 = server). What is not data -- the summary, gaps, conflicts -- is on
  lines starting with ``#`` (``grep -v '^#'`` leaves tshark's shape).

Every format starts with a summary (stream, endpoints, bytes each way, gaps,
overlap conflicts with where / which frames / what bytes, what was left out).
See docs/follow.md.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import IO, Any, BinaryIO

import numpy as np

from ..analysis.annotation import ANN_KIND, FLAG
from ..analysis.connections import decode
from ..analysis.reassembly import (
    Chunk, Gap, Item, KeepaliveSkipped, OverlapConflict, Reassembler, RetransmissionDropped,
    RstPayload, Segment, SideTotals,
)
from ..pipeline import Chunk as PipelineChunk
from ..pipeline import Options, Result, StreamNotFound, run
from ..wire.record import ACK, CSUM, WARNING
from ..wire.text import format_endpoint

__all__ = ["FORMATS", "Follower", "StreamFollow", "follow_streams", "follow_stream", "render",
           "write_follow"]

FORMATS = ("ascii", "hex", "raw")

#: Wireshark's Follow TCP Stream colours: client red, server blue.
CLIENT_STYLE, SERVER_STYLE = "red", "blue"
NOTE_STYLE = "bold yellow"
_SHOWN_BYTES = 24  # bytes of a conflict shown in the summary and inline
MAX_LISTED = 20  # gaps / conflicts listed in the summary (all are shown inline)


@dataclass
class StreamFollow:
    """One stream, followed: its endpoints, its items in order, its totals."""

    stream: int
    conn: dict[str, Any]  #: analysis/connections.py Connection.as_dict (client, server, ...)
    items: list[Item] = field(default_factory=list)
    client: SideTotals = field(default_factory=SideTotals)
    server: SideTotals = field(default_factory=SideTotals)

    def data(self, from_server: bool) -> bytes:
        """One direction's bytes, in sequence order (gaps left out)."""
        chunks = sorted((c for c in self.items
                         if isinstance(c, Chunk) and c.from_server == from_server),
                        key=lambda c: c.rel_seq)
        return b"".join(c.data for c in chunks)

    def endpoint(self, from_server: bool) -> str:
        host = self.conn["server" if from_server else "client"]
        port = self.conn["server_port" if from_server else "client_port"]
        return format_endpoint(host, port)


# ---------------------------------------------------------------------------
# Reading a capture into the reassembler
# ---------------------------------------------------------------------------

def _uncaptured_cause(warnings: int) -> str:
    if warnings & WARNING["IP_FRAGMENTED"]:
        return "ip_fragment"
    if warnings & WARNING["SNAPLEN_TRUNCATED"]:
        return "snaplen"
    return "truncated"


class Follower:
    """A pipeline consumer: reassembles the given streams (None: all); `streams` holds
    them, each a `StreamFollow`, once the input has ended."""

    def __init__(self, streams: Iterable[int] | None = None) -> None:
        self._wanted = None if streams is None else np.array(sorted(set(streams)), np.int64)
        self._reasm = Reassembler(None if self._wanted is None else self._wanted.tolist())
        self._items: dict[int, list[Item]] = {}
        # Direction by endpoint, fixed at a stream's first packet (the engine's roles can
        # change later when a guess is corrected; the final roles are applied at the end).
        self._first_ep: dict[int, tuple[bytes, int, bool]] = {}
        self.streams: dict[int, StreamFollow] = {}

    def feed(self, chunk: PipelineChunk) -> None:
        rec, ann, batch = chunk.records, chunk.annotations, chunk.batch
        assert ann is not None
        sel = (ann["stream"] >= 0) & (ann["kind"] == ANN_KIND["analysed"])
        if self._wanted is not None:
            sel &= np.isin(ann["stream"], self._wanted)
        idx = np.flatnonzero(sel)
        if not idx.size:
            return
        ka_bit, zwp_bit, bad = FLAG["keep_alive"], FLAG["zero_window_probe"], CSUM["BAD"]
        r, a = rec[idx], ann[idx]
        data = batch.data
        cols = zip(
            a["stream"].tolist(), a["from_server"].tolist(), a["rel_seq"].tolist(),
            a["rel_ack"].tolist(), a["flags"].tolist(), r["tcp_flags"].tolist(),
            (batch.offset[idx] + r["l4_off"] + r["tcp_hlen"]).tolist(), r["payload_cap"].tolist(),
            r["payload_len"].tolist(), r["warnings"].tolist(), r["tcp_csum_status"].tolist(),
            batch.frame_numbers[idx].tolist(), r["src"].tolist(), r["sport"].tolist(),
        )
        first_ep, items = self._first_ep, self._items
        for (stream, from_server, rel_seq, rel_ack, aflags, tflags, off, cap, length, warn,
             csum, frame, src, sport) in cols:
            key = (bytes(src), sport)
            fe = first_ep.get(stream)
            if fe is None:
                first_ep[stream] = (key[0], key[1], bool(from_server))
                side = bool(from_server)
            else:
                side = fe[2] if key == (fe[0], fe[1]) else not fe[2]
            seg = Segment(
                stream, side, frame, rel_seq,
                payload=bytes(data[off : off + cap]) if cap else b"",
                length=length, flags=tflags,
                rel_ack=rel_ack if tflags & ACK else None,
                uncaptured=_uncaptured_cause(warn) if cap < length else "snaplen",
                bad_checksum=csum == bad,
                keepalive=bool(aflags & ka_bit), zero_window_probe=bool(aflags & zwp_bit),
            )
            new = self._reasm.on_segment(seg)
            if new:
                items.setdefault(stream, []).extend(new)

    def finish(self, result: Result) -> None:
        assert result.analyzer is not None
        reasm, items = self._reasm, self._items
        for item in reasm.finish():
            items.setdefault(item.stream, []).append(item)
        conns = {int(row["stream"]): row for row in result.analyzer.connections()}
        for stream in reasm.streams():
            conn = decode(conns[stream]).as_dict()
            its = items.get(stream, [])
            c_tot, s_tot = reasm.totals(stream)
            fe = self._first_ep[stream]
            client_key = (bytes(conns[stream]["client_addr"]), int(conns[stream]["client_port"]))
            first_is_client = (fe[0], fe[1]) == client_key
            if first_is_client == fe[2]:
                # The first packet's side was given the other role: swap the labels.
                its = [replace(it, from_server=not it.from_server) for it in its]
                c_tot, s_tot = s_tot, c_tot
            self.streams[stream] = StreamFollow(stream, conn, its, c_tot, s_tot)


def follow_streams(source: str | os.PathLike | BinaryIO, streams: Iterable[int] | None = None,
                   mode: str = "wireshark") -> dict[int, StreamFollow]:
    """Reassemble the given streams (None: all) of a capture."""
    follower = Follower(streams)
    run(source, [follower], Options(mode=mode, states=False))
    return follower.streams


def follow_stream(source: str | os.PathLike | BinaryIO, stream: int,
                  mode: str = "wireshark") -> StreamFollow:
    """One stream of a capture, reassembled; StreamNotFound if there is none."""
    got = follow_streams(source, [stream], mode)
    if stream not in got:
        raise StreamNotFound.number(stream)
    return got[stream]


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------

def _side_name(from_server: bool) -> str:
    return "server" if from_server else "client"


def _arrow(from_server: bool) -> str:
    return "server -> client" if from_server else "client -> server"


def _frames_text(frames: list[int]) -> str:
    if not frames:
        return ""
    if len(frames) == 1:
        return f"frame {frames[0]}"
    return f"frames {min(frames)}-{max(frames)}"


def _bytes_text(data: bytes) -> str:
    """`61 62 63 ("abc")`, cut to _SHOWN_BYTES."""
    cut = data[:_SHOWN_BYTES]
    hexs = " ".join(f"{b:02x}" for b in cut)
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in cut)
    more = f" ... ({len(data)} bytes)" if len(data) > len(cut) else ""
    return f'{hexs} ("{text}"){more}'


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def gap_text(g: Gap) -> str:
    """The inline mark of a gap: ``[N bytes missing]`` or ``[N bytes not captured (snaplen)]``
    (``byte`` when N is 1)."""
    n = _plural(g.length, "byte")
    if g.cause == "missing":
        return f"[{n} missing]"
    why = {"snaplen": "snaplen", "ip_fragment": "IP fragment", "truncated": "frame truncated"}
    return f"[{n} not captured ({why.get(g.cause, g.cause)})]"


def conflict_text(c: OverlapConflict) -> str:
    end = c.rel_seq + len(c.kept) - 1
    where = f"seq {c.rel_seq}" if end == c.rel_seq else f"seq {c.rel_seq}-{end}"
    frames = ", ".join(str(f) for f in c.kept_frames)
    note = (" (a TCP checksum failed: corruption, not necessarily injection)"
            if c.bad_checksum else "")
    return (f"overlap conflict, {_arrow(c.from_server)} {where}: frame {frames} had "
            f"{_bytes_text(c.kept)}, frame {c.frame} sent {_bytes_text(c.sent)}; "
            f"the first copy is kept{note}")


def note_text(it: Item) -> str | None:
    """The inline line of an event (None: not shown inline)."""
    if isinstance(it, OverlapConflict):
        return "!! " + conflict_text(it)
    if isinstance(it, KeepaliveSkipped):
        return (f"-- keep-alive from the {_side_name(it.from_server)} (frame {it.frame}): "
                f"its byte {_bytes_text(it.data)} at seq {it.rel_seq} is not stream data, skipped")
    if isinstance(it, RstPayload):
        return (f"-- RST from the {_side_name(it.from_server)} (frame {it.frame}) carried "
                f"{_plural(len(it.data), 'byte')}, not stream data: {_bytes_text(it.data)}")
    return None


def summary_lines(sf: StreamFollow) -> list[str]:
    c = sf.conn
    guessed = " (roles guessed: no SYN seen)" if c.get("role_guessed") else ""
    lines = [f"Follow TCP stream {sf.stream}: client {sf.endpoint(False)} <-> "
             f"server {sf.endpoint(True)}{guessed}"]
    for from_server, t in ((False, sf.client), (True, sf.server)):
        late = f", {t.late} of them late" if t.late else ""
        lines.append(f"  {_arrow(from_server)}: {_plural(t.bytes, 'byte')} in "
                     f"{_plural(t.chunks, 'chunk')}{late}")
    gaps = [g for g in sf.items if isinstance(g, Gap)]
    if not gaps:
        lines.append("  gaps: none")
    else:
        missing = sum(g.length for g in gaps if g.cause == "missing")
        cut = sum(g.length for g in gaps if g.cause != "missing")
        kinds = ([f"{_plural(missing, 'byte')} missing"] if missing else []) + \
            ([f"{_plural(cut, 'byte')} not captured"] if cut else [])
        lines.append(f"  gaps: {len(gaps)} ({', '.join(kinds)})")
        for g in gaps[:MAX_LISTED]:
            lines.append(f"    {_arrow(g.from_server)} seq {g.rel_seq}: {gap_text(g)}"
                         f"{_evidence_text(g)}")
        if len(gaps) > MAX_LISTED:
            lines.append(f"    ... {len(gaps) - MAX_LISTED} more, each marked where it is")
    conflicts = [x for x in sf.items if isinstance(x, OverlapConflict)]
    lines.append(f"  overlap conflicts: {len(conflicts) or 'none'}")
    for x in conflicts[:MAX_LISTED]:
        lines.append("    " + conflict_text(x))
    if len(conflicts) > MAX_LISTED:
        lines.append(f"    ... {len(conflicts) - MAX_LISTED} more, each shown where it is")
    left = []
    retx = sf.client.retransmitted + sf.server.retransmitted
    if retx:
        segs = sum(1 for x in sf.items if isinstance(x, RetransmissionDropped))
        left.append(f"{_plural(retx, 'retransmitted byte')} ({_plural(segs, 'segment')})")
    ka = sf.client.keepalives + sf.server.keepalives
    if ka:
        left.append(f"{_plural(ka, 'keep-alive byte')}")
    rst = sf.client.rst_payload + sf.server.rst_payload
    if rst:
        left.append(f"{_plural(rst, 'RST payload byte')}")
    lines.append("  left out: " + (", ".join(left) if left else "nothing"))
    return lines


def _evidence_text(g: Gap) -> str:
    if g.cause != "missing":
        return f" (frame {g.frame})" if g.frame else ""
    why = {
        "acked": "the peer acknowledged past them",
        "data_after": "later bytes were captured",
        "sent_after": "the sender's later sequence numbers",
        "buffer_limit": "too much data waited behind them",
    }.get(g.evidence, g.evidence)
    at = f", frame {g.frame}" if g.frame else ""
    return f" ({why}{at})"


# ---------------------------------------------------------------------------
# Renderers
# ---------------------------------------------------------------------------

def _printable(data: bytes) -> str:
    text = data.replace(b"\r\n", b"\n")
    return "".join(chr(b) if 0x20 <= b < 0x7F or b in (0x0A, 0x09) else "." for b in text)


@dataclass
class _Turn:
    from_server: bool
    late: bool
    parts: list[Item] = field(default_factory=list)

    def frames(self) -> list[int]:
        return [f for p in self.parts if isinstance(p, Chunk) for f in p.frames]

    def nbytes(self) -> int:
        return sum(len(p.data) for p in self.parts if isinstance(p, Chunk))


def _turns(items: list[Item]) -> list[_Turn | Item]:
    """Chunks and gaps grouped into turns of one direction; events stay apart."""
    out: list[_Turn | Item] = []
    cur: _Turn | None = None
    for it in items:
        if isinstance(it, (Chunk, Gap)):
            late = isinstance(it, Chunk) and it.late
            if cur is None or cur.from_server != it.from_server or cur.late or late:
                cur = _Turn(it.from_server, late)
                out.append(cur)
            cur.parts.append(it)
        elif note_text(it) is not None:
            out.append(it)
            cur = None
    return out


def _marker(t: _Turn) -> str:
    arrow = "<== server" if t.from_server else "==> client"
    late = ""
    if t.late:
        first = next(p for p in t.parts if isinstance(p, Chunk))
        late = f" (late: belongs at seq {first.rel_seq}, before bytes already shown)"
    n = t.nbytes()
    frames = _frames_text(t.frames())
    return f"{arrow}{late}: {_plural(n, 'byte')}" + (f", {frames}" if frames else "")


class _Out:
    """Plain text, or rich styles on a terminal."""

    def __init__(self, out: IO[str], color: bool) -> None:
        self.out = out
        self.console = None
        if color:
            from rich.console import Console

            self.console = Console(file=out, force_terminal=True, highlight=False,
                                   soft_wrap=True, emoji=False, markup=False)

    def write(self, text: str, style: str | None = None) -> None:
        if self.console is None:
            self.out.write(text)
        else:
            from rich.text import Text

            self.console.print(Text(text, style=style or ""), end="")


def _style(from_server: bool) -> str:
    return SERVER_STYLE if from_server else CLIENT_STYLE


def render_ascii(sf: StreamFollow, out: IO[str], color: bool = False) -> None:
    o = _Out(out, color)
    for line in summary_lines(sf):
        o.write(line + "\n")
    o.write("\n")
    at_line_start = True
    for t in _turns(sf.items):
        if isinstance(t, _Turn):
            style = _style(t.from_server)
            if not color:
                if not at_line_start:
                    o.write("\n")
                o.write(_marker(t) + "\n")
                at_line_start = True
            elif t.late:
                if not at_line_start:
                    o.write("\n")
                o.write(_marker(t) + "\n", NOTE_STYLE)
                at_line_start = True
            for p in t.parts:
                if isinstance(p, Gap):
                    if not at_line_start:
                        o.write("\n")
                    o.write(gap_text(p), f"reverse {style}" if color else None)
                    o.write("\n")
                    at_line_start = True
                else:
                    text = _printable(p.data)
                    if text:
                        o.write(text, style if color else None)
                        at_line_start = text.endswith("\n")
        else:
            if not at_line_start:
                o.write("\n")
            o.write(note_text(t) + "\n", NOTE_STYLE if color else None)  # type: ignore[operator]
            at_line_start = True
    if not at_line_start:
        o.write("\n")


def _hexdump_lines(data: bytes, offset: int) -> list[str]:
    lines = []
    for i in range(0, len(data), 16):
        row = data[i : i + 16]
        h = " ".join(f"{b:02x}" for b in row[:8])
        if len(row) > 8:
            h += "  " + " ".join(f"{b:02x}" for b in row[8:])
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        pos = offset + i
        off = f"{pos:08x}" if pos >= 0 else f"-{-pos:07x}"
        lines.append(f"{off}  {h:<48}  |{text}|")
    return lines


def render_hex(sf: StreamFollow, out: IO[str], color: bool = False) -> None:
    o = _Out(out, color)
    for line in summary_lines(sf):
        o.write(line + "\n")
    o.write("\n")
    for it in sf.items:
        if isinstance(it, Chunk):
            style = _style(it.from_server) if color else None
            indent = "    " if it.from_server else ""
            arrow = "<== server" if it.from_server else "==> client"
            late = " (late)" if it.late else ""
            o.write(f"{indent}{arrow}{late}: {_plural(len(it.data), 'byte')} at seq {it.rel_seq}, "
                    f"{_frames_text(list(it.frames))}\n", style)
            for line in _hexdump_lines(it.data, it.rel_seq - 1):
                o.write(indent + line + "\n", style)
        elif isinstance(it, Gap):
            indent = "    " if it.from_server else ""
            o.write(f"{indent}{gap_text(it)} at seq {it.rel_seq}\n",
                    f"reverse {_style(it.from_server)}" if color else None)
        else:
            text = note_text(it)
            if text is not None:
                o.write(text + "\n", NOTE_STYLE if color else None)


_RULE = "=" * 67


def render_raw(sf: StreamFollow, out: IO[str], color: bool = False) -> None:
    """tshark's follow,tcp,raw text; annotations on lines starting with '#'."""
    out.write(f"\n{_RULE}\nFollow: tcp,raw\nFilter: tcp.stream eq {sf.stream}\n")
    out.write(f"Node 0: {sf.endpoint(False)}\nNode 1: {sf.endpoint(True)}\n")
    for line in summary_lines(sf):
        out.write(f"# {line}\n")
    for it in sf.items:
        if isinstance(it, Chunk):
            tab = "\t" if it.from_server else ""
            late = f"# late: the next line belongs at seq {it.rel_seq}\n" if it.late else ""
            out.write(f"{late}{tab}{it.data.hex()}\n")
        elif isinstance(it, Gap):
            out.write(f"# {_side_name(it.from_server)}: {gap_text(it)} at seq {it.rel_seq}\n")
        else:
            text = note_text(it)
            if text is not None:
                out.write(f"# {text}\n")
    out.write(f"{_RULE}\n")


def render(sf: StreamFollow, fmt: str, out: IO[str], color: bool = False) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    {"ascii": render_ascii, "hex": render_hex, "raw": render_raw}[fmt](sf, out, color)


def write_follow(source: str | os.PathLike | BinaryIO, stream: int, fmt: str, out: IO[str],
                 color: bool = False, mode: str = "wireshark") -> StreamFollow:
    """Reassemble stream `stream` of `source` and write it in format `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    sf = follow_stream(source, stream, mode)
    render(sf, fmt, out, color)
    return sf
