"""`tcpscope conns`: one row per connection (tcp.stream), in several formats.

One pass over the capture through the pipeline: the engine (streams, counts,
options, anomalies) and the lifecycle layer (handshake, teardown, negotiated
options, final states) run on every batch, and `ConnsCollector` feeds the Zeek
model (conn_state, history) the same batches, so memory is bounded by one batch
plus the per-connection state. The record is DESIGN.md's "Connection record";
docs/conns.md describes every key.

Formats: ``table`` (a terminal table within 100 columns; plain stable text when
piped), ``jsonl``, ``csv``, ``zeek`` (a Zeek conn.log, one row per connection
Zeek would log, with tcpscope's columns after Zeek's), ``parquet`` (pyarrow,
explicit schema). With ``out`` the file is written completely or not at all.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO

import numpy as np

from ..analysis.annotation import FLAG_NAMES
from ..analysis.congestion import CONN_COLUMNS, data_sender_columns
from ..analysis.connections import Connection, decode_all
from ..analysis.engine import DEFAULT_MODE
from ..analysis.lifecycle import Lifecycle
from ..analysis.states import State
from ..analysis.zeek import ZeekConn, ZeekTracker
from ..capture.writer import AtomicOutput
from ..pipeline import Chunk, Options, Result, Source, run
from ..wire.text import format_endpoint

__all__ = ["FORMATS", "ConnRecord", "ConnsCollector", "collect", "write_conns", "RECORD_KEYS",
           "ANOMALIES"]

FORMATS = ("table", "jsonl", "csv", "zeek", "parquet")
#: The anomaly counters of a record, in the engine's flag order.
ANOMALIES: tuple[str, ...] = FLAG_NAMES

#: Keys of a record, in output order (``anomalies`` is a dict in JSON, one column each in CSV).
RECORD_KEYS = (
    "stream", "client", "client_port", "server", "server_port", "role_guessed", "first_ts",
    "duration", "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "retrans_bytes_c2s",
    "retrans_bytes_s2c", "handshake", "syn_retries", "synack_retries", "irtt", "mss_client",
    "mss_server", "wscale_client", "wscale_server", "sack", "timestamps", "ecn", "ecn_ce",
    "ecn_ece", "ecn_cwr", "tfo", "teardown", "time_wait_side", "client_state", "server_state",
    "anomalies", "conn_state", "history", "zeek_orig", "zeek_uid", "zeek_rows", "missed_bytes",
) + CONN_COLUMNS


@dataclass
class ConnRecord:
    """One connection: the engine's facts, the lifecycle, and Zeek's view."""

    values: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass
class Collected:
    records: list[ConnRecord]
    zeek_rows: list[ZeekConn]
    offloaded: int = 0  #: packets Zeek would drop for an offloaded checksum


class ConnsCollector:
    """Pipeline consumer: Zeek's view of every connection beside the engine's and the
    lifecycle's; after the run, `collected` holds one record per connection. With
    `Options.retire` each connection's record is made when it finishes, and the
    engine's, the lifecycle's and Zeek's state of it are freed."""

    def __init__(self, *, ignore_checksums: bool = False,
                 sink: Callable[[ConnRecord], None] | None = None) -> None:
        self.zeek = ZeekTracker(ignore_checksums=ignore_checksums)
        self.collected: Collected | None = None
        self._records: list[ConnRecord] = []
        self._zeek_rows: list[ZeekConn] = []
        # `sink`: each record goes there in stream order as soon as the streams before it
        # went (kept in `_pending` until then), and is not kept; nor are Zeek's rows
        self._sink = sink
        self._pending: dict[int, ConnRecord] = {}
        self._next = 0

    def feed(self, chunk: Chunk) -> None:
        self.zeek.feed(chunk.records, chunk.annotations, chunk.ts_ns)
        if chunk.finished is not None and chunk.finished.size:
            rows = self.zeek.retire(chunk.finished["stream"].tolist())
            self._add(chunk.finished, chunk.finished_lifecycles, rows)

    def _add(self, conns: np.ndarray, lifes: dict[int, Lifecycle], zrows: list[ZeekConn]) -> None:
        zf = self.zeek.fields(zrows)
        records = [ConnRecord(_record(c, zf.get(c.stream), lifes[c.stream], row))
                   for c, row in zip(decode_all(conns), conns)]
        if self._sink is None:
            self._records += records
            self._zeek_rows += zrows
            return
        self._pending.update((r.values["stream"], r) for r in records)
        while self._next in self._pending:
            self._sink(self._pending.pop(self._next))
            self._next += 1

    def finish(self, result: Result) -> None:
        self._add(result.analyzer.connections(), result.tracker.lifecycles(), self.zeek.rows())
        for st in sorted(self._pending):   # streams a selection left out leave gaps
            self._sink(self._pending.pop(st))  # type: ignore[misc]
        self._records.sort(key=lambda r: r.values["stream"])
        self._zeek_rows.sort(key=lambda z: (z.stream, z.part))
        self.collected = Collected(self._records, self._zeek_rows, self.zeek.offloaded)


def collect(source: Source, mode: str = DEFAULT_MODE, *, ignore_checksums: bool = False,
            sink: Callable[[ConnRecord], None] | None = None) -> Collected:
    """Read `source` once and build every connection record (each as its connection
    finishes: the state behind it is freed then); `sink`: see `ConnsCollector`."""
    conns = ConnsCollector(ignore_checksums=ignore_checksums, sink=sink)
    run(source, [conns], Options(mode=mode, keep_transitions=False, retire=True))
    assert conns.collected is not None
    return conns.collected


def _state_name(s: State) -> str | None:
    return None if s == State.UNKNOWN else s.name


def _record(c: Connection, z: ZeekConn | None, lc: Lifecycle, row: Any) -> dict[str, Any]:
    """DESIGN.md's connection record: the engine's counts (bytes each counted once, and
    the retransmitted bytes apart), the lifecycle's kinds and negotiated options, Zeek's
    conn_state and history, and the sender model's facts of the data sender."""
    neg = lc.negotiated
    ws = neg["wscale"]
    rec: dict[str, Any] = {
        "stream": c.stream,
        "client": c.client.addr, "client_port": c.client.port,
        "server": c.server.addr, "server_port": c.server.port,
        "role_guessed": c.role_guessed,
        "first_ts": c.first_ts_ns / 1e9,
        "duration": c.duration_ns / 1e9,
        "packets_c2s": c.client.packets, "packets_s2c": c.server.packets,
        "bytes_c2s": c.client.unique_bytes, "bytes_s2c": c.server.unique_bytes,
        "retrans_bytes_c2s": c.client.retrans_bytes, "retrans_bytes_s2c": c.server.retrans_bytes,
        "handshake": lc.handshake, "syn_retries": lc.syn_retries,
        "synack_retries": lc.synack_retries,
        "irtt": None if c.irtt_ns is None else c.irtt_ns / 1e9,
        "mss_client": c.client.mss, "mss_server": c.server.mss,
        "wscale_client": ws[0] if ws else None, "wscale_server": ws[1] if ws else None,
        "sack": bool(neg["sack"]), "timestamps": bool(neg["timestamps"]),
        "ecn": bool(neg["ecn"]),
        **{k: c.client.signals[k] + c.server.signals[k] for k in ("ecn_ce", "ecn_ece", "ecn_cwr")},
        "tfo": bool(neg["tfo"]),
        "teardown": lc.teardown, "time_wait_side": lc.time_wait_side,
        "client_state": _state_name(lc.client_final),
        "server_state": _state_name(lc.server_final),
        "anomalies": dict(c.flag_counts),
        "conn_state": None, "history": None, "zeek_orig": None, "zeek_uid": None,
        "zeek_rows": 0, "missed_bytes": None,
        **data_sender_columns(row),
    }
    if z is not None:
        zeek_client = (z.orig_h, z.orig_p) == (c.client.addr, c.client.port)
        rec.update(conn_state=z.conn_state, history=z.history,
                   zeek_orig="client" if zeek_client else "server",
                   zeek_uid=z.uid, zeek_rows=z.zeek_rows, missed_bytes=z.missed_bytes)
    return rec


# --- formats -------------------------------------------------------------------------------

def format_jsonl(c: Collected) -> str:
    return "".join(jsonl_line(r) for r in c.records)


def jsonl_line(r: ConnRecord) -> str:
    return json.dumps(r.values, separators=(",", ":")) + "\n"


CSV_COLUMNS = tuple(k for k in RECORD_KEYS if k != "anomalies") + tuple(
    f"anomaly_{a}" for a in ANOMALIES)


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def format_csv(c: Collected) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in c.records:
        w.writerow(csv_cells(r))
    return buf.getvalue()


def csv_cells(r: ConnRecord) -> list[Any]:
    v = r.values
    return [_csv_cell(v[k]) for k in RECORD_KEYS if k != "anomalies"] + \
        [v["anomalies"][a] for a in ANOMALIES]


# Zeek conn.log: the standard columns (meaning exactly Zeek's), then tcpscope's.
ZEEK_FIELDS = (
    ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"),
    ("id.resp_h", "addr"), ("id.resp_p", "port"), ("proto", "enum"), ("service", "string"),
    ("duration", "interval"), ("orig_bytes", "count"), ("resp_bytes", "count"),
    ("conn_state", "string"), ("local_orig", "bool"), ("local_resp", "bool"),
    ("missed_bytes", "count"), ("history", "string"), ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"), ("resp_pkts", "count"), ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"), ("ip_proto", "count"),
)
ZEEK_EXTRA = (
    ("tcpscope_stream", "count"), ("tcpscope_part", "count"),
    ("tcpscope_split_reason", "string"), ("tcpscope_handshake", "string"),
    ("tcpscope_teardown", "string"), ("tcpscope_client_state", "string"),
    ("tcpscope_server_state", "string"), ("tcpscope_anomalies", "count"),
)


def _zeek_time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")


def _zv(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "T" if v else "F"
    return str(v)


def format_zeek(c: Collected) -> str:
    by_stream = {r.values["stream"]: r.values for r in c.records}
    rows = sorted(c.zeek_rows, key=lambda z: (z.ts_ns, z.stream, z.part))
    first = rows[0].ts_ns if rows else 0
    last = max((z.ts_ns + (z.duration_ns or 0) for z in rows), default=0)
    names = [n for n, _ in ZEEK_FIELDS + ZEEK_EXTRA]
    types = [t for _, t in ZEEK_FIELDS + ZEEK_EXTRA]
    out = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)",
           "#unset_field\t-", "#path\tconn", f"#open\t{_zeek_time(first)}",
           "#fields\t" + "\t".join(names), "#types\t" + "\t".join(types)]
    for z in rows:
        rec = by_stream.get(z.stream, {})
        dur = None if z.duration_ns is None else f"{z.duration_ns / 1e9:.6f}"
        vals = [f"{z.ts_ns / 1e9:.6f}", z.uid, z.orig_h, z.orig_p, z.resp_h, z.resp_p, "tcp",
                None, dur, z.orig_bytes, z.resp_bytes, z.conn_state, z.local_orig,
                z.local_resp, z.missed_bytes, z.history or None, z.orig_pkts, z.orig_ip_bytes,
                z.resp_pkts, z.resp_ip_bytes, None, 6,
                z.stream, z.part, z.split_reason, rec.get("handshake"), rec.get("teardown"),
                rec.get("client_state"), rec.get("server_state"),
                sum(rec.get("anomalies", {}).values()) if rec else None]
        out.append("\t".join(_zv(v) for v in vals))
    out.append(f"#close\t{_zeek_time(last)}")
    return "\n".join(out) + "\n"


def parquet_schema() -> Any:
    import pyarrow as pa

    types = {
        "stream": pa.int64(), "client": pa.string(), "client_port": pa.uint16(),
        "server": pa.string(), "server_port": pa.uint16(), "role_guessed": pa.bool_(),
        "first_ts": pa.float64(), "duration": pa.float64(), "packets_c2s": pa.int64(),
        "packets_s2c": pa.int64(), "bytes_c2s": pa.int64(), "bytes_s2c": pa.int64(),
        "retrans_bytes_c2s": pa.int64(), "retrans_bytes_s2c": pa.int64(),
        "handshake": pa.string(), "syn_retries": pa.int32(), "synack_retries": pa.int32(),
        "irtt": pa.float64(), "mss_client": pa.int32(), "mss_server": pa.int32(),
        "wscale_client": pa.int8(), "wscale_server": pa.int8(), "sack": pa.bool_(),
        "timestamps": pa.bool_(), "ecn": pa.bool_(), "ecn_ce": pa.int64(),
        "ecn_ece": pa.int64(), "ecn_cwr": pa.int64(), "tfo": pa.bool_(),
        "teardown": pa.string(), "time_wait_side": pa.string(), "client_state": pa.string(),
        "server_state": pa.string(),
        "anomalies": pa.struct([pa.field(a, pa.int64()) for a in ANOMALIES]),
        "conn_state": pa.string(), "history": pa.string(), "zeek_orig": pa.string(),
        "zeek_uid": pa.string(), "zeek_rows": pa.int32(), "missed_bytes": pa.int64(),
        "cc_guess": pa.string(),
        "cc_confidence": pa.int32(), "loss_episodes": pa.int64(), "rto_count": pa.int64(),
        "tlp_count": pa.int64(), "max_cwnd_est": pa.int64(),
        **{k: pa.float64() for k in CONN_COLUMNS if k.startswith("time_limited_by_")},
    }
    return pa.schema([pa.field(k, types[k]) for k in RECORD_KEYS])


def write_parquet(c: Collected, path: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    cols = {k: [r.values[k] for r in c.records] for k in RECORD_KEYS}
    table = pa.Table.from_pydict(cols, schema=schema)
    pq.write_table(table, path)


# --- the table ----------------------------------------------------------------------------

#: Two-letter names of the RFC 9293 states, for the table's "final" column (client/server).
STATE_ABBR = {
    "CLOSED": "CL", "LISTEN": "LI", "SYN_SENT": "SS", "SYN_RECEIVED": "SR", "ESTABLISHED": "ES",
    "FIN_WAIT_1": "F1", "FIN_WAIT_2": "F2", "CLOSE_WAIT": "CW", "CLOSING": "CG",
    "LAST_ACK": "LA", "TIME_WAIT": "TW",
}
HANDSHAKE_ABBR = {"3way": "3w", "3way+retries": "3w+r", "simultaneous": "simul",
                  "rejected": "rej", "unanswered": "unans", "midstream": "mid"}
TEARDOWN_ABBR = {"4way": "4w", "3way": "3w", "simultaneous": "simul", "half_close": "half",
                 "rst_client": "rst-c", "rst_server": "rst-s", "none": "none"}
TABLE_COLUMNS = ("#", "client", "server", "pkts c/s", "bytes c/s", "open", "close", "final",
                 "zeek", "history", "anom")
_RIGHT = {0, 3, 4, 10}
#: Columns that give up characters (with an ellipsis) when a table would exceed the width.
_SHRINK = ((1, 12), (2, 12), (9, 6))
_WIDTH = 100


def _human(n: int) -> str:
    if n < 1000:
        return str(n)
    for unit in ("k", "M", "G", "T", "P"):
        n /= 1000.0
        if n < 999.5 or unit == "P":
            return f"{n:.1f}{unit}" if n < 9.95 else f"{n:.0f}{unit}"
    return str(n)


def table_rows(c: Collected) -> list[list[str]]:
    """The table's cells, one list per connection (abbreviations: docs/conns.md)."""
    rows = []
    for r in c.records:
        v = r.values
        anom = sum(v["anomalies"].values())
        cs, ss = v["client_state"], v["server_state"]
        final = "-" if cs is None and ss is None else \
            f"{STATE_ABBR.get(cs or '', '?')}/{STATE_ABBR.get(ss or '', '?')}"
        rows.append([
            str(v["stream"]),
            format_endpoint(v["client"], v["client_port"]) + ("?" if v["role_guessed"] else ""),
            format_endpoint(v["server"], v["server_port"]),
            f"{_human(v['packets_c2s'])}/{_human(v['packets_s2c'])}",
            f"{_human(v['bytes_c2s'])}/{_human(v['bytes_s2c'])}",
            HANDSHAKE_ABBR.get(v["handshake"], v["handshake"] or "-"),
            TEARDOWN_ABBR.get(v["teardown"], v["teardown"] or "-"),
            final, v["conn_state"] or "-", v["history"] or "-", str(anom) if anom else "",
        ])
    return rows


def _cut(text: str, w: int, column: int) -> str:
    """A cell cut to `w` with '…'; an endpoint keeps its port (the address is cut)."""
    if len(text) <= w:
        return text
    if column in (1, 2) and ":" in text:
        addr, _, port = text.rpartition(":")
        tail = ("]:" if addr.endswith("]") else ":") + port   # [v6]:port keeps "]:port"
        keep = w - len(tail) - 1
        if keep > 0:
            return addr[:keep] + "…" + tail
    return text[: w - 1] + "…"


def _fit(rows: list[list[str]], width: int = _WIDTH) -> tuple[list[list[str]], list[int]]:
    """Column widths within `width`: the flexible columns are cut (with '…') if needed."""
    widths = [len(h) for h in TABLE_COLUMNS]
    for row in rows:
        widths = [max(w, len(x)) for w, x in zip(widths, row)]
    total = sum(widths) + len(widths) - 1
    while total > width:
        cands = [(widths[i], i) for i, lo in _SHRINK if widths[i] > lo]
        if not cands:
            break
        _, i = max(cands)
        widths[i] -= 1
        total -= 1
    out = []
    for row in rows:
        out.append([_cut(x, w, i) for i, (x, w) in enumerate(zip(row, widths))])
    return out, widths


def format_plain_table(c: Collected, width: int = _WIDTH) -> str:
    rows, widths = _fit(table_rows(c), width)
    return "\n".join([_line(TABLE_COLUMNS, widths)] + [_line(r, widths) for r in rows]) + "\n"


def _line(cells: list[str] | tuple[str, ...], widths: list[int]) -> str:
    parts = [x.rjust(w) if i in _RIGHT else x.ljust(w)
             for i, (x, w) in enumerate(zip(cells, widths))]
    return " ".join(parts).rstrip()


#: The plain table's columns are as wide as its first this many rows need; later rows
#: are cut to those widths (or overflow a column that is not cut), and not kept.
TABLE_WINDOW = 10000


class _TableLines:
    """The plain table, written as records come: `format_plain_table`'s text for at most
    TABLE_WINDOW connections."""

    def __init__(self, out: TextIO, width: int) -> None:
        self.out, self.width = out, width
        self.first: list[ConnRecord] = []
        self.widths: list[int] | None = None

    def add(self, r: ConnRecord) -> None:
        if self.widths is None:
            self.first.append(r)
            if len(self.first) == TABLE_WINDOW:
                self._start()
            return
        cells = table_rows(Collected([r], []))[0]
        cut = {i for i, _ in _SHRINK}   # the others overflow rather than lose digits
        self.out.write(_line([_cut(x, w, i) if i in cut else x for i, (x, w) in
                              enumerate(zip(cells, self.widths))], self.widths) + "\n")

    def _start(self) -> None:
        rows, self.widths = _fit(table_rows(Collected(self.first, [])), self.width)
        self.out.write("\n".join([_line(TABLE_COLUMNS, self.widths)] +
                                 [_line(r, self.widths) for r in rows]) + "\n")
        self.first = []

    def close(self) -> None:
        if self.widths is None:
            self._start()


def print_rich_table(c: Collected, stream: TextIO, *, color: bool, width: int = _WIDTH) -> None:
    from rich.console import Console
    from rich.table import Table

    rows, widths = _fit(table_rows(c), width)
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for i, h in enumerate(TABLE_COLUMNS):
        table.add_column(h, justify="right" if i in _RIGHT else "left", no_wrap=True,
                         min_width=widths[i], max_width=widths[i])
    styles = {"SF": "green", "S1": "green", "REJ": "red", "RSTO": "yellow", "RSTR": "yellow",
              "S0": "red", "OTH": "magenta"}
    for row in rows:
        z = row[8]
        if z in styles:
            row = row[:8] + [f"[{styles[z]}]{z}[/]"] + row[9:]
        table.add_row(*row)
    console = Console(file=stream, width=width, force_terminal=color, no_color=not color,
                      highlight=False, soft_wrap=False)
    console.print(table)


# --- writing ------------------------------------------------------------------------------

def render(c: Collected, fmt: str) -> str:
    if fmt == "jsonl":
        return format_jsonl(c)
    if fmt == "csv":
        return format_csv(c)
    if fmt == "zeek":
        return format_zeek(c)
    if fmt == "table":
        return format_plain_table(c)
    raise ValueError(f"unknown format {fmt!r}")


def _stream_conns(source: Source, fmt: str, mode: str, out: str | None,
                  stdout: TextIO | None, ignore_checksums: bool, keep: Any,
                  width: int) -> Collected:
    """JSON Lines, CSV or the plain table, each record written once the records before it
    were, and not kept: memory follows the active connections."""
    with contextlib.ExitStack() as stack:
        if out is not None:
            f = stack.enter_context(AtomicOutput(out, text=True)).text
        else:
            f = stdout
        assert f is not None
        writer = csv.writer(f, lineterminator="\n") if fmt == "csv" else None
        if writer is not None:
            writer.writerow(CSV_COLUMNS)
        table = _TableLines(f, width) if fmt == "table" else None

        def sink(r: ConnRecord) -> None:
            if keep is not None and not keep(Collected([r], [])).records:
                return
            if writer is not None:
                writer.writerow(csv_cells(r))
            elif table is not None:
                table.add(r)
            else:
                f.write(jsonl_line(r))

        c = collect(source, mode, ignore_checksums=ignore_checksums, sink=sink)
        if table is not None:
            table.close()
        f.flush()
    return c


def write_conns(source: Source, fmt: str = "table", *,
                mode: str = DEFAULT_MODE, out: str | None = None, stdout: TextIO | None = None,
                color: bool | None = None, ignore_checksums: bool = False,
                keep: Any = None, width: int | None = None,
                collected: Collected | None = None) -> Collected:
    """Collect the connections of `source` and write them in `fmt` to `out` or `stdout`
    (`keep(collected)`: the connections a selection keeps; `width`: the terminal's, for
    the table on it; `collected`: the connections, collected already)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if fmt == "parquet" and out is None:
        raise ValueError("--format parquet needs -o FILE")
    if collected is None and (fmt in ("jsonl", "csv") or
                              (fmt == "table" and not (color and out is None))):
        return _stream_conns(source, fmt, mode, out, stdout, ignore_checksums, keep,
                             width or _WIDTH)
    c = collected if collected is not None else \
        collect(source, mode, ignore_checksums=ignore_checksums)
    if keep is not None:
        c = keep(c)
    if out is not None:
        with AtomicOutput(out, text=fmt != "parquet") as f:
            if f.text is None:
                write_parquet(c, f.file)
            else:
                f.text.write(render(c, fmt))
        return c
    assert stdout is not None
    if fmt == "table" and color:
        print_rich_table(c, stdout, color=True, width=width or _WIDTH)
    elif fmt == "table" and width:
        stdout.write(format_plain_table(c, width))
    else:
        stdout.write(render(c, fmt))
    stdout.flush()
    return c
