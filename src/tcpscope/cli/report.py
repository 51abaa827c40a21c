"""`tcpscope report`: one self-contained HTML page about a capture (docs/report.md)."""
from __future__ import annotations

import sys
from collections.abc import Callable

import click

from tcpscope.analysis.engine import MODES
from tcpscope.cli.common import (
    Inputs, examples, file_options, lang_option, one_line_errors, rereadable,
)


@click.command("report",
               epilog=examples(
                   "tcpscope report trace.pcap -o report.html",
                   "tcpscope report rotated/*.pcap 'port 443' -o tls.html --lang zh",
                   "tcpscope report big.pcap --details 4 -o big.html",
               ))
@file_options()
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), required=True,
              help="The HTML file to write (written completely or not at all).")
@lang_option("Language of the page.")
@click.option("--mode", type=click.Choice(list(MODES)), default="improved", show_default=True,
              help="The analysis mode (improved: tcpscope's own judgement, with the sender "
                   "model behind the congestion window graph and the round trips).")
@click.option("--details", type=click.IntRange(min=0, max=50), default=8, show_default=True,
              help="How many connections are told in detail.")
@one_line_errors
def report_cmd(inputs: Inputs, output: str, lang: str, mode: str, details: int) -> None:
    """One HTML page: the capture's overview, a table of its connections, and the
    most interesting ones in detail (story, ladder, graphs, anomalies, round trips).

    The input is read twice (the overview, then the connections told in detail);
    standard input is saved to a temporary file first.
    """
    from tcpscope.present.report import write_report

    source = rereadable(inputs.input)
    on_batch, finish = _progress()
    try:
        write_report(source, output, lang=lang, mode=mode, details=details, name=inputs.name,
                     on_batch=on_batch)
    finally:
        finish()


def _progress() -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """Frames read so far, on stderr when it is a terminal (the input is read twice, so
    a bar by bytes would fill up twice)."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                        console=Console(stderr=True), transient=True,
                        redirect_stdout=False, redirect_stderr=False)
    task = progress.add_task("reading")
    progress.start()
    done = [0]

    def on_batch(frames: int) -> None:
        done[0] += frames
        progress.update(task, description=f"reading: {done[0]:,} frames")

    return on_batch, progress.stop
