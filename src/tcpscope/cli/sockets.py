"""`tcpscope sockets`: the kernel's TCP sockets and their states, like ``ss -tan`` (docs/live.md)."""
from __future__ import annotations

import sys
import time

import click

from tcpscope.cli.common import examples, one_line_errors


@click.command("sockets", context_settings={"show_default": True},
               epilog=examples(
                   'tcpscope sockets --port 5000',
                   'tcpscope sockets --port 5000 --watch',
               ))
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
@one_line_errors
def sockets_cmd(ports: tuple[int, ...], states: tuple[str, ...], watch: bool, interval: float,
                count: int | None, netns: str | None, fmt: str) -> None:
    """The kernel's TCP sockets and their states (from /proc/net/tcp and tcp6), like `ss -tan`."""
    from tcpscope.kernel.netns import NetnsProc
    from tcpscope.kernel.sockets import STATES, read_sockets
    from tcpscope.present.sockets import plain_table, rich_table, write_jsonl

    wanted_states = {s.upper().replace("-", "_") for s in states}
    unknown = wanted_states - set(STATES.values())
    if unknown:
        raise click.BadParameter(f"unknown state(s) {', '.join(sorted(unknown))}; one of "
                                 f"{', '.join(STATES.values())}", param_hint="--state")
    ns_proc = NetnsProc(netns) if netns else None

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
    except KeyboardInterrupt:
        pass
    finally:
        if ns_proc is not None:
            ns_proc.close()
