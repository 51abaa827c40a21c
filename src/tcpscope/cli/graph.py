"""`tcpscope graph`: one graph of a connection, PNG, SVG or HTML (docs/graphs.md)."""
from __future__ import annotations

import click

from tcpscope.cli.common import (
    examples,
    Inputs, fail, file_options, lang_option, mode_option, one_line_errors, one_stream,
)

KINDS = ("stevens", "tcptrace", "throughput", "rtt", "window", "cwnd", "slidingwindow")


@click.command("graph",
               epilog=examples(
                   'tcpscope graph trace.pcap --stream 0 --kind tcptrace -o seq.svg',
                   'tcpscope graph trace.pcap --stream 0 --kind throughput -o tput.html',
                   'tcpscope graph trace.pcap --stream 0 --kind slidingwindow --frame 9 -o w.png',
               ))
@file_options(display="streams", streams="streams", stream_required=True)
@click.option("--kind", type=click.Choice(KINDS), required=True, help="Which graph.")
@click.option("--frame", type=click.IntRange(min=1), default=None,
              help="slidingwindow: the frame whose instant is drawn (default: the stream's "
                   "first key moment).")
@click.option("--dir", "direction", type=click.Choice(["c2s", "s2c"]), default=None,
              help="The data direction (default: the one that sent more bytes).")
@lang_option("Language of titles, labels and legend.")
@mode_option("The analysis mode behind the marks.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), required=True,
              help="The file to write: .png, .svg or .html (self-contained, interactive).")
@one_line_errors
def graph_cmd(inputs: Inputs, kind: str, frame: int | None, direction: str | None,
              lang: str, mode: str, output: str) -> None:
    """Draw a graph of one connection: time-sequence (tcptrace, Stevens), throughput,
    RTT, window, congestion window, or the sliding window at one instant.

    The connection is --stream N, --stream ADDR:PORT[-ADDR:PORT], or the first one
    with a packet -Y matches.
    """
    from tcpscope.present.graph import GraphUnavailable, write_graph

    stream = one_stream(inputs, mode)
    try:
        write_graph(inputs.input, stream, kind, output, direction=direction, lang=lang,
                    frame=frame, mode=mode)
    except (GraphUnavailable, LookupError, ValueError) as exc:
        fail(f"{inputs.name}: {exc}")
