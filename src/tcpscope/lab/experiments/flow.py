"""Data in flight: a closed window, an idle connection kept alive, a lossy link."""
from __future__ import annotations

import socket
import threading
import time

from ..base import (
    SOCKET_TIMEOUT, Context, Expectation, Experiment, accept_one, answer_once,
    connect_when_ready, recv_exactly, register, wait_ready,
)
from ..checks import fmt_times, intervals_of, teardown
from ..expect import flagged, three_way
from ..facts import Facts
from ..relay import LossDelay, Relay
from ..setups import relayed

RCVBUF = 65536  # loss: a fixed receive buffer, so the window stops growing early


@register
class ZeroWindow(Experiment):
    name = "zero-window"
    title = "a receiver that stops reading: zero window, window probes, window update"
    needs_root = False
    does = """
    The server sets a 2 KB receive buffer (SO_RCVBUF) and does not read for 2 s while the
    client sends 12 000 bytes and closes. Then the server reads 4 KB every 10 ms. (In a lab
    namespace the loopback's MTU is set to 1500, so segments are Ethernet-sized.)
    """
    why = """
    The window a receiver advertises is the free space in its receive buffer. When the
    application stops reading, the buffer fills and the window goes to 0: the sender must
    stop (RFC 9293 §3.8.6.1). It then probes the window now and then with the persist timer,
    which backs off like the retransmission timer (about 0.2 s, then 0.4 s, 0.8 s here); Linux
    probes with a segment of no data and seq one below the next byte, which the receiver
    answers with an ACK still showing win 0. Such a probe is, for the receiver, a segment
    outside its window, and Linux answers those at most once per
    net.ipv4.tcp_invalid_ratelimit (500 ms): the probe that comes 0.4 s after an answered one
    goes unanswered (the sender does not mind: it keeps probing). When the application reads,
    the receiver announces the new window (a window update) and the sender resumes at once.
    """
    look_at = """
    `tcp.analysis.zero_window`, `tcp.analysis.zero_window_probe` (Wireshark calls Linux's
    zero-length probes keep-alives; tcpscope's improved mode names them probes), the `win`
    column, and `tcp.analysis.window_update`.
    """
    pause = 2.0  # the third probe comes at about 1.5 s
    total = 12_000

    def run(self, ctx: Context) -> None:
        place = ctx.loopback()
        host, port = place.host, ctx.port(place, 5000)
        if place.ns is not None:
            topo = ctx.need_topo()
            topo.cmd(["ip", "-n", place.ns, "link", "set", "dev", "lo", "mtu", "1500"])
            limit = topo.read_sysctl(place.ns, "net.ipv4.tcp_invalid_ratelimit")
        else:
            with open("/proc/sys/net/ipv4/tcp_invalid_ratelimit") as fh:
                limit = fh.read().strip()
        ctx.params["invalid_ratelimit"] = int(limit)
        ctx.params["sysctls_read"] = {"net.ipv4.tcp_invalid_ratelimit": limit}
        ctx.say(f"server: SO_RCVBUF 2048; listen on {host}:{port}; accept; do not read for "
                f"{self.pause} s; then read 4096 bytes every 10 ms until the end of stream; "
                "wait 0.3 s; close")
        ctx.say(f"client: connect; send {self.total} bytes; wait 0.1 s; close")
        ready = threading.Event()
        got: list[int] = []
        ctx.params["received"] = got

        def server() -> None:
            with accept_one(host, port, ready, rcvbuf=2048) as conn:
                time.sleep(self.pause)
                n = 0
                while chunk := conn.recv(4096):
                    n += len(chunk)
                    time.sleep(0.01)
                got.append(n)
                time.sleep(0.3)

        def client() -> None:
            with connect_when_ready(ready, host, port) as s:
                s.sendall(bytes(i % 256 for i in range(self.total)))
                time.sleep(0.1)

        ctx.run_on_loopback(place, port, server, client)

    def expectations(self, ctx: Context) -> list[Expectation]:
        limit = int(ctx.params.get("invalid_ratelimit", 500))

        def answers(f: Facts) -> tuple[bool, str]:
            probes = f.flagged("zero_window_probe")
            acks = f.flagged("zero_window_probe_ack")
            last, ok, seen = None, len(probes) >= 2, []
            for p in probes:
                answer = next((a for a in acks if a.frame > p.frame and a.t - p.t < 0.05), None)
                gap_ms = None if last is None else (p.t - last) * 1000
                due = gap_ms is None or gap_ms >= limit
                near = gap_ms is not None and abs(gap_ms - limit) < 30  # timer granularity
                ok &= near or (answer is not None) == due
                if answer is not None:
                    last = answer.t
                seen.append(f"probe {p.frame}: {'answered' if answer else 'no answer'}")
            return ok, "; ".join(seen)

        def backoff(f: Facts) -> tuple[bool, str]:
            probes = f.flagged("zero_window_probe")
            zw = f.flagged("zero_window")
            if not probes or not zw:
                return False, f"{len(probes)} probes"
            gaps = [probes[0].t - zw[0].t] + intervals_of(probes)
            ok = len(gaps) >= 3 and all(1.5 <= b / a <= 2.6 for a, b in zip(gaps, gaps[1:]))
            return ok, f"waits before each probe: {fmt_times(gaps)} s"

        def resumes(f: Facts) -> tuple[bool, str]:
            ups = [p for p in f.flagged("window_update") if p.side == "server"]
            if not ups:
                return False, "no window update"
            nxt = next((p for p in f.stream(0) if p.side == "client" and p.len > 0
                        and p.frame > ups[0].frame), None)
            if nxt is None:
                return False, "no data after the window update"
            return nxt.t - ups[0].t < 0.05, (f"window update (win {ups[0].win_scaled}) at frame "
                                             f"{ups[0].frame}, data {1000 * (nxt.t - ups[0].t):.1f}"
                                             " ms later")

        def all_bytes(f: Facts) -> tuple[bool, str]:
            c = f.connection(0)
            sent = c["client_side"]["bytes"] if c else 0
            got = ctx.params.get("received", [0])
            return sent == self.total and got == [self.total], \
                f"{sent} bytes in the capture, the server read {got[0] if got else 0}"

        return [
            three_way(),
            flagged("zero_window", "the receiver's buffer fills and it advertises a zero "
                    "window (tcpscope: zero_window)", side="server"),
            flagged("zero_window_probe", "the sender probes the closed window "
                    "(tcpscope: zero_window_probe)", side="client", at_least=3),
            Expectation(f"the receiver answers a probe with win 0 (tcpscope: "
                        f"zero_window_probe_ack) — but at most once per {limit} ms "
                        "(net.ipv4.tcp_invalid_ratelimit: a probe is an out-of-window "
                        "segment), so a probe that follows an answer sooner gets none",
                        answers),
            Expectation("the probes back off: each wait about twice the one before (the "
                        "persist timer)", backoff),
            Expectation("when the server reads, a window update reopens the window and the "
                        "sender resumes at once", resumes),
            Expectation(f"all {self.total} bytes get through", all_bytes),
        ]


@register
class Keepalive(Experiment):
    name = "keepalive"
    title = "TCP keep-alive probes on an idle connection, and their ACKs"
    needs_root = False
    does = """
    The client turns on SO_KEEPALIVE with TCP_KEEPIDLE = 1 s, TCP_KEEPINTVL = 1 s and
    TCP_KEEPCNT = 3, sends one request, reads the reply and then stays silent for 2.5 s
    before closing.
    """
    why = """
    Keep-alive (RFC 1122 §4.2.3.6) checks that an idle peer is still there: after
    TCP_KEEPIDLE seconds without traffic the kernel sends a segment with no data and seq one
    below the next byte, which the peer must acknowledge (it is "old" data). While the
    connection stays idle, a probe follows every TCP_KEEPINTVL seconds; after TCP_KEEPCNT
    unanswered probes the connection would be reset. Linux's defaults are 2 hours, 75 s, 9
    (net.ipv4.tcp_keepalive_time / _intvl / _probes); the socket options set them per socket.
    """
    look_at = "`tcp.analysis.keep_alive` and `tcp.analysis.keep_alive_ack`, 1 s apart."
    idle = 2.5

    def run(self, ctx: Context) -> None:
        place = ctx.loopback()
        host, port = place.host, ctx.port(place, 5000)
        ctx.say(f"server: listen on {host}:{port}; accept; read b'request\\n'; send b'reply\\n'; "
                "read to end of stream; close")
        ctx.say("client: SO_KEEPALIVE on, TCP_KEEPIDLE 1, TCP_KEEPINTVL 1, TCP_KEEPCNT 3; "
                f"connect; send b'request\\n'; read the reply; stay idle {self.idle} s; close")
        ready = threading.Event()

        def server() -> None:
            with accept_one(host, port, ready) as conn:
                answer_once(conn, 8, b"reply\n")

        def client() -> None:
            wait_ready(ready)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            with s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
                s.settimeout(SOCKET_TIMEOUT)
                s.connect((host, port))
                s.sendall(b"request\n")
                recv_exactly(s, 6)
                time.sleep(self.idle)

        ctx.run_on_loopback(place, port, server, client)

    def expectations(self, ctx: Context) -> list[Expectation]:
        def timing(f: Facts) -> tuple[bool, str]:
            probes = [p for p in f.flagged("keep_alive") if p.side == "client"]
            if not probes:
                return False, "no keep-alive"
            before = [p for p in f.stream(0) if p.frame < probes[0].frame]
            gaps = [probes[0].t - before[-1].t] + intervals_of(probes)
            ok = len(probes) == 2 and all(abs(g - 1.0) < 0.15 for g in gaps)
            return ok, (f"{len(probes)} probes; first {gaps[0]:.2f} s after the last packet, "
                        f"then every {fmt_times(gaps[1:]) or '-'} s")

        def shape(f: Facts) -> tuple[bool, str]:
            probes = [p for p in f.flagged("keep_alive") if p.side == "client"]
            seen, ok = [], bool(probes)
            for probe in probes:
                nxt = max((p.rel_seq + p.len for p in f.stream(0)
                           if p.side == "client" and p.frame < probe.frame and not p.syn),
                          default=1)
                ok &= probe.len <= 1 and probe.rel_seq == nxt - 1
                seen.append(f"frame {probe.frame}: seq {probe.rel_seq} (next byte {nxt}), "
                            f"len {probe.len}")
            return ok, "; ".join(seen)

        def intact(f: Facts) -> tuple[bool, str]:
            td = teardown(f, 0)
            return td.kind in ("4way", "3way"), f"ends with a {td.kind} close"

        return [
            three_way(),
            flagged("keep_alive", "after 1 s of silence (TCP_KEEPIDLE) the client sends a "
                    "keep-alive probe (tcpscope: keep_alive)", side="client", at_least=2),
            Expectation("a probe carries no new data: seq is one below the next byte",
                        shape),
            flagged("keep_alive_ack", "the server acknowledges each probe (tcpscope: "
                    "keep_alive_ack)", side="server", at_least=2),
            Expectation("first probe 1 s after the last packet, then one every TCP_KEEPINTVL = "
                        "1 s while idle", timing),
            Expectation("the connection is unharmed and closes normally", intact),
        ]


@register
class Loss(Experiment):
    name = "loss"
    title = "a bulk transfer over a lossy, delayed link: retransmissions, dup ACKs, SACK"
    does = """
    The client sends 400 000 bytes to the server across a relay (a third namespace) that
    delays every frame by 5 ms each way (10 ms round trip) and drops data segments on the way
    to the server: the 30th, and each other new data segment with probability 2 % (drawn with a
    fixed seed, so the plan is the same on every run; only first transmissions are dropped).
    Both sockets use CUBIC congestion control; the server's receive buffer is fixed at 64 KB
    (SO_RCVBUF); the client's namespace has net.ipv4.tcp_recovery = 0 (RACK off). Captured at
    the sender (client's c0).
    """
    why = """
    A lost segment leaves a hole at the receiver, which acknowledges only up to the hole:
    every later segment brings the same ACK again — duplicate ACKs — each with SACK blocks
    (RFC 2018) saying which data beyond the hole did arrive. The sender does not wait for its
    retransmission timer: after three duplicate ACKs (RFC 5681 fast retransmit; with SACK,
    Linux counts the segments SACKed beyond the hole) it resends the missing segment at once,
    enters recovery and reduces its congestion window. The SACK scoreboard lets it resend only
    what is missing.

    Two settings make the capture read like the textbook, and both are the kernel's real
    behaviour when changed back: with RACK on (Linux's default, RFC 8985), the sender resends
    as soon as a SACK shows that a segment sent later has arrived and a quarter of an RTT has
    passed — here after the first duplicate ACK, which Wireshark then calls a plain
    retransmission. And with receive-buffer autotuning the receiver's window keeps growing
    during the recovery, so its repeated ACKs differ in their window and Wireshark's rules
    call them window updates instead of duplicate ACKs.
    """
    look_at = """
    Statistics > TCP Stream Graphs > Stevens / tcptrace: the holes and their repair;
    `tcp.analysis.retransmission`, `tcp.analysis.fast_retransmission`,
    `tcp.analysis.duplicate_ack` and `tcp.options.sack_le` / `sack_re`.
    """
    listing_limit = 30
    total = 400_000

    def run(self, ctx: Context) -> None:
        topo = ctx.need_topo()
        h = relayed(topo)
        topo.sysctl(h.client, "net.ipv4.tcp_recovery", 0)
        policy = LossDelay(delay=0.005, rate=0.02, drop_nth=frozenset({30}), seed=7)
        relay = Relay(policy, "mc", "ms", max_seconds=15)
        ctx.params["relay"] = relay
        ctx.say("relay (middle namespace): forward every frame between mc and ms 5 ms late; "
                "drop the client's 30th new data segment and each other new data segment with "
                "probability 0.02 (random.Random(7))")
        ctx.say(f"server: SO_RCVBUF {RCVBUF}; listen on {h.server_ip}:5000; accept; read until "
                "the end of stream; close")
        ctx.say(f"client: TCP_CONGESTION cubic; connect; send {self.total} bytes; close")
        ready = threading.Event()
        got: list[int] = []
        ctx.params["received"] = got

        def cubic(s: socket.socket) -> None:
            try:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
            except OSError:
                pass  # the kernel's default congestion control then

        def server() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as ls:
                ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                cubic(ls)
                ls.bind((h.server_ip, 5000))
                ls.listen(1)
                ls.settimeout(SOCKET_TIMEOUT)
                ready.set()
                conn, _ = ls.accept()
                with conn:
                    conn.settimeout(SOCKET_TIMEOUT)
                    n = 0
                    while chunk := conn.recv(65536):
                        n += len(chunk)
                    got.append(n)

        def client() -> None:
            wait_ready(ready)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            with s:
                cubic(s)
                s.settimeout(SOCKET_TIMEOUT)
                s.connect((h.server_ip, 5000))
                s.sendall(bytes(i % 251 for i in range(self.total)))

        with ctx.relaying(relay, h.middle), ctx.capture("c0", "tcp port 5000", ns=h.client):
            ctx.run_programs((h.server, server), (h.client, client))
        drops = [e for e in relay.log if e["action"] == "drop"]
        ctx.kernel_notes.append(
            f"the relay dropped {len(drops)} data segments (relative seq "
            + ", ".join(str(e["rel_seq"]) for e in drops) + f") of {relay.frames} frames")

    def expectations(self, ctx: Context) -> list[Expectation]:
        def repaired(f: Facts) -> tuple[bool, str]:
            relay = ctx.params.get("relay")
            drops = [e for e in (relay.log if relay else []) if e["action"] == "drop"]
            retx = [p for p in f.flagged("retransmission") if p.side == "client"]
            missing = [e["rel_seq"] for e in drops
                       if not any(p.rel_seq <= e["rel_seq"] < p.rel_seq + p.len for p in retx)]
            ok = bool(drops) and not missing
            return ok, (f"{len(drops)} dropped by the relay, {len(retx)} retransmissions "
                        f"flagged" + (f"; not resent: {missing}" if missing else
                                      ", every dropped range resent"))

        def sacked_dups(f: Facts) -> tuple[bool, str]:
            dups = [p for p in f.flagged("duplicate_ack") if p.side == "server"]
            with_sack = [p for p in dups if p.sack_blocks > 0]
            return bool(dups) and len(with_sack) == len(dups), \
                f"{len(dups)} duplicate ACKs, {len(with_sack)} with SACK blocks"

        def sack_ok(f: Facts) -> tuple[bool, str]:
            c = f.connection(0)
            ok = bool(c) and c["client_side"]["sack_permitted"] and \
                c["server_side"]["sack_permitted"]
            return ok, "SACK permitted by both" if ok else "SACK not negotiated"

        def delivered(f: Facts) -> tuple[bool, str]:
            got = ctx.params.get("received", [0])
            last_ack = max((p.rel_ack for p in f.stream(0) if p.side == "server"), default=0)
            return got == [self.total] and last_ack >= self.total + 1, \
                (f"the server read {got[0] if got else 0} bytes; its highest ACK: "
                 f"{last_ack}")

        return [
            three_way(),
            Expectation("SACK is negotiated on the handshake (sackOK both ways)", sack_ok),
            Expectation("every segment the relay dropped is sent again (tcpscope: "
                        "retransmission)", repaired),
            Expectation("the receiver repeats its ACK for the missing byte — duplicate ACKs, "
                        "each with SACK blocks for what arrived beyond the hole", sacked_dups),
            flagged("fast_retransmission", "at least one fast retransmission: resent right "
                    "after duplicate ACKs, not after a timeout (tcpscope: fast_retransmission)",
                    side="client"),
            Expectation(f"all {self.total} bytes are delivered", delivered),
        ]
