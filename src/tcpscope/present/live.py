"""`tcpscope live`: the analysis of live traffic, told as it happens.

A `LiveSession` takes the frame batches of a live capture (from
`tcpscope.capture.live`) and runs them through the same pipeline as the file
commands (`pipeline.Pipeline`: dissection, the engine, both endpoints' states
and the lifecycle), then turns the few rows worth telling into `LiveEvent`
objects:

- ``new``: a connection (stream) appears, with its SYN options;
- ``handshake``, ``fin``, ``rst``, ``closed`` and ``state``: the lifecycle events
  a packet caused, with both endpoints' states after it;
- ``data``: per connection, bytes and packets each way since the last report;
- ``anomaly``: a flag of the analysis, with its rule and evidence frames (the
  first few per connection and flag; the rest are counted into the next
  ``data`` line, so a retransmission storm cannot flood the terminal);
- ``kernel``: a socket of the kernel's own table (``--sockets``) that appeared,
  changed state or went away.

Python only ever looks at those rows; the bulk of the batch stays in numpy and
the native engine. Nothing here reads a file or the clock: the CLI passes the
batches, the kernel snapshots and the wall time of ticks.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from tcpscope.analysis.annotation import FLAG_BIT, FLAG_NAMES, flag_names
from tcpscope.analysis.connections import Connection, decode, decode_all
from tcpscope.analysis.engine import DEFAULT_MODE, Analyzer
from tcpscope.analysis.lifecycle import LifecycleBatch
from tcpscope.analysis.rules import rule as rule_of
from tcpscope.analysis.states import STATE_NAMES
from tcpscope.capture.batch import FrameBatch
from tcpscope.capture.live import CaptureStats
from tcpscope.kernel.sockets import KernelSocket
from tcpscope.pipeline import Chunk, Options, Pipeline, Result
from tcpscope.present.sockets import SocketChange, diff as socket_diff
from tcpscope.wire.record import ACK, FIN, OPTION, RST, SYN
from tcpscope.wire.text import format_endpoint

__all__ = ["LiveEvent", "LiveSession"]

# Anomalies shown one by one per (connection, flag) before they are only counted.
ANOMALY_BURST = 3

# The event-stream kind of each lifecycle event (analysis/lifecycle); others are "state".
LIFECYCLE_KIND = {
    "handshake_complete": "handshake",
    "rejected": "rst",
    "connection_reset": "rst",
    "teardown_started": "fin",
    "connection_closed": "closed",
}


@dataclass(slots=True)
class LiveEvent:
    """One line of the event stream."""

    kind: str
    ts_ns: int | None  # capture time (kernel events: wall time of the snapshot)
    stream: int | None = None
    text: str = ""
    frame: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, origin_ns: int | None) -> dict[str, Any]:
        d: dict[str, Any] = {"event": self.kind}
        if self.ts_ns is not None:
            d["ts"] = round(self.ts_ns / 1e9, 9)
            if origin_ns is not None:
                d["t"] = round((self.ts_ns - origin_ns) / 1e9, 6)
        if self.stream is not None:
            d["stream"] = self.stream
        if self.frame is not None:
            d["frame"] = self.frame
        d.update(self.fields)
        d["text"] = self.text
        return d


@dataclass(slots=True)
class _Shown:
    """What the event stream has told about one connection."""

    client: str
    server: str
    reported_pkts: tuple[int, int] = (0, 0)
    reported_bytes: tuple[int, int] = (0, 0)
    shown: dict[str, int] = field(default_factory=dict)  # anomaly flag -> lines shown
    unshown: dict[str, int] = field(default_factory=dict)  # flag -> counted since last data line
    states: tuple[str, str] | None = None  # the endpoints' states last told


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _syn_options(rec: np.void) -> str:
    present = int(rec["opt_present"])
    parts = []
    if present & OPTION["MSS"]:
        parts.append(f"mss {int(rec['mss'])}")
    if present & OPTION["WSCALE"]:
        parts.append(f"wscale {int(rec['wscale'])}")
    if present & OPTION["SACK_PERM"]:
        parts.append("sackOK")
    if present & OPTION["TIMESTAMP"]:
        parts.append("TS")
    if present & OPTION["TFO"]:
        parts.append("TFO")
    return ", ".join(parts)


class LiveSession:
    """Batches in, events out (to `out`, as text lines or JSON Lines).

    Args:
        out: where events go.
        mode: the analysis mode (``wireshark`` or ``improved``).
        fmt: ``text`` or ``jsonl``.
        max_events_per_tick: lines printed between two ticks at most (0: no limit);
            the rest are counted and the count is printed (the analysis and the
            summary are not affected). Keeps a flood of connections from slowing
            the reader until the kernel drops packets.
        emit: called with each `LiveEvent` instead of writing it (rich display).
    """

    def __init__(self, out: IO[str], *, mode: str = DEFAULT_MODE, fmt: str = "text",
                 max_events_per_tick: int = 0, emit: Any | None = None) -> None:
        self.out = out
        self.fmt = fmt
        # Transitions are not told live: the trackers keep counts and kinds only.
        self.pipeline = Pipeline([_Events(self)], Options(mode=mode, keep_transitions=False))
        self.max_events_per_tick = max_events_per_tick
        self._emit_hook = emit
        self.streams: dict[int, _Shown] = {}
        self._dirty: set[int] = set()
        self._max_stream = -1
        self.origin_ns: int | None = None
        self.last_ts_ns: int | None = None
        self.frames = 0
        self.tcp_frames = 0
        self.events_shown = 0
        self.events_suppressed = 0
        self._tick_events = 0
        self._tick_suppressed = 0
        self.ports: set[int] = set()
        self._kernel: dict[tuple, KernelSocket] = {}
        self.kernel_sockets: list[KernelSocket] = []
        self.counts = {"new": 0, "handshake": 0, "fin": 0, "rst": 0, "closed": 0, "anomaly": 0}

    # -- output -------------------------------------------------------------------

    def emit(self, ev: LiveEvent) -> None:
        if ev.kind in self.counts:
            self.counts[ev.kind] += 1
        if self.max_events_per_tick and self._tick_events >= self.max_events_per_tick:
            self._tick_suppressed += 1
            self.events_suppressed += 1
            return
        self._tick_events += 1
        self.events_shown += 1
        self._write(ev)

    def _write(self, ev: LiveEvent) -> None:
        """One event out: to the hook if there is one, else as a JSON line or a text line."""
        if self._emit_hook is not None:
            self._emit_hook(ev, self.format_text(ev))
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(ev.as_dict(self.origin_ns)) + "\n")
        else:
            self.out.write(self.format_text(ev) + "\n")

    def format_text(self, ev: LiveEvent) -> str:
        if ev.ts_ns is not None and self.origin_ns is not None:
            t = f"{(ev.ts_ns - self.origin_ns) / 1e9:11.6f}"
        else:
            t = " " * 11
        stream = f"#{ev.stream}" if ev.stream is not None else ""
        return f"{t}  {stream:<6} {ev.kind:<10} {ev.text}".rstrip()

    def flush(self) -> None:
        try:
            self.out.flush()
        except (AttributeError, ValueError):
            pass

    # -- input ----------------------------------------------------------------------

    @property
    def analyzer(self) -> Analyzer:
        return self.pipeline.result.analyzer

    def feed(self, batch: FrameBatch) -> None:
        """Analyse one batch and emit what it shows."""
        if len(batch):
            self.pipeline.feed(batch)

    def _chunk(self, chunk: Chunk) -> None:
        records, ann, lc = chunk.records, chunk.annotations, chunk.life
        batch = chunk.batch
        if self.origin_ns is None:
            self.origin_ns = int(batch.ts_ns[0])
        self.last_ts_ns = int(batch.ts_ns[-1])
        self.frames += len(batch)

        stream = ann["stream"]
        tcp = stream >= 0
        self.tcp_frames += int(np.count_nonzero(tcp))
        if not tcp.any():
            return
        flags = records["tcp_flags"]
        known = self._max_stream
        new_streams = np.unique(stream[stream > known])
        if new_streams.size:
            self._add_streams(int(new_streams[0]))
        self._dirty.update(np.unique(stream[tcp]).tolist())

        interesting = tcp & (((flags & (SYN | FIN | RST)) != 0) | (ann["flags"] != 0))
        rows = set(np.flatnonzero(interesting).tolist())
        rows.update(int(r) for r in lc.events)
        first_of: dict[int, int] = {}
        if new_streams.size:
            uniq, first_idx = np.unique(stream, return_index=True)
            for s, i in zip(uniq.tolist(), first_idx.tolist()):
                if s > known:
                    first_of[s] = i
                    rows.add(i)
        frames = batch.frame_numbers
        for i in sorted(rows):
            self._row(i, records[i], ann[i], int(frames[i]), int(batch.ts_ns[i]), first_of, lc)

    def _add_streams(self, start: int) -> None:
        for c in decode_all(self.analyzer.connections(start)):
            self.streams[c.stream] = _Shown(format_endpoint(c.client.addr, c.client.port),
                                            format_endpoint(c.server.addr, c.server.port))
            self._max_stream = max(self._max_stream, c.stream)
            self.ports.add(c.client.port)
            self.ports.add(c.server.port)

    def _row(self, i: int, rec: np.void, a: np.void, frame: int, ts: int,
             first_of: dict[int, int], lc: LifecycleBatch) -> None:
        s = int(a["stream"])
        if s < 0:
            return
        st = self.streams.get(s)
        if st is None:  # a stream number we have not described yet
            self._add_streams(s)
            st = self.streams[s]
        fl = int(rec["tcp_flags"])
        if first_of.get(s) == i:
            if fl & SYN and not fl & ACK:
                what = f"SYN ({_syn_options(rec)})" if _syn_options(rec) else "SYN"
            else:
                what = "first packet without a SYN: joined mid-connection"
            self.emit(LiveEvent("new", ts, s, f"{st.client} -> {st.server}  {what}", frame,
                                {"client": st.client, "server": st.server}))
        self._lifecycle_row(i, s, st, a, frame, ts, lc)
        if int(a["flags"]):
            self._anomalies(s, st, a, frame, ts)

    def _lifecycle_row(self, i: int, s: int, st: _Shown, a: np.void, frame: int, ts: int,
                       lc: LifecycleBatch) -> None:
        """What this packet did to both endpoints, as the lifecycle says."""
        names = lc.events.get(i, ())
        client, server = STATE_NAMES[int(lc.client[i])], STATE_NAMES[int(lc.server[i])]
        states = (client, server)
        changed = states != st.states
        st.states = states
        if not names:
            if changed and client != "UNKNOWN":
                self.emit(LiveEvent("state", ts, s, f"client {client}, server {server}", frame,
                                    {"client_state": client, "server_state": server}))
            return
        plain = [n for n in names if n not in LIFECYCLE_KIND]
        if plain:  # several lifecycle events of one packet: one line
            self.emit(LiveEvent("state", ts, s, f"{', '.join(n.replace('_', ' ') for n in plain)}"
                                f": client {client}, server {server}", frame,
                                {"lifecycle": plain, "client_state": client,
                                 "server_state": server}))
        for name in names:
            if name not in LIFECYCLE_KIND:
                continue
            kind = LIFECYCLE_KIND[name]
            text = f"{name.replace('_', ' ')}: client {client}, server {server}"
            fields: dict[str, Any] = {"lifecycle": [name], "client_state": client,
                                      "server_state": server}
            if name == "handshake_complete":
                irtt = int(a["irtt_ns"])
                if irtt >= 0:
                    text += f", iRTT {irtt / 1e6:.3f} ms"
                    fields["irtt"] = irtt / 1e9
            self.emit(LiveEvent(kind, ts, s, text, frame, fields))

    def _anomalies(self, s: int, st: _Shown, a: np.void, frame: int, ts: int) -> None:
        bits = int(a["flags"])
        for name in flag_names(bits):
            if name == "retransmission" and bits & (
                    (1 << FLAG_BIT["fast_retransmission"]) | (1 << FLAG_BIT["spurious_retransmission"])):
                continue  # said by the more precise flag
            shown = st.shown.get(name, 0)
            if shown >= ANOMALY_BURST:
                st.unshown[name] = st.unshown.get(name, 0) + 1
                self.counts["anomaly"] += 1
                continue
            st.shown[name] = shown + 1
            code = int(a["rule"][FLAG_BIT[name]])
            rid = rule_of(code).id if code else "?"
            ev_frames = [int(a["evidence_frame"][k]) for k in range(int(a["n_evidence"]))
                         if FLAG_NAMES[int(a["evidence_flag"][k])] == name]
            extra = f", evidence frame {', '.join(map(str, ev_frames))}" if ev_frames else ""
            more = " (further ones are counted in the data lines)" if shown + 1 == ANOMALY_BURST \
                else ""
            if name == "duplicate_ack" and int(a["dup_ack_num"]):
                label = f"duplicate_ack #{int(a['dup_ack_num'])}"
            else:
                label = name
            self.emit(LiveEvent("anomaly", ts, s, f"frame {frame}: {label} [rule {rid}{extra}]"
                                f"{more}", frame,
                                {"flag": name, "rule": rid, "evidence": ev_frames}))

    # -- periodic -------------------------------------------------------------------

    def tick(self) -> None:
        """Report data moved since the last tick, and any lines held back."""
        self.report_data()
        if self._tick_suppressed:
            self.out_note(f"{self._tick_suppressed} events not shown (more than "
                          f"{self.max_events_per_tick} per interval; all are counted)")
        self._tick_events = 0
        self._tick_suppressed = 0
        self.flush()

    def out_note(self, text: str) -> None:
        self._write(LiveEvent("note", self.last_ts_ns, None, text))

    def report_data(self) -> None:
        if not self._dirty:
            return
        dirty = sorted(self._dirty)
        self._dirty.clear()
        rows = self.analyzer.connections(dirty[0])
        base = dirty[0]
        for s in dirty:
            if s - base >= len(rows):
                continue
            st = self.streams.get(s)
            if st is None:
                continue
            c = decode(rows[s - base])
            pkts = (c.client.packets, c.server.packets)
            nbytes = (c.client.bytes, c.server.bytes)
            dp = (pkts[0] - st.reported_pkts[0], pkts[1] - st.reported_pkts[1])
            db = (nbytes[0] - st.reported_bytes[0], nbytes[1] - st.reported_bytes[1])
            st.reported_pkts, st.reported_bytes = pkts, nbytes
            if not (db[0] or db[1] or st.unshown):
                continue
            text = (f"client->server +{_size(db[0])} ({dp[0]} pkts), "
                    f"server->client +{_size(db[1])} ({dp[1]} pkts); "
                    f"total {_size(nbytes[0])} / {_size(nbytes[1])}")
            fields: dict[str, Any] = {"bytes": list(db), "pkts": list(dp),
                                      "total_bytes": list(nbytes)}
            if st.unshown:
                text += "; also " + ", ".join(f"{n} {k}" for k, n in sorted(st.unshown.items()))
                fields["anomalies"] = dict(st.unshown)
                st.unshown = {}
            self.emit(LiveEvent("data", c.last_ts_ns, s, text, None, fields))

    def kernel_snapshot(self, socks: Sequence[KernelSocket], wall_ns: int) -> list[SocketChange]:
        """Take a look at the kernel's sockets (already filtered by port); emit the changes."""
        changes, self._kernel = socket_diff(self._kernel, socks)
        self.kernel_sockets = list(socks)
        for c in changes:
            self.emit(LiveEvent("kernel", wall_ns, None, c.text(), None,
                                {"local": c.sock.endpoint("local"),
                                 "remote": c.sock.endpoint("remote"),
                                 "before": c.before, "after": c.after}))
        return changes

    # -- the end ----------------------------------------------------------------------

    def summary_rows(self) -> list[dict[str, Any]]:
        lives = self.pipeline.result.tracker.lifecycles()
        rows = []
        for c in decode_all(self.analyzer.connections()):
            st = self.streams.get(c.stream)
            if st is None:
                continue
            rows.append(_summary_row(c, st, lives[c.stream]))
        return rows

    def finish(self, stats: CaptureStats | None, counters: dict[str, int] | None = None,
               *, table_limit: int = 50, console: Any | None = None) -> dict[str, Any]:
        """The last data lines, then the summary (a table, or one JSON object)."""
        self.pipeline.finish(counters=counters)
        self.report_data()
        rows = self.summary_rows()
        summary = {
            "event": "summary",
            "frames": self.frames,
            "tcp_frames": self.tcp_frames,
            "connections": len(rows),
            "events": dict(self.counts),
            "events_not_shown": self.events_suppressed,
            "capture": None if stats is None else {
                "captured": stats.captured, "received_by_filter": stats.received_by_filter,
                "dropped_by_kernel": stats.dropped_by_kernel,
                "dropped_by_interface": stats.dropped_by_interface},
        }
        if self.fmt == "jsonl":
            summary["table"] = rows
            self.out.write(json.dumps(summary) + "\n")
            self.flush()
            return summary
        self._write_table(rows, table_limit, console)
        self.out.write(self._stats_line(stats) + "\n")
        if self.events_suppressed:
            self.out.write(f"{self.events_suppressed} event lines were not shown (rate limit); "
                           "the table counts everything\n")
        self.flush()
        return summary

    def _stats_line(self, stats: CaptureStats | None) -> str:
        parts = [f"tcpscope read {self.frames} frames ({self.tcp_frames} TCP) in "
                 f"{len(self.streams)} connections"]
        if stats is not None and stats.captured is not None:
            helper = [f"{stats.captured} captured"]
            if stats.received_by_filter is not None:
                helper.append(f"{stats.received_by_filter} received by filter")
            if stats.dropped_by_kernel is not None:
                helper.append(f"{stats.dropped_by_kernel} dropped by kernel")
            if stats.dropped_by_interface is not None:
                helper.append(f"{stats.dropped_by_interface} dropped by interface")
            parts.append("capture: " + ", ".join(helper))
        elif stats is not None:
            parts.append("capture: the helper printed no statistics")
        return "; ".join(parts)

    def _write_table(self, rows: list[dict[str, Any]], limit: int, console: Any | None) -> None:
        head = ("#", "client", "server", "handshake", "teardown", "states (client / server)",
                "pkts c>s/s>c", "bytes c>s/s>c", "duration", "anomalies")
        body = []
        for r in rows[-limit:] if limit else rows:
            anomalies = ", ".join(f"{k} {v}" for k, v in sorted(r["anomalies"].items()))
            body.append((str(r["stream"]), r["client"], r["server"], r["handshake"],
                         r["teardown"], r["state"],
                         f"{r['pkts'][0]}/{r['pkts'][1]}",
                         f"{_size(r['bytes'][0])}/{_size(r['bytes'][1])}",
                         f"{r['duration']:.3f}s", anomalies or "-"))
        if console is not None:
            from rich.table import Table

            table = Table(title="connections", header_style="bold")
            for h in head:
                table.add_column(h, no_wrap=h in ("client", "server"))
            for b in body:
                table.add_row(*b)
            console.print(table)
        else:
            rows_text = [head] + body
            widths = [max(len(r[i]) for r in rows_text) for i in range(len(head))]
            self.out.write("\n")
            for r in rows_text:
                self.out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
        if limit and len(rows) > limit:
            self.out.write(f"(the last {limit} of {len(rows)} connections; --format jsonl "
                           "gives them all)\n")


class _Events:
    """The session's consumer of the pipeline."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session

    def feed(self, chunk: Chunk) -> None:
        self.session._chunk(chunk)

    def finish(self, result: Result) -> None:
        """The session writes its summary in `LiveSession.finish`."""


def _summary_row(c: Connection, st: _Shown, life: Any) -> dict[str, Any]:
    """A connection in the summary table: the engine's counts, the lifecycle's kinds."""
    handshake = life.handshake + ("" if life.handshake_complete or
                                  life.handshake in ("rejected", "unanswered", "midstream")
                                  else " (incomplete)")
    teardown = life.teardown + ("" if life.teardown_complete or life.teardown == "none"
                                else " (incomplete)")
    return {
        "stream": c.stream, "client": st.client, "server": st.server, "handshake": handshake,
        "teardown": teardown, "state": f"{life.client_final.name} / {life.server_final.name}",
        "pkts": [c.client.packets, c.server.packets],
        "bytes": [c.client.bytes, c.server.bytes],
        "duration": c.duration_ns / 1e9,
        "irtt": None if c.irtt_ns is None else c.irtt_ns / 1e9,
        "anomalies": {name: n for name, n in c.flag_counts.items() if n},
    }


def filter_ports(filter_words: Iterable[str]) -> set[int]:
    """Ports named in a pcap-filter expression (``port 5000``, ``dst port 80``): shown in the
    kernel panel from the start, before any packet names them."""
    words = list(filter_words)
    joined = " ".join(words).replace("(", " ").replace(")", " ").split()
    out = set()
    for a, b in zip(joined, joined[1:]):
        if a == "port" and b.isdigit() and int(b) < 65536:
            out.add(int(b))
    return out
