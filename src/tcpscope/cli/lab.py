"""`tcpscope lab`: the classic experiments with the real kernel (docs/lab.md)."""
from __future__ import annotations

import sys

import click


@click.group("lab")
def lab_group() -> None:
    """Reproduce the classic TCP experiments with the real kernel, captured and explained."""


@lab_group.command("list")
def lab_list_cmd() -> None:
    """The experiments, and which of them need root."""
    from tcpscope.lab import list_lines

    for line in list_lines():
        click.echo(line)


@lab_group.command("run")
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
    try:
        results = run_many(chosen, sys.stdout, keep=Path(keep) if keep else None)
    except KeyboardInterrupt:
        sys.stdout.flush()
        click.echo("tcpscope lab: interrupted; everything the lab made was removed", err=True)
        sys.exit(130)
    sys.exit(0 if all(r.ok for r in results) else 1)
