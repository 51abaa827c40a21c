"""`tcpscope explain`: the story of a connection (docs/explain.md)."""
from __future__ import annotations

import sys

import click

from tcpscope.cli.common import (
    examples,
    Inputs, color_option, file_options, lang_option, mode_option, one_line_errors,
    progress_input,
)


def _frame_range(ctx: click.Context, param: click.Parameter,
                 value: str | None) -> tuple[int, int] | None:
    """``A-B`` (or ``A``): frames A to B, both included."""
    if value is None:
        return None
    first, _, last = value.partition("-")
    try:
        a, b = int(first), int(last or first)
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected A-B, frame numbers") from None
    if a < 1 or b < a:
        raise click.BadParameter(f"{value!r}: expected 1 <= A <= B")
    return a, b


@click.command("explain",
               epilog=examples(
                   'tcpscope explain trace.pcap --stream 10.0.0.2:5000 --lang zh',
                   "tcpscope explain big.pcap 'port 443' -Y 'tcp.analysis.retransmission'",
                   'tcpscope explain big.pcap --stream 5 --frames 1200-1300',
               ))
@file_options(display="streams", streams="streams")
@lang_option("Language of the explanation.")
@mode_option("The analysis mode behind the anomalies.")
@click.option("--all", "show_all", is_flag=True,
              help="Narrate every packet (do not fold runs of ordinary data and ACKs).")
@click.option("--frames", "frames", default=None, metavar="A-B", callback=_frame_range,
              help="Tell frames A to B packet by packet (a long connection is otherwise "
                   "told by episodes).")
@color_option
@one_line_errors
def explain_cmd(inputs: Inputs, lang: str, mode: str, show_all: bool,
                frames: tuple[int, int] | None, color: bool) -> None:
    """The story of a connection: ladder, states, every packet explained, a summary.

    A long connection is told by episodes (slow start, recoveries, zero windows, idle
    gaps); --frames or --all tell packets one by one. Without --stream or -Y, every
    connection (up to 20), or an overview of a capture with more; -Y picks the
    connections that have a packet it matches.
    """
    from tcpscope.present.explain import write_explain
    from tcpscope.present.story import GROUP_MIN

    streams = inputs.stream_numbers(mode)
    source, finish = progress_input(inputs)
    try:
        write_explain(source, sys.stdout, streams=streams, lang=lang, color=color, mode=mode,
                      group_min=None if show_all else GROUP_MIN, frames=frames)
    finally:
        finish()
