"""Expectations several experiments share: handshake, data, close, TIME_WAIT, flags."""
from __future__ import annotations

from .base import Expectation
from .checks import acked_by_peer, handshake, teardown
from .facts import Facts

__all__ = [
    "three_way", "isn_plus_one", "options_offered", "data_acked", "payloads", "close",
    "time_wait_side", "flagged", "not_flagged", "final_states", "backoff_verdict",
]

M32 = 1 << 32

_CLOSE_TEXT = {
    "4way": "a 4-packet close: {a}'s FIN, {b}'s ACK, later {b}'s FIN, {a}'s ACK (F., ., F., .)",
    "3way": "a 3-packet close: {a}'s FIN, then {b}'s FIN carrying the ACK of it, {a}'s ACK "
            "(F., F., .)",
    "half_close": "a half-close: {a} sends FIN and stops sending, {b} keeps sending data "
                  "(each ACKed by {a}), then closes",
    "simultaneous": "a simultaneous close: both FINs cross (each sent before its sender saw the "
                    "other's), then both ACKs",
    "rst_client": "the client aborts: RST, no FIN",
    "rst_server": "the server aborts: RST, no FIN",
}


def three_way(stream: int = 0) -> Expectation:
    def check(f: Facts) -> tuple[bool, str]:
        hs = handshake(f, stream)
        first = f.flag_sequence(stream)[:3]
        return hs.kind == "3way" and first == ["S", "S.", "."], \
            f"{hs.kind} ({' '.join(first)})"

    return Expectation("a 3-way handshake: the client's SYN, the server's SYN-ACK, the client's "
                       "ACK (S, S., .)", check)


def isn_plus_one(stream: int = 0) -> Expectation:
    def check(f: Facts) -> tuple[bool, str]:
        hs = handshake(f, stream)
        if not hs.syns or not hs.synacks or hs.completed_by is None:
            return False, f"handshake {hs.kind}"
        syn, synack, ack = hs.syns[0], hs.synacks[0], hs.completed_by
        ok = synack.ack == (syn.seq + 1) % M32 and ack.ack == (synack.seq + 1) % M32
        return ok, (f"client ISN {syn.seq}, SYN-ACK ack {synack.ack}; server ISN {synack.seq}, "
                    f"ACK ack {ack.ack}")

    return Expectation("the SYN-ACK acknowledges the client's ISN + 1 and the ACK the server's "
                       "ISN + 1 (a SYN consumes one sequence number)", check)


def options_offered(stream: int = 0) -> Expectation:
    def check(f: Facts) -> tuple[bool, str]:
        c = f.connection(stream)
        if c is None:
            return False, "no connection"
        seen = []
        ok = True
        for who in ("client", "server"):
            s = c[f"{who}_side"]
            ok &= bool(s["mss"]) and s["sack_permitted"] and s["timestamps"] \
                and s["wscale"] is not None
            seen.append(f"{who}: mss {s['mss']}, sack {s['sack_permitted']}, "
                        f"timestamps {s['timestamps']}, wscale {s['wscale']}")
        return ok, "; ".join(seen)

    return Expectation("both SYNs offer MSS, SACK-permitted, timestamps and window scaling "
                       "(Linux's defaults)", check)


def data_acked(stream: int = 0) -> Expectation:
    def check(f: Facts) -> tuple[bool, str]:
        data = [p for p in f.stream(stream) if p.len > 0]
        missing = [p.frame for p in data if acked_by_peer(f, p) is None]
        if not data:
            return False, "no data segments"
        return not missing, (f"{len(data)} data segments, "
                             + (f"not acknowledged: frames {missing}" if missing
                                else "each acknowledged (ack = seq + len)"))

    return Expectation("every data segment is acknowledged by the other side with "
                       "ack = its seq + its length", check)


def payloads(side: str, expected: list[bytes], stream: int = 0) -> Expectation:
    shown = ", ".join(repr(x.decode()) for x in expected)

    def check(f: Facts) -> tuple[bool, str]:
        got = [f.payload(p) for p in f.data(side, stream)]
        first = f.data(side, stream)[:1]
        where = f" (first at relative seq {first[0].rel_seq})" if first else ""
        return b"".join(got) == b"".join(expected), \
            ", ".join(repr(g.decode(errors="replace")) for g in got) + where

    return Expectation(f"the {side} sends {shown}", check)


def close(kind: str, closer: str | None, stream: int = 0) -> Expectation:
    other = {"client": "server", "server": "client"}.get(closer or "", "the other side")
    text = _CLOSE_TEXT[kind].format(a=f"the {closer}", b=f"the {other}")

    def check(f: Facts) -> tuple[bool, str]:
        td = teardown(f, stream)
        ok = td.kind == kind and (closer is None or td.first_closer in (closer, "both"))
        return ok, f"{td.kind}, first closer {td.first_closer}: {' '.join(td.flags()[:8])}"

    return Expectation(text, check)


def time_wait_side(side: str, stream: int = 0) -> Expectation:
    text = {"client": "the client, which closed first, is the side that ends in TIME_WAIT",
            "server": "the server, which closed first, is the side that ends in TIME_WAIT",
            "both": "both sides end in TIME_WAIT (each sent a FIN before receiving one)",
            "none": "no side ends in TIME_WAIT (a reset skips it)"}[side]

    def check(f: Facts) -> tuple[bool, str]:
        td = teardown(f, stream)
        lc = f.lifecycle(stream)
        finals = (f"; final states: client {lc.client_final.name}, server "
                  f"{lc.server_final.name}") if lc is not None else ""
        return td.time_wait_side == side, \
            f"TIME_WAIT side: {td.time_wait_side} ({td.kind}){finals}"

    return Expectation(text, check)


def final_states(client: str, server: str, stream: int = 0) -> Expectation:
    """The state machine's final states of both endpoints."""
    def check(f: Facts) -> tuple[bool, str]:
        lc = f.lifecycle(stream)
        if lc is None:
            return False, f"no connection {stream}"
        got = (lc.client_final.name, lc.server_final.name)
        return got == (client, server), f"client {got[0]}, server {got[1]}"

    return Expectation(f"tcpscope's state machine ends with the client in {client} and the "
                       f"server in {server}", check)


def backoff_verdict(which: str, verdict: str, stream_of, label: str) -> Expectation:
    """The lifecycle's backoff verdict (``syn`` / ``synack``) for a stream."""
    def check(f: Facts) -> tuple[bool, str]:
        n = stream_of(f)
        lc = f.lifecycle(n) if n is not None else None
        if lc is None:
            return False, "no lifecycle for that connection"
        got = getattr(lc, f"{which}_backoff")
        iv = ", ".join(f"{x:.2f}" for x in getattr(lc, f"{which}_intervals"))
        return got == verdict, (f"{got} ({getattr(lc, f'{which}_retries')} retries, "
                                f"intervals {iv} s)")

    name = "SYN" if which == "syn" else "SYN-ACK"
    return Expectation(f"tcpscope's lifecycle calls {label} {name} backoff `{verdict}`", check)


def flagged(flag: str, text: str, *, side: str | None = None, at_least: int = 1,
            stream: int | None = None) -> Expectation:
    def check(f: Facts) -> tuple[bool, str]:
        pkts = [p for p in f.flagged(flag, stream) if side is None or p.side == side]
        frames = ", ".join(str(p.frame) for p in pkts[:10]) + (" …" if len(pkts) > 10 else "")
        return len(pkts) >= at_least, f"{len(pkts)} {flag} ({'frames ' + frames if pkts else '-'})"

    return Expectation(text, check)


def not_flagged(flags: tuple[str, ...], text: str) -> Expectation:
    def check(f: Facts) -> tuple[bool, str]:
        pkts = [p for p in f.packets if any(p.has(x) for x in flags)]
        return not pkts, (f"flagged frames {[p.frame for p in pkts]}" if pkts
                          else f"none of {', '.join(flags)}")

    return Expectation(text, check)
