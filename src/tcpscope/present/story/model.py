"""What a story is made of: facts, steps (one per packet), folded runs, the connection's story."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...analysis.lifecycle import Lifecycle
from ...analysis.states import State

__all__ = ["Fact", "Step", "Run", "ConnectionStory", "Extra", "PREVIEW_BYTES", "GROUP_MIN"]

#: Payload bytes kept per data segment, to quote it.
PREVIEW_BYTES = 40
#: Shortest run of ordinary packets that is told as one.
GROUP_MIN = 8


@dataclass(frozen=True)
class Fact:
    """One thing to say: a message id of the catalogues and its named parameters."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    """One packet of the connection, with what it means."""

    row: int                 #: row in the Analysis
    frame: int
    ts_ns: int
    t: float                 #: seconds since the connection's first packet
    from_server: bool
    flags: str               #: tcpdump letters (S, S., P., F., R., .)
    seq: int                 #: raw sequence number
    ack: int | None          #: raw acknowledgement number (None without the ACK bit)
    rel_seq: int | None
    rel_ack: int | None
    length: int              #: payload bytes
    win: int                 #: raw window field
    win_scaled: int | None   #: bytes, when the scale is known
    options: tuple[str, ...]  #: short option names for labels ("mss 1460", "sackOK", ...)
    tags: tuple[str, ...]    #: analysis flags, Wireshark's names
    dup_ack_num: int
    client_state: State
    server_state: State
    #: confidence of the last change of each side's state on this packet (None: no change)
    client_change: str | None = None
    server_change: str | None = None
    facts: list[Fact] = field(default_factory=list)
    ordinary: bool = False

    @property
    def sender(self) -> str:
        return "server" if self.from_server else "client"


@dataclass
class Run:
    """Consecutive ordinary packets told as one."""

    steps: list[Step]
    facts: list[Fact]

    @property
    def first(self) -> int:
        return self.steps[0].frame

    @property
    def last(self) -> int:
        return self.steps[-1].frame


@dataclass
class ConnectionStory:
    stream: int
    client: str              #: "addr:port" ([addr]:port for IPv6)
    server: str
    initial: tuple[State, State]
    intro: list[Fact]
    steps: list[Step]        #: every packet
    items: list[Step | Run]  #: what is told: steps, with ordinary runs folded
    summary: list[Fact]
    lifecycle: Lifecycle | None = None


@dataclass
class Extra:
    """What the story quotes beyond the analysis: payload starts and SYN options, by frame."""

    payloads: dict[int, bytes] = field(default_factory=dict)
    syn_options: dict[int, bytes] = field(default_factory=dict)
