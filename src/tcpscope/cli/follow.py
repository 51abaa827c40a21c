"""`tcpscope follow`: a connection's two byte streams, reassembled (docs/follow.md)."""
from __future__ import annotations

import os
import sys

import click

from tcpscope.cli.common import one_line_errors


@click.command("follow")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--stream", "stream", type=click.IntRange(min=0), required=True,
              help="The stream (tcp.stream, as `tcpscope packets` numbers them).")
@click.option("--format", "fmt", type=click.Choice(["ascii", "hex", "raw"]), default="ascii",
              show_default=True,
              help="ascii: the text; hex: a hex dump per chunk; raw: tshark's follow,tcp,raw hex lines.")
@click.option("--color/--no-color", "color", default=None,
              help="Client red, server blue (default: on a terminal, unless NO_COLOR is set).")
@one_line_errors
def follow_cmd(file: str, stream: int, fmt: str, color: bool | None) -> None:
    """Both byte streams of a connection, reassembled: gaps, conflicts, keep-alives shown."""
    from tcpscope.present.follow import write_follow

    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    write_follow(file, stream, fmt, sys.stdout, color=color)
