"""A SYN flood from spoofed addresses, with SYN cookies off and on."""
from __future__ import annotations

import random
import socket
import threading
import time
from typing import Any

from ..base import (
    PROGRAM_DEADLINE, SOCKET_TIMEOUT, Context, Expectation, Experiment, recv_exactly, register,
    serve_until, wait_ready,
)
from ..checks import handshake
from ..facts import Facts
from ..setups import MAC_C, MAC_S, SERVER_IP, Hosts, two_hosts

SPOOF_NET = "10.200.66"  #: the flood's source addresses: 10.200.66.1 ... (exist nowhere)
FAKE_GW, FAKE_GW_MAC = "10.200.1.66", "02:00:00:00:66:66"
BACKLOG = 8
QUEUE = BACKLOG + 1  #: what the SYN queue holds: inet_csk_reqsk_queue_is_full() is "len > backlog"
FLOOD = 40  #: SYNs per phase
PHASE = 1.7  #: seconds per phase: the first SYN-ACK retransmissions (at ~1 s) fall inside
COUNTERS = ("TcpExt.SyncookiesSent", "TcpExt.SyncookiesRecv", "TcpExt.SyncookiesFailed",
            "TcpExt.TCPReqQFullDrop", "TcpExt.TCPReqQFullDoCookies", "TcpExt.ListenDrops",
            "TcpExt.ListenOverflows")
PHASES = (("off", 0, 5000, 1), ("on", 1, 5001, 101))  #: name, tcp_syncookies, port, first host


def spoofed_syns(port: int, first_host: int, count: int, seed: int) -> list[bytes]:
    """`count` SYN frames to the server from spoofed sources, built with tcpscope's builder."""
    from ...wire.builder import IPv4, TCP, Ether, Frame
    from ...wire.options import Mss, Nop, SackPermitted, WindowScale

    rng = random.Random(seed)
    frames = []
    for i in range(count):
        frames.append(Frame(
            Ether(src=bytes.fromhex(MAC_C.replace(":", "")),
                  dst=bytes.fromhex(MAC_S.replace(":", ""))),
            IPv4(src=f"{SPOOF_NET}.{first_host + i}", dst=SERVER_IP, id=rng.randrange(65536)),
            TCP(sport=rng.randrange(1024, 65536), dport=port, seq=rng.randrange(1 << 32),
                flags="S", win=64240,
                options=(Mss(1460), SackPermitted(), Nop(), WindowScale(7))),
        ).build())
    return frames


def send_frames(iface: str, frames: list[bytes], gap: float = 0.001) -> None:
    """Send raw Ethernet frames on `iface` (this thread's namespace), `gap` seconds apart."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((iface, 0))
        for frame in frames:
            s.send(frame)
            time.sleep(gap)


def flood_phase(ctx: Context, h: Hosts, res: dict[str, Any], frames: list[bytes], *,
                gap: float, client_after: float, client_timeout: float, seconds: float) -> str:
    """One phase of a SYN flood on port ``res["port"]``, `seconds` long.

    The server (its namespace) listens with backlog BACKLOG, accepts whoever completes and
    echoes 6 bytes; the client's namespace sends `frames` on c0, `gap` seconds apart, and
    `client_after` seconds after the flood begins a real client connects (giving up after
    `client_timeout`), sends b'hello\\n' and reads the echo; how that went is
    ``res["client"]``. COUNTERS are read before and after: their changes go to
    ``res["counters"]``, the end time to ``res["end"]``; returns the changes in a line.
    """
    topo = ctx.need_topo()
    port = res["port"]
    ready, stop = threading.Event(), threading.Event()

    def echo(conn: socket.socket) -> None:
        conn.sendall(recv_exactly(conn, 6))

    def client() -> None:
        time.sleep(client_after)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(client_timeout)
        try:
            s.connect((h.server_ip, port))
            s.settimeout(SOCKET_TIMEOUT)
            s.sendall(b"hello\n")
            recv_exactly(s, 6)
            res["client"] = "connected and got its echo"
        except (TimeoutError, OSError) as exc:
            res["client"] = f"could not connect ({exc.__class__.__name__})"
        finally:
            s.close()

    before = topo.netstat_counters(h.server)
    t = ctx.threads()
    t.start(h.server, serve_until, h.server_ip, port, ready, stop, echo, backlog=BACKLOG,
            seconds=seconds + 1)
    wait_ready(ready)
    t.start(h.client, send_frames, "c0", frames, gap)
    t.start(h.client, client)
    time.sleep(seconds)
    stop.set()
    t.join(PROGRAM_DEADLINE)
    after = topo.netstat_counters(h.server)
    res["counters"] = {k: after.get(k, 0) - before.get(k, 0) for k in COUNTERS}
    res["end"] = time.time()
    return ", ".join(f"{k.split('.')[1]} +{v}" for k, v in res["counters"].items() if v)


def _syn_recv(text: str, port: int) -> int:
    """Sockets of `ss -tan state syn-recv` (no State column) whose local port is `port`."""
    n = 0
    for ln in text.splitlines():
        addrs = [tok for tok in ln.split() if ":" in tok]
        if addrs and addrs[0].endswith(f":{port}"):
            n += 1
    return n


@register
class SynFlood(Experiment):
    name = "syn-flood"
    title = "a SYN flood from spoofed addresses, SYN cookies off and on"
    listing_limit = 24
    does = f"""
    A listener with a small backlog ({BACKLOG}) in the server's namespace receives a burst of
    {FLOOD} SYNs from spoofed addresses ({SPOOF_NET}.x, which exist nowhere: the server's route
    to them leads to a gateway MAC no one has, so its SYN-ACKs are never answered). The SYNs are
    built with tcpscope's packet builder and sent with an AF_PACKET socket from the client's
    namespace; 0.2 s later a real client (10.200.1.1) tries to connect. Twice: first with
    net.ipv4.tcp_syncookies = 0 (port 5000), then with 1 (port 5001), {PHASE} s each. `ss -tan
    state syn-recv` runs every 0.25 s, and the namespace's SYN-cookie and listen-queue counters
    (/proc/net/netstat) are read before and after each phase.
    """
    why = """
    Each SYN that gets a SYN-ACK leaves a request socket in the listener's SYN queue (ss:
    SYN-RECV) until the handshake completes or the SYN-ACK has been retransmitted
    tcp_synack_retries times (about a minute). Spoofed SYNs never complete, so a burst fills the
    queue, which Linux bounds by the listen() backlog. Without cookies, further SYNs — the real
    client's too — are dropped (TCPReqQFullDrop) and the server is unreachable. With SYN
    cookies (RFC 4987 §3.6), once the queue is full the server answers with a SYN-ACK whose ISN
    encodes the connection (addresses, ports, time, MSS) and keeps no state for it: the real
    client's ACK proves the cookie and the connection is created then (SyncookiesRecv), while
    spoofed ones cost nothing. Cookie SYN-ACKs are never retransmitted: there is nothing to
    retransmit from.
    """
    look_at = """
    `tcp.flags.syn == 1`: the burst and the answers; `ip.src == 10.200.1.1`: the real client;
    the SYN-ACKs retransmitted about 1 s later (only for the queued requests).
    """

    def run(self, ctx: Context) -> None:
        topo = ctx.need_topo()
        h = two_hosts(topo)
        topo.neigh(h.server, FAKE_GW, FAKE_GW_MAC, "s0")
        topo.route(h.server, f"{SPOOF_NET}.0/24", "via", FAKE_GW)
        ctx.params["sysctls_read"] = {
            k: topo.read_sysctl(h.server, k)
            for k in ("net.ipv4.tcp_max_syn_backlog", "net.core.somaxconn",
                      "net.ipv4.tcp_synack_retries")
        }
        ctx.say(f"server: for each phase, tcp_syncookies set, then listen(backlog {BACKLOG}) on "
                f"{h.server_ip}:PORT; accept whoever completes; echo 6 bytes")
        ctx.say(f"flooder (client's namespace, AF_PACKET on c0): {FLOOD} SYNs 1 ms apart from "
                f"{SPOOF_NET}.N, random source ports and ISNs (random.Random(seed))")
        ctx.say("real client (10.200.1.1), 0.2 s after the burst: connect with a 1.2 s timeout; "
                "if connected, send b'hello\\n' and read the echo")
        results: dict[str, dict] = {}
        ctx.params["phases"] = results

        with ctx.capture("s0", "tcp portrange 5000-5001", ns=h.server), \
                ctx.sample_ss(h.server, "ss", ["-tan", "state", "syn-recv"], every=0.25,
                              max_seconds=2 * PHASE + 3):
            for name, cookies, port, first in PHASES:
                topo.sysctl(h.server, "net.ipv4.tcp_syncookies", cookies)
                res = {"port": port, "cookies": cookies, "start": time.time()}
                results[name] = res
                shown = flood_phase(ctx, h, res, spoofed_syns(port, first, FLOOD, seed=port),
                                    gap=0.001, client_after=0.2, client_timeout=1.2,
                                    seconds=PHASE)
                ctx.kernel_notes.append(f"cookies {name}: counters {shown or 'unchanged'}; real "
                                        f"client: {res.get('client', '?')}")

    def expectations(self, ctx: Context) -> list[Expectation]:
        phases = ctx.params.get("phases", {})

        def spoofed(f: Facts, port: int) -> dict:
            syn_src = {p.src for p in f.packets if p.syn and p.dport == port
                       and p.src.startswith(SPOOF_NET + ".")}
            synacks = [p for p in f.packets if p.synack and p.sport == port
                       and p.dst.startswith(SPOOF_NET + ".")]
            answered = {p.dst for p in synacks}
            retx = [p for p in synacks if p.has("retransmission")]
            return {"syns": len(syn_src), "answered": len(answered), "synacks": len(synacks),
                    "retx": len(retx), "retx_to": {p.dst for p in retx}}

        def queue_peak(f: Facts, name: str) -> int:
            ph = phases.get(name, {})
            return max((_syn_recv(text, ph.get("port", 0)) for t, text in f.kernel.get("ss", [])
                        if ph.get("start", 0) <= t <= ph.get("end", 0)), default=0)

        def off_answers(f: Facts) -> tuple[bool, str]:
            s = spoofed(f, 5000)
            peak = queue_peak(f, "off")
            ok = s["syns"] == FLOOD and s["answered"] == peak == QUEUE
            return ok, (f"{s['syns']} spoofed SYNs, {s['answered']} answered with a SYN-ACK; "
                        f"ss: at most {peak} SYN-RECV")

        def off_queue(f: Facts) -> tuple[bool, str]:
            peak = queue_peak(f, "off")
            c = phases.get("off", {}).get("counters", {})
            drops = c.get("TcpExt.TCPReqQFullDrop", 0)
            ok = peak == QUEUE and drops >= FLOOD - peak and \
                c.get("TcpExt.SyncookiesSent", 0) == 0
            return ok, (f"SYN-RECV peak {peak} (backlog {BACKLOG}); TCPReqQFullDrop +{drops}, "
                        f"SyncookiesSent +{c.get('TcpExt.SyncookiesSent', 0)}")

        def off_retx(f: Facts) -> tuple[bool, str]:
            s = spoofed(f, 5000)
            return s["retx"] >= s["answered"] > 0, \
                f"{s['retx']} SYN-ACK retransmissions for {s['answered']} queued requests"

        def off_client(f: Facts) -> tuple[bool, str]:
            real = [c for c in f.connections if c["client"] == h_client()
                    and c["server_port"] == 5000]
            kinds = [handshake(f, c["stream"]).kind for c in real]
            syns = sum(len(handshake(f, c["stream"]).syns) for c in real)
            ok = kinds == ["unanswered"] and syns >= 2
            return ok, (f"real client: {', '.join(kinds) or 'no SYN'} ({syns} SYNs); "
                        f"{phases.get('off', {}).get('client', '?')}")

        def on_answers(f: Facts) -> tuple[bool, str]:
            s = spoofed(f, 5001)
            c = phases.get("on", {}).get("counters", {})
            peak = queue_peak(f, "on")
            sent = c.get("TcpExt.SyncookiesSent", 0)
            ok = s["syns"] == s["answered"] == FLOOD and sent >= FLOOD - peak and peak > 0
            return ok, (f"{s['answered']} of {s['syns']} spoofed SYNs answered; SYN-RECV peak "
                        f"{peak}; SyncookiesSent +{sent}")

        def on_retx(f: Facts) -> tuple[bool, str]:
            s = spoofed(f, 5001)
            peak = queue_peak(f, "on")
            ok = 0 < len(s["retx_to"]) <= peak
            return ok, (f"SYN-ACKs retransmitted to {len(s['retx_to'])} sources (the "
                        f"{peak} queued); {s['answered'] - len(s['retx_to'])} cookie SYN-ACKs "
                        "never repeated")

        def on_client(f: Facts) -> tuple[bool, str]:
            real = [c for c in f.connections if c["client"] == h_client()
                    and c["server_port"] == 5001]
            kinds = [handshake(f, c["stream"]).kind for c in real]
            data = sum(1 for c in real for p in f.stream(c["stream"]) if p.len > 0)
            recv = phases.get("on", {}).get("counters", {}).get("TcpExt.SyncookiesRecv", 0)
            ok = kinds == ["3way"] and data == 2 and recv >= 1
            return ok, (f"real client: {', '.join(kinds) or 'no SYN'}, {data} data segments; "
                        f"SyncookiesRecv +{recv}; "
                        f"{phases.get('on', {}).get('client', '?')}")

        def h_client() -> str:
            return "10.200.1.1"

        return [
            Expectation(f"cookies off: of the {FLOOD} spoofed SYNs only as many get a SYN-ACK "
                        "as the SYN queue holds; the rest go unanswered", off_answers),
            Expectation(f"cookies off: `ss` shows the SYN queue full with {QUEUE} SYN-RECV "
                        f"sockets — backlog + 1: Linux calls the queue full when it holds more "
                        f"than the backlog ({BACKLOG}) — and counts the dropped SYNs "
                        "(TCPReqQFullDrop); no cookies", off_queue, source="kernel"),
            Expectation("cookies off: the queued requests' SYN-ACKs are retransmitted (~1 s "
                        "later): nobody answers them", off_retx),
            Expectation("cookies off: the real client cannot get in — its SYNs go unanswered "
                        "while the queue is full", off_client),
            Expectation("cookies on: every spoofed SYN is answered; beyond the full queue the "
                        "SYN-ACKs are SYN cookies (SyncookiesSent)", on_answers),
            Expectation("cookies on: only the queued requests' SYN-ACKs are retransmitted — the "
                        "server kept no state for the cookie ones", on_retx),
            Expectation("cookies on: the real client connects despite the flood (its ACK "
                        "returns a valid cookie: SyncookiesRecv) and gets its echo", on_client),
        ]
