"""The `tcpscope` command line: one module per command, each wiring the layers below.

A command parses its options, runs the pipeline (or the live loop, or the lab)
with the presenters it needs, and turns what the user must fix into one line
and an exit code (common.py): 0 success; 1 unusable input; 2 usage error;
130 interrupted (Ctrl-C: nothing but a newline, as a shell expects).
"""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from tcpscope.cli.common import examples

from tcpscope import __version__
from tcpscope.cli.audit import audit_cmd
from tcpscope.cli.conns import conns_cmd
from tcpscope.cli.demo import demo_cmd
from tcpscope.cli.explain import explain_cmd
from tcpscope.cli.follow import follow_cmd
from tcpscope.cli.graph import graph_cmd
from tcpscope.cli.lab import lab_group
from tcpscope.cli.ladder import ladder_cmd
from tcpscope.cli.live import live_cmd
from tcpscope.cli.packets import packets_cmd
from tcpscope.cli.read import read_cmd
from tcpscope.cli.report import report_cmd
from tcpscope.cli.sockets import sockets_cmd
from tcpscope.cli.timeline import timeline_cmd

__all__ = ["main"]


class _Main(click.Group):
    """The command group: Ctrl-C ends any command with a newline and exit code 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            try:
                sys.stdout.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass
            sys.stderr.write("\n")
            sys.stderr.flush()
            # no flush of a broken stdout at exit, no traceback: just the code
            os._exit(130)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=examples(
                 "tcpscope read trace.pcap 'tcp port 80'     # tcpdump -nn -r's listing",
                 "tcpscope conns rotated/ --format csv      # a row per connection",
                 "tcpscope explain trace.pcap --stream 0    # a connection's story",
             ))
@click.version_option(__version__, "-V", "--version", prog_name="tcpscope")
def main() -> None:
    """tcpscope: see what TCP does in a capture, packet by packet and connection by connection."""


for _command in (read_cmd, demo_cmd, packets_cmd, conns_cmd, follow_cmd, explain_cmd,
                 ladder_cmd, graph_cmd, timeline_cmd, live_cmd, sockets_cmd, lab_group,
                 audit_cmd, report_cmd):
    main.add_command(_command)
