"""Ways to end a connection: half-close, simultaneous close, abort, and TIME_WAIT."""
from __future__ import annotations

import errno
import re
import socket
import struct
import threading
import time

from ..base import (
    SOCKET_TIMEOUT, Context, Expectation, Experiment, accept_one, answer_once,
    connect_when_ready, recv_exactly, register,
)
from ..checks import teardown
from ..expect import close, final_states, three_way, time_wait_side
from ..facts import Facts
from ..relay import HoldFins, Relay
from ..setups import relayed


def _ss_lines(text: str, state: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.split()[:1] == [state]]


@register
class HalfClose(Experiment):
    name = "half-close"
    title = "the client shuts down its sending side; the server keeps sending"
    needs_root = False
    does = """
    The client sends `send 3` and calls shutdown(SHUT_WR): its FIN says "no more data from
    me", but it keeps reading. The server reads the request and the end of the stream, then
    still sends `part 1`, `part 2`, `part 3` (50 ms apart) before it closes.
    """
    why = """
    A FIN closes one direction only (RFC 9293 §3.6: "CLOSE ... means I have no more to send").
    The client is in FIN_WAIT_2 and the server in CLOSE_WAIT while data keeps flowing from
    server to client, each segment acknowledged by the client. The connection ends when the
    server closes its direction too; the client, which closed first, ends in TIME_WAIT.
    """
    look_at = "The server's data segments after the client's FIN; `tcp.flags.fin == 1`."

    def run(self, ctx: Context) -> None:
        place = ctx.loopback()
        host, port = place.host, ctx.port(place, 5000)
        ctx.say(f"server: listen on {host}:{port}; accept; read b'send 3\\n'; read the end of "
                "stream; send b'part 1..3\\n' 50 ms apart; wait 0.3 s; close")
        ctx.say("client: connect; send b'send 3\\n'; wait 50 ms; shutdown(SHUT_WR); read until "
                "end of stream; close")
        ready = threading.Event()
        got: list[bytes] = []
        ctx.params["received"] = got

        def server() -> None:
            with accept_one(host, port, ready) as conn:
                recv_exactly(conn, len(b"send 3\n"))
                if conn.recv(1) != b"":
                    raise RuntimeError("expected the client's FIN")
                for i in (1, 2, 3):
                    time.sleep(0.05)
                    conn.sendall(b"part %d\n" % i)
                time.sleep(0.3)

        def client() -> None:
            with connect_when_ready(ready, host, port) as s:
                s.sendall(b"send 3\n")
                time.sleep(0.05)
                s.shutdown(socket.SHUT_WR)
                while chunk := s.recv(1024):
                    got.append(chunk)

        ctx.run_on_loopback(place, port, server, client)

    def expectations(self, ctx: Context) -> list[Expectation]:
        def after_fin(f: Facts) -> tuple[bool, str]:
            td = teardown(f, 0)
            fin = td.fins.get("client")
            if fin is None:
                return False, "no FIN from the client"
            data = [p for p in f.stream(0) if p.side == "server" and p.len > 0
                    and p.frame > fin.frame]
            acked = [p for p in data if any(q.side == "client" and q.frame > p.frame
                                            and q.rel_ack >= p.rel_seq + p.len
                                            for q in f.stream(0))]
            return len(data) == 3 and len(acked) == 3, \
                f"{len(data)} server data segments after the client's FIN, {len(acked)} ACKed"

        def received(f: Facts) -> tuple[bool, str]:
            data = b"".join(ctx.params.get("received", []))
            return data == b"part 1\npart 2\npart 3\n", f"the client read {data!r}"

        return [
            three_way(),
            close("half_close", "client"),
            final_states("TIME_WAIT", "CLOSED"),
            Expectation("after the client's FIN the server still sends its 3 parts, each "
                        "acknowledged by the client", after_fin),
            time_wait_side("client"),
            Expectation("the client reads everything after its shutdown(SHUT_WR)", received,
                        source="program"),
        ]


@register
class SimultaneousClose(Experiment):
    name = "simultaneous-close"
    title = "both sides close at once: the FINs cross, both end in TIME_WAIT"
    does = """
    Client (10.200.1.1) and server (10.200.1.2) sit on one Ethernet segment with a relay in
    the middle (a third namespace). After one request/reply both programs meet at a barrier and
    call shutdown(SHUT_WR) together. The relay holds each side's first FIN until the other
    side's FIN has arrived too, then lets both go: each FIN was sent before its sender saw the
    other's. Captured on the client's interface; `ss -tan -o` runs in both namespaces.
    """
    why = """
    RFC 9293 §3.6 case 3: both sides send FIN "simultaneously". Each goes ESTABLISHED ->
    FIN_WAIT_1, receives the other's FIN there (-> CLOSING) and acknowledges it; when its own
    FIN is acknowledged it goes to TIME_WAIT. So both ends, not one, wait in TIME_WAIT. On a
    real network the crossing needs both closes within one one-way delay; the relay makes it
    certain here (without it, on a fast link, one FIN almost always arrives first).
    """
    look_at = """
    Two FINs in a row, the second one's `tcp.ack` not covering the first FIN; then two ACKs.
    """

    def run(self, ctx: Context) -> None:
        topo = ctx.need_topo()
        h = relayed(topo)
        ctx.say("relay (in the middle namespace): forward every frame between mc and ms; hold "
                "each side's first FIN until the other side's FIN has arrived, then send both")
        ctx.say(f"server: listen on {h.server_ip}:5000; accept; read b'request\\n', send "
                "b'reply\\n'; wait at the barrier; shutdown(SHUT_WR); read to end of stream; "
                "close")
        ctx.say("client: connect; send b'request\\n'; read the reply; wait at the barrier; "
                "shutdown(SHUT_WR); read to end of stream; close")
        relay = Relay(HoldFins(max_hold=1.0), "mc", "ms", max_seconds=15)
        ctx.params["relay"] = relay
        ready = threading.Event()
        barrier = threading.Barrier(2, timeout=SOCKET_TIMEOUT)

        def both_close(sock: socket.socket) -> None:
            barrier.wait()
            sock.shutdown(socket.SHUT_WR)
            if sock.recv(1) != b"":
                raise RuntimeError("data after the FIN")

        def server() -> None:
            with accept_one(h.server_ip, 5000, ready) as conn:
                recv_exactly(conn, 8)
                conn.sendall(b"reply\n")
                both_close(conn)

        def client() -> None:
            with connect_when_ready(ready, h.server_ip, 5000) as s:
                s.sendall(b"request\n")
                recv_exactly(s, 6)
                time.sleep(0.05)
                both_close(s)

        with ctx.relaying(relay, h.middle), ctx.capture("c0", "tcp port 5000", ns=h.client):
            ctx.run_programs((h.server, server), (h.client, client))
            time.sleep(0.1)
            ctx.ss_once(h.server, "ss_server", ["-tan", "-o"])
            ctx.ss_once(h.client, "ss_client", ["-tan", "-o"])

    def expectations(self, ctx: Context) -> list[Expectation]:
        def relay_held(f: Facts) -> tuple[bool, str]:
            relay = ctx.params.get("relay")
            holds = [e for e in (relay.log if relay else []) if e["action"] == "hold"]
            ok = len(holds) == 2 and {e["dir"] for e in holds} == {"c2s", "s2c"} and \
                not any(e.get("released_by_timeout") for e in holds)
            shown = "; ".join(f"{e['dir']} FIN held {e['released'] - e['t']:.4f} s"
                              for e in holds if "released" in e)
            return ok, shown or "no FIN held"

        def both_tw(f: Facts) -> tuple[bool, str]:
            seen = []
            for key in ("ss_server", "ss_client"):
                samples = f.kernel.get(key, [])
                last = samples[-1][1] if samples else ""
                seen.append(f"{key[3:]}: {len(_ss_lines(last, 'TIME-WAIT'))} TIME-WAIT")
            return all(s.endswith(" 1 TIME-WAIT") for s in seen), ", ".join(seen)

        return [
            three_way(),
            Expectation("the relay held each side's first FIN until the other's arrived, then "
                        "sent both", relay_held, source="program"),
            close("simultaneous", None),
            time_wait_side("both"),
            final_states("TIME_WAIT", "TIME_WAIT"),
            Expectation("`ss` shows a TIME-WAIT socket in both namespaces", both_tw,
                        source="kernel"),
        ]


@register
class RstAbort(Experiment):
    name = "rst-abort"
    title = "SO_LINGER 0: close() aborts with RST, no FIN, no TIME_WAIT"
    needs_root = False
    does = """
    After one request/reply the client sets SO_LINGER {on, 0 s} and closes its socket. The
    server, waiting to read, gets ECONNRESET.
    """
    why = """
    With a zero linger time, close() aborts the connection (RFC 9293 §3.10.4 ABORT): the
    kernel discards anything unsent and sends a RST instead of a FIN, and the socket is gone at
    once — no FIN_WAIT, no TIME_WAIT. The peer's next read fails with "connection reset by
    peer". Handy to free a port at once, dangerous for data in flight.
    """
    look_at = "`tcp.flags.reset == 1`: one R. from the client and no FIN anywhere."

    def run(self, ctx: Context) -> None:
        place = ctx.loopback()
        host, port = place.host, ctx.port(place, 5000)
        ctx.say(f"server: listen on {host}:{port}; accept; read b'request\\n'; send b'reply\\n'; "
                "read again (fails with ECONNRESET)")
        ctx.say("client: connect; send b'request\\n'; read the reply; wait 50 ms; "
                "setsockopt(SO_LINGER, on, 0 s); close")
        ready = threading.Event()
        server_error: list[int] = []
        ctx.params["server_error"] = server_error

        def server() -> None:
            with accept_one(host, port, ready) as conn:
                recv_exactly(conn, 8)
                conn.sendall(b"reply\n")
                try:
                    conn.recv(1024)
                except ConnectionResetError as exc:
                    server_error.append(exc.errno)

        def client() -> None:
            s = connect_when_ready(ready, host, port)
            s.sendall(b"request\n")
            recv_exactly(s, 6)
            ctx.params["client_port"] = s.getsockname()[1]
            time.sleep(0.05)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()

        ctx.run_on_loopback(place, port, server, client)
        ctx.ss_once(place.ns, "ss_after", ["-tan", "state", "time-wait"])

    def expectations(self, ctx: Context) -> list[Expectation]:
        def no_fin(f: Facts) -> tuple[bool, str]:
            fins = [p.frame for p in f.packets if p.fin]
            rsts = [f"{p.flags} from the {p.side}" for p in f.packets if p.rst]
            return not fins and len(rsts) == 1, \
                f"FINs: {fins or 'none'}; resets: {', '.join(rsts) or 'none'}"

        def reset_seen(f: Facts) -> tuple[bool, str]:
            errs = ctx.params.get("server_error", [])
            return errs == [errno.ECONNRESET], \
                f"server recv(): {', '.join(errno.errorcode[e] for e in errs) or 'no error'}"

        def no_tw(f: Facts) -> tuple[bool, str]:
            samples = f.kernel.get("ss_after", [])
            text = samples[-1][1] if samples else ""
            port = ctx.params.get("client_port")
            hits = [ln for ln in text.splitlines() if f":{port} " in ln + " "]
            return not hits, (f"TIME-WAIT sockets for the client's port {port}: "
                              f"{len(hits)}")

        return [
            three_way(),
            close("rst_client", "client"),
            Expectation("no FIN at all: the connection ends with the single RST", no_fin),
            time_wait_side("none"),
            final_states("CLOSED", "CLOSED"),
            Expectation("the server's read fails with ECONNRESET", reset_seen, source="program"),
            Expectation("`ss` shows no TIME-WAIT socket for the client's port afterwards",
                        no_tw, source="kernel"),
        ]


def tw_remaining(line: str) -> float | None:
    """The TIME-WAIT timer's remaining seconds in one `ss -o` line."""
    m = re.search(r"timer:\(timewait,([^,]+),", line)
    if not m:
        return None
    total, text = 0.0, m.group(1)
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(min|sec|ms)", text):
        total += float(value) * {"min": 60, "sec": 1, "ms": 0.001}[unit]
    return total


@register
class TimeWait(Experiment):
    name = "time-wait"
    title = "the active closer waits in TIME_WAIT (60 s on Linux)"
    needs_root = False
    does = """
    One request/reply; the client closes first, the server 0.3 s later. Then `ss -tan -o
    state time-wait` is sampled at 0.1 s and 1.1 s after the close, and the client's local
    port is tried: bind() without SO_REUSEADDR fails while the TIME_WAIT socket exists.
    """
    why = """
    The side that closes first sends the last ACK; it stays in TIME_WAIT long enough that a
    lost last ACK can be repeated (the peer will resend its FIN) and that old duplicates of
    this connection die out before the same address/port pair is used again (RFC 9293 §3.6.1:
    2×MSL). Linux uses a fixed 60 s (TCP_TIMEWAIT_LEN), not a sysctl; `ss -o` shows the timer
    counting down. The passive closer (the server here) goes through LAST_ACK straight to
    CLOSED. Meanwhile the address/port pair is taken: bind() to it fails with EADDRINUSE, and
    on Linux SO_REUSEADDR only helps if the socket that went into TIME_WAIT had set it too.
    """
    look_at = "The kernel view (timer:(timewait,...)); in the capture, who sent the first FIN."

    def run(self, ctx: Context) -> None:
        place = ctx.loopback()
        host, port = place.host, ctx.port(place, 5000)
        ctx.params["port"] = port
        ctx.say(f"server: listen on {host}:{port}; accept; read b'request\\n'; send b'reply\\n'; "
                "read the end of stream; wait 0.3 s; close")
        ctx.say("client: connect; send b'request\\n'; read the reply; close (the active close)")
        ctx.say("then: ss -tan -o state time-wait, 0.1 s and 1.1 s later; bind() to the "
                "client's port without and with SO_REUSEADDR")
        ready = threading.Event()

        def server() -> None:
            with accept_one(host, port, ready) as conn:
                answer_once(conn, 8, b"reply\n", 0.3)

        def client() -> None:
            with connect_when_ready(ready, host, port) as s:
                s.sendall(b"request\n")
                recv_exactly(s, 6)
                ctx.params["client_port"] = s.getsockname()[1]

        def try_bind() -> None:
            cport = ctx.params["client_port"]
            for reuse in (False, True):
                b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    if reuse:
                        b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    b.bind((host, cport))
                    ctx.params[f"bind_reuse_{reuse}"] = "ok"
                except OSError as exc:
                    ctx.params[f"bind_reuse_{reuse}"] = errno.errorcode.get(exc.errno, str(exc))
                finally:
                    b.close()

        ctx.run_on_loopback(place, port, server, client)
        closed = time.time()
        for at in (0.1, 1.1):
            time.sleep(max(0.0, closed + at - time.time()))
            ctx.ss_once(place.ns, "ss_tw", ["-tan", "-o", "state", "time-wait"])
            if at == 0.1:
                t = ctx.threads()
                t.start(place.ns, try_bind)
                t.join(5)

    def expectations(self, ctx: Context) -> list[Expectation]:
        def tw_socket(f: Facts) -> tuple[bool, str]:
            cport = ctx.params.get("client_port")
            rem = []
            for _, text in f.kernel.get("ss_tw", []):
                for ln in text.splitlines():
                    if f":{cport} " in ln + " " and f":{ctx.params.get('port')}" in ln:
                        rem.append(tw_remaining(ln))
            ok = len(rem) == 2 and None not in rem and 55 <= rem[0] <= 60 and rem[1] < rem[0]
            return ok, (f"client port {cport} in TIME-WAIT, timer "
                        + " then ".join(f"{r:.0f} s" if r is not None else "?" for r in rem))

        def server_gone(f: Facts) -> tuple[bool, str]:
            port = ctx.params.get("port")
            lines = [ln for _, text in f.kernel.get("ss_tw", []) for ln in text.splitlines()
                     if re.search(rf"\S+:{port}\s+\S+:\d+", ln)]
            return not lines, f"TIME-WAIT sockets with local port {port}: {len(lines)}"

        def bind(f: Facts) -> tuple[bool, str]:
            a, b = ctx.params.get("bind_reuse_False"), ctx.params.get("bind_reuse_True")
            return a == "EADDRINUSE" and b == "EADDRINUSE", \
                f"bind() without SO_REUSEADDR: {a}; with SO_REUSEADDR: {b}"

        return [
            close("4way", "client"),
            time_wait_side("client"),
            final_states("TIME_WAIT", "CLOSED"),
            Expectation("`ss -o` shows the client's end in TIME-WAIT with a 60 s timer counting "
                        "down (Linux's fixed TCP_TIMEWAIT_LEN)", tw_socket, source="kernel"),
            Expectation("the server's end (the passive closer) is not in TIME-WAIT", server_gone,
                        source="kernel"),
            Expectation("while it lasts, bind() to the client's port fails with EADDRINUSE — "
                        "on Linux even with SO_REUSEADDR, because the socket now in TIME_WAIT "
                        "had not set it (both must)", bind, source="program"),
        ]
