"""`tcpscope timeline`: a connection's round trips, as its data sender lived them (docs/congestion.md)."""
from __future__ import annotations

import sys

import click

from tcpscope.cli.common import one_line_errors


@click.command("timeline")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--stream", "stream", type=click.IntRange(min=0), required=True,
              help="The stream (tcp.stream, as `tcpscope packets` numbers them).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table",
              show_default=True, help="A table, JSON Lines or CSV: the same columns.")
@click.option("--sender", type=click.Choice(["client", "server"]), default=None,
              help="Whose data (default: the side that sent more).")
@one_line_errors
def timeline_cmd(file: str, stream: int, fmt: str, sender: str | None) -> None:
    """One row per round trip: cwnd and ssthresh estimates, in flight, receiver window, RTT,
    phase, what held the sender back, bytes delivered and retransmitted."""
    from tcpscope.present.timeline import write_timeline

    write_timeline(file, sys.stdout, stream, fmt, sender)
