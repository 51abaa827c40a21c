"""Network namespaces, veth pairs, nft rules and sysctls that exist only inside ``with``.

`Topology` is the lab's only way to touch the network configuration. Everything it
makes lives inside network namespaces it creates itself (named ``tslab<pid>-...``),
so deleting the namespaces deletes the veths, addresses, routes, nft tables and
sysctls with them; nothing is ever changed in the namespace the lab was started in.

Cleanup is unconditional: `Topology.__exit__` deletes every namespace it made, on
success, on failure and on KeyboardInterrupt (SIGINT). `cleanup_stale()` removes
namespaces left by a lab process that no longer exists (killed with SIGKILL).

Threads enter a namespace with `enter_netns` (setns(2) changes only the calling
thread's network namespace): every socket a thread opens afterwards lives there.
"""
from __future__ import annotations

import ctypes
import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PREFIX", "Topology", "Threads", "LabError", "enter_netns", "lab_namespaces",
    "cleanup_stale", "run",
]

#: Every namespace the lab makes starts with this (then the pid of the lab process).
PREFIX = "tslab"
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT = 15.0  # seconds, any one ip / nft / sysctl / ss command

_libc = ctypes.CDLL(None, use_errno=True)


class LabError(RuntimeError):
    """The lab could not set something up or an experiment's program failed."""


def run(cmd: list[str], *, check: bool = True, timeout: float = COMMAND_TIMEOUT,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command, bounded in time; a failure raises LabError with its stderr."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    except FileNotFoundError as exc:
        raise LabError(f"{cmd[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{shlex.join(cmd)} did not finish in {timeout} s") from exc
    if check and proc.returncode != 0:
        raise LabError(f"{shlex.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def enter_netns(ns: str) -> None:
    """Move the calling thread into network namespace `ns` (made by `ip netns add`)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


def lab_namespaces() -> list[str]:
    """Names of the lab's namespaces that exist now (any lab process)."""
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(PREFIX))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Delete namespaces of lab processes that have died; returns their names."""
    removed = []
    for ns in lab_namespaces():
        m = re.match(rf"{PREFIX}(\d+)-", ns)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            run(["ip", "netns", "del", ns], check=False)
            removed.append(ns)
    return removed


@dataclass
class Link:
    """One end of a veth pair: namespace, interface name, addresses, MAC."""

    ns: str
    ifname: str
    mac: str
    addrs: list[str] = field(default_factory=list)

    @property
    def ip(self) -> str:
        """The first address without its prefix length."""
        return self.addrs[0].split("/")[0]


class Topology:
    """Namespaces and links that exist only inside a ``with Topology(...)`` block.

    Every command that changes something is recorded in `commands` (as a person
    would type it), so a kept experiment can say exactly how it was made.
    """

    def __init__(self, tag: str) -> None:
        short = re.sub(r"[^a-z0-9]", "", tag.lower())[:10] or "lab"
        self.tag = f"{PREFIX}{os.getpid()}-{short}"
        self.namespaces: list[str] = []
        self.roles: dict[str, str] = {}  # role -> namespace
        self.links: list[tuple[Link, Link]] = []
        self.commands: list[str] = []
        self.sysctls: dict[str, dict[str, str]] = {}  # ns -> key -> value set
        self._lock = threading.Lock()

    # -- lifetime ------------------------------------------------------------

    def __enter__(self) -> Topology:
        if os.geteuid() != 0:
            raise LabError("network namespaces need root")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Delete every namespace made (the veths, nft tables, sysctls inside die with them)."""
        while self.namespaces:
            ns = self.namespaces.pop()
            for _ in range(3):
                proc = run(["ip", "netns", "del", ns], check=False)
                if proc.returncode == 0 or not os.path.exists(f"/run/netns/{ns}"):
                    break
                time.sleep(0.1)

    # -- building ------------------------------------------------------------

    def _record(self, cmd: list[str]) -> None:
        with self._lock:
            self.commands.append(shlex.join(cmd))

    def cmd(self, cmd: list[str], *, check: bool = True, record: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess:
        if record:
            self._record(cmd if input is None else [*cmd, "<<EOF", input.strip(), "EOF"])
        return run(cmd, check=check, input=input)

    def netns(self, role: str) -> str:
        """A fresh namespace for `role` (``client``, ``server``, ...) with loopback up."""
        ns = f"{self.tag}-{role}"
        self.namespaces.append(ns)  # before creating: a half-made one is deleted too
        self.cmd(["ip", "netns", "add", ns])
        self.roles[role] = ns
        self.cmd(["ip", "-n", ns, "link", "set", "dev", "lo", "up"])
        return ns

    def ns(self, role: str) -> str:
        return self.roles[role]

    def sh(self, ns: str, cmd: list[str], *, check: bool = True, record: bool = True,
           input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command inside a namespace."""
        return self.cmd(["ip", "netns", "exec", ns, *cmd], check=check, record=record,
                        input=input)

    def sysctl(self, ns: str, key: str, value: str | int) -> None:
        """Set a per-namespace sysctl (only namespaced keys: net.ipv4.tcp_* and friends)."""
        self.sh(ns, ["sysctl", "-q", "-w", f"{key}={value}"])
        self.sysctls.setdefault(ns, {})[key] = str(value)

    def read_sysctl(self, ns: str, key: str) -> str:
        return self.sh(ns, ["sysctl", "-n", key], record=False).stdout.strip()

    def veth(self, a: str, if_a: str, b: str, if_b: str, *, addr_a: str, addr_b: str,
             mac_a: str = "02:00:00:00:0a:01", mac_b: str = "02:00:00:00:0b:01",
             offloads: bool = False, static_neigh: bool = True) -> tuple[Link, Link]:
        """A veth pair a/if_a <-> b/if_b with IPv4 addresses (``10.x.y.z/24``), both up.

        offloads=False turns TSO/GSO/GRO and checksum offload off, so every frame is
        one wire-sized segment with a complete checksum (what a real NIC would
        carry), and nft / a relay see segments one at a time. Neighbours are static:
        no ARP in the captures.
        """
        self.cmd(["ip", "link", "add", if_a, "netns", a, "type", "veth", "peer", "name", if_b,
                  "netns", b])
        la, lb = Link(a, if_a, mac_a, [addr_a]), Link(b, if_b, mac_b, [addr_b])
        for link in (la, lb):
            self.cmd(["ip", "-n", link.ns, "link", "set", "dev", link.ifname, "address", link.mac])
            if not offloads:
                self.sh(link.ns, ["ethtool", "-K", link.ifname, "tx", "off", "tso", "off",
                                  "gso", "off", "gro", "off"])
                self.cmd(["ip", "-n", link.ns, "link", "set", "dev", link.ifname,
                          "gso_max_segs", "1"])
            self.cmd(["ip", "-n", link.ns, "addr", "add", link.addrs[0], "dev", link.ifname])
            self.cmd(["ip", "-n", link.ns, "link", "set", "dev", link.ifname, "up"])
        if static_neigh:
            for me, peer in ((la, lb), (lb, la)):
                self.neigh(me.ns, peer.ip, peer.mac, me.ifname)
        self.links.append((la, lb))
        return la, lb

    def bare_veth(self, a: str, if_a: str, b: str, if_b: str, *, mac_a: str, mac_b: str) -> None:
        """A veth pair with no addresses and offloads off (a relay's ports)."""
        self.cmd(["ip", "link", "add", if_a, "netns", a, "type", "veth", "peer", "name", if_b,
                  "netns", b])
        for ns, ifname, mac in ((a, if_a, mac_a), (b, if_b, mac_b)):
            self.cmd(["ip", "-n", ns, "link", "set", "dev", ifname, "address", mac])
            self.sh(ns, ["ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off",
                         "gro", "off"])
            self.cmd(["ip", "-n", ns, "link", "set", "dev", ifname, "gso_max_segs", "1"])
            self.cmd(["ip", "-n", ns, "link", "set", "dev", ifname, "up"])

    def bridge(self, ns: str, name: str, mac: str, ports: list[str]) -> None:
        """A bridge in `ns` joining `ports` (STP off: ports forward at once)."""
        self.cmd(["ip", "-n", ns, "link", "add", name, "type", "bridge", "stp_state", "0"])
        self.cmd(["ip", "-n", ns, "link", "set", "dev", name, "address", mac])
        for port in ports:
            self.cmd(["ip", "-n", ns, "link", "set", "dev", port, "master", name])
        self.cmd(["ip", "-n", ns, "link", "set", "dev", name, "up"])

    def addr(self, ns: str, ifname: str, cidr: str) -> None:
        self.cmd(["ip", "-n", ns, "addr", "add", cidr, "dev", ifname])

    def neigh(self, ns: str, ip: str, mac: str, ifname: str) -> None:
        """A permanent neighbour entry (no ARP in the captures)."""
        self.cmd(["ip", "-n", ns, "neigh", "replace", ip, "lladdr", mac, "dev", ifname, "nud",
                  "permanent"])

    def route(self, ns: str, *args: str) -> None:
        self.cmd(["ip", "-n", ns, "route", "add", *args])

    def nft(self, ns: str, script: str) -> None:
        """Load an nft ruleset fragment into a namespace."""
        self.sh(ns, ["nft", "-f", "-"], input=script)

    def nft_flush_table(self, ns: str, family: str, table: str) -> None:
        """Remove a table (and its rules) from a namespace."""
        self.sh(ns, ["nft", "delete", "table", family, table])

    def ss(self, ns: str, *args: str) -> str:
        """``ss`` inside a namespace (the kernel's own view of its sockets)."""
        return self.sh(ns, ["ss", *args], record=False).stdout

    def netstat_counters(self, ns: str) -> dict[str, int]:
        """/proc/net/netstat and /proc/net/snmp of a namespace, as ``TcpExt.Name`` -> value."""
        text = self.sh(ns, ["cat", "/proc/net/netstat", "/proc/net/snmp"], record=False).stdout
        counters: dict[str, int] = {}
        lines = text.splitlines()
        for head, vals in zip(lines[::2], lines[1::2]):
            names, values = head.split(), vals.split()
            if not names or names[0] != values[0]:
                continue
            prefix = names[0].rstrip(":")
            for k, v in zip(names[1:], values[1:]):
                try:
                    counters[f"{prefix}.{k}"] = int(v)
                except ValueError:
                    pass
        return counters

    def describe(self) -> list[str]:
        """The topology in a few lines, for people."""
        out = []
        for role, ns in self.roles.items():
            out.append(f"namespace {ns} ({role})")
        for la, lb in self.links:
            out.append(f"veth {la.ns}:{la.ifname} {' '.join(la.addrs) or '(no address)'} <-> "
                       f"{lb.ns}:{lb.ifname} {' '.join(lb.addrs) or '(no address)'}")
        return out


class Threads:
    """Start functions in threads (each in its namespace, or the caller's) and join them.

    An exception in a thread is kept and raised by `join`, as is a thread that
    outlives the deadline (the threads are daemons: they never keep the process
    alive, and their sockets all have timeouts).
    """

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, ns: str | None, fn: Callable[..., Any], *args: Any, **kwargs: Any
              ) -> threading.Thread:
        def body() -> None:
            try:
                if ns is not None:
                    enter_netns(ns)
                fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported by join()
                self.errors.append(exc)

        t = threading.Thread(target=body, daemon=True, name=getattr(fn, "__name__", "worker"))
        t.start()
        self.threads.append(t)
        return t

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        if self.errors:
            exc = self.errors[0]
            raise LabError(f"{type(exc).__name__} in the experiment: {exc}") from exc
        if alive:
            raise LabError(f"still running after {timeout} s: {', '.join(alive)}")
