"""What every command shares: one-line errors and exit codes, colour, the progress display.

Exit codes (DESIGN.md): 0 success; 1 unusable input, with one line naming the
file and the reason; 2 usage error (click's own).
"""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from tcpscope.analysis.engine import MODES
from tcpscope.capture.errors import CaptureError
from tcpscope.kernel import KernelError
from tcpscope.pipeline import StreamNotFound

#: Files this big get a progress bar on a terminal while they are read.
PROGRESS_MIN_BYTES = 8 << 20


def mode_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--mode wireshark|improved`` (default wireshark)."""
    return click.option("--mode", type=click.Choice(list(MODES)), default="wireshark",
                        show_default=True, help=help_text)


def lang_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--lang en|zh`` (default en)."""
    return click.option("--lang", type=click.Choice(["en", "zh"]), default="en",
                        show_default=True, help=help_text)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit."""
    click.echo(f"tcpscope: {message}", err=True)
    sys.exit(code)


def one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn what the user must fix into one line on stderr and exit code 1: an unusable
    input, a stream the capture does not have (named with the command's FILE), a kernel
    table that cannot be read. A closed standard output ends the command quietly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (CaptureError, KernelError) as exc:
            fail(str(exc))
        except StreamNotFound as exc:
            fail(f"{kwargs['file']}: {exc}" if "file" in kwargs else str(exc))
        except BrokenPipeError:
            # `tcpscope read big.pcap | head`: stop quietly, like tcpdump.
            sys.stderr.close()
            sys.exit(0)

    return wrapper


def use_color(no_color: bool, output: str | None = None) -> bool:
    """Colour only on a terminal, without --no-color, -o or NO_COLOR."""
    return (not no_color and output is None and sys.stdout.isatty()
            and not os.environ.get("NO_COLOR"))


def progress_source(file: str) -> tuple[Any, Callable[[], None]]:
    """The capture to read, wrapped with a progress bar on stderr for a big file on a
    terminal; returns (source, finish)."""
    if file == "-" or not sys.stderr.isatty() or not os.path.isfile(file):
        return file, lambda: None
    size = os.path.getsize(file)
    if size < PROGRESS_MIN_BYTES:
        return file, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from tcpscope.present.explain import ProgressFile

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        DownloadColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True)
    task = progress.add_task(f"reading {os.path.basename(file)}", total=size)
    progress.start()
    raw = open(file, "rb")  # noqa: SIM115 - closed by finish()
    src = ProgressFile(raw, file, lambda done: progress.update(task, completed=done))

    def finish() -> None:
        progress.stop()
        raw.close()

    return src, finish
