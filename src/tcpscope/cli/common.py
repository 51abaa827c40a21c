"""What every command shares: the file options, one-line errors and exit codes, colour,
the progress display.

Every file command takes the same input options (`file_options`): several
files, directories or glob patterns, a pcap-filter expression after them (or
``-r FILE`` and the expression), ``-c N``, ``-Y EXPR`` and ``--stream``; they
become one `pipeline.Input` (docs/filters.md).

Exit codes (DESIGN.md): 0 success (damage inside an input is reported on
stderr, one line per damaged file, after what was read before it); 1 unusable
input or an output that cannot be written, with one line naming the file and
the reason; 2 usage error (click's own, a filter that does not
compile, a --stream that is neither form); 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

import click

from tcpscope.analysis.engine import DEFAULT_MODE, MODES
from tcpscope.capture.bpf import FilterError
from tcpscope.capture.errors import CaptureDamageWarning, CaptureError, ExportError
from tcpscope.capture.writer import AtomicOutput
from tcpscope.kernel import KernelError
from tcpscope.pipeline import Input, Result, StreamNotFound, find_streams, watch_results
from tcpscope.scale.executor import ScaleError

#: Files this big get a progress bar on a terminal while they are read.
PROGRESS_MIN_BYTES = 8 << 20


def mode_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--mode improved|wireshark`` (default improved: tcpscope's own judgement)."""
    return click.option("--mode", type=click.Choice(list(MODES)), default=DEFAULT_MODE,
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
    table that cannot be read, an output that cannot be written. A closed standard output
    ends the command quietly. Damage inside an input (every run the command made, each
    file once) is reported after the output, one line per damaged file (`DamageReport`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        report = DamageReport()
        with watch_results(report.add), warnings.catch_warnings():
            warnings.simplefilter("ignore", CaptureDamageWarning)  # the report says it
            try:
                value = func(*args, **kwargs)
                sys.stdout.flush()  # a full disk behind standard output fails here, not at exit
            except (CaptureError, KernelError, ExportError, ScaleError) as exc:
                report.emit()
                fail(str(exc))
            except FilterError as exc:
                fail(str(exc), 2)
            except ImportError as exc:
                if not str(exc).startswith("this needs"):  # an optional extra (tables.require)
                    raise
                fail(str(exc))
            except StreamNotFound as exc:
                report.emit()
                name = kwargs.get("file") or (kwargs["inputs"].name if "inputs" in kwargs
                                              else None)
                fail(f"{name}: {exc}" if name else str(exc))
            except BrokenPipeError:
                # `tcpscope read big.pcap | head`: stop quietly, like tcpdump.
                sys.stderr.close()
                sys.exit(0)
            except OSError as exc:
                # writing standard output (a full disk, /dev/full); a named export says
                # its file through ExportError
                fail(f"{exc.filename or 'standard output'}: {exc.strerror or exc}")
            except SystemExit as exc:
                if not exc.code:
                    report.emit()
                raise
        report.emit()
        return value

    return wrapper


class DamageReport:
    """The damage of the runs a command made (`pipeline.watch_results`): each damaged
    file once, in the order met, as ``tcpscope: FILE: capture damaged at byte N (frame
    F): REASON`` (the frames before F were read and analysed)."""

    def __init__(self) -> None:
        self.lines: dict[str, None] = {}

    def add(self, result: Result) -> None:
        for name, damage in result.damages:
            name = "-" if name in STDIN_COPIES else name
            self.lines.setdefault(f"tcpscope: {name}: {damage}")

    def emit(self) -> None:
        if self.lines:
            try:
                sys.stdout.flush()  # the output first, then what it lacks
            except (OSError, ValueError):
                pass
        for line in self.lines:
            click.echo(line, err=True)
        self.lines.clear()


def color_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--color auto|always|never`` (and ``--no-color``): the command gets ``color``,
    decided by `use_color`."""
    func = click.option("--no-color", "no_color", is_flag=True,
                        help="Plain text, even on a terminal (as --color never).")(func)
    func = click.option("--color", "color_when", type=click.Choice(["auto", "always", "never"]),
                        default="auto", show_default=True, is_flag=False, flag_value="always",
                        help="Colours: on a terminal (auto; NO_COLOR and FORCE_COLOR count), "
                             "always (for a pager: less -R) or never.")(func)

    @functools.wraps(func)
    def wrapper(*args: Any, color_when: str, no_color: bool, **kwargs: Any) -> Any:
        return func(*args, color=use_color(no_color, kwargs.get("output"), color_when),
                    **kwargs)

    return wrapper


def use_color(no_color: bool = False, output: str | None = None, when: str = "auto") -> bool:
    """Colour: never with --no-color / --color never / -o; always with --color always;
    else FORCE_COLOR (set, not empty) forces it, NO_COLOR (set, not empty) forbids it, and
    otherwise only on a terminal."""
    if no_color or when == "never" or output is not None:
        return False
    if when == "always" or os.environ.get("FORCE_COLOR"):
        return True
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def terminal_width(default: int = 100) -> int:
    """The terminal's width (COLUMNS, else the terminal, else `default`)."""
    return shutil.get_terminal_size((default, 24)).columns


# ---------------------------------------------------------------------------- file input

#: Names that are capture files, whether they exist or not (a missing one is an error
#: naming it, not the start of a filter expression).
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp", ".gz", ".zst", ".xz", ".ntar")


@dataclass
class Inputs:
    """What `file_options` gives a command: the input, and the selection parts a command
    applies itself (``conns`` filters connection rows; per-stream commands are told
    stream numbers)."""

    input: Input
    display: Any = None           #: filter.DisplayFilter or None
    streams: tuple = ()           #: filter.StreamSpec values of --stream
    name: str = ""                #: the inputs as named to the user

    def set_capture_filter(self, expression: str) -> None:
        """Use `expression` as the capture filter (tcpdump -F); FilterError if it does not
        compile."""
        from tcpscope.capture.bpf import CaptureFilter

        CaptureFilter(expression)
        inp = self.input
        self.input = Input(inp.files, expression or None, inp.count, inp.select)

    def stream_numbers(self, mode: str) -> list[int] | None:
        """The streams a per-stream command is told: None when nothing selects (the
        command's default), else the numbers named, and those the addresses and the
        display filter select (found by reading the input once, with the filters)."""
        from tcpscope.filter import RowSelection

        if not self.streams and self.display is None:
            return None
        if self.display is None and all(s.number is not None for s in self.streams):
            return sorted({s.number for s in self.streams})
        sel = RowSelection(self.display, self.streams)
        inp = rereadable(self.input)
        self.input = inp
        found = find_streams(Input(inp.files, inp.capture_filter, inp.count, sel), mode)
        if not found:
            what = ", ".join([f"--stream {s}" for s in self.streams]
                             + ([f"-Y {self.display.expression!r}"] if self.display else []))
            raise StreamNotFound(f"no TCP stream matches {what}")
        return found


#: Temporary copies of standard input (`rereadable`): their damage is named ``-``.
STDIN_COPIES: set[str] = set()


def rereadable(inp: Input) -> Input:
    """The input with standard input saved to a temporary file (it is read twice)."""
    if "-" not in inp.files:
        return inp
    tmp = tempfile.NamedTemporaryFile(prefix="tcpscope-stdin-", suffix=".cap", delete=False)
    with tmp:
        shutil.copyfileobj(sys.stdin.buffer, tmp, 1 << 20)
    import atexit

    atexit.register(os.unlink, tmp.name)
    STDIN_COPIES.add(tmp.name)
    files = tuple(tmp.name if f == "-" else f for f in inp.files)
    return Input(files, inp.capture_filter, inp.count, inp.select)


def split_inputs(args: Sequence[str], read_files: Sequence[str]) -> tuple[list[str], str | None]:
    """FILE... [EXPRESSION]: the first argument is a file (unless -r gave them), then
    every argument that names an existing path, matches a glob or has a capture file's
    suffix; the rest is the capture filter, its words joined as tcpdump joins them."""
    import glob

    files = list(read_files)
    rest = list(args)
    if not files and rest:
        files.append(rest.pop(0))
    while rest and not read_files:
        a = rest[0]
        if a == "-" or os.path.exists(a) or a.lower().endswith(CAPTURE_SUFFIXES) or \
                (set("*?[") & set(a) and glob.glob(a)):
            files.append(rest.pop(0))
        else:
            break
    if not files:
        raise click.UsageError("no capture file given (FILE... or -r FILE)")
    expr = " ".join(rest).strip()
    return files, expr or None


def file_options(*, display: str = "packets", streams: str = "packets",
                 stream_required: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """The input options of a file command; the command gets ``inputs`` (`Inputs`).

    `display`: the fields ``-Y`` filters (``packets``: rows of the pipeline,
    ``conns``: connection records, ``streams``: picks the connections of a
    per-stream command: those with a matching packet). `streams`: ``packets``
    (--stream selects rows),
    ``conns`` or ``streams`` (the command is told stream numbers).
    """
    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, files_and_filter: tuple[str, ...], read_files: tuple[str, ...],
                    count: int | None, display_filter: str | None,
                    stream_specs: tuple[str, ...], **kwargs: Any) -> Any:
            from tcpscope.filter import (
                CONN_FIELDS, PACKET_FIELDS, DisplayFilter, DisplayFilterError, RowSelection,
                StreamSpecError, parse_stream,
            )

            files, expr = split_inputs(files_and_filter, read_files)
            try:
                specs = tuple(parse_stream(s) for s in stream_specs)
            except StreamSpecError as exc:
                raise click.UsageError(str(exc)) from None
            if stream_required and not specs and display_filter is None:
                raise click.UsageError("which connection? --stream N, --stream ADDR:PORT"
                                       "[-ADDR:PORT] or -Y EXPR")
            df = None
            if display_filter is not None:
                try:
                    df = DisplayFilter(display_filter,
                                       CONN_FIELDS if display == "conns" else PACKET_FIELDS)
                except DisplayFilterError as exc:
                    click.echo(f"tcpscope: -Y: {exc.pointed()}", err=True)
                    sys.exit(2)
                for w in df.warnings:
                    click.echo(f"tcpscope: note: {w}", err=True)
            select = None
            if display == "packets" or streams == "packets":
                sel = RowSelection(df if display == "packets" else None,
                                   specs if streams == "packets" else ())
                select = sel if sel else None
            try:
                inp = Input(tuple(files), expr, count, select)
                # a syntax error stops the command before it reads anything
                if expr:
                    from tcpscope.capture.bpf import CaptureFilter

                    CaptureFilter(expr)
            except FilterError as exc:
                fail(str(exc), 2)
            name = files[0] if len(files) == 1 else ", ".join(files)
            kwargs["inputs"] = Inputs(inp, df if display in ("conns", "streams") else None,
                                      specs if streams in ("conns", "streams") else (), name)
            return func(*args, **kwargs)

        opts = [
            click.argument("files_and_filter", nargs=-1, metavar="FILE... [EXPRESSION]",
                           type=click.UNPROCESSED),
            click.option("-r", "read_files", multiple=True, metavar="FILE",
                         help="A capture to read (as tcpdump -r; repeatable): the arguments "
                              "are then all the filter expression."),
            click.option("-c", "count", type=click.IntRange(min=0), default=None,
                         help="Stop after N frames that passed the capture filter "
                              "(as tcpdump -c)."),
            click.option("--stream", "stream_specs", multiple=True,
                         metavar="N|ADDR:PORT[-ADDR:PORT]",
                         help="A connection by its index (tcp.stream) or its endpoints, "
                              "either order, IPv6 as [ADDR]:PORT (repeatable)."),
        ]
        opts.append(click.option("-Y", "display_filter", default=None, metavar="EXPR",
                                 help="Display filter in Wireshark's syntax, e.g. "
                                      "'tcp.analysis.retransmission' (docs/filters.md)."))
        for opt in opts:
            wrapper = opt(wrapper)
        return wrapper

    return deco


def scale_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--workers N``, ``--dask ADDRESS|local`` and ``--scratch DIR`` (docs/scale.md): the
    command gets ``scale`` (`scale.Scale`); 0 or 1 worker and no Dask: one process."""
    func = click.option("--scratch", type=click.Path(file_okay=False), default=None,
                        metavar="DIR",
                        help="Where the flow buckets go (Parquet; default a temporary "
                             "directory): with --dask on several machines, one they all "
                             "see.")(func)
    func = click.option("--dask", metavar="ADDRESS|local", default=None,
                        help="Spread the work over a Dask cluster: a scheduler's address "
                             "(tcp://HOST:8786), or local (a LocalCluster of --workers "
                             "processes); tcpscope[dask].")(func)
    func = click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
                        metavar="N",
                        help="Spread the work over N local processes (files and ranges of "
                             "big pcap files; the same answers as one).")(func)

    @functools.wraps(func)
    def wrapper(*args: Any, workers: int, dask: str | None, scratch: str | None,
                **kwargs: Any) -> Any:
        from tcpscope.scale.driver import Scale

        return func(*args, scale=Scale(workers=max(1, workers) if not dask else
                                       max(2, workers), dask=dask, scratch=scratch), **kwargs)

    return wrapper


def spread(inputs: Inputs, scale: Any, *, rows: bool) -> bool:
    """Run spread out (`scale` asks for it and the input allows it); a note on stderr
    says why not when it does not."""
    from tcpscope.scale.driver import why_not

    if not scale.active:
        return False
    reason = why_not(inputs.input, rows=rows)
    if reason is not None:
        note(f"one process: {reason}")
        return False
    return True


def note(text: str) -> None:
    """``tcpscope: note: TEXT`` on stderr."""
    click.echo(f"tcpscope: note: {text}", err=True)


def one_stream(inputs: Inputs, mode: str) -> int:
    """The one stream a command that shows one connection shows: the first selected; a
    note on stderr says which when the selection names several."""
    streams = inputs.stream_numbers(mode) or []
    if len(streams) > 1:
        click.echo(f"tcpscope: note: the selection names streams "
                   f"{', '.join(map(str, streams[:10]))}{'...' if len(streams) > 10 else ''}: "
                   f"showing stream {streams[0]} (choose with --stream N)", err=True)
    return streams[0]


def write_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-w OUT``: the selected frames, byte for byte, to a new capture."""
    return click.option(
        "-w", "write", type=click.Path(dir_okay=False, allow_dash=True), default=None,
        metavar="OUT", help="Write the selected frames to OUT, byte for byte with their "
                            "timestamps and interfaces: pcapng if OUT ends in .pcapng, else "
                            "pcap (- : standard output); written completely or not at all.")(func)


def output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-o FILE``: the command's output to FILE instead of standard output."""
    return click.option("-o", "--output", "output", type=click.Path(dir_okay=False),
                        default=None, help="Write to this file (completely or not at all) "
                                           "instead of standard output.")(func)


@contextmanager
def output_stream(output: str | None) -> Iterator[TextIO]:
    """Standard output, or the text of `output` written completely or not at all (a
    temporary file beside it, renamed when the block ends, removed if it raises)."""
    if output is None:
        yield sys.stdout
        return
    with AtomicOutput(output, text=True) as out:
        assert out.text is not None
        yield out.text


def progress_input(inputs: Inputs) -> tuple[Input, Callable[[], None]]:
    """The input, its files wrapped with one progress bar on stderr when they are big and
    stderr is a terminal; returns (input, finish). Standard output is never touched."""
    from tcpscope.capture.inputs import expand_inputs

    inp = inputs.input
    try:
        paths = [p for p, _ in expand_inputs(inp.files)]
    except CaptureError:
        return inp, lambda: None
    if not sys.stderr.isatty() or not all(isinstance(p, str) and p != "-" and os.path.isfile(p)
                                          for p in paths):
        return inp, lambda: None
    total = sum(os.path.getsize(p) for p in paths)
    if total < PROGRESS_MIN_BYTES:
        return inp, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from tcpscope.present.explain import ProgressFile

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        DownloadColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=True,
                        redirect_stdout=False, redirect_stderr=False)
    label = os.path.basename(paths[0]) + (f" (+{len(paths) - 1})" if len(paths) > 1 else "")
    task = progress.add_task(f"reading {label}", total=total)
    progress.start()
    done = [0] * len(paths)
    raws = [open(p, "rb") for p in paths]  # noqa: SIM115 - closed by finish()

    def report(i: int) -> Callable[[int], None]:
        def f(n: int) -> None:
            done[i] = n
            progress.update(task, completed=sum(done))
        return f

    files = tuple(ProgressFile(raw, p, report(i)) for i, (raw, p) in enumerate(zip(raws, paths)))

    def finish() -> None:
        progress.stop()
        for raw in raws:
            raw.close()

    return Input(files, inp.capture_filter, inp.count, inp.select), finish


def examples(*lines: str) -> str:
    """A command's epilog: the examples its --help ends with."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
