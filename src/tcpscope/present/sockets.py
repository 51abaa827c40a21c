"""The kernel's socket table, shown like ``ss -tan``, and what changed between two looks.

Pure presentation: the snapshots come from `tcpscope.kernel.sockets`
(the CLI reads them); nothing here touches /proc.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from tcpscope.kernel.sockets import KernelSocket

COLUMNS = ("State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "Timer",
           "Retr", "UID", "Inode")

# ss's order of states is arbitrary; this one follows a connection's life.
_STATE_ORDER = {name: i for i, name in enumerate((
    "LISTEN", "SYN_SENT", "SYN_RECV", "NEW_SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2",
    "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT", "CLOSE", "BOUND_INACTIVE"))}


def sort_sockets(socks: Iterable[KernelSocket]) -> list[KernelSocket]:
    return sorted(socks, key=lambda s: (s.local_port, _STATE_ORDER.get(s.state, 99), s.family,
                                        s.local, s.remote, s.remote_port))


def timer_text(s: KernelSocket) -> str:
    if s.timer == 0:
        return "off"
    return f"{s.timer_name} {max(s.timer_seconds, 0):.2f}s"


def row(s: KernelSocket) -> tuple[str, ...]:
    # Like ss: for LISTEN, Recv-Q is the accept queue.
    return (s.state, str(s.rx_queue), str(s.tx_queue), s.endpoint("local"), s.endpoint("remote"),
            timer_text(s), str(s.retransmits), str(s.uid), str(s.inode))


def plain_table(socks: Sequence[KernelSocket]) -> str:
    """Aligned plain text (for pipes and files), one line per socket, header first."""
    rows = [COLUMNS] + [row(s) for s in sort_sockets(socks)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    right = {1, 2, 6, 7, 8}
    lines = []
    for r in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def rich_table(socks: Sequence[KernelSocket], title: str | None = None):
    from rich.table import Table

    table = Table(title=title, box=None, pad_edge=False, header_style="bold")
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="right" if i in {1, 2, 6, 7, 8} else "left",
                         no_wrap=True)
    styles = {"LISTEN": "cyan", "ESTABLISHED": "green", "TIME_WAIT": "yellow",
              "SYN_SENT": "magenta", "SYN_RECV": "magenta", "CLOSE_WAIT": "red"}
    for s in sort_sockets(socks):
        table.add_row(*row(s), style=styles.get(s.state))
    return table


def write_jsonl(socks: Sequence[KernelSocket], out: IO[str], ts: float | None = None) -> None:
    for s in sort_sockets(socks):
        d = s.as_dict()
        if ts is not None:
            d = {"ts": round(ts, 6), **d}
        out.write(json.dumps(d) + "\n")


def socket_key(s: KernelSocket) -> tuple:
    """Identity across snapshots: the 4-tuple, plus the inode for listeners (SO_REUSEPORT)."""
    return s.key + ((s.inode,) if s.state == "LISTEN" else ())


@dataclass(frozen=True, slots=True)
class SocketChange:
    sock: KernelSocket
    before: str | None  # None: the socket is new
    after: str | None  # None: the socket is gone

    def text(self) -> str:
        s = self.sock
        where = s.endpoint("local") if s.state == "LISTEN" or self.after is None and \
            self.before == "LISTEN" else f"{s.endpoint('local')} -> {s.endpoint('remote')}"
        if self.before is None:
            return f"{where} {self.after}"
        if self.after is None:
            return f"{where} {self.before} -> gone"
        return f"{where} {self.before} -> {self.after}"


def diff(before: dict[tuple, KernelSocket], after: Sequence[KernelSocket]) -> tuple[
        list[SocketChange], dict[tuple, KernelSocket]]:
    """What changed between two snapshots: new sockets, new states, sockets gone."""
    now = {socket_key(s): s for s in after}
    changes = []
    for key, s in now.items():
        old = before.get(key)
        if old is None:
            changes.append(SocketChange(s, None, s.state))
        elif old.state != s.state:
            changes.append(SocketChange(s, old.state, s.state))
    for key, s in before.items():
        if key not in now:
            changes.append(SocketChange(s, s.state, None))
    changes.sort(key=lambda c: (c.sock.local_port, c.sock.remote_port))
    return changes, now
