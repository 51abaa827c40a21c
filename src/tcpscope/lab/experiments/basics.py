"""The first experiments: a server and a client on loopback, tcpdump running."""
from __future__ import annotations

import errno
import socket
import threading
import time

from ..base import (
    SOCKET_TIMEOUT, Context, Expectation, Experiment, accept_one, answer_once,
    connect_when_ready, recv_exactly, register,
)
from ..checks import handshake
from ..expect import (
    close, data_acked, final_states, isn_plus_one, not_flagged, options_offered, payloads,
    three_way, time_wait_side,
)
from ..facts import Facts

DELACK_PAUSE = 0.3  # longer than Linux's delayed-ACK timer (40-200 ms): a separate ACK


@register
class Handshake(Experiment):
    name = "handshake"
    title = "the classic first experiment: Welcome! / Hello, name!"
    needs_root = False
    does = """
    A server on 127.0.0.1:5000 sends `Welcome!` as soon as a client connects and answers
    each name it receives with `Hello, <name>!`. The client reads the welcome, sends `Alice`
    and `Bob` (reading each answer), sends `exit` and closes; the server reads the end of
    the stream and closes 0.3 s later. tcpdump records it all on the loopback interface.
    """
    why = """
    This is the experiment every TCP course starts with: the 3-way handshake chooses each
    side's initial sequence number (ISN) and negotiates options; every byte of data is then
    numbered, and acknowledged with ack = seq + length; each side closes its direction with a
    FIN, which, like the SYN, consumes one sequence number. The server waits longer than the
    delayed-ACK timer before closing, so its ACK of the client's FIN goes out alone: the
    textbook 4-packet close. The side that closes first (the client) ends in TIME_WAIT.
    """
    look_at = """
    In Wireshark: Statistics > Flow Graph; the columns `tcp.seq`, `tcp.ack`, `tcp.len`;
    Analyze > Follow > TCP Stream for the text. `tcpscope read -S` shows the absolute numbers.
    """

    def run(self, ctx: Context) -> None:
        place = ctx.loopback()
        host, port = place.host, ctx.port(place, 5000)
        ctx.params["port"] = port
        names = (b"Alice", b"Bob")
        ctx.say(f"server: listen on {host}:{port}; on accept send b'Welcome!'; answer each "
                "name with b'Hello, <name>!' until b'exit'; read to end of stream; wait 0.3 s; "
                "close")
        ctx.say("client: connect; read the welcome; for Alice and Bob: wait 0.1 s, send the "
                "name, read the answer; wait 0.1 s, send b'exit'; wait 0.1 s; close")
        ready = threading.Event()

        def server() -> None:
            with accept_one(host, port, ready) as conn:
                conn.sendall(b"Welcome!")
                while True:
                    data = conn.recv(1024)
                    if not data or data == b"exit":
                        break
                    conn.sendall(b"Hello, " + data + b"!")
                while data:
                    data = conn.recv(1024)
                time.sleep(DELACK_PAUSE)

        def client() -> None:
            with connect_when_ready(ready, host, port) as s:
                if recv_exactly(s, 8) != b"Welcome!":
                    raise RuntimeError("no welcome")
                for name in names:
                    time.sleep(0.1)
                    s.sendall(name)
                    want = b"Hello, " + name + b"!"
                    if recv_exactly(s, len(want)) != want:
                        raise RuntimeError("wrong answer")
                time.sleep(0.1)
                s.sendall(b"exit")
                time.sleep(0.1)

        ctx.run_on_loopback(place, port, server, client)

    def expectations(self, ctx: Context) -> list[Expectation]:
        return [
            three_way(),
            isn_plus_one(),
            options_offered(),
            payloads("server", [b"Welcome!", b"Hello, Alice!", b"Hello, Bob!"]),
            payloads("client", [b"Alice", b"Bob", b"exit"]),
            data_acked(),
            close("4way", "client"),
            time_wait_side("client"),
            final_states("TIME_WAIT", "CLOSED"),
            not_flagged(("retransmission", "duplicate_ack", "lost_segment"),
                        "nothing lost, nothing repeated: no retransmissions or duplicate ACKs"),
        ]


def _exchange_then_close(ctx: Context, *, server_linger: float) -> None:
    """Client sends ABCDEF, server answers ABCDEFGH; client closes after a pause; the
    server closes `server_linger` s after reading the end of the stream."""
    place = ctx.loopback()
    host, port = place.host, ctx.port(place, 5000)
    ctx.params["port"] = port
    ctx.say(f"server: listen on {host}:{port}; accept; read 6 bytes; send b'ABCDEFGH'; read to "
            f"end of stream; " + (f"wait {server_linger} s; close" if server_linger
                                  else "close at once"))
    ctx.say("client: connect; send b'ABCDEF'; read 8 bytes; wait 0.2 s; close")
    ready = threading.Event()

    def server() -> None:
        with accept_one(host, port, ready) as conn:
            answer_once(conn, 6, b"ABCDEFGH", server_linger)

    def client() -> None:
        with connect_when_ready(ready, host, port) as s:
            s.sendall(b"ABCDEF")
            recv_exactly(s, 8)
            time.sleep(0.2)

    ctx.run_on_loopback(place, port, server, client)


def _numbers(f: Facts) -> tuple[bool, str]:
    """Client data at 1:7 acked with 7, server data at 1:9 acked with 9."""
    c = [p for p in f.data("client")]
    s = [p for p in f.data("server")]
    if len(c) != 1 or len(s) != 1:
        return False, f"{len(c)} client and {len(s)} server data segments"
    cp, sp = c[0], s[0]
    acks_c = [p.rel_ack for p in f.stream(0) if p.from_server and p.frame > cp.frame][:1]
    acks_s = [p.rel_ack for p in f.stream(0) if not p.from_server and p.frame > sp.frame][:1]
    ok = (cp.rel_seq, cp.len, sp.rel_seq, sp.len) == (1, 6, 1, 8) and acks_c == [7] \
        and acks_s == [9]
    return ok, (f"client seq {cp.rel_seq}:{cp.rel_seq + cp.len} acked with {acks_c}, "
                f"server seq {sp.rel_seq}:{sp.rel_seq + sp.len} acked with {acks_s}")


@register
class RequestReply(Experiment):
    name = "request-reply"
    title = "ABCDEF / ABCDEFGH, then a 4-packet close"
    needs_root = False
    does = """
    The client sends `ABCDEF` (6 bytes); the server answers `ABCDEFGH` (8 bytes). The client
    closes 0.2 s later; the server reads the end of the stream and closes 0.3 s after that.
    """
    why = """
    Relative sequence numbers start at 1 after the SYN: the client's 6 bytes are 1:7 and the
    server acknowledges 7; the server's 8 bytes are 1:9 and the client acknowledges 9. At the
    start of a connection Linux acknowledges data at once (quick-ACK mode), so the request's
    ACK is a segment of its own rather than riding on the answer. The ACK of the client's FIN
    waits for the delayed-ACK timer (about 40 ms here), and the server's own FIN follows
    0.3 s after it read the end of the stream: four packets.
    """
    look_at = "`tcp.seq`, `tcp.nxtseq`, `tcp.ack`: each ack is the next byte expected."

    def run(self, ctx: Context) -> None:
        _exchange_then_close(ctx, server_linger=DELACK_PAUSE)

    def expectations(self, ctx: Context) -> list[Expectation]:
        return [
            three_way(),
            payloads("client", [b"ABCDEF"]),
            payloads("server", [b"ABCDEFGH"]),
            Expectation("the client's 6 bytes are seq 1:7 and acknowledged with 7; the "
                        "server's 8 bytes are 1:9 and acknowledged with 9", _numbers),
            close("4way", "client"),
            time_wait_side("client"),
        ]


@register
class CloseThree(Experiment):
    name = "close-3"
    title = "the server closes at once: FIN and ACK merge, a 3-packet close"
    needs_root = False
    does = """
    As request-reply, but the server closes as soon as it reads the end of the stream, before
    its delayed-ACK timer fires.
    """
    why = """
    The ACK of the client's FIN is delayed (Linux's delayed-ACK timer, at least 40 ms); the
    server closes before it fires, so its FIN carries that ACK: FIN, FIN+ACK, ACK. Nothing is
    skipped: the server's single segment does both jobs.
    """
    look_at = "The second FIN's `tcp.ack` is the first FIN's seq + 1."

    def run(self, ctx: Context) -> None:
        _exchange_then_close(ctx, server_linger=0)

    def expectations(self, ctx: Context) -> list[Expectation]:
        return [three_way(), close("3way", "client"), time_wait_side("client"),
                final_states("TIME_WAIT", "CLOSED")]


@register
class Refused(Experiment):
    name = "refused"
    title = "SYN to a closed port: RST/ACK back"
    needs_root = False
    does = """
    The client connects to 127.0.0.1:5001, where nothing listens.
    """
    why = """
    A SYN for a port with no listener is answered with a reset (RFC 9293 §3.10.7.1: the
    segment had no ACK, so the RST has seq 0 and acknowledges the SYN: ack = ISN + 1, flags
    RST+ACK). connect() fails at once with ECONNREFUSED; nothing is retransmitted.
    """
    look_at = "`tcp.flags.reset == 1`; Wireshark's Expert Info lists the RST."

    def run(self, ctx: Context) -> None:
        place = ctx.loopback()
        host, port = place.host, ctx.port(place, 5001)
        ctx.params["port"] = port
        ctx.say(f"client: connect to {host}:{port} (nothing listens there)")

        def client() -> None:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(SOCKET_TIMEOUT)
            try:
                err = s.connect_ex((host, port))
            finally:
                s.close()
            ctx.params["connect_errno"] = err

        ctx.run_on_loopback(place, port, client)

    def expectations(self, ctx: Context) -> list[Expectation]:
        def s_then_r(f: Facts) -> tuple[bool, str]:
            seq = f.flag_sequence(0)
            return seq == ["S", "R."], " ".join(seq)

        def rst_numbers(f: Facts) -> tuple[bool, str]:
            pk = f.stream(0)
            if len(pk) != 2:
                return False, f"{len(pk)} packets"
            syn, rst = pk
            ok = rst.seq == 0 and rst.ack == (syn.seq + 1) % (1 << 32)
            return ok, f"SYN seq {syn.seq}; RST seq {rst.seq} ack {rst.ack}"

        def refused(f: Facts) -> tuple[bool, str]:
            err = ctx.params.get("connect_errno")
            return err == errno.ECONNREFUSED, \
                f"connect() returned {errno.errorcode.get(err, err) if err else 'success'}"

        def classified(f: Facts) -> tuple[bool, str]:
            hs = handshake(f, 0)
            return hs.kind == "rejected", f"handshake: {hs.kind}"

        return [
            Expectation("the SYN is answered by a reset: S, R. — and nothing more", s_then_r),
            Expectation("the RST has seq 0 and acknowledges the SYN (ack = ISN + 1)",
                        rst_numbers),
            Expectation("tcpscope classifies the attempt as rejected", classified),
            Expectation("connect() fails at once with ECONNREFUSED", refused, source="program"),
        ]
