"""`tcpscope ladder`: the ladder (flow) diagram alone (docs/explain.md)."""
from __future__ import annotations

import sys
from dataclasses import replace

import click

from tcpscope.cli.common import (
    examples,
    Inputs, color_option, file_options, lang_option, mode_option, one_line_errors,
    output_option, output_stream, progress_input,
)
from tcpscope.pipeline import StreamNotFound

#: A ladder draws at most this many endpoints (lanes).
MAX_LANES = 6


@click.command("ladder",
               epilog=examples(
                   'tcpscope ladder trace.pcap --stream 0',
                   'tcpscope ladder trace.pcap --stream 10.0.0.1:80 --format mermaid -o flow.mmd',
                   "tcpscope ladder trace.pcap -Y 'tcp.flags.reset == 1' --fold",
               ))
@file_options(display="streams", streams="streams")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "svg"]), default="text",
              show_default=True, help="Box-drawing text, a Mermaid sequenceDiagram, or SVG.")
@output_option
@lang_option("Language of the words (headers, tags, legend).")
@click.option("--fold", is_flag=True,
              help="Draw runs of ordinary data and ACKs as one row (one connection only).")
@click.option("--all", "every", is_flag=True,
              help="A connection of more than 1000 packets: draw every packet (by default, "
                   "those its story tells: the handshake, an event or two, the teardown).")
@mode_option("The analysis mode behind the tags.")
@color_option
@one_line_errors
def ladder_cmd(inputs: Inputs, fmt: str, output: str | None, lang: str, fold: bool,
               every: bool, mode: str, color: bool) -> None:
    """The ladder (flow) diagram of a connection: an arrow per packet, states beside it.

    --stream is repeatable: several connections share the lanes of their endpoints;
    without it, every stream, if they have at most 6 endpoints.
    """
    from tcpscope.present.explain import Line, render_lines
    from tcpscope.present.ladder import (
        build_ladder, render_mermaid, render_svg, render_text_rows,
    )
    from tcpscope.present.story import build_story
    from tcpscope.present.story.episodes import (
        build_long_story, collect_long, long_stream, told_items,
    )

    streams = inputs.stream_numbers(mode) or []
    source, finish = progress_input(inputs)
    try:
        analysis, extra, model = collect_long(source, list(streams) or None, mode=mode)
    finally:
        finish()
    total = int(analysis.stats["streams"])
    chosen = sorted(set(streams)) if streams else list(range(total))
    missing = [s for s in chosen if s >= total]
    if missing or not chosen:
        raise StreamNotFound.number(missing[0] if missing else None)
    if len(chosen) == 1 and not every and long_stream(analysis, chosen[0]):
        # a long connection: the packets its story tells (handshake, events, teardown)
        st = build_long_story(analysis, chosen[0], extra, model)
        lad = build_ladder([replace(st, items=told_items(st))], lang, fold=True)
    else:
        lad = build_ladder([build_story(analysis, s, extra) for s in chosen], lang, fold=fold)
    if len(lad.lanes) > MAX_LANES:
        raise click.UsageError(f"{len(chosen)} streams have {len(lad.lanes)} endpoints; a ladder "
                               f"draws at most {MAX_LANES}: choose streams with --stream N")
    if fmt == "text":
        rows = render_text_rows(lad)
        if output is None:
            styled: list[Line] = []
            for text, r in rows:
                style = (("s2c" if r.src > r.dst else "c2s") if r is not None and r.kind ==
                         "packet" else None)
                styled.append([(text, style)])
            render_lines(styled, sys.stdout, color=color)
            return
        text = "\n".join(t for t, _ in rows) + "\n"
    elif fmt == "mermaid":
        text = render_mermaid(lad)
    else:
        text = render_svg(lad)
    with output_stream(output) as out:
        out.write(text)
