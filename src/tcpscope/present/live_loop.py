"""The loop of `tcpscope live`: a live capture's batches through a `LiveSession`, as they come.

The CLI opens the input (capture/live.py's `LiveCapture`, with tcpdump as the
privileged helper; for ``--sockets`` a reader of the kernel's socket tables)
and hands it to `LiveRunner`, which runs until the capture ends:

- each batch is saved (``-w``: the pcapng writer of capture/writer.py, in place,
  flushed per batch) and fed to the session, which prints its events;
- every `interval` seconds the session reports the data moved and the kernel's
  sockets are looked at again (``--sockets``);
- ``--duration``, SIGINT or SIGTERM stop the helper in order (it flushes and
  prints its statistics, then the pipe is drained); a second signal kills it;
- at the end the file gets the helper's counters (an Interface Statistics
  Block) and the session prints its table of connections.

On a terminal, `LiveView` prints the events in colour above a table of the
kernel's sockets that is redrawn in place (rich).
"""
from __future__ import annotations

import signal
import time
from collections.abc import Callable
from os import PathLike
from typing import Any

from tcpscope.capture.batch import FrameBatch
from tcpscope.capture.live import CaptureStats, LiveCapture
from tcpscope.capture.writer import PcapngWriter
from tcpscope.kernel import KernelError
from tcpscope.kernel.sockets import KernelSocket
from tcpscope.present.live import LiveEvent, LiveSession
from tcpscope.present.sockets import rich_table

__all__ = ["LiveRunner", "LiveView"]

#: The style of each event kind on a terminal.
STYLES = {"new": "bold", "handshake": "green", "anomaly": "yellow", "rst": "red",
          "closed": "cyan", "fin": "cyan", "kernel": "magenta", "note": "dim"}
SOCKETS_TITLE = "kernel sockets (/proc/net/tcp)"


class LiveView:
    """The terminal display: events printed with a style per kind, above a table of the
    kernel's sockets (``sockets_panel``) that is redrawn in place."""

    def __init__(self, *, sockets_panel: bool = False) -> None:
        from rich.console import Console

        self.console = Console(highlight=False)
        self._panel = sockets_panel
        self._live: Any = None

    def show(self, ev: LiveEvent, text: str) -> None:
        """A `LiveSession` emit hook: one event line."""
        target = self._live.console if self._live is not None else self.console
        target.print(text, style=STYLES.get(ev.kind), markup=False, highlight=False,
                     soft_wrap=True)

    def start(self) -> None:
        if self._panel:
            from rich.live import Live

            self._live = Live(rich_table([], title=SOCKETS_TITLE), console=self.console,
                              auto_refresh=False, transient=False)
            self._live.start()

    def sockets(self, socks: list[KernelSocket]) -> None:
        if self._live is not None:
            self._live.update(rich_table(socks, title=SOCKETS_TITLE))

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()


class LiveRunner:
    """Runs a started `LiveCapture` through `session` until the capture ends.

    Args:
        interval: seconds between data reports (and looks at the kernel's sockets).
        duration: stop the capture after this many seconds (None: no limit).
        write: save every frame read to this pcapng file.
        read_sockets: the kernel's sockets with one of these ports (``--sockets``).
        view: the terminal display, if there is one.
        warn: prints a one-line warning (a look at the sockets that failed).
    """

    def __init__(self, cap: LiveCapture, session: LiveSession, *, interval: float = 1.0,
                 duration: float | None = None, write: str | PathLike | None = None,
                 read_sockets: Callable[[set[int]], list[KernelSocket]] | None = None,
                 view: LiveView | None = None, warn: Callable[[str], None] = print) -> None:
        self.cap = cap
        self.session = session
        self.interval = interval
        self.duration = duration
        self.write = write
        self.read_sockets = read_sockets
        self.view = view
        self.warn = warn
        self._writer: PcapngWriter | None = None
        self._iface = 0
        self._first_ts: int | None = None
        self._last_ts: int | None = None

    def run(self) -> CaptureStats | None:
        """Capture until the helper ends; returns its statistics (the drop counters)."""
        cap, session, view = self.cap, self.session, self.view
        interrupts: list[int] = []

        def on_signal(signum: int, _frame: object) -> None:
            interrupts.append(signum)
            if len(interrupts) == 1:
                cap.stop()
            else:
                cap.kill()

        old_int = signal.signal(signal.SIGINT, on_signal)
        old_term = signal.signal(signal.SIGTERM, on_signal)
        started = time.monotonic()
        deadline = started + self.duration if self.duration else None
        next_tick = started + self.interval
        if view is not None:
            view.start()
        if self.read_sockets is not None:
            self._look()
        try:
            for batch in cap.batches(tick=min(0.2, self.interval)):
                self._save(batch)
                if len(batch):
                    session.feed(batch)
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + self.interval
                    session.tick()
                    if self.read_sockets is not None:
                        self._look()
                        if view is not None:
                            view.refresh()
                if deadline is not None and now >= deadline:
                    cap.stop()
        except BaseException as exc:
            if isinstance(exc, BrokenPipeError):
                cap.kill()  # nobody reads what we print: stop the helper at once
            if self._writer is not None:
                self._writer.close()
            raise
        finally:
            cap.close()
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
            if self.read_sockets is not None and session.ports:
                self._look()
            if view is not None:
                view.stop()
        self._close_file(cap.stats)
        session.tick()
        session.finish(cap.stats, cap.counters, console=view.console if view else None)
        return cap.stats

    def _look(self) -> None:
        """The kernel's sockets of the ports in the traffic, to the session and the view."""
        assert self.read_sockets is not None
        ports = self.session.ports
        try:
            socks = self.read_sockets(ports) if ports else []
        except KernelError as exc:
            self.warn(str(exc))
            return
        self.session.kernel_snapshot(socks, time.time_ns())
        if self.view is not None:
            self.view.sockets(socks)

    def _open_file(self) -> PcapngWriter | None:
        """The saved file, opened once the helper's pcap header told the link type."""
        if self._writer is None and self.write is not None and self.cap.interfaces:
            iface = self.cap.interfaces[0]
            self._writer = PcapngWriter(self.write, userappl="tcpscope live", in_place=True)
            self._iface = self._writer.add_interface(iface.linktype, iface.name, tsresol_exp=9,
                                                     snaplen=iface.snaplen)
            self._writer.flush()
        return self._writer

    def _save(self, batch: FrameBatch) -> None:
        if self._open_file() is not None and len(batch):
            assert self._writer is not None
            self._writer.write_batch(batch, self._iface, flush=True)
            if self._first_ts is None:
                self._first_ts = int(batch.ts_ns[0])
            self._last_ts = int(batch.ts_ns[-1])

    def _close_file(self, stats: CaptureStats | None) -> None:
        """Finish the saved file: the helper's counters, then close."""
        if self._open_file() is None:
            return
        if stats is not None:
            ts = self._last_ts if self._last_ts is not None else time.time_ns()
            self._writer.write_statistics(
                self._iface, ts, starttime=self._first_ts,
                endtime=ts if self._first_ts is not None else None,
                ifrecv=stats.received_by_filter, ifdrop=stats.dropped_by_interface,
                osdrop=stats.dropped_by_kernel)
        self._writer.close()
