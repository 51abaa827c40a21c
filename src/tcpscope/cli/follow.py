"""`tcpscope follow`: a connection's two byte streams, reassembled (docs/follow.md)."""
from __future__ import annotations

import click

from tcpscope.cli.common import (
    Inputs, color_option, examples, file_options, mode_option, one_line_errors, one_stream,
    output_option, output_stream,
)


@click.command("follow",
               epilog=examples(
                   'tcpscope follow trace.pcap --stream 0',
                   'tcpscope follow trace.pcap --stream 10.0.0.2:5000-10.0.0.1:80 --format hex',
                   "tcpscope follow trace.pcap -Y 'tcp.port == 25 && tcp.len > 0'",
               ))
@file_options(display="streams", streams="streams", stream_required=True)
@click.option("--format", "fmt", type=click.Choice(["ascii", "hex", "raw"]), default="ascii",
              show_default=True,
              help="ascii: the text; hex: a hex dump per chunk; raw: tshark's follow,tcp,raw hex lines.")
@mode_option("The analysis mode behind the stream numbers.")
@color_option
@output_option
@one_line_errors
def follow_cmd(inputs: Inputs, fmt: str, mode: str, color: bool, output: str | None) -> None:
    """Both byte streams of a connection, reassembled: gaps, conflicts, keep-alives shown.

    The connection is --stream N (tcp.stream, as `tcpscope packets` numbers them),
    --stream ADDR:PORT[-ADDR:PORT], or the first one with a packet -Y matches.
    """
    from tcpscope.present.follow import write_follow

    stream = one_stream(inputs, mode)
    with output_stream(output) as out:
        write_follow(inputs.input, stream, fmt, out, color=color, mode=mode)
