"""`tcpscope packets`: one record per TCP packet (docs/analysis.md)."""
from __future__ import annotations

import sys

import click

from tcpscope.cli.common import mode_option, one_line_errors


@click.command("packets")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="JSON Lines (one object per TCP packet) or CSV.")
@mode_option("wireshark: exactly tshark's tcp.analysis.*; improved: tcpscope's own judgement.")
@one_line_errors
def packets_cmd(file: str, fmt: str, mode: str) -> None:
    """One record per TCP packet: dissection, stream, relative numbers, analysis with rules."""
    from tcpscope.present.packets import write_packets

    write_packets(file, sys.stdout.buffer, fmt, mode)
