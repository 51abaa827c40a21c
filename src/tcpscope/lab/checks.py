"""Reading a connection's handshake and teardown out of the analysed capture.

These small classifiers work on `facts.Facts` (tcpscope's dissection and stream
tracking of the capture). They answer what the lab's expectations ask: how many
SYNs and SYN-ACKs, when, how the connection ended and who closed first. When the
lifecycle classifier (analysis/lifecycle.py) is available, `handshake` and
`teardown` take its verdicts (the ``source`` key says which answered).

Each expectation check returns ``(passed, what was seen)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .facts import Facts, Pkt, intervals

__all__ = [
    "Handshake", "Teardown", "handshake", "teardown", "syn_rule", "backoff_matches",
    "fmt_times", "acked_by_peer",
]

#: Linux's initial retransmission timeout (TCP_TIMEOUT_INIT, RFC 6298 §2.1): 1 s.
INITIAL_RTO = 1.0
#: How far a measured retransmission interval may be from the rule (timer slack, jiffies).
RTO_TOLERANCE = 0.15  # fraction
RTO_SLACK = 0.08  # seconds


@dataclass
class Handshake:
    kind: str  #: 3way, 3way+retries, rejected, unanswered, none
    syns: list[Pkt] = field(default_factory=list)
    synacks: list[Pkt] = field(default_factory=list)
    completed_by: Pkt | None = None  #: the client's first ACK of the SYN-ACK
    source: str = "lab"

    @property
    def syn_times(self) -> list[float]:
        return [p.t for p in self.syns]

    @property
    def synack_times(self) -> list[float]:
        return [p.t for p in self.synacks]


@dataclass
class Teardown:
    kind: str  #: 4way, 3way, simultaneous, half_close, rst_client, rst_server, none
    first_closer: str | None = None  #: client / server / both
    fins: dict[str, Pkt] = field(default_factory=dict)  #: each side's first FIN
    time_wait_side: str | None = None  #: client, server, both, none
    packets: list[Pkt] = field(default_factory=list)  #: from the first FIN (or RST) on
    source: str = "lab"
    lab_kind: str | None = None  #: the lab's own reading, when the lifecycle answered

    def flags(self) -> list[str]:
        return [p.flags for p in self.packets]


def _ack_covers(p: Pkt, target: Pkt) -> bool:
    """True if p (from the other side) acknowledges everything in `target`, FIN included."""
    end = target.rel_seq + target.len + (1 if target.fin else 0) + (1 if target.bits & 0x02 else 0)
    return p.rel_ack is not None and p.rel_ack >= end and bool(p.bits & 0x10)


def acked_by_peer(facts: Facts, p: Pkt) -> Pkt | None:
    """The first later packet of the other side that acknowledges `p` completely."""
    for q in facts.stream(p.stream):
        if q.frame > p.frame and q.from_server != p.from_server and _ack_covers(q, p):
            return q
    return None


def handshake(facts: Facts, stream: int = 0) -> Handshake:
    """The handshake: the lifecycle classifier's kind when available, and the packets."""
    hs = _handshake_packets(facts, stream)
    lc = facts.lifecycle(stream)
    if lc is not None:
        kind = lc.handshake
        if kind in ("3way", "3way+retries") and not lc.handshake_complete:
            kind = "half_open"
        hs.kind, hs.source = kind, "lifecycle"
    return hs


def _handshake_packets(facts: Facts, stream: int) -> Handshake:
    pkts = facts.stream(stream)
    syns = [p for p in pkts if p.syn and not p.from_server]
    synacks = [p for p in pkts if p.synack and p.from_server]
    if not syns:
        return Handshake("none", syns, synacks)
    if not synacks:
        if any(p.rst and p.from_server for p in pkts):
            return Handshake("rejected", syns, synacks)
        return Handshake("unanswered", syns, synacks)
    done = next((p for p in pkts if not p.from_server and p.frame > synacks[0].frame
                 and p.bits & 0x10 and not p.bits & 0x02), None)
    kind = "3way" if len(syns) == 1 and len(synacks) == 1 else "3way+retries"
    if done is None:
        kind = "half_open"
    return Handshake(kind, syns, synacks, done)


def teardown(facts: Facts, stream: int = 0) -> Teardown:
    """The teardown: the lifecycle classifier's kind and TIME_WAIT side (from its final
    states) when available; who closed first and the packets from the capture."""
    td = _teardown_packets(facts, stream)
    lc = facts.lifecycle(stream)
    if lc is not None:
        td.lab_kind = td.kind
        td.kind, td.source = lc.teardown, "lifecycle"
        td.time_wait_side = lc.time_wait_side or "none"
        if td.kind == "simultaneous":
            td.first_closer = "both"
    return td


def _teardown_packets(facts: Facts, stream: int) -> Teardown:
    pkts = facts.stream(stream)
    rsts = [p for p in pkts if p.rst]
    fins: dict[str, Pkt] = {}
    for p in pkts:
        if p.fin and p.side not in fins:
            fins[p.side] = p
    if rsts and (not fins or rsts[0].frame < min(f.frame for f in fins.values())
                 or len(fins) < 2):
        first = rsts[0]
        return Teardown(f"rst_{first.side}", first.side, fins, "none",
                        [p for p in pkts if p.frame >= first.frame])
    if not fins:
        return Teardown("none")
    order = sorted(fins.values(), key=lambda p: p.frame)
    a = order[0]
    rest = [p for p in pkts if p.frame >= a.frame]
    if len(order) < 2:
        return Teardown("none", a.side, fins, None, rest)
    b = order[1]
    # B's FIN sent before B acknowledged A's FIN: both closed at once.
    if not _ack_covers(b, a):
        return Teardown("simultaneous", "both", fins, "both", rest)
    between = [p for p in pkts if a.frame < p.frame < b.frame and p.side == b.side]
    if any(p.len > 0 for p in between) or b.len > 0:
        return Teardown("half_close", a.side, fins, a.side, rest)
    if any(_ack_covers(p, a) for p in between):
        return Teardown("4way", a.side, fins, a.side, rest)
    return Teardown("3way", a.side, fins, a.side, rest)


# -- backoff rules ---------------------------------------------------------------


def syn_rule(retries: int, linear: int, rto: float = INITIAL_RTO) -> list[float]:
    """The waits between a Linux client's SYNs: `linear` + 1 initial RTOs, then doubling.

    Linux 6.x (``net.ipv4.tcp_syn_linear_timeouts``, default 4): "with an initial
    RTO of 1 and tcp_syn_linear_timeouts = 4 we would expect SYN RTOs to be: 1, 1,
    1, 1, 1, 2, 4, ..." (Documentation/networking/ip-sysctl.rst). With 0 it is the
    classic RFC 6298 §5.5 backoff: 1, 2, 4, ... (SYNs at 0, 1, 3, 7 s).
    """
    return [rto * 2 ** max(0, k - linear) for k in range(retries)]


def backoff_matches(seen: list[float], expected: list[float]) -> bool:
    if len(seen) != len(expected):
        return False
    return all(abs(s - e) <= e * RTO_TOLERANCE + RTO_SLACK for s, e in zip(seen, expected))


def fmt_times(ts: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in ts)


def lifecycle_field(facts: Facts, stream: int, name: str) -> Any:
    """A field of the lifecycle classifier's verdict, or None if it is not available."""
    lc = facts.lifecycle(stream)
    if lc is None:
        return None
    value = getattr(lc, name, None)
    if value is None and isinstance(lc, dict):
        value = lc.get(name)
    return value


def intervals_of(pkts: list[Pkt]) -> list[float]:
    return intervals(p.t for p in pkts)
