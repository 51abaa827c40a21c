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
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the explanation.")
@click.option("--no-color", is_flag=True, help="Plain text, even on a terminal.")
@_fail_on_capture_error
def demo_cmd(lang: str, no_color: bool) -> None:
    """Explain the bundled capture of the classic handshake experiment."""
    from tcpscope.present.demo import run_demo

    run_demo(sys.stdout, lang, color=_use_color(no_color))


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


@main.command("conns")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv", "zeek", "parquet"]),
              default="table", show_default=True,
              help="table, JSON Lines, CSV, a Zeek conn.log, or Parquet (needs -o).")
@click.option("--mode", type=click.Choice(["wireshark", "improved"]), default="wireshark",
              show_default=True, help="The analysis mode behind the anomaly counts.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file (completely or not at all) instead of standard output.")
@click.option("-C", "--ignore-checksums", is_flag=True,
              help="As zeek -C: Zeek's columns keep packets whose checksum is bad or offloaded.")
@click.option("--no-color", is_flag=True, help="Plain text table, even on a terminal.")
@_fail_on_capture_error
def conns_cmd(file: str, fmt: str, mode: str, output: str | None, ignore_checksums: bool,
              no_color: bool) -> None:
    """One row per connection: roles, counts, handshake, teardown, states, Zeek's view."""
    from tcpscope.present.conns import write_conns

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs -o FILE")
    color = fmt == "table" and output is None and not no_color and sys.stdout.isatty()
    c = write_conns(file, fmt, mode=mode, out=output, stdout=sys.stdout, color=color,
                    ignore_checksums=ignore_checksums)
    if c.offloaded and not ignore_checksums:
        click.echo(f"tcpscope: note: {c.offloaded} packets have offloaded checksums, which Zeek "
                   "drops ('C');\ntcpscope: -C keeps them, as zeek -C does", err=True)


@main.command("follow")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--stream", "stream", type=click.IntRange(min=0), required=True,
              help="The stream (tcp.stream, as `tcpscope packets` numbers them).")
@click.option("--format", "fmt", type=click.Choice(["ascii", "hex", "raw"]), default="ascii",
              show_default=True,
              help="ascii: the text; hex: a hex dump per chunk; raw: tshark's follow,tcp,raw hex lines.")
@click.option("--color/--no-color", "color", default=None,
              help="Client red, server blue (default: on a terminal, unless NO_COLOR is set).")
@_fail_on_capture_error
def follow_cmd(file: str, stream: int, fmt: str, color: bool | None) -> None:
    """Both byte streams of a connection, reassembled: gaps, conflicts, keep-alives shown."""
    import os

    from tcpscope.present.follow import StreamNotFound, write_follow

    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    try:
        write_follow(file, stream, fmt, sys.stdout, color=color)
    except StreamNotFound as exc:
        click.echo(f"tcpscope: {file}: {exc.args[0]}", err=True)
        sys.exit(1)


# -- explain and ladder (docs/explain.md) ------------------------------------------------------


def _story_source(file: str):
    """The capture to read, wrapped with a progress bar on stderr for a big file on a
    terminal; returns (source, finish)."""
    import os

    big = 8 << 20
    if file == "-" or not sys.stderr.isatty() or not os.path.isfile(file):
        return file, lambda: None
    size = os.path.getsize(file)
    if size < big:
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


def _use_color(no_color: bool, output: str | None = None) -> bool:
    import os

    return (not no_color and output is None and sys.stdout.isatty()
            and not os.environ.get("NO_COLOR"))


@main.command("explain")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--stream", "streams", type=click.IntRange(min=0), multiple=True,
              help="The stream to explain (repeatable; default: every connection, up to 20).")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the explanation.")
@click.option("--mode", type=click.Choice(["wireshark", "improved"]), default="wireshark",
              show_default=True, help="The analysis mode behind the anomalies.")
@click.option("--all", "show_all", is_flag=True,
              help="Narrate every packet (do not fold runs of ordinary data and ACKs).")
@click.option("--no-color", is_flag=True, help="Plain text, even on a terminal.")
@_fail_on_capture_error
def explain_cmd(file: str, streams: tuple[int, ...], lang: str, mode: str, show_all: bool,
                no_color: bool) -> None:
    """The story of a connection: ladder, states, every packet explained, a summary."""
    from tcpscope.present.explain import write_explain
    from tcpscope.present.story import GROUP_MIN

    source, finish = _story_source(file)
    try:
        write_explain(source, sys.stdout, streams=list(streams) or None, lang=lang,
                      color=_use_color(no_color), mode=mode,
                      group_min=None if show_all else GROUP_MIN)
    except KeyError as exc:
        click.echo(f"tcpscope: {file}: {exc.args[0]}", err=True)
        sys.exit(1)
    finally:
        finish()


@main.command("ladder")
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--stream", "streams", type=click.IntRange(min=0), multiple=True,
              help="The stream to draw (repeatable: several connections share the lanes of "
                   "their endpoints; default: every stream, if at most 6 endpoints).")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "svg"]), default="text",
              show_default=True, help="Box-drawing text, a Mermaid sequenceDiagram, or SVG.")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of standard output.")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="Language of the words (headers, tags, legend).")
@click.option("--fold", is_flag=True,
              help="Draw runs of ordinary data and ACKs as one row (one connection only).")
@click.option("--mode", type=click.Choice(["wireshark", "improved"]), default="wireshark",
              show_default=True, help="The analysis mode behind the tags.")
@click.option("--no-color", is_flag=True, help="Plain text, even on a terminal.")
@_fail_on_capture_error
def ladder_cmd(file: str, streams: tuple[int, ...], fmt: str, output: str | None, lang: str,
               fold: bool, mode: str, no_color: bool) -> None:
    """The ladder (flow) diagram of a connection: an arrow per packet, states beside it."""
    from tcpscope.present.explain import Line, render_lines
    from tcpscope.present.ladder import (
        build_ladder, render_mermaid, render_svg, render_text_rows,
    )
    from tcpscope.present.story import build_story, collect

    source, finish = _story_source(file)
    try:
        analysis, extra = collect(source, list(streams) or None, mode=mode)
    finally:
        finish()
    total = int(analysis.connections.shape[0])
    chosen = sorted(set(streams)) if streams else list(range(total))
    missing = [s for s in chosen if s >= total]
    if missing or not chosen:
        what = f"no TCP stream {missing[0]}" if missing else "no TCP stream"
        click.echo(f"tcpscope: {file}: {what} in the capture", err=True)
        sys.exit(1)
    stories = [build_story(analysis, s, extra) for s in chosen]
    lad = build_ladder(stories, lang, fold=fold)
    if len(lad.lanes) > 6:
        raise click.UsageError(f"{len(chosen)} streams have {len(lad.lanes)} endpoints; a ladder "
                               "draws at most 6: choose streams with --stream N")
    if fmt == "text":
        rows = render_text_rows(lad)
        if output is None:
            styled: list[Line] = []
            for text, r in rows:
                style = (("s2c" if r.src > r.dst else "c2s") if r is not None and r.kind ==
                         "packet" else None)
                styled.append([(text, style)])
            render_lines(styled, sys.stdout, color=_use_color(no_color))
            return
        text = "\n".join(t for t, _ in rows) + "\n"
    elif fmt == "mermaid":
        text = render_mermaid(lad)
    else:
        text = render_svg(lad)
    if output is None:
        sys.stdout.write(text)
    else:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)


# -- live capture and the kernel's sockets (docs/live.md) --------------------------------------


@main.command("live", context_settings={"show_default": True})
@click.option("-i", "--interface", "iface", required=True,
              help="Interface to capture on: lo, any, eth0, a veth...")
@click.argument("filter_words", nargs=-1, metavar="[FILTER]...")
@click.option("-c", "--count", type=click.IntRange(min=1), default=None,
              help="Stop after N packets (matching the filter).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after S seconds.")
@click.option("-w", "write", type=click.Path(dir_okay=False), default=None,
              help="Also save every packet read to FILE (pcapng).")
@click.option("--mode", type=click.Choice(["wireshark", "improved"]), default="wireshark",
              help="Analysis mode, as for `packets`.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text",
              help="Event lines for people, or one JSON object per event (and a summary).")
@click.option("--sockets", "show_sockets", is_flag=True,
              help="Show the kernel's own state of the sockets whose ports are in the traffic.")
@click.option("--netns", default=None, help="Capture (and read sockets) inside this network "
              "namespace (`ip netns add NAME`).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0,
              help="Seconds between data summaries (and kernel socket looks).")
@click.option("-s", "--snaplen", type=click.IntRange(min=0), default=256,
              help="Bytes kept of each packet: headers and the start of the payload "
                   "(0: whole packets; then raise -B, see docs/live.md).")
@click.option("-B", "--buffer-size", "buffer_kib", type=click.IntRange(min=1), default=32768,
              help="Kernel capture buffer in KiB (tcpdump -B).")
@click.option("--max-events", type=click.IntRange(min=0), default=None,
              help="Event lines per interval at most, the rest counted (0: no limit; "
                   "default 500 for text, no limit for jsonl).")
def live_cmd(iface: str, filter_words: tuple[str, ...], count: int | None,
             duration: float | None, write: str | None, mode: str, fmt: str,
             show_sockets: bool, netns: str | None, interval: float, snaplen: int,
             buffer_kib: int, max_events: int | None) -> None:
    """Capture TCP on IFACE and tell what happens, as it happens.

    FILTER is a pcap-filter expression (as for tcpdump), e.g. `tcp port 5000`.
    The capture runs through tcpdump (the privileged helper); Ctrl-C, --count or
    --duration stop it, and a table of the connections and the capture's drop
    counter follow.
    """
    import signal
    import time

    from tcpscope.capture.live import EpbFileWriter, LiveCapture, LiveCaptureError
    from tcpscope.capture.sockets import NetnsProc, SocketsError, read_sockets
    from tcpscope.present.live import LiveSession, filter_ports

    if max_events is None:
        max_events = 500 if fmt == "text" else 0
    rich_out = fmt == "text" and sys.stdout.isatty()
    console = live_view = None
    if rich_out:
        from rich.console import Console

        console = Console(highlight=False)

    styles = {"new": "bold", "handshake": "green", "anomaly": "yellow", "rst": "red",
              "closed": "cyan", "fin": "cyan", "kernel": "magenta", "note": "dim"}

    def show(ev, text):
        target = live_view.console if live_view is not None else console
        target.print(text, style=styles.get(ev.kind), markup=False, highlight=False,
                     soft_wrap=True)

    session = LiveSession(sys.stdout, mode=mode, fmt=fmt, max_events_per_tick=max_events,
                          emit=show if rich_out else None)
    ns_proc = None
    if show_sockets:
        session.ports |= filter_ports(filter_words)
        if netns:
            try:
                ns_proc = NetnsProc(netns)
            except SocketsError as exc:
                click.echo(f"tcpscope: {exc}", err=True)
                sys.exit(1)
    try:
        cap = LiveCapture(iface, filter_words, snaplen=snaplen or 262144, buffer_kib=buffer_kib,
                          count=count, netns=netns)
        cap.wait_ready()
    except LiveCaptureError as exc:
        click.echo(f"tcpscope: {exc}", err=True)
        sys.exit(2 if exc.kind == "filter" else 1)

    interrupts = []

    def on_signal(signum, _frame):
        interrupts.append(signum)
        if len(interrupts) == 1:
            cap.stop()
        else:
            cap.kill()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    what = " ".join(filter_words) or "all packets"
    click.echo(f"tcpscope: capturing on {iface}{f' (netns {netns})' if netns else ''}, "
               f"filter: {what}; Ctrl-C stops", err=True)
    writer = None
    started = time.monotonic()
    deadline = started + duration if duration else None
    next_tick = started + interval
    if show_sockets:
        from rich.live import Live

        from tcpscope.present.sockets import rich_table

        def look() -> None:
            try:
                socks = read_sockets(session.ports, netns=ns_proc) if session.ports else []
            except SocketsError as exc:
                click.echo(f"tcpscope: {exc}", err=True)
                return
            session.kernel_snapshot(socks, time.time_ns())
            if live_view is not None:
                live_view.update(rich_table(socks, title="kernel sockets (/proc/net/tcp)"))

        if rich_out:
            live_view = Live(rich_table([], title="kernel sockets (/proc/net/tcp)"),
                             console=console, auto_refresh=False, transient=False)
            live_view.start()
        look()
    try:
        for batch in cap.batches(tick=min(0.2, interval)):
            if write and writer is None and cap.interfaces:
                writer = EpbFileWriter(write, cap.interfaces[0])
            if len(batch):
                if writer is not None:
                    writer.write_batch(batch)
                session.feed(batch)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + interval
                session.tick()
                if show_sockets:
                    look()
                    if live_view is not None:
                        live_view.refresh()
            if deadline is not None and now >= deadline:
                cap.stop()
    except LiveCaptureError as exc:
        click.echo(f"tcpscope: {exc}", err=True)
        sys.exit(1)
    except BrokenPipeError:
        cap.kill()
        sys.stderr.close()
        sys.exit(0)
    finally:
        cap.close()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        if show_sockets and session.ports:
            look()
        if live_view is not None:
            live_view.stop()
        if ns_proc is not None:
            ns_proc.close()
    if write:
        if writer is None and cap.interfaces:
            writer = EpbFileWriter(write, cap.interfaces[0])
        if writer is not None:
            writer.close(cap.stats)
    session.tick()
    session.finish(cap.stats, cap.counters, console=console)
    stats = cap.stats
    if stats is not None and stats.dropped:
        click.echo(f"tcpscope: the capture lost {stats.dropped} packets (dropped by the kernel: "
                   f"{stats.dropped_by_kernel}; try a bigger -B)", err=True)


@main.command("sockets", context_settings={"show_default": True})
@click.option("-p", "--port", "ports", type=click.IntRange(0, 65535), multiple=True,
              help="Only sockets with this local or remote port (repeatable).")
@click.option("--state", "states", multiple=True,
              help="Only sockets in this state (LISTEN, ESTABLISHED, TIME_WAIT...; repeatable).")
@click.option("--watch", is_flag=True, help="Refresh every --interval seconds until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0,
              help="Seconds between refreshes with --watch.")
@click.option("-n", "--count", type=click.IntRange(min=1), default=None,
              help="With --watch: stop after N refreshes.")
@click.option("--netns", default=None,
              help="Read the sockets of this network namespace (`ip netns list`; needs root).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
def sockets_cmd(ports: tuple[int, ...], states: tuple[str, ...], watch: bool, interval: float,
                count: int | None, netns: str | None, fmt: str) -> None:
    """The kernel's TCP sockets and their states (from /proc/net/tcp and tcp6), like `ss -tan`."""
    import time

    from tcpscope.capture.sockets import STATES, NetnsProc, SocketsError, read_sockets
    from tcpscope.present.sockets import plain_table, rich_table, write_jsonl

    wanted_states = {s.upper().replace("-", "_") for s in states}
    unknown = wanted_states - set(STATES.values())
    if unknown:
        raise click.BadParameter(f"unknown state(s) {', '.join(sorted(unknown))}; one of "
                                 f"{', '.join(STATES.values())}", param_hint="--state")
    try:
        ns_proc = NetnsProc(netns) if netns else None
    except SocketsError as exc:
        click.echo(f"tcpscope: {exc}", err=True)
        sys.exit(1)

    def snapshot():
        socks = read_sockets(ports or None, netns=ns_proc)
        return [s for s in socks if not wanted_states or s.state in wanted_states]

    tty = sys.stdout.isatty() and fmt == "table"
    try:
        if not watch:
            socks = snapshot()
            if fmt == "jsonl":
                write_jsonl(socks, sys.stdout)
            elif tty:
                from rich.console import Console

                Console().print(rich_table(socks))
            else:
                sys.stdout.write(plain_table(socks))
            return
        shown = 0
        if tty:
            from rich.console import Console
            from rich.live import Live

            with Live(console=Console(), auto_refresh=False) as view:
                while count is None or shown < count:
                    socks = snapshot()
                    title = (f"{time.strftime('%H:%M:%S')}  {len(socks)} sockets"
                             f"{f' in {netns}' if netns else ''}  (Ctrl-C stops)")
                    view.update(rich_table(socks, title=title), refresh=True)
                    shown += 1
                    if count is None or shown < count:
                        time.sleep(interval)
            return
        while count is None or shown < count:
            socks = snapshot()
            if fmt == "jsonl":
                write_jsonl(socks, sys.stdout, ts=time.time())
            else:
                sys.stdout.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}  "
                                 f"{len(socks)} sockets\n" + plain_table(socks))
            sys.stdout.flush()
            shown += 1
            if count is None or shown < count:
                time.sleep(interval)
    except SocketsError as exc:
        click.echo(f"tcpscope: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    finally:
        if ns_proc is not None:
            ns_proc.close()


@main.group("lab")
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


if __name__ == "__main__":  # pragma: no cover
    main()
