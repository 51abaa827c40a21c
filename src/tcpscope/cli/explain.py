"""`tcpscope explain`: the story of a connection (docs/explain.md)."""
from __future__ import annotations

import sys

import click

from tcpscope.cli.common import (
    lang_option, mode_option, one_line_errors, progress_source, use_color,
)


@click.command("explain")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--stream", "streams", type=click.IntRange(min=0), multiple=True,
              help="The stream to explain (repeatable; default: every connection, up to 20).")
@lang_option("Language of the explanation.")
@mode_option("The analysis mode behind the anomalies.")
@click.option("--all", "show_all", is_flag=True,
              help="Narrate every packet (do not fold runs of ordinary data and ACKs).")
@click.option("--no-color", is_flag=True, help="Plain text, even on a terminal.")
@one_line_errors
def explain_cmd(file: str, streams: tuple[int, ...], lang: str, mode: str, show_all: bool,
                no_color: bool) -> None:
    """The story of a connection: ladder, states, every packet explained, a summary."""
    from tcpscope.present.explain import write_explain
    from tcpscope.present.story import GROUP_MIN

    source, finish = progress_source(file)
    try:
        write_explain(source, sys.stdout, streams=list(streams) or None, lang=lang,
                      color=use_color(no_color), mode=mode,
                      group_min=None if show_all else GROUP_MIN)
    finally:
        finish()
