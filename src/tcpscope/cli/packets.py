"""`tcpscope packets`: one record per TCP packet (docs/analysis.md)."""
from __future__ import annotations

import sys
from typing import Any

import click

from tcpscope.cli.common import (
    Inputs, examples, file_options, mode_option, note, one_line_errors, scale_options, spread,
    write_option,
)


@click.command("packets",
               epilog=examples(
                   'tcpscope packets trace.pcap --stream 3 --format csv',
                   "tcpscope packets trace.pcap -Y 'tcp.analysis.ack_rtt > 0.2' -w slow.pcapng",
                   "tcpscope packets rotated/ 'port 443' --format parquet -o packets.parquet",
               ))
@file_options()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default="jsonl",
              show_default=True,
              help="JSON Lines (one object per TCP packet), CSV, or Parquet (needs -o; "
                   "tcpscope[arrow]).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None,
              help="Write the records to this file (completely or not at all).")
@mode_option("wireshark: exactly tshark's tcp.analysis.*; improved: tcpscope's own judgement.")
@write_option
@scale_options
@one_line_errors
def packets_cmd(inputs: Inputs, fmt: str, output: str | None, mode: str,
                write: str | None, scale: Any) -> None:
    """One record per TCP packet: dissection, stream, relative numbers, analysis with rules.

    With several files, each record also says its file and its frame there.
    """
    from tcpscope.present.packets import write_packets

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs -o FILE")
    if write is not None and scale.active:
        note("one process: -w writes the frames in order")
    elif spread(inputs, scale, rows=True):
        from tcpscope.scale.driver import scaled_packets

        scaled_packets(inputs.input, sys.stdout.buffer if output is None else output, fmt,
                       mode, scale, notes=note)
        return
    write_packets(inputs.input, sys.stdout.buffer if output is None else output, fmt, mode,
                  write=write)
