"""The experiment framework: `Experiment`, `Expectation`, the run `Context`, the registry.

An experiment is a small class: a name, a title, what it shows, whether it needs
root, a `run(ctx)` that builds its topology through ``ctx.topo``, starts the
capture with ``ctx.capture(...)`` and drives real sockets, and a list of
`Expectation` s — "what you should see" — each checked against tcpscope's analysis
of the capture (`facts.Facts`), or, where marked ``source="kernel"``, against what
the kernel showed during the run (``ss``, netstat counters).
"""
from __future__ import annotations

import os
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .capture import Tcpdump
from .facts import Facts
from .relay import Relay
from .topology import LabError, Threads, Topology

__all__ = [
    "Expectation", "Outcome", "Experiment", "Context", "Place", "EXPERIMENTS", "register",
    "get", "SOCKET_TIMEOUT", "PROGRAM_DEADLINE", "accept_one", "answer_once",
    "connect_when_ready", "serve_until", "wait_ready",
]

#: Every socket operation of an experiment's programs is bounded by this (seconds).
SOCKET_TIMEOUT = 5.0
#: The programs of one experiment must be done within this (seconds).
PROGRAM_DEADLINE = 20.0

Check = Callable[[Facts], "tuple[bool, str]"]


@dataclass(frozen=True)
class Expectation:
    """One thing you should see, and how it is checked.

    ``check(facts)`` returns (passed, what was actually seen). ``source`` says where
    the evidence comes from: ``capture`` (tcpscope's analysis of the capture),
    ``kernel`` (``ss`` / netstat counters sampled in the namespace during the run) or
    ``program`` (what the socket calls returned).
    """

    text: str
    check: Check
    source: str = "capture"


@dataclass(frozen=True)
class Outcome:
    expectation: Expectation
    passed: bool
    detail: str


@dataclass(frozen=True)
class Place:
    """Where a loopback experiment runs: a lab namespace (root) or this host's ``lo``."""

    ns: str | None
    host: str = "127.0.0.1"


class Experiment:
    """Base class of the lab's experiments (see experiments/)."""

    name: ClassVar[str]
    title: ClassVar[str]
    #: One paragraph: what the experiment does.
    does: ClassVar[str]
    #: Why TCP behaves this way (for docs and --keep READMEs).
    why: ClassVar[str] = ""
    #: What to look at when opening the capture (Wireshark filters, columns).
    look_at: ClassVar[str] = ""
    #: True: needs network namespaces / nft / sysctls (root). False: runs on this
    #: host's loopback without root if tcpdump may capture there.
    needs_root: ClassVar[bool] = True

    def run(self, ctx: Context) -> None:
        raise NotImplementedError

    def expectations(self, ctx: Context) -> list[Expectation]:
        raise NotImplementedError


EXPERIMENTS: dict[str, type[Experiment]] = {}


def register(cls: type[Experiment]) -> type[Experiment]:
    if cls.name in EXPERIMENTS:
        raise ValueError(f"experiment {cls.name!r} registered twice")
    EXPERIMENTS[cls.name] = cls
    return cls


def get(name: str) -> Experiment:
    return EXPERIMENTS[name]()


class Context:
    """What an experiment's `run` works with; collects what the run showed."""

    def __init__(self, exp: Experiment, workdir: Path, topo: Topology | None) -> None:
        self.exp = exp
        self.workdir = workdir
        self.topo = topo
        self.privileged = topo is not None
        self.capture_path = workdir / f"{exp.name}.pcap"
        self.tcpdump: Tcpdump | None = None
        #: What the kernel showed: ``ss`` samples, counters... (see Facts.kernel).
        self.kernel: dict[str, Any] = {}
        #: Plain-language steps of the programs, for the README.
        self.program: list[str] = []
        #: Lines shown after the listing: what the kernel view says.
        self.kernel_notes: list[str] = []
        #: Values the expectations depend on (ports, addresses, sysctls read...).
        self.params: dict[str, Any] = {}

    # -- places and ports -------------------------------------------------------

    def loopback(self) -> Place:
        """A fresh namespace's loopback (root), else this host's loopback."""
        if self.topo is not None:
            return Place(self.topo.netns("lo"))
        return Place(None)

    def port(self, place: Place, preferred: int) -> int:
        """`preferred` inside a lab namespace; a free port on this host's loopback."""
        if place.ns is not None:
            return preferred
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((place.host, 0))
            return s.getsockname()[1]

    def need_topo(self) -> Topology:
        if self.topo is None:
            raise LabError(f"{self.exp.name} needs root (network namespaces)")
        return self.topo

    # -- capture and programs -------------------------------------------------

    def capture(self, iface: str, bpf: str, ns: str | None = None, settle: float = 0.2
                ) -> Tcpdump:
        if self.tcpdump is not None:
            raise LabError("one capture per experiment")
        self.tcpdump = Tcpdump(self.capture_path, iface, bpf, ns=ns, settle=settle)
        return self.tcpdump

    def threads(self) -> Threads:
        return Threads()

    def run_programs(self, *programs: tuple[str | None, Callable[[], Any]]) -> None:
        """Start each (namespace, function) in a thread of its own, in this order, and
        join them all within PROGRAM_DEADLINE (an error in one is raised here)."""
        t = self.threads()
        for ns, fn in programs:
            t.start(ns, fn)
        t.join(PROGRAM_DEADLINE)

    def run_on_loopback(self, place: Place, port: int, *programs: Callable[[], Any]) -> None:
        """Capture ``tcp port PORT`` on `place`'s loopback while `programs` run there
        (`run_programs`, all in the place's namespace)."""
        with self.capture("lo", f"tcp port {port}", ns=place.ns):
            self.run_programs(*((place.ns, fn) for fn in programs))

    @contextmanager
    def relaying(self, relay: Relay, ns: str | None) -> Iterator[Relay]:
        """Run `relay` in a thread in namespace `ns` during the block.

        The block starts once the relay is forwarding; when it ends (also on an
        error) the relay is told to stop and its thread is joined.
        """
        relay_thread = self.threads()
        relay_thread.start(ns, relay.run)
        try:
            wait_ready(relay.ready, "relay")
            yield relay
        finally:
            relay.stop.set()
            relay_thread.join(5)

    def say(self, step: str) -> None:
        """Record a step of the programs (shown in the README of a kept run)."""
        self.program.append(step)

    # -- the kernel's view ------------------------------------------------------

    @contextmanager
    def sample_ss(self, ns: str | None, key: str, args: list[str], every: float = 0.25,
                  max_seconds: float = 15.0) -> Iterator[list[tuple[float, str]]]:
        """Run ``ss ARGS`` in `ns` every `every` seconds during the block.

        The samples, (wall-clock time, output), go to ``kernel[key]``.
        """
        samples: list[tuple[float, str]] = []
        self.kernel[key] = samples
        stop = threading.Event()
        cmd = ["ss", *args]
        if ns is not None:
            cmd = ["ip", "netns", "exec", ns, *cmd]
        self.kernel[key + "_cmd"] = shlex.join(cmd)

        def loop() -> None:
            from .topology import run

            deadline = time.monotonic() + max_seconds
            while not stop.is_set() and time.monotonic() < deadline:
                now = time.time()
                proc = run(cmd, check=False)
                samples.append((now, proc.stdout))
                stop.wait(every)

        t = threading.Thread(target=loop, daemon=True, name=f"ss-{key}")
        t.start()
        try:
            yield samples
        finally:
            stop.set()
            t.join(timeout=5)

    def ss_once(self, ns: str | None, key: str, args: list[str]) -> str:
        from .topology import run

        cmd = ["ss", *args]
        if ns is not None:
            cmd = ["ip", "netns", "exec", ns, *cmd]
        self.kernel[key + "_cmd"] = shlex.join(cmd)
        out = run(cmd, check=False).stdout
        self.kernel.setdefault(key, []).append((time.time(), out))
        return out


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"end of stream after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def listener(host: str, port: int, *, backlog: int = 8, rcvbuf: int | None = None
             ) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((host, port))
    s.listen(backlog)
    s.settimeout(SOCKET_TIMEOUT)
    return s


def serve_until(host: str, port: int, ready: threading.Event, stop: threading.Event,
                answer: Callable[[socket.socket], Any], *, backlog: int = 128,
                seconds: float | None = None, timeout: float = SOCKET_TIMEOUT) -> None:
    """Listen on host:port, set `ready`, and hand every connection to `answer` (with
    `timeout` on it; closed after) until `stop` is set or, if given, `seconds` have passed.
    The listener wakes every 0.1 s to look at `stop`."""
    with listener(host, port, backlog=backlog) as ls:
        ls.settimeout(0.1)
        ready.set()
        deadline = None if seconds is None else time.monotonic() + seconds
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            try:
                conn, _ = ls.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(timeout)
                answer(conn)


def wait_ready(ready: threading.Event, what: str = "server") -> None:
    """Wait (SOCKET_TIMEOUT at most) until `what` has set `ready`."""
    if not ready.wait(SOCKET_TIMEOUT):
        raise RuntimeError(f"{what} did not start")


def connect_when_ready(ready: threading.Event, host: str, port: int) -> socket.socket:
    """Once the server has set `ready`, connect to it (SOCKET_TIMEOUT on the socket)."""
    wait_ready(ready)
    return socket.create_connection((host, port), timeout=SOCKET_TIMEOUT)


@contextmanager
def accept_one(host: str, port: int, ready: threading.Event, *, rcvbuf: int | None = None
               ) -> Iterator[socket.socket]:
    """Listen on host:port, set `ready`, accept one client and give its socket to the
    block (SOCKET_TIMEOUT on it); the connection, then the listener, close after it."""
    with listener(host, port, rcvbuf=rcvbuf) as ls:
        ready.set()
        conn, _ = ls.accept()
        with conn:
            conn.settimeout(SOCKET_TIMEOUT)
            yield conn


def answer_once(conn: socket.socket, request_len: int, reply: bytes, linger: float = 0.0
                ) -> None:
    """Read a `request_len`-byte request, send `reply`, then read the end of the stream
    (anything more is an error) and wait `linger` seconds before the caller closes."""
    recv_exactly(conn, request_len)
    conn.sendall(reply)
    if conn.recv(1) != b"":
        raise RuntimeError("client sent more than expected")
    if linger:
        time.sleep(linger)


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass
class Result:
    """How one experiment went."""

    name: str
    status: str  #: passed, failed, skipped, error
    seconds: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    reason: str = ""
    capture: Path | None = None  #: kept capture, if --keep

    @property
    def ok(self) -> bool:
        return self.status in ("passed", "skipped")
