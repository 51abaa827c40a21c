"""`tcpscope lab`: the classic experiments with the real kernel (docs/lab.md)."""
from __future__ import annotations

import os
import shutil
import sys

import click

from tcpscope.cli.common import examples, fail

#: The programs the lab runs as root: namespaces, veths and routes (ip), packet drops (nft),
#: offloads off (ethtool), sysctls, the kernel's counters (cat), the capture (tcpdump) and
#: the kernel's sockets (ss). tests/test_setup_programs.py checks this against the lab's source.
LAB_PROGRAMS = ("ip", "nft", "ethtool", "sysctl", "cat", "tcpdump", "ss")
#: Without root only the loopback experiments run: the capture and ss.
UNPRIVILEGED_LAB_PROGRAMS = ("tcpdump", "ss")


def missing_programs(experiments: list[type]) -> list[str]:
    """The programs the chosen experiments would run that are not on PATH."""
    if os.geteuid() == 0:
        needed: tuple[str, ...] = LAB_PROGRAMS
    elif any(not exp.needs_root for exp in experiments):
        needed = UNPRIVILEGED_LAB_PROGRAMS
    else:
        needed = ()  # every one is skipped: it needs root
    return [p for p in needed if shutil.which(p) is None]


@click.group("lab", epilog=examples('tcpscope lab list', 'sudo tcpscope lab run handshake'))
def lab_group() -> None:
    """Reproduce the classic TCP experiments with the real kernel, captured and explained."""


@lab_group.command("list", epilog=examples('tcpscope lab list', 'tcpscope lab list | grep root'))
def lab_list_cmd() -> None:
    """The experiments, and which of them need root."""
    from tcpscope.lab import list_lines

    for line in list_lines():
        click.echo(line)


@lab_group.command("run",
                   epilog=examples(
                       'sudo tcpscope lab run handshake',
                       'sudo tcpscope lab run all --keep out/',
                   ))
@click.argument("names", nargs=-1, required=True)
@click.option("--keep", type=click.Path(file_okay=False, writable=True), default=None,
              help="Keep each capture (NAME.pcap) and a README of how it was made in DIR.")
def lab_run_cmd(names: tuple[str, ...], keep: str | None) -> None:
    """Run experiments (NAME ..., or `all`); exit 1 if an expectation failed."""
    from pathlib import Path

    from tcpscope.lab import EXPERIMENTS, run_many

    chosen = list(EXPERIMENTS) if "all" in names else list(names)
    unknown = [n for n in chosen if n not in EXPERIMENTS]
    if unknown:
        raise click.UsageError(f"unknown experiment {', '.join(unknown)}; "
                               f"`tcpscope lab list` shows them")
    missing = missing_programs([EXPERIMENTS[n] for n in chosen])
    if missing:
        fail(f"lab: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
             "(or not on PATH); scripts/setup installs what the lab runs")
    try:
        results = run_many(chosen, sys.stdout, keep=Path(keep) if keep else None)
    except KeyboardInterrupt:
        sys.stdout.flush()
        click.echo("tcpscope lab: interrupted; everything the lab made was removed", err=True)
        sys.exit(130)
    sys.exit(0 if all(r.ok for r in results) else 1)
