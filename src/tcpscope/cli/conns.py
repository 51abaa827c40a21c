"""`tcpscope conns`: one row per connection (docs/conns.md)."""
from __future__ import annotations

import sys

import click

from tcpscope.cli.common import mode_option, one_line_errors


@click.command("conns")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv", "zeek", "parquet"]),
              default="table", show_default=True,
              help="table, JSON Lines, CSV, a Zeek conn.log, or Parquet (needs -o).")
@mode_option("The analysis mode behind the anomaly counts.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file (completely or not at all) instead of standard output.")
@click.option("-C", "--ignore-checksums", is_flag=True,
              help="As zeek -C: Zeek's columns keep packets whose checksum is bad or offloaded.")
@click.option("--no-color", is_flag=True, help="Plain text table, even on a terminal.")
@one_line_errors
def conns_cmd(file: str, fmt: str, mode: str, output: str | None, ignore_checksums: bool,
              no_color: bool) -> None:
    """One row per connection: roles, counts, handshake, teardown, states, Zeek's view."""
    from tcpscope.present.conns import write_conns

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs -o FILE")
    color = fmt == "table" and output is None and not no_color and sys.stdout.isatty()
    c = write_conns(file, fmt, mode=mode, out=output, stdout=sys.stdout, color=color,
                    ignore_checksums=ignore_checksums)
    if c.offloaded and not ignore_checksums:
        click.echo(f"tcpscope: note: {c.offloaded} packets have offloaded checksums, which Zeek "
                   "drops ('C');\ntcpscope: -C keeps them, as zeek -C does", err=True)
