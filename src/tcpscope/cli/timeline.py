"""`tcpscope timeline`: a connection's round trips, as its data sender lived them (docs/congestion.md)."""
from __future__ import annotations

import click

from tcpscope.cli.common import (
    Inputs, examples, file_options, one_line_errors, one_stream, output_option, output_stream,
)


@click.command("timeline",
               epilog=examples(
                   "tcpscope timeline trace.pcap --stream 0",
                   "tcpscope timeline trace.pcap --stream 10.0.0.1:80 --format csv",
                   "tcpscope timeline trace.pcap -Y 'tcp.analysis.fast_retransmission'",
               ))
@file_options(display="streams", streams="streams", stream_required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table",
              show_default=True, help="A table, JSON Lines or CSV: the same columns.")
@click.option("--sender", type=click.Choice(["client", "server"]), default=None,
              help="Whose data (default: the side that sent more).")
@output_option
@one_line_errors
def timeline_cmd(inputs: Inputs, fmt: str, sender: str | None, output: str | None) -> None:
    """One row per round trip: cwnd and ssthresh estimates, in flight, receiver window, RTT,
    phase, what held the sender back, bytes delivered and retransmitted."""
    from tcpscope.present.timeline import write_timeline

    stream = one_stream(inputs, "improved")
    with output_stream(output) as out:
        write_timeline(inputs.input, out, stream, fmt, sender)
