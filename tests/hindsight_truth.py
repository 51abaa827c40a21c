"""The hindsight fixtures' truth (fixtures/hindsight/, issue 10), loaded into typed records.

Each fixture NAME is two or three captures (`NAME_sender.pcap.gz`, `NAME_receiver.pcap.gz`,
sometimes `NAME_tap.pcap.gz`) and `NAME.truth.json.gz`: what the kernel (ss, nstat, TCP_INFO),
the relay (its log and per-frame trace) and the applications recorded while the captures were
made, plus `expect`, the facts that record proves, in tcpscope's vocabulary
(scripts/fixtures/hindsight_open.py, hindsight_flow.py and hindsight_signals.py derive them;
fixtures/README.md documents every key).

    from hindsight_truth import load, names
    t = load("hs_ack_lost")
    c = t.conns[0]
    c.states["server"]          # (StateSpan("SYN_RECEIVED", first_ns, last_ns), StateSpan("ESTABLISHED", ...), ...)
    c.state_at("server", t_ns)  # the kernel's state at an ss sample covering t_ns, or None
    c.facts["synack_retransmissions"], c.bytes_c2s
    t.counter("B", "TcpExtTCPSynRetrans"), t.captures["receiver"].path

Nothing here reads a capture or asks tcpscope anything: this is the truth side of the
comparison, the analysis is the other.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from conftest import FIXTURES

__all__ = [
    "HINDSIGHT",
    "SCHEMA",
    "VERSION",
    "Capture",
    "Conn",
    "Sample",
    "StateSpan",
    "Truth",
    "for_class",
    "load",
    "names",
]

HINDSIGHT = FIXTURES / "hindsight"
SCHEMA = "tcpscope-hindsight-truth"
VERSION = 1
#: the issue's classes (fixtures name the ones they give truth for)
CLASSES = {1: "states with hindsight", 2: "half-open", 3: "default-mode judgement",
           4: "ACK matching", 5: "unique vs retransmitted bytes", 6: "zero window",
           7: "timers and signals", 8: "roles", 9: "TFO"}


@dataclass(frozen=True)
class Capture:
    side: str  #: sender, receiver or tap
    path: Path
    iface: str  #: a0 (A, the client), b0 (B, the server), mon1 (the relay's monitor port)
    host: str
    snaplen: int
    frames: int  #: TCP frames in it (as the maker counted them)


@dataclass(frozen=True)
class StateSpan:
    """One state of one side as ss saw it: from the first sample that showed it to the last."""

    state: str  #: RFC 9293 name (ESTABLISHED, SYN_RECEIVED, ...), CLOSED when no socket
    first_ns: int
    last_ns: int


@dataclass(frozen=True)
class Sample:
    """One `ss` run in A and in B at once (t_ns .. t_end_ns); `quiet`: no captured frame within
    1 ms of it, so "the state after the last frame before it" is well defined."""

    label: str
    t_ns: int
    t_end_ns: int
    quiet: bool
    states: dict[str, tuple[str | None, str]]  #: flow key -> (client state, server state)
    ss: dict[str, tuple[str, ...]]  #: "A" / "B" -> raw ss lines
    raw: dict


@dataclass(frozen=True)
class Conn:
    """One connection's expected facts. A 4-tuple used twice (TIME_WAIT reuse) is two Conns
    with the same `flow` and disjoint [from_ns, to_ns) windows."""

    flow: str  #: "client:port-server:port"
    client: str
    client_port: int
    server: str
    server_port: int
    from_ns: int | None
    to_ns: int | None
    states: dict[str, tuple[StateSpan, ...]]  #: "client" / "server" -> kernel states in order
    bytes_c2s: int | None  #: unique payload bytes the client application wrote (None: spoofed)
    bytes_s2c: int | None
    facts: dict  #: every other fact of this connection (keys: fixtures/README.md)

    def in_window(self, t_ns: int) -> bool:
        return (self.from_ns is None or t_ns >= self.from_ns) and (self.to_ns is None or t_ns < self.to_ns)

    def state_at(self, side: str, t_ns: int) -> str | None:
        """The kernel's state of `side` if an ss sample of this connection covers t_ns."""
        for span in self.states[side]:
            if span.first_ns <= t_ns <= span.last_ns:
                return span.state
        return None

    def path(self, side: str) -> list[str]:
        return [s.state for s in self.states[side]]


@dataclass(frozen=True)
class Truth:
    name: str
    version: int
    classes: tuple[int, ...]
    what: str
    captures: dict[str, Capture]
    conns: tuple[Conn, ...]
    facts: dict  #: fixture-wide expected facts (expect minus connections)
    nstat: dict[str, dict[str, int]]  #: "A" / "B" -> counter deltas over the run (absent = 0)
    samples: tuple[Sample, ...]
    app: tuple[dict, ...]  #: the applications' send / recv / close ... with t_ns, bytes, unread
    relay: dict | None  #: the relay's plan, events, counts (and trace), or ccrelay's log
    injected: tuple[dict, ...]
    tools: dict[str, str]
    raw: dict  #: the whole truth document

    def counter(self, host: str, key: str) -> int:
        return self.nstat[host].get(key, 0)

    def trace(self) -> list[dict]:
        """The relay's per-frame trace as dicts (columns: impair.TRACE_COLUMNS)."""
        t = (self.relay or {}).get("trace")
        return [dict(zip(t["columns"], row)) for row in t["rows"]] if t else []

    def conn(self, flow: str, t_ns: int | None = None) -> Conn:
        """The connection of `flow` (the one whose window holds t_ns, when the 4-tuple is reused)."""
        for c in self.conns:
            if c.flow == flow and (t_ns is None or c.in_window(t_ns)):
                return c
        raise KeyError(flow)


def names() -> list[str]:
    return sorted(p.name[: -len(".truth.json.gz")] for p in HINDSIGHT.glob("*.truth.json.gz"))


def for_class(k: int) -> list[str]:
    return [n for n in names() if k in load(n).classes]


def _conn(d: dict) -> Conn:
    known = ("flow", "client", "client_port", "server", "server_port", "from_ns", "to_ns", "states",
             "bytes_c2s", "bytes_s2c")
    return Conn(d["flow"], d["client"], d["client_port"], d["server"], d["server_port"],
                d.get("from_ns"), d.get("to_ns"),
                {side: tuple(StateSpan(*s) for s in spans) for side, spans in d["states"].items()},
                d.get("bytes_c2s"), d.get("bytes_s2c"),
                {k: v for k, v in d.items() if k not in known})


@cache
def load(name: str) -> Truth:
    with gzip.open(HINDSIGHT / f"{name}.truth.json.gz") as f:
        doc = json.load(f)
    if doc.get("schema") != SCHEMA or doc.get("version") != VERSION:
        raise ValueError(f"{name}: schema {doc.get('schema')} {doc.get('version')}, "
                         f"this loader reads {SCHEMA} {VERSION}")
    caps = {side: Capture(side, HINDSIGHT / c["file"], c["iface"], c["host"], c["snaplen"], c["frames"])
            for side, c in doc["captures"].items()}
    samples = tuple(
        Sample(s["label"], s["t_ns"], s["t_end_ns"], s["quiet"],
               {k: (v["client"], v["server"]) for k, v in s["flows"].items()},
               {h: tuple(lines) for h, lines in s["ss"].items()}, s)
        for s in doc["ss"]["samples"])
    expect = doc["expect"]
    return Truth(doc["name"], doc["version"], tuple(doc["classes"]), doc["what"], caps,
                 tuple(_conn(c) for c in expect["connections"]),
                 {k: v for k, v in expect.items() if k != "connections"},
                 doc["nstat"], samples, tuple(doc["app"]), doc["relay"], tuple(doc["injected"]),
                 doc["tools"], doc)
