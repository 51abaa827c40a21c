"""The `tcpscope` command line: wires capture -> wire -> analysis -> present.

Exit codes (DESIGN.md): 0 success; 1 unusable input, with one line naming the
file and the reason; 2 usage error (click's own).
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from tcpscope import __version__
from tcpscope.capture.errors import CaptureError


def _fail_on_capture_error(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn an unusable input into one line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CaptureError as exc:
            click.echo(f"tcpscope: {exc}", err=True)
            sys.exit(1)
        except BrokenPipeError:
            # `tcpscope read big.pcap | head`: stop quietly, like tcpdump.
            sys.stderr.close()
            sys.exit(0)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tcpscope")
def main() -> None:
    """tcpscope: see what TCP does in a capture, packet by packet and connection by connection."""


@main.command("read")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("-v", "verbose", count=True, help="Verbose: -v adds the IP header and checksums, -vv more.")
@click.option("-S", "absolute", is_flag=True, help="Print absolute, not relative, sequence numbers.")
@click.option("-t", "tstyle", count=True, help="-t none, -tt epoch, -ttt delta, -tttt date and time.")
@click.option("-c", "count", type=click.IntRange(min=0), default=None, help="Stop after N packets.")
@click.option("-#", "--number", "number", is_flag=True,
              help="Print the frame number (1-based) before each line, as tcpdump -# does.")
@_fail_on_capture_error
def read_cmd(file: str, verbose: int, absolute: bool, tstyle: int, count: int | None,
             number: bool) -> None:
    """Print one line per packet, exactly as `tcpdump -nn -r FILE` does."""
    from tcpscope.present.tcpdump import TcpdumpOptions, write_listing

    opts = TcpdumpOptions(verbose=verbose, absolute=absolute, tstyle=tstyle, count=count,
                          number=number)
    write_listing(file, opts, sys.stdout)


@main.command("demo")
@_fail_on_capture_error
def demo_cmd() -> None:
    """Analyse the bundled capture of the classic handshake experiment."""
    from tcpscope.present.demo import run_demo

    run_demo(sys.stdout)


@main.command("packets")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True,
              help="JSON Lines (one object per TCP packet) or CSV.")
@click.option("--mode", type=click.Choice(["wireshark", "improved"]), default="wireshark", show_default=True,
              help="wireshark: exactly tshark's tcp.analysis.*; improved: tcpscope's own judgement.")
@_fail_on_capture_error
def packets_cmd(file: str, fmt: str, mode: str) -> None:
    """One record per TCP packet: dissection, stream, relative numbers, analysis with rules."""
    from tcpscope.present.packets import write_packets

    write_packets(file, sys.stdout.buffer, fmt, mode)


if __name__ == "__main__":  # pragma: no cover
    main()
