"""A userspace relay: the lab's "wire" where the kernel has no netem.

This kernel has no netem qdisc, so loss, delay and holding a segment back are
done by a relay in a middle namespace M that forwards Ethernet frames between
two veths like a cable::

    ns client: c0 ── mc ┐              ┌ ms ── s0 :ns server
                        └── relay (M) ─┘

The relay acts on the first TCP connection it sees (the side that sent the SYN is
the client; ``c2s`` is its direction) following a `Policy`, and forwards every
other frame as it is. A policy decides, per frame, to forward it (now or after a
delay), drop it, or hold it until the policy releases it. Everything done to the
flow is logged (`Relay.log`), so an experiment can compare what the relay did with
what tcpscope found in the capture.

Bounded: the relay stops by itself after `max_seconds` or `max_frames`; it is
meant to be run in a thread that has entered M (`topology.enter_netns`).
Needs offloads off on all four veth ends (every frame one wire segment, complete
checksums: the relay copies frames). IPv4 only.
"""
from __future__ import annotations

import heapq
import random
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

__all__ = ["Seg", "Relay", "Policy", "LossDelay", "HoldFins", "C2S", "S2C"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
C2S, S2C = "c2s", "s2c"
SEQ_MOD = 1 << 32


@dataclass(frozen=True)
class Seg:
    """The TCP facts of a frame (None for frames that are not TCP over IPv4)."""

    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    payload: int

    @property
    def syn(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def fin(self) -> bool:
        return bool(self.flags & 0x01)


def parse(frame: bytes) -> Seg | None:
    if len(frame) < 14 + 20 + 20 or frame[12:14] != b"\x08\x00":
        return None
    ip = 14
    ihl = (frame[ip] & 0x0F) * 4
    if frame[ip] >> 4 != 4 or frame[ip + 9] != 6 or ihl < 20:
        return None
    total = struct.unpack_from("!H", frame, ip + 2)[0]
    t = ip + ihl
    if len(frame) < t + 20:
        return None
    sport, dport, seq, ack = struct.unpack_from("!HHII", frame, t)
    doff = (frame[t + 12] >> 4) * 4
    return Seg(socket.inet_ntoa(frame[ip + 12: ip + 16]), socket.inet_ntoa(frame[ip + 16: ip + 20]),
               sport, dport, seq, ack, frame[t + 13], max(0, total - ihl - doff))


class Policy:
    """What the relay does with the flow's frames. Subclasses override `decide`."""

    def decide(self, relay: Relay, d: str, seg: Seg, info: dict) -> tuple[str, float]:
        """("forward", delay seconds) | ("drop", 0) | ("hold", max seconds)."""
        return "forward", 0.0

    def after(self, relay: Relay) -> None:
        """Called after every frame of the flow: may release held frames."""


@dataclass
class LossDelay(Policy):
    """Delay every frame of the flow by `delay` seconds; drop chosen new data segments.

    Drops: the client's n-th new data segments listed in `drop_nth` (1-based), plus
    each other new data segment with probability `rate`, drawn from
    ``random.Random(seed)`` (the same plan on every run). Only first transmissions
    are dropped: every loss is repaired by the first retransmission.
    """

    delay: float = 0.005
    rate: float = 0.0
    drop_nth: frozenset[int] = frozenset()
    seed: int = 1
    max_drops: int = 20

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def decide(self, relay: Relay, d: str, seg: Seg, info: dict) -> tuple[str, float]:
        n = info.get("nth_data")
        if d == C2S and n is not None and relay.drops < self.max_drops:
            roll = self._rng.random()  # drawn for every new segment: the plan is fixed
            if n in self.drop_nth or roll < self.rate:
                return "drop", 0.0
        return "forward", self.delay


@dataclass
class HoldFins(Policy):
    """Hold each side's first FIN until the other side's FIN has arrived, then release both.

    Both FINs are then in flight at the same time, each sent before its sender saw
    the other's: a simultaneous close, made deterministic. `max_hold` bounds the
    wait (a lone FIN is released after it).
    """

    max_hold: float = 1.0
    held_dirs: set[str] = field(default_factory=set)

    def decide(self, relay: Relay, d: str, seg: Seg, info: dict) -> tuple[str, float]:
        if seg.fin and d not in self.held_dirs:
            self.held_dirs.add(d)
            return "hold", self.max_hold
        return "forward", 0.0

    def after(self, relay: Relay) -> None:
        if self.held_dirs == {C2S, S2C}:
            relay.release_all()


@dataclass
class _Dir:
    isn: int | None = None
    highest: int | None = None
    new_data: int = 0


class Relay:
    """Forward frames between two interfaces of this thread's namespace, per `policy`."""

    def __init__(self, policy: Policy, a: str = "mc", b: str = "ms", *,
                 max_seconds: float = 20.0, max_frames: int = 50_000) -> None:
        self.policy = policy
        self.a, self.b = a, b
        self.max_seconds = max_seconds
        self.max_frames = max_frames
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.flow: tuple[str, int, str, int] | None = None
        self.log: list[dict] = []
        self.frames = 0
        self.drops = 0
        self.error: str | None = None
        self._dirs = {C2S: _Dir(), S2C: _Dir()}
        self._queue: list[tuple[float, int, socket.socket, bytes]] = []
        self._held: list[tuple[float, socket.socket, bytes, dict]] = []
        self._n = 0
        self._t0 = time.time()

    # -- classification --------------------------------------------------------

    def _direction(self, seg: Seg) -> str | None:
        if self.flow is None:
            if seg.flags & 0x12 != 0x02:
                return None
            self.flow = (seg.src, seg.sport, seg.dst, seg.dport)
        c, cp, s, sp = self.flow
        if (seg.src, seg.sport, seg.dst, seg.dport) == (c, cp, s, sp):
            return C2S
        if (seg.src, seg.sport, seg.dst, seg.dport) == (s, sp, c, cp):
            return S2C
        return None

    def _info(self, d: str, seg: Seg) -> dict:
        st = self._dirs[d]
        info: dict = {}
        if seg.syn:
            st.isn = seg.seq
        if st.isn is None:
            return info
        rel = (seg.seq - st.isn) % SEQ_MOD
        info["rel_seq"] = rel
        if seg.payload > 0:
            if st.highest is None or rel >= st.highest:
                st.new_data += 1
                info["nth_data"] = st.new_data
            else:
                info["retransmission"] = True
            end = rel + seg.payload
            st.highest = end if st.highest is None else max(st.highest, end)
        return info

    # -- forwarding ------------------------------------------------------------

    def _send(self, dst: socket.socket, frame: bytes) -> None:
        try:
            dst.send(frame)
        except OSError as exc:  # e.g. the namespace is going away
            self.error = f"send failed: {exc}"

    def release_all(self) -> None:
        for _, dst, frame, ev in self._held:
            ev["released"] = round(time.time() - self._t0, 6)
            self._send(dst, frame)
        self._held.clear()

    def _handle(self, frame: bytes, dst: socket.socket) -> None:
        self.frames += 1
        seg = parse(frame)
        d = self._direction(seg) if seg is not None else None
        if d is None or seg is None:
            self._send(dst, frame)
            return
        info = self._info(d, seg)
        action, value = self.policy.decide(self, d, seg, info)
        now = time.time()
        if action == "drop":
            self.drops += 1
            self.log.append({"action": "drop", "dir": d, "t": round(now - self._t0, 6),
                             "seq": seg.seq, "len": seg.payload, **info})
        elif action == "hold":
            ev = {"action": "hold", "dir": d, "t": round(now - self._t0, 6), "seq": seg.seq,
                  "flags": seg.flags, **info}
            self.log.append(ev)
            self._held.append((now + value, dst, frame, ev))
        elif value > 0:
            self._n += 1
            heapq.heappush(self._queue, (now + value, self._n, dst, frame))
        else:
            self._send(dst, frame)
        self.policy.after(self)

    def _due(self) -> float:
        """Send what is due; seconds until the next frame is due (at most 10 ms)."""
        now = time.time()
        while self._queue and self._queue[0][0] <= now:
            _, _, dst, frame = heapq.heappop(self._queue)
            self._send(dst, frame)
        for item in list(self._held):
            if item[0] <= now:
                self._held.remove(item)
                item[3]["released"] = round(now - self._t0, 6)
                item[3]["released_by_timeout"] = True
                self._send(item[1], item[2])
        nxt = 0.01
        if self._queue:
            nxt = min(nxt, max(0.0, self._queue[0][0] - now))
        return nxt

    def run(self) -> None:
        socks = {}
        try:
            for name in (self.a, self.b):
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.bind((name, ETH_P_ALL))
                s.setblocking(False)
                socks[name] = s
            sa, sb = socks[self.a], socks[self.b]
            route = {sa.fileno(): (sa, sb), sb.fileno(): (sb, sa)}
            deadline = time.monotonic() + self.max_seconds
            self._t0 = time.time()
            self.ready.set()
            wait = 0.01
            while not self.stop.is_set() and time.monotonic() < deadline:
                readable, _, _ = select.select(list(route), [], [], wait)
                for fd in readable:
                    src, dst = route[fd]
                    for _ in range(1000):  # bounded drain
                        try:
                            frame, addr = src.recvfrom(65535)
                        except BlockingIOError:
                            break
                        if addr[2] == PACKET_OUTGOING:  # our own transmissions
                            continue
                        if self.frames >= self.max_frames:
                            self.error = f"more than {self.max_frames} frames: stopped"
                            self.stop.set()
                            break
                        self._handle(frame, dst)
                wait = self._due()
        finally:
            self.ready.set()
            # nothing stays queued or held when we stop
            for _, _, dst, frame in sorted(self._queue):
                self._send(dst, frame)
            self._queue.clear()
            self.release_all()
            for s in socks.values():
                s.close()
