"""`tcpscope packets`: one record per TCP packet (docs/analysis.md)."""
from __future__ import annotations

import os
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
@click.option("-o", "--output", "output", type=click.Path(), default=None,
              help="Write the records to this file (completely or not at all); with "
                   "--format parquet, DIR/ (a trailing slash or a directory): a Parquet "
                   "dataset, a file per flow bucket (docs/scale.md).")
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
    dataset = output is not None and fmt == "parquet" and (
        output.endswith(os.sep) or os.path.isdir(output))
    if output is not None and os.path.isdir(output) and not dataset:
        raise click.UsageError(f"-o {output}: a directory (only --format parquet writes one)")
    if write is not None and scale.active:
        note("one process: -w writes the frames in order")
    elif spread(inputs, scale, rows=True):
        from tcpscope.scale.driver import scaled_packets

        scaled_packets(inputs.input, sys.stdout.buffer if output is None else output, fmt,
                       mode, scale, notes=note, dataset=dataset)
        return
    if dataset:   # one process: a dataset of one part
        os.makedirs(output, exist_ok=True)
        output = os.path.join(output, "part-0000.parquet")
    write_packets(inputs.input, sys.stdout.buffer if output is None else output, fmt, mode,
                  write=write)
