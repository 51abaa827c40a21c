"""`tcpscope audit`: findings across a whole capture, each with its rule and evidence
(docs/audit.md)."""
from __future__ import annotations

import sys

import click

from tcpscope.analysis.engine import MODES
from tcpscope.cli.common import lang_option, one_line_errors, progress_source


@click.command("audit")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table",
              show_default=True,
              help="table: one line and one sentence per finding; jsonl: one object per finding.")
@lang_option("Language of the sentences.")
@click.option("--mode", type=click.Choice(list(MODES)), default="improved", show_default=True,
              help="The analysis mode behind the retransmission counts (improved: tcpscope's "
                   "own judgement).")
@one_line_errors
def audit_cmd(file: str, fmt: str, lang: str, mode: str) -> None:
    """SYN floods and cookies, scans, failed connections, storms, TIME_WAIT, weak ISNs."""
    from tcpscope.present.audit import write_audit

    source, finish = progress_source(file)
    try:
        write_audit(source, fmt, lang, sys.stdout, mode=mode, name=file)
    finally:
        finish()
