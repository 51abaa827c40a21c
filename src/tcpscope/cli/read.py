"""`tcpscope read`: the tcpdump-identical listing (docs/read.md)."""
from __future__ import annotations

import sys
from typing import Any

import click

from tcpscope.cli.common import Inputs, examples, fail, file_options, one_line_errors, write_option

#: tcpdump's flags that `read` does not take, and why (the others are tcpdump's own).
UNSUPPORTED = {
    "-i": "read reads files; capture with `tcpscope live -i IFACE`",
    "-s": "the snapshot length is the file's",
    "-D": "list interfaces with `ip link`", "-L": "read reads files", "-I": "read reads files",
    "-p": "read reads files", "-B": "read reads files", "-U": "output is written as it comes",
    "-l": "output is written as it comes", "-C": "split a capture with editcap -c",
    "-G": "split a capture with editcap -i", "-W": "split a capture with editcap",
    "-z": "read runs no command", "-Z": "tcpscope drops no privileges: it needs none",
    "-E": "IPsec is not decoded", "-K": "checksums are always verified",
    "-M": "TCP-MD5 secrets are not used", "-O": "filters are always optimised",
    "-Q": "the direction is the file's", "-y": "the link type is the file's",
    "-T": "packets are printed as what they are", "-u": "NFS is not decoded",
    "-b": "BGP is not decoded", "-j": "the time stamp type is the file's",
    "-J": "read reads files", "-N": "names are never resolved", "-H": "802.11s is not decoded",
    "-P": "the direction is the file's", "-f": "names are never resolved",
    "-h": "see tcpscope read --help", "-g": "the IP header stays on the line",
    "-m": "SMI MIBs are not loaded", "-k": "there is no pktap metadata",
}


class TcpdumpCommand(click.Command):
    """A command that says in one line that a tcpdump flag it lacks is not supported."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for a in args:
            if a == "--":
                break
            if a.startswith("-") and not a.startswith("--") and len(a) > 1:
                letters = a[1:]
                known = {p.opts[0] for p in self.params if isinstance(p, click.Option)} | \
                    {o for p in self.params if isinstance(p, click.Option) for o in p.opts}
                for ch in letters:
                    flag = f"-{ch}"
                    if flag in UNSUPPORTED and flag not in known:
                        fail(f"tcpdump's {flag} is not supported by tcpscope read: "
                             f"{UNSUPPORTED[flag]}", 2)
                    opt = next((p for p in self.params if isinstance(p, click.Option)
                                and flag in p.opts), None)
                    if opt is not None and not (opt.is_flag or opt.count):
                        break  # the rest of the word is this option's value
        return super().parse_args(ctx, args)


@click.command("read", cls=TcpdumpCommand,
               epilog=examples(
                   "tcpscope read trace.pcap 'tcp port 80 and host 10.0.0.1'",
                   "tcpscope read -r rotated/ -Y 'tcp.analysis.retransmission' -w retx.pcapng",
                   'tcpscope read trace.pcap -c 20 -X --stream 10.0.0.1:80',
               ))
@file_options()
@click.option("-v", "verbose", count=True,
              help="Verbose: -v adds the IP header and checksums, -vv more.")
@click.option("-S", "absolute", is_flag=True, help="Print absolute, not relative, sequence numbers.")
@click.option("-t", "tstyle", count=True, help="-t none, -tt epoch, -ttt delta, -tttt date and time.")
@click.option("-#", "--number", "number", is_flag=True,
              help="Print each frame's number in the capture before its line (tcpdump -# "
                   "counts the printed packets instead: the same without a filter).")
@click.option("-e", "link", is_flag=True, help="Print the link-level header (as tcpdump -e).")
@click.option("-q", "quick", is_flag=True, help="Quick output: less protocol information.")
@click.option("-x", "hex_", count=True,
              help="Print each packet in hex (-xx: with its link header).")
@click.option("-X", "hexascii", count=True,
              help="Print each packet in hex and ASCII (-XX: with its link header).")
@click.option("-A", "ascii_", count=True,
              help="Print each packet in ASCII (-AA: with its link header).")
@click.option("--nano", "nano", is_flag=True, help="Timestamps to the nanosecond.")
@click.option("-n", "numeric", count=True, hidden=True,
              help="Accepted and ignored: names are never resolved.")
@click.option("-F", "filter_file", type=click.File("r"), default=None,
              help="Read the capture filter from this file (as tcpdump -F).")
@write_option
@click.option("--print", "also_print", is_flag=True,
              help="With -w: print the listing too (as tcpdump --print).")
@one_line_errors
def read_cmd(inputs: Inputs, verbose: int, absolute: bool, tstyle: int, number: bool,
             link: bool, quick: bool, hex_: int, hexascii: int, ascii_: int, nano: bool,
             numeric: int, filter_file: Any, write: str | None, also_print: bool) -> None:
    """Print one line per packet, exactly as `tcpdump -nn -r FILE [EXPRESSION]` does.

    FILE... are captures, directories of captures or glob patterns (merged by time,
    as mergecap merges them); EXPRESSION is a pcap-filter expression, as for tcpdump.
    """
    from tcpscope.capture.subset import SubsetWriter
    from tcpscope.present.tcpdump import TcpdumpOptions, write_listing

    if filter_file is not None:
        if inputs.input.capture_filter:
            raise click.UsageError("-F and an expression after the files: give one of them")
        inputs.set_capture_filter(" ".join(filter_file.read().split()))
    dump = (2 if hexascii > 1 else 1) + 2 if hexascii else \
        (2 if hex_ > 1 else 1) if hex_ else (6 if ascii_ > 1 else 5) if ascii_ else 0
    opts = TcpdumpOptions(verbose=verbose, absolute=absolute, tstyle=tstyle, number=number,
                          link=link, quick=quick, dump=dump, nano=nano)
    if write is None:
        write_listing(inputs.input, opts, sys.stdout)
        return
    if also_print and write == "-":
        raise click.UsageError("-w - writes the capture to standard output: no --print")
    writer = SubsetWriter(write)
    try:
        write_listing(inputs.input, opts, sys.stdout if also_print else None, also=[writer])
    except BaseException:
        writer.abort()
        raise
