"""A connection's handshake and teardown, as the lab's expectations ask about them.

Read from tcpscope's lifecycle of the connection (`Facts.lifecycle`, the
state machine's verdicts): its kinds, the SYNs and SYN-ACKs with their times,
the packet that completed the handshake, each side's first FIN, who closed
first and which side ends in TIME_WAIT, with the captured packets they name.

Each expectation check returns ``(passed, what was seen)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

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
    kind: str  #: the lifecycle's kind; ``half_open`` for a 3-way one that never completed
    syns: list[Pkt] = field(default_factory=list)      #: the client's SYNs
    synacks: list[Pkt] = field(default_factory=list)   #: the server's SYN-ACKs
    completed_by: Pkt | None = None  #: the packet that completed it (the client's ACK)

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
    """The handshake of a stream, as its lifecycle tells it."""
    lc = facts.lifecycle(stream)
    if lc is None:
        return Handshake("none")
    kind = lc.handshake
    if kind in ("3way", "3way+retries") and not lc.handshake_complete:
        kind = "half_open"
    done = facts.frames([lc.handshake_frame]) if lc.handshake_frame is not None else []
    return Handshake(kind, facts.frames(lc.syn_frames[0]), facts.frames(lc.synack_frames[1]),
                     done[0] if done else None)


def teardown(facts: Facts, stream: int = 0) -> Teardown:
    """The teardown of a stream, as its lifecycle tells it (the TIME_WAIT side from its
    final states), with the packets from its first FIN (or the RST) on."""
    lc = facts.lifecycle(stream)
    if lc is None:
        return Teardown("none")
    fins = {side: p for side, f in zip(("client", "server"), lc.fin_frames) if f is not None
            for p in facts.frames([f])}
    if lc.teardown.startswith("rst"):
        start = lc.rst_frame
    else:
        start = min((p.frame for p in fins.values()), default=None)
    return Teardown(
        lc.teardown, "both" if lc.teardown == "simultaneous" else lc.closer, fins,
        lc.time_wait_side or "none",
        [p for p in facts.stream(stream) if start is not None and p.frame >= start])


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


def intervals_of(pkts: list[Pkt]) -> list[float]:
    return intervals(p.t for p in pkts)
