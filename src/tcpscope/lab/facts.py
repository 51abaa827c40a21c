"""What tcpscope's analysis says about a lab capture: the facts expectations are checked on.

`Facts.from_capture(path)` runs tcpscope's own pipeline (capture reader ->
dissector -> analysis engine) over the capture and keeps, per TCP packet, what
the expectations need: stream, direction, tcpdump flags, relative seq/ack,
length, window, SACK blocks and the engine's analysis flags; per stream, the
engine's connection row. Nothing here looks at the experiment's own sockets:
a "pass" means tcpscope saw it in the capture.

What the kernel itself showed during the run (``ss`` samples, netstat counters)
is kept apart in `Facts.kernel`, filled by the experiment; expectations that
rely on it say so (their ``source`` is ``"kernel"``).

When the endpoint state machine / lifecycle classifier (analysis/lifecycle.py)
is available, `Facts.lifecycles` holds its verdicts per stream, and the
expectations prefer them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.annotation import flag_names
from ..wire.text import format_addresses, tcp_flags_text
from ..wire.record import ACK, FIN, KIND, RST, SYN

__all__ = ["Pkt", "Facts", "intervals"]


@dataclass(frozen=True, slots=True)
class Pkt:
    """One TCP packet as the analysis saw it."""

    frame: int
    t: float  #: seconds since the capture's first packet
    stream: int
    from_server: bool
    src: str
    sport: int
    dst: str
    dport: int
    flags: str  #: tcpdump letters: ``S``, ``S.``, ``P.``, ``F.``, ``R.``, ``.``
    bits: int  #: the raw TCP flag bits
    seq: int
    ack: int
    rel_seq: int
    rel_ack: int
    len: int
    win: int
    win_scaled: int
    sack_blocks: int
    analysis: tuple[str, ...]  #: the engine's flags (``retransmission``, ``duplicate_ack``...)
    #: The endpoint states after this packet, as tcpscope's state machine infers them
    #: (RFC 9293 names: ``SYN_RECEIVED``, ``TIME_WAIT``...; None without the lifecycle).
    client_state: str | None = None
    server_state: str | None = None
    events: tuple[str, ...] = ()  #: lifecycle events this packet caused

    @property
    def syn(self) -> bool:
        return bool(self.bits & SYN) and not self.bits & ACK

    @property
    def synack(self) -> bool:
        return bool(self.bits & SYN) and bool(self.bits & ACK)

    @property
    def fin(self) -> bool:
        return bool(self.bits & FIN)

    @property
    def rst(self) -> bool:
        return bool(self.bits & RST)

    @property
    def side(self) -> str:
        return "server" if self.from_server else "client"

    def has(self, flag: str) -> bool:
        return flag in self.analysis


def intervals(times: Iterable[float]) -> list[float]:
    """Gaps between consecutive times, in seconds."""
    ts = list(times)
    return [b - a for a, b in zip(ts, ts[1:])]


@dataclass
class Facts:
    """A capture as tcpscope analysed it, plus what the kernel showed during the run."""

    path: Path
    packets: list[Pkt]
    connections: list[dict[str, Any]]
    t0: float  #: wall-clock time of the first packet (capture clock)
    kernel: dict[str, Any] = field(default_factory=dict)
    lifecycles: dict[int, Any] | None = None
    _payloads: dict[int, bytes] | None = field(default=None, repr=False)

    @classmethod
    def from_capture(cls, path: Path | str, mode: str = "wireshark") -> Facts:
        from ..pipeline import analyze

        a = analyze(str(path), mode)
        rec, ann = a.records, a.annotations
        tcp = np.flatnonzero((rec["kind"] == KIND["TCP"]) & (ann["stream"] >= 0))
        t0 = float(a.ts_ns[0]) / 1e9 if len(a) else 0.0
        lifecycles, states = _lifecycles(a)
        srcs = format_addresses(rec["src"][tcp], rec["ip_version"][tcp])
        dsts = format_addresses(rec["dst"][tcp], rec["ip_version"][tcp])
        packets = []
        for j, i in enumerate(tcp.tolist()):
            r, n = rec[i], ann[i]
            packets.append(Pkt(
                frame=int(a.frames[i]),
                t=float(a.ts_ns[i]) / 1e9 - t0,
                stream=int(n["stream"]),
                from_server=bool(n["from_server"]),
                src=srcs[j] or "?",
                sport=int(r["sport"]),
                dst=dsts[j] or "?",
                dport=int(r["dport"]),
                flags=tcp_flags_text(int(r["tcp_flags"])),
                bits=int(r["tcp_flags"]),
                seq=int(r["seq"]),
                ack=int(r["ack"]),
                rel_seq=int(n["rel_seq"]),
                rel_ack=int(n["rel_ack"]),
                len=int(r["payload_len"]),
                win=int(r["win"]),
                win_scaled=int(n["win_scaled"]),
                sack_blocks=int(r["sack_count"]),
                analysis=tuple(flag_names(int(n["flags"]))),
                **(states.get(i, {}) if states else {}),
            ))
        facts = cls(Path(path), packets, a.connection_dicts(), t0)
        facts.lifecycles = lifecycles
        return facts

    # -- selections ------------------------------------------------------------

    def stream(self, n: int) -> list[Pkt]:
        return [p for p in self.packets if p.stream == n]

    def streams(self) -> list[int]:
        return sorted({p.stream for p in self.packets})

    def where(self, pred: Callable[[Pkt], bool], stream: int | None = None) -> list[Pkt]:
        return [p for p in self.packets if (stream is None or p.stream == stream) and pred(p)]

    def flagged(self, flag: str, stream: int | None = None) -> list[Pkt]:
        """Packets the engine marked with analysis flag `flag`."""
        return self.where(lambda p: p.has(flag), stream)

    def flag_sequence(self, stream: int = 0) -> list[str]:
        """tcpdump flag letters of a stream's packets, in order (``S``, ``S.``, ``.``, ...)."""
        return [p.flags for p in self.stream(stream)]

    def connection(self, stream: int = 0) -> dict[str, Any] | None:
        for c in self.connections:
            if c["stream"] == stream:
                return c
        return None

    def stream_to_port(self, port: int) -> list[int]:
        """Streams whose server port is `port`."""
        return [c["stream"] for c in self.connections if c["server_port"] == port]

    def payload(self, p: Pkt) -> bytes:
        """The captured payload bytes of a packet."""
        if self._payloads is None:
            from ..present.demo import tcp_packets

            self._payloads = {q.frame: q.payload for q in tcp_packets(self.path) if q.payload}
        return self._payloads.get(p.frame, b"")

    def data(self, side: str, stream: int = 0) -> list[Pkt]:
        """The data segments a side (``client`` / ``server``) sent."""
        return [p for p in self.stream(stream) if p.side == side and p.len > 0]

    def lifecycle(self, stream: int = 0) -> Any | None:
        """The lifecycle classifier's verdict for a stream, if it is available."""
        if self.lifecycles is None:
            return None
        return self.lifecycles.get(stream)


def _lifecycles(a: Any) -> tuple[dict[int, Any] | None, dict[int, dict[str, Any]] | None]:
    """analysis/lifecycle.py over the capture: per stream its Lifecycle, per row its states."""
    try:
        from ..analysis.lifecycle import LifecycleTracker
        from ..analysis.states import State
    except ImportError:  # a build without the state machine: the lab's own classifiers answer
        return None, None
    tracker = LifecycleTracker()
    out = tracker.feed(a.records, a.annotations, a.ts_ns)
    names = {int(s): s.name for s in State}
    states = {
        i: {"client_state": names[c], "server_state": names[s],
            "events": tuple(out.events.get(i, ()))}
        for i, (c, s) in enumerate(zip(out.client.tolist(), out.server.tolist()))
    }
    return dict(tracker.lifecycles()), states
