"""tcpscope's endpoint states on the hindsight fixtures, set against the kernel's `ss` samples.

For every capture of every fixture, every connection the truth records and every quiet `ss`
sample of it (no captured frame within 1 ms, so "the state after the last frame before it" is
well defined) that falls inside the capture's span of that connection: the state tcpscope shows
after the last frame of the connection before the sample, per side, against the kernel's. A
spoofed client (no socket: `None`) is not compared. `DIFFERENCES` lists the comparisons where
the capture cannot show what the kernel did (docs/differences.md says why).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

import tcpscope
from hindsight_truth import load, names
from tcpscope.analysis.states import State

__all__ = ["Comparison", "compare", "DIFFERENCES"]

_STREAM_SPLIT = ("the injected in-window SYN starts a new stream (Wireshark's rule for a SYN "
                 "with a new ISN, which the engine follows); the kernel answered it with a "
                 "challenge ACK and kept the connection, tcpscope tells two")
_HELD_FIN = ("the relay holds a FIN after the capture point: the capture shows neither when it "
             "arrived nor that its sender had sent it")
_NO_PACKET = "a change no packet shows (a timer expired)"
_RAW_SYN = ("the scanner's SYN came from a raw socket: its kernel had no connection, while a "
            "captured SYN is a connection's SYN_SENT")
#: Deliberate differences, by (fixture, capture side, side, kernel state, tcpscope state):
#: why the capture cannot show the kernel's state. docs/differences.md ("The kernel's endpoint
#: states") lists them.
DIFFERENCES: dict[tuple[str, str, str, str, str], str] = {
    **{("hs_challenge_ack", cap, side, k, v): _STREAM_SPLIT
       for cap in ("sender", "receiver")
       for side, k, v in (("client", "ESTABLISHED", "CLOSED"),
                          ("client", "FIN_WAIT_2", "CLOSED"),
                          ("client", "FIN_WAIT_2", "ESTABLISHED"),
                          ("client", "TIME_WAIT", "CLOSED"),
                          ("client", "TIME_WAIT", "ESTABLISHED"),
                          ("server", "CLOSED", "ESTABLISHED"),
                          ("server", "CLOSE_WAIT", "ESTABLISHED"),
                          ("server", "ESTABLISHED", "SYN_RECEIVED"))},
    ("hs_simclose", "receiver", "client", "CLOSING", "ESTABLISHED"): _HELD_FIN,
    ("hs_simclose", "receiver", "client", "FIN_WAIT_1", "ESTABLISHED"): _HELD_FIN,
    ("hs_simclose", "receiver", "client", "CLOSING", "TIME_WAIT"): _HELD_FIN,
    ("hs_simclose", "sender", "server", "CLOSING", "TIME_WAIT"): _HELD_FIN,
    ("hs_simclose", "sender", "server", "FIN_WAIT_1", "TIME_WAIT"): _HELD_FIN,
    ("hs_finwait2_rst", "sender", "client", "CLOSED", "FIN_WAIT_2"): _NO_PACKET + (
        ": tcp_fin_timeout ended FIN_WAIT_2; its bare RST later shows only that it had by then"),
    ("hs_finwait2_rst", "receiver", "client", "CLOSED", "FIN_WAIT_2"): _NO_PACKET + (
        ": tcp_fin_timeout ended FIN_WAIT_2; its bare RST later shows only that it had by then"),
    ("hs_syn_unanswered", "sender", "client", "CLOSED", "SYN_SENT"): _NO_PACKET + (
        ": connect() gave up silently after its last SYN"),
    ("hs_syn_scan", "sender", "client", "CLOSED", "SYN_SENT"): _RAW_SYN,
    ("hs_syn_scan", "receiver", "client", "CLOSED", "SYN_SENT"): _RAW_SYN,
    ("hs_ack_lost", "sender", "server", "SYN_RECEIVED", "ESTABLISHED"): (
        "the client's ACK of the resent SYN-ACK was dropped after the capture point, and nothing "
        "the server sent afterwards shows it (its data completed the handshake first)"),
}


@dataclass(frozen=True)
class Comparison:
    fixture: str
    capture: str
    flow: str
    sample: str
    side: str
    kernel: str
    shown: str

    @property
    def agrees(self) -> bool:
        return self.kernel == self.shown

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.fixture, self.capture, self.side, self.kernel, self.shown)


def _flow(c: dict) -> str:
    return f"{c['client']}:{c['client_port']}-{c['server']}:{c['server_port']}"


@cache
def compare(name: str) -> tuple[Comparison, ...]:
    t = load(name)
    out = []
    for cap in t.captures.values():
        a = tcpscope.analyze(str(cap.path))
        ts, stream = a.ts_ns, a.annotations["stream"]
        for conn in a.connection_dicts():
            rows = np.flatnonzero(stream == conn["stream"])
            key = _flow(conn)
            first, last = int(ts[rows[0]]), int(ts[rows[-1]])
            try:
                truth = t.conn(key, first)
            except KeyError:
                continue
            for smp in t.samples:
                if not smp.quiet or key not in smp.states or not truth.in_window(smp.t_ns):
                    continue
                if not first < smp.t_ns:
                    continue
                if smp.t_ns > last and not truth.in_window(last):
                    continue
                k = rows[np.searchsorted(ts[rows], smp.t_ns) - 1]
                shown = (State(int(a.client_state[k])).name, State(int(a.server_state[k])).name)
                for i, side in enumerate(("client", "server")):
                    kernel = smp.states[key][i]
                    if kernel is None:
                        continue
                    out.append(Comparison(name, cap.side, key, smp.label, side, kernel, shown[i]))
    return tuple(out)


def all_comparisons() -> list[Comparison]:
    return [c for n in names() for c in compare(n)]


if __name__ == "__main__":
    cs = all_comparisons()
    bad = [c for c in cs if not c.agrees]
    for c in bad:
        print(c)
    print(f"{len(cs) - len(bad)}/{len(cs)} agree")
