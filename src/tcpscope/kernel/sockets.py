"""The kernel's own view of TCP sockets: /proc/net/tcp and /proc/net/tcp6.

What ``netstat -ant`` and ``ss -tan`` show, read from the text the kernel
prints (``net/ipv4/tcp_ipv4.c``: ``get_tcp4_sock``, ``get_openreq4``,
``get_timewait4_sock``; the IPv6 twins in ``net/ipv6/tcp_ipv6.c``)::

      sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
       0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4711 1 ...

- addresses are the in-memory bytes of the address printed as native-endian
  32-bit hex words (``%08X`` of a ``__be32``): on a little-endian machine
  127.0.0.1 reads ``0100007F``; IPv6 is four such words. Ports are plain hex.
- ``st``: the state code (``include/net/tcp_states.h``), see `STATES`;
- ``tx_queue``: bytes sent and not yet acknowledged (for LISTEN: 0);
  ``rx_queue``: bytes received and not yet read (for LISTEN: the accept queue);
- ``tr``: which timer runs (`TIMERS`), ``tm->when``: when it fires, in clock
  ticks (USER_HZ, 100 a second); ``retrnsmt``: unrecovered RTO timeouts;
  ``uid``; ``timeout``: unanswered zero-window / keep-alive probes;
  ``inode`` (0 for request and TIME_WAIT sockets, which have no file).
  Full sockets add refcount, address, rto, ato, quick-ack, cwnd, ssthresh.

Request sockets (a SYN answered, the final ACK not yet in: ``NEW_SYN_RECV``
inside the kernel) are printed with state 03, ``SYN_RECV``.

`read_sockets` takes one snapshot, of this namespace or, through a
`netns.NetnsProc`, of a named one (``ip netns add NAME``).
"""
from __future__ import annotations

import ipaddress
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from tcpscope.kernel import KernelError
from tcpscope.kernel.netns import NetnsProc

__all__ = [
    "STATES",
    "TIMERS",
    "KernelSocket",
    "parse_proc_net_tcp",
    "read_sockets",
]

#: State codes of include/net/tcp_states.h, under the kernel's (and ss's) names.
STATES: dict[int, str] = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
    13: "BOUND_INACTIVE",
}

#: The kernel's names next to RFC 9293's (what tcpscope's state machine calls them).
RFC_NAMES: dict[str, str] = {
    "ESTABLISHED": "ESTABLISHED", "SYN_SENT": "SYN_SENT", "SYN_RECV": "SYN_RECEIVED",
    "FIN_WAIT1": "FIN_WAIT_1", "FIN_WAIT2": "FIN_WAIT_2", "TIME_WAIT": "TIME_WAIT",
    "CLOSE": "CLOSED", "CLOSE_WAIT": "CLOSE_WAIT", "LAST_ACK": "LAST_ACK", "LISTEN": "LISTEN",
    "CLOSING": "CLOSING", "NEW_SYN_RECV": "SYN_RECEIVED", "BOUND_INACTIVE": "CLOSED",
}

#: The ``tr`` column (net/ipv4/tcp_ipv4.c, get_tcp4_sock).
TIMERS: dict[int, str] = {
    0: "off",
    1: "on",  # retransmission, or loss probe / reorder timer
    2: "keepalive",
    3: "timewait",
    4: "probe",  # zero-window probe
}

USER_HZ = 100  # clock_t ticks per second in /proc (jiffies_to_clock_t)

PROC_FILES = ("/proc/net/tcp", "/proc/net/tcp6")


@dataclass(frozen=True, slots=True)
class KernelSocket:
    """One line of /proc/net/tcp{,6}."""

    family: int  # 4 or 6
    local: str
    local_port: int
    remote: str
    remote_port: int
    state_code: int
    tx_queue: int
    rx_queue: int
    timer: int
    timer_ticks: int  # clock ticks (USER_HZ) until the timer fires; may be negative
    retransmits: int
    uid: int
    probes: int
    inode: int
    rto_ticks: int | None = None
    cwnd: int | None = None
    ssthresh: int | None = None

    @property
    def state(self) -> str:
        return STATES.get(self.state_code, f"UNKNOWN({self.state_code})")

    @property
    def rfc_state(self) -> str:
        return RFC_NAMES.get(self.state, self.state)

    @property
    def timer_name(self) -> str:
        return TIMERS.get(self.timer, str(self.timer))

    @property
    def timer_seconds(self) -> float:
        return self.timer_ticks / USER_HZ

    @property
    def key(self) -> tuple:
        """Identity across snapshots: the 4-tuple (plus inode to tell LISTEN sockets apart)."""
        return (self.family, self.local, self.local_port, self.remote, self.remote_port)

    def endpoint(self, which: str = "local") -> str:
        addr, port = (self.local, self.local_port) if which == "local" else (self.remote,
                                                                            self.remote_port)
        return f"[{addr}]:{port}" if self.family == 6 else f"{addr}:{port}"

    def as_dict(self) -> dict:
        return {
            "state": self.state, "local": self.local, "local_port": self.local_port,
            "remote": self.remote, "remote_port": self.remote_port, "family": self.family,
            "tx_queue": self.tx_queue, "rx_queue": self.rx_queue, "timer": self.timer_name,
            "timer_s": self.timer_seconds, "retransmits": self.retransmits, "uid": self.uid,
            "probes": self.probes, "inode": self.inode,
        }


def _addr(text: str, byteorder: str) -> tuple[int, str]:
    """One hex address field as (family, text)."""
    if len(text) == 8:
        raw = int(text, 16).to_bytes(4, byteorder)  # type: ignore[arg-type]
        return 4, str(ipaddress.IPv4Address(raw))
    if len(text) == 32:
        raw = b"".join(int(text[i:i + 8], 16).to_bytes(4, byteorder)  # type: ignore[arg-type]
                       for i in range(0, 32, 8))
        v6 = ipaddress.IPv6Address(raw)
        if v6.ipv4_mapped is not None:  # as ss prints it: ::ffff:127.0.0.1
            return 6, f"::ffff:{v6.ipv4_mapped}"
        return 6, str(v6)
    raise ValueError(f"address field of {len(text)} hex digits")


def _endpoint(field: str, byteorder: str) -> tuple[int, str, int]:
    addr, _, port = field.partition(":")
    family, text = _addr(addr, byteorder)
    return family, text, int(port, 16)


def parse_line(line: str, byteorder: str = sys.byteorder) -> KernelSocket:
    """One socket line (not the header). Raises ValueError if it is not one."""
    f = line.split()
    if len(f) < 10 or not f[0].endswith(":"):
        raise ValueError(f"not a socket line: {line.strip()!r}")
    family, local, lport = _endpoint(f[1], byteorder)
    _, remote, rport = _endpoint(f[2], byteorder)
    tx, _, rx = f[4].partition(":")
    tr, _, when = f[5].partition(":")
    extra: dict[str, int] = {}
    if len(f) >= 17:  # full sockets: refcnt, address, rto, ato, quick/pingpong, cwnd, ssthresh
        extra = {"rto_ticks": int(f[12]), "cwnd": int(f[15]), "ssthresh": int(f[16])}
    when_value = int(when, 16)
    if when_value >= 1 << 63:  # printed as %08lX of a negative long: a timer already due
        when_value -= 1 << 64
    return KernelSocket(
        family=family, local=local, local_port=lport, remote=remote, remote_port=rport,
        state_code=int(f[3], 16), tx_queue=int(tx, 16), rx_queue=int(rx, 16), timer=int(tr, 16),
        timer_ticks=when_value, retransmits=int(f[6], 16), uid=int(f[7]), probes=int(f[8]),
        inode=int(f[9]), **extra)


def parse_proc_net_tcp(text: str, byteorder: str = sys.byteorder) -> list[KernelSocket]:
    """Every socket of one /proc/net/tcp or tcp6 text (the header line is skipped)."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("sl"):
            continue
        out.append(parse_line(stripped, byteorder))
    return out


def read_sockets(ports: Iterable[int] | None = None, *, netns: NetnsProc | None = None,
                 proc_files: tuple[str, ...] = PROC_FILES) -> list[KernelSocket]:
    """A snapshot of the kernel's TCP sockets (IPv4 then IPv6), optionally only those with
    a local or remote port in `ports`."""
    texts = netns.read_all() if netns is not None else [_read_text(p) for p in proc_files]
    wanted = None if ports is None else set(ports)
    out: list[KernelSocket] = []
    for text in texts:
        for sock in parse_proc_net_tcp(text):
            if wanted is None or sock.local_port in wanted or sock.remote_port in wanted:
                out.append(sock)
    return out


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except FileNotFoundError:
        if path.endswith("6"):
            return ""  # IPv6 disabled
        raise KernelError(f"{path}: not found (is /proc mounted?)") from None
    except OSError as exc:
        raise KernelError(f"{path}: cannot read: {exc.strerror or exc}") from None
