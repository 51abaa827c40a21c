"""`tcpscope demo`: the bundled capture of the classic experiment, explained (docs/explain.md)."""
from __future__ import annotations

import sys

import click

from tcpscope.cli.common import examples, lang_option, one_line_errors, use_color


@click.command("demo", epilog=examples('tcpscope demo', 'tcpscope demo --lang zh | less -R'))
@lang_option("Language of the explanation.")
@click.option("--no-color", is_flag=True, help="Plain text, even on a terminal.")
@one_line_errors
def demo_cmd(lang: str, no_color: bool) -> None:
    """Explain the bundled capture of the classic handshake experiment."""
    from tcpscope.present.demo import run_demo

    run_demo(sys.stdout, lang, color=use_color(no_color))
