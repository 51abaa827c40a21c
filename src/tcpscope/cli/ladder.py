"""`tcpscope ladder`: the ladder (flow) diagram alone (docs/explain.md)."""
from __future__ import annotations

import sys

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
@mode_option("The analysis mode behind the tags.")
@color_option
@one_line_errors
def ladder_cmd(inputs: Inputs, fmt: str, output: str | None, lang: str, fold: bool, mode: str,
               color: bool) -> None:
    """The ladder (flow) diagram of a connection: an arrow per packet, states beside it.

    --stream is repeatable: several connections share the lanes of their endpoints;
    without it, every stream, if they have at most 6 endpoints.
    """
    from tcpscope.present.explain import Line, render_lines
    from tcpscope.present.ladder import (
        build_ladder, render_mermaid, render_svg, render_text_rows,
    )
    from tcpscope.present.story import build_story, collect

    streams = inputs.stream_numbers(mode) or []
    source, finish = progress_input(inputs)
    try:
        analysis, extra = collect(source, list(streams) or None, mode=mode)
    finally:
        finish()
    total = int(analysis.stats["streams"])
    chosen = sorted(set(streams)) if streams else list(range(total))
    missing = [s for s in chosen if s >= total]
    if missing or not chosen:
        raise StreamNotFound(f"no TCP stream {missing[0]} in the capture" if missing
                             else "no TCP stream in the capture")
    stories = [build_story(analysis, s, extra) for s in chosen]
    lad = build_ladder(stories, lang, fold=fold)
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
