"""`tcpscope audit`: findings across a whole capture, each with its rule and evidence
(docs/audit.md)."""
from __future__ import annotations

from typing import Any

import click

from tcpscope.analysis.engine import MODES
from tcpscope.cli.common import (
    Inputs, examples, file_options, lang_option, note, one_line_errors, output_option,
    output_stream, progress_input, scale_options, spread,
)


@click.command("audit",
               epilog=examples(
                   "tcpscope audit trace.pcap",
                   "tcpscope audit rotated/*.pcap 'host 10.0.0.1' --format jsonl",
                   "tcpscope audit trace.pcap --lang zh",
               ))
@file_options()
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table",
              show_default=True,
              help="table: one line and one sentence per finding; jsonl: one object per finding.")
@lang_option("Language of the sentences.")
@click.option("--mode", type=click.Choice(list(MODES)), default="improved", show_default=True,
              help="The analysis mode behind the retransmission counts (improved: tcpscope's "
                   "own judgement).")
@scale_options
@output_option
@one_line_errors
def audit_cmd(inputs: Inputs, fmt: str, lang: str, mode: str, scale: Any,
              output: str | None) -> None:
    """SYN floods and cookies, scans, failed connections, storms, TIME_WAIT, weak ISNs.

    A capture filter, -c, --stream and -Y narrow what is audited to the packets they select.
    """
    from tcpscope.present.audit import write_audit, write_report

    if spread(inputs, scale, rows=True):
        from tcpscope.scale.driver import scaled_audit

        report = scaled_audit(inputs.input, mode, scale, notes=note)
        report.name = inputs.name
        with output_stream(output) as out:
            write_report(report, fmt, lang, out)
        return
    source, finish = progress_input(inputs)
    try:
        with output_stream(output) as out:
            write_audit(source, fmt, lang, out, mode=mode, name=inputs.name)
    finally:
        finish()
