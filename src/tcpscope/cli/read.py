"""`tcpscope read`: the tcpdump-identical listing (docs/read.md)."""
from __future__ import annotations

import sys

import click

from tcpscope.cli.common import one_line_errors


@click.command("read")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("-v", "verbose", count=True, help="Verbose: -v adds the IP header and checksums, -vv more.")
@click.option("-S", "absolute", is_flag=True, help="Print absolute, not relative, sequence numbers.")
@click.option("-t", "tstyle", count=True, help="-t none, -tt epoch, -ttt delta, -tttt date and time.")
@click.option("-c", "count", type=click.IntRange(min=0), default=None, help="Stop after N packets.")
@click.option("-#", "--number", "number", is_flag=True,
              help="Print the frame number (1-based) before each line, as tcpdump -# does.")
@one_line_errors
def read_cmd(file: str, verbose: int, absolute: bool, tstyle: int, count: int | None,
             number: bool) -> None:
    """Print one line per packet, exactly as `tcpdump -nn -r FILE` does."""
    from tcpscope.present.tcpdump import TcpdumpOptions, write_listing

    opts = TcpdumpOptions(verbose=verbose, absolute=absolute, tstyle=tstyle, count=count,
                          number=number)
    write_listing(file, opts, sys.stdout)
