"""`tcpscope conns`: one row per connection (docs/conns.md)."""
from __future__ import annotations

import sys
from typing import Any

import click

from tcpscope.cli.common import (
    Inputs, color_option, examples, file_options, mode_option, note, one_line_errors,
    scale_options, spread, terminal_width,
)


@click.command("conns",
               epilog=examples(
                   "tcpscope conns trace.pcap 'port 443' --format csv",
                   "tcpscope conns rotated/ --workers 4 -Y 'tcp.analysis.retransmission && duration > 1'",
                   'tcpscope conns trace.pcap --stream 10.0.0.1:80 --format zeek -o conn.log',
               ))
@file_options(display="conns", streams="conns")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv", "zeek", "parquet"]),
              default="table", show_default=True,
              help="table, JSON Lines, CSV, a Zeek conn.log, or Parquet (needs -o).")
@mode_option("The analysis mode behind the anomaly counts.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file (completely or not at all) instead of standard output.")
@click.option("-C", "--ignore-checksums", is_flag=True,
              help="As zeek -C: Zeek's columns keep packets whose checksum is bad or offloaded.")
@scale_options
@color_option
@one_line_errors
def conns_cmd(inputs: Inputs, fmt: str, mode: str, output: str | None, ignore_checksums: bool,
              color: bool, scale: Any) -> None:
    """One row per connection: roles, counts, handshake, teardown, states, Zeek's view.

    -Y filters the connections by their columns (handshake == "rejected",
    bytes_c2s > 1000000, conn_state == "REJ"...) and by Wireshark's names that
    mean something for a connection (tcp.stream, ip.addr, tcp.port,
    tcp.analysis.retransmission: it had one).
    """
    from tcpscope.present.conns import write_conns

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs -o FILE")
    if fmt == "parquet":
        from tcpscope.present.tables import require

        require("pyarrow.parquet")
    keep = None
    if inputs.display is not None or inputs.streams:
        keep = _selector(inputs)
    width = terminal_width() if output is None and sys.stdout.isatty() else None
    collected = None
    if spread(inputs, scale, rows=False):
        from tcpscope.scale.driver import scaled_conns

        collected = scaled_conns(inputs.input, mode, scale, ignore_checksums=ignore_checksums,
                                 notes=note)
    c = write_conns(inputs.input, fmt, mode=mode, out=output, stdout=sys.stdout,
                    color=color and fmt == "table", ignore_checksums=ignore_checksums, keep=keep,
                    width=width, collected=collected)
    if c.offloaded and not ignore_checksums:
        click.echo(f"tcpscope: note: {c.offloaded} packets have offloaded checksums, which Zeek "
                   "drops ('C');\ntcpscope: -C keeps them, as zeek -C does", err=True)


def _selector(inputs: Inputs) -> Any:
    """Keep the connections that --stream and -Y select (and their Zeek rows)."""
    from tcpscope.filter import select_records

    def keep(c: Any) -> Any:
        rows = [_flat(r.as_dict()) for r in c.records]
        kept = select_records(rows, inputs.display, inputs.streams)
        c.records = [c.records[i] for i in kept]
        streams = {rows[i]["stream"] for i in kept}
        c.zeek_rows = [z for z in c.zeek_rows if z.stream in streams]
        return c

    return keep


def _flat(rec: dict) -> dict:
    """A record as the CSV has it: each anomaly count its own column."""
    out = {k: v for k, v in rec.items() if k != "anomalies"}
    for k, v in (rec.get("anomalies") or {}).items():
        out[f"anomaly_{k}"] = v
    return out
