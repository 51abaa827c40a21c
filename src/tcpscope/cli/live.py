"""`tcpscope live`: the analysis of live traffic, as it happens (docs/live.md).

This opens the input — the capture helper (capture/live.py) and, for
``--sockets``, the kernel's socket tables (kernel/) — and hands them to the
loop, present/live_loop.py's `LiveRunner`.
"""
from __future__ import annotations

import sys

import click

from tcpscope.cli.common import examples, fail, mode_option, one_line_errors


@click.command("live", context_settings={"show_default": True},
               epilog=examples(
                   'sudo tcpscope live -i lo tcp port 5000',
                   "sudo tcpscope live -i any -c 1000 -w out.pcapng 'tcp and host 10.0.0.2'",
               ))
@click.option("-i", "--interface", "iface", required=True,
              help="Interface to capture on: lo, any, eth0, a veth...")
@click.argument("filter_words", nargs=-1, metavar="[FILTER]...")
@click.option("-c", "--count", type=click.IntRange(min=1), default=None,
              help="Stop after N packets (matching the filter).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after S seconds.")
@click.option("-w", "write", type=click.Path(dir_okay=False), default=None,
              help="Also save every packet read to FILE (pcapng).")
@mode_option("Analysis mode, as for `packets`.")
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
@one_line_errors
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
    from tcpscope.capture.live import FULL_SNAPLEN, LiveCapture, LiveCaptureError
    from tcpscope.kernel.netns import NetnsProc
    from tcpscope.kernel.sockets import read_sockets
    from tcpscope.present.live import LiveSession, filter_ports
    from tcpscope.present.live_loop import LiveRunner, LiveView

    if max_events is None:
        max_events = 500 if fmt == "text" else 0
    view = LiveView(sockets_panel=show_sockets) if fmt == "text" and sys.stdout.isatty() \
        else None
    session = LiveSession(sys.stdout, mode=mode, fmt=fmt, max_events_per_tick=max_events,
                          emit=view.show if view else None)
    ns_proc = NetnsProc(netns) if show_sockets and netns else None
    try:
        if show_sockets:
            session.ports |= filter_ports(filter_words)
        try:
            cap = LiveCapture(iface, filter_words, snaplen=snaplen or FULL_SNAPLEN,
                              buffer_kib=buffer_kib, count=count, netns=netns)
            cap.wait_ready()
        except LiveCaptureError as exc:
            fail(str(exc), 2 if exc.kind == "filter" else 1)
        what = " ".join(filter_words) or "all packets"
        click.echo(f"tcpscope: capturing on {iface}{f' (netns {netns})' if netns else ''}, "
                   f"filter: {what}; Ctrl-C stops", err=True)
        runner = LiveRunner(
            cap, session, interval=interval, duration=duration, write=write,
            read_sockets=(lambda ports: read_sockets(ports, netns=ns_proc)) if show_sockets
            else None,
            view=view, warn=lambda text: click.echo(f"tcpscope: {text}", err=True))
        stats = runner.run()
    finally:
        if ns_proc is not None:
            ns_proc.close()
    if stats is not None and stats.dropped:
        click.echo(f"tcpscope: the capture lost {stats.dropped} packets (dropped by the kernel: "
                   f"{stats.dropped_by_kernel}; try a bigger -B)", err=True)
