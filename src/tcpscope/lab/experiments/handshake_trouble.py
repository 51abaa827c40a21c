"""Handshakes in trouble: SYNs and SYN-ACKs dropped, the retransmission timers at work."""
from __future__ import annotations

import socket
import threading
import time

from ..base import (
    PROGRAM_DEADLINE, SOCKET_TIMEOUT, Context, Expectation, Experiment, answer_once,
    listener, recv_exactly, register, wait_ready,
)
from ..checks import backoff_matches, fmt_times, handshake, intervals_of, syn_rule
from ..expect import backoff_verdict
from ..facts import Facts
from ..setups import CLIENT_IP, MAC_S, SERVER_IP, quiet_ipv6, two_hosts

REQUEST, REPLY = b"hello\n", b"hello back\n"
CLASSIC_IP = "10.200.1.3"


def serve(host: str, port: int, ready: threading.Event, connections: int,
          accepted: list[float] | None = None) -> None:
    """Accept `connections` clients; each: read REQUEST, send REPLY, read to EOF, close."""
    with listener(host, port) as ls:
        ls.settimeout(10.0)
        ready.set()
        for _ in range(connections):
            conn, _ = ls.accept()
            if accepted is not None:
                accepted.append(time.time())
            with conn:
                conn.settimeout(SOCKET_TIMEOUT)
                answer_once(conn, len(REQUEST), REPLY)


def nft_drop(ctx: Context, ns: str, rule: str) -> None:
    ctx.need_topo().nft(ns, f"""table inet lab {{
    chain input {{
        type filter hook input priority 0; policy accept;
        {rule}
    }}
}}
""")


def expected_times(rule: list[float], until: float) -> list[float]:
    """SYN send times under `rule` until one is sent after `until` (it gets through)."""
    times = [0.0]
    for wait in rule:
        if times[-1] > until:
            break
        times.append(times[-1] + wait)
    return times


@register
class SynRetry(Experiment):
    name = "syn-retry"
    title = "SYNs dropped for a while: the client retransmits its SYN with backoff"
    does = """
    The server's namespace drops every incoming SYN to port 5000 (an nft rule in its input
    hook) for 2.5 s, then the rule is removed. Two clients connect at the same moment, each from
    its own namespace: `client` (10.200.1.1) with this kernel's default settings, `classic`
    (10.200.1.3) with net.ipv4.tcp_syn_linear_timeouts = 0; both reach the server through a
    bridge in its namespace. tcpdump runs there on the bridge, so it sees every SYN, dropped or
    not (capture happens before the input hook).
    """
    why = """
    A client that gets no SYN-ACK retransmits its SYN when its retransmission timer expires.
    RFC 6298 starts that timer at 1 s and doubles it after each expiry (§5.5): SYNs at 0, 1,
    3, 7 s... Linux 6.x adds net.ipv4.tcp_syn_linear_timeouts (default 4): the first retries
    wait the initial RTO, 1 s, each, and only then does the wait double — documented as
    "1, 1, 1, 1, 1, 2, 4, ...". So this kernel's client sends SYNs at 0, 1, 2, 3 s, while the
    classic client (sysctl 0) sends them at 0, 1, 3 s. Each retransmission is the same SYN
    (same ISN): still one connection. connect() simply blocks until a SYN gets through.
    """
    look_at = """
    `tcp.flags.syn == 1 && tcp.flags.ack == 0`, with the column `frame.time_delta_displayed`:
    the waits. Wireshark marks the repeats "[TCP Retransmission]".
    """
    drop_for = 2.5

    def run(self, ctx: Context) -> None:
        topo = ctx.need_topo()
        c, k, s = topo.netns("client"), topo.netns("classic"), topo.netns("server")
        quiet_ipv6(topo, c, k, s)
        # Both clients reach the server through one bridge, so one capture on br0 sees both.
        topo.bare_veth(c, "c0", s, "s0", mac_a="02:00:00:00:0c:01", mac_b="02:00:00:00:0e:01")
        topo.bare_veth(k, "k0", s, "s1", mac_a="02:00:00:00:0c:02", mac_b="02:00:00:00:0e:02")
        topo.bridge(s, "br0", MAC_S, ["s0", "s1"])
        topo.addr(c, "c0", f"{CLIENT_IP}/24")
        topo.addr(k, "k0", f"{CLASSIC_IP}/24")
        topo.addr(s, "br0", f"{SERVER_IP}/24")
        for ns, ifname in ((c, "c0"), (k, "k0")):
            topo.neigh(ns, SERVER_IP, MAC_S, ifname)
        topo.neigh(s, CLIENT_IP, "02:00:00:00:0c:01", "br0")
        topo.neigh(s, CLASSIC_IP, "02:00:00:00:0c:02", "br0")
        linear = int(topo.read_sysctl(c, "net.ipv4.tcp_syn_linear_timeouts"))
        ctx.params["sysctls_read"] = {
            "net.ipv4.tcp_syn_linear_timeouts": linear,
            "net.ipv4.tcp_syn_retries": topo.read_sysctl(c, "net.ipv4.tcp_syn_retries"),
        }
        ctx.params["linear"] = linear
        topo.sysctl(k, "net.ipv4.tcp_syn_linear_timeouts", 0)
        nft_drop(ctx, s, "tcp dport 5000 tcp flags == syn drop")
        ctx.say(f"server: listen on 0.0.0.0:5000; for each of 2 clients: read {REQUEST!r}, "
                f"send {REPLY!r}, read to end of stream, close")
        ctx.say(f"client ({CLIENT_IP}) and classic ({CLASSIC_IP}), at the same time: connect "
                f"(blocks), send {REQUEST!r}, read the reply, close")
        ctx.say(f"after {self.drop_for} s: nft delete table inet lab (SYNs pass again)")
        ready = threading.Event()
        durations: dict[str, float] = {}

        def client(name: str, server: str) -> None:
            t0 = time.monotonic()
            with socket.create_connection((server, 5000), timeout=10.0) as sock:
                durations[name] = time.monotonic() - t0
                sock.settimeout(SOCKET_TIMEOUT)
                sock.sendall(REQUEST)
                recv_exactly(sock, len(REPLY))

        def unblock() -> None:
            time.sleep(self.drop_for)
            topo.nft_flush_table(s, "inet", "lab")

        ctx.params["connect_seconds"] = durations
        with ctx.capture("br0", "tcp port 5000", ns=s):
            t = ctx.threads()
            t.start(s, serve, "0.0.0.0", 5000, ready, 2)
            wait_ready(ready)
            t.start(None, unblock)
            t.start(c, client, "client", SERVER_IP)
            t.start(k, client, "classic", SERVER_IP)
            t.join(PROGRAM_DEADLINE)

    def expectations(self, ctx: Context) -> list[Expectation]:
        linear = ctx.params.get("linear", 4)
        rule = syn_rule(8, linear)
        classic = syn_rule(8, 0)
        want = expected_times(rule, self.drop_for)
        want_classic = expected_times(classic, self.drop_for)

        def stream_of(f: Facts, client_ip: str) -> int | None:
            for c in f.connections:
                if c["client"] == client_ip:
                    return c["stream"]
            return None

        def syns(f: Facts, client_ip: str, times: list[float]) -> tuple[bool, str]:
            n = stream_of(f, client_ip)
            if n is None:
                return False, f"no connection from {client_ip}"
            hs = handshake(f, n)
            t0 = hs.syn_times[0] if hs.syns else 0.0
            seen = [t - t0 for t in hs.syn_times]
            gaps = intervals_of(hs.syns)
            ok = len(seen) == len(times) and backoff_matches(gaps, intervals_from(times))
            return ok, f"SYNs at {fmt_times(seen)} s (waits {fmt_times(gaps)} s)"

        def same_isn(f: Facts) -> tuple[bool, str]:
            details, ok = [], len(f.connections) == 2
            for c in f.connections:
                hs = handshake(f, c["stream"])
                isns = {p.seq for p in hs.syns}
                retx = sum(p.has("retransmission") for p in hs.syns[1:])
                ok &= len(isns) == 1 and retx == len(hs.syns) - 1
                details.append(f"{c['client']}: {len(hs.syns)} SYNs, {len(isns)} ISN, "
                               f"{retx} flagged retransmission")
            return ok, f"{len(f.connections)} connections; " + "; ".join(details)

        def completes(f: Facts) -> tuple[bool, str]:
            kinds = []
            ok = len(f.connections) == 2
            for c in f.connections:
                hs = handshake(f, c["stream"])
                data = [p for p in f.stream(c["stream"]) if p.len > 0]
                ok &= hs.kind == "3way+retries" and len(data) == 2
                kinds.append(f"{c['client']}: {hs.kind}, {len(data)} data segments")
            return ok, "; ".join(kinds)

        def blocked(f: Facts) -> tuple[bool, str]:
            d = ctx.params.get("connect_seconds", {})
            ok = abs(d.get("client", 0) - want[-1]) < 0.4 and \
                abs(d.get("classic", 0) - want_classic[-1]) < 0.4
            return ok, ", ".join(f"{k}: connect() took {v:.2f} s" for k, v in sorted(d.items()))

        return [
            Expectation(
                f"this kernel's client (tcp_syn_linear_timeouts = {linear}) sends SYNs at "
                f"{fmt_times(want)} s: the first {linear} retries wait the initial RTO (1 s) "
                f"each; the SYN sent after the rule is gone is answered",
                lambda f: syns(f, CLIENT_IP, want)),
            Expectation(
                f"the classic client (tcp_syn_linear_timeouts = 0) sends SYNs at "
                f"{fmt_times(want_classic)} s: the wait doubles each time (1 s, 2 s, ...: "
                "RFC 6298's backoff)",
                lambda f: syns(f, CLASSIC_IP, want_classic)),
            backoff_verdict("syn", "constant", lambda f: stream_of(f, CLIENT_IP),
                            "this kernel's client's"),
            backoff_verdict("syn", "doubling", lambda f: stream_of(f, CLASSIC_IP),
                            "the classic client's"),
            Expectation("every retransmitted SYN repeats the same ISN: one connection each, "
                        "tcpscope flags the repeats as retransmissions", same_isn),
            Expectation("both connections then complete the handshake and exchange their data",
                        completes),
            Expectation("connect() blocks until a SYN gets through, then succeeds", blocked,
                        source="program"),
        ]


def intervals_from(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


@register
class SynAckRetry(Experiment):
    name = "synack-retry"
    title = "the client's final ACK is dropped: SYN-ACK retransmissions, a half-open connection"
    does = """
    The server's namespace drops the client's pure ACKs to port 5000 (nft, input hook) for
    3.4 s. The client's connect() succeeds at once (it got the SYN-ACK); it waits 3.8 s and
    sends its request. `ss -tan` runs every 0.25 s in both namespaces.
    """
    why = """
    The server keeps the connection half-open (SYN_RECV, a request socket in the listener's
    SYN queue) until the ACK of its SYN-ACK arrives, retransmitting the SYN-ACK when its timer
    expires: 1 s, then 2 s, doubling (net.ipv4.tcp_synack_retries, default 5, bounds the
    count; tcp_syn_linear_timeouts does not apply to SYN-ACKs). The client, ESTABLISHED since
    the first SYN-ACK, answers each retransmission with another ACK. Any segment that
    acknowledges the SYN-ACK completes the handshake — here the client's first data segment,
    which carries the ACK: only then does accept() return on the server.
    """
    look_at = """
    `tcp.flags.syn == 1 && tcp.flags.ack == 1`: the SYN-ACK and its retransmissions; the
    client's ACKs in between; the kernel views below (SYN-RECV on the server, ESTAB on the
    client at the same time).
    """
    drop_for = 3.4
    send_after = 3.8

    def run(self, ctx: Context) -> None:
        topo = ctx.need_topo()
        h = two_hosts(topo)
        ctx.params["sysctls_read"] = {
            "net.ipv4.tcp_synack_retries": topo.read_sysctl(h.server,
                                                            "net.ipv4.tcp_synack_retries"),
        }
        nft_drop(ctx, h.server, "tcp dport 5000 tcp flags == ack drop")
        ctx.say(f"server: listen on {h.server_ip}:5000; accept; read {REQUEST!r}, send "
                f"{REPLY!r}, read to end of stream, close")
        ctx.say(f"client: connect (returns at once); wait {self.send_after} s; send {REQUEST!r}; "
                "read the reply; close")
        ctx.say(f"after {self.drop_for} s: nft delete table inet lab (ACKs pass again)")
        ready = threading.Event()
        accepted: list[float] = []
        ctx.params["accepted"] = accepted
        connected: list[float] = []
        ctx.params["connected"] = connected

        def client() -> None:
            with socket.create_connection((h.server_ip, 5000), timeout=SOCKET_TIMEOUT) as sock:
                connected.append(time.time())
                time.sleep(self.send_after)
                sock.sendall(REQUEST)
                recv_exactly(sock, len(REPLY))
                time.sleep(0.3)  # both ESTAB in the kernel views before the close

        def unblock() -> None:
            time.sleep(self.drop_for)
            topo.nft_flush_table(h.server, "inet", "lab")

        with ctx.capture("s0", "tcp port 5000", ns=h.server), \
                ctx.sample_ss(h.server, "ss_server", ["-tan"], every=0.25), \
                ctx.sample_ss(h.client, "ss_client", ["-tan"], every=0.25):
            t = ctx.threads()
            t.start(h.server, serve, h.server_ip, 5000, ready, 1, accepted)
            wait_ready(ready)
            t.start(None, unblock)
            t.start(h.client, client)
            t.join(PROGRAM_DEADLINE)

    def expectations(self, ctx: Context) -> list[Expectation]:
        # SYN-ACKs at 0, 1, 3 s; the one due at 7 s is never sent (the request completes it)
        want = expected_times([1.0, 2.0, 4.0, 8.0], self.drop_for)[:-1]

        def synacks(f: Facts) -> tuple[bool, str]:
            hs = handshake(f, 0)
            t0 = hs.syn_times[0] if hs.syns else 0.0
            seen = [t - t0 for t in hs.synack_times]
            gaps = intervals_of(hs.synacks)
            ok = len(seen) == len(want) and backoff_matches(gaps, intervals_from(want))
            return ok, (f"SYN-ACKs at {fmt_times(seen)} s (waits {fmt_times(gaps)} s); "
                        f"{sum(p.has('retransmission') for p in hs.synacks)} flagged "
                        "retransmission")

        def client_acks(f: Facts) -> tuple[bool, str]:
            hs = handshake(f, 0)
            first_data = next((p for p in f.stream(0) if p.len > 0), None)
            stop = first_data.frame if first_data else 1 << 30
            acks = [p for p in f.stream(0) if not p.from_server and p.flags == "."
                    and p.rel_ack == 1 and p.frame < stop]
            ok = len(acks) == len(hs.synacks) and len(acks) > 1
            return ok, (f"{len(acks)} ACKs for {len(hs.synacks)} SYN-ACKs "
                        f"(engine flags on them: "
                        f"{sorted({x for p in acks for x in p.analysis}) or 'none'})")

        def data_completes(f: Facts) -> tuple[bool, str]:
            pk = f.stream(0)
            data = [p for p in pk if p.len > 0]
            if len(data) != 2 or data[0].side != "client":
                return False, f"data segments: {[(p.side, p.len) for p in data]}"
            hs = handshake(f, 0)
            after = data[0].t - hs.syn_times[0]
            later_synacks = [p for p in hs.synacks if p.frame > data[0].frame]
            return not later_synacks, (f"the request at {after:.2f} s carries ack 1; "
                                       f"the server's reply follows; "
                                       f"{len(later_synacks)} SYN-ACKs after it")

        def half_open(f: Facts) -> tuple[bool, str]:
            samples = f.kernel.get("ss_server", [])
            hits = [t for t, text in samples if _has_state(text, "SYN-RECV", "5000")]
            client = f.kernel.get("ss_client", [])
            both = [t for t, text in client if _has_state(text, "ESTAB", "5000")
                    and any(abs(t - u) < 0.2 for u in hits)]
            ok = bool(hits) and bool(both)
            span = f"{hits[0] - f.t0:.2f}..{hits[-1] - f.t0:.2f} s" if hits else "never"
            return ok, (f"server SYN-RECV in {len(hits)} of {len(samples)} samples ({span}); "
                        f"client ESTAB at the same time in {len(both)}")

        def states_meanwhile(f: Facts) -> tuple[bool, str]:
            hs = handshake(f, 0)
            if not hs.synacks:
                return False, "no SYN-ACK"
            p = hs.synacks[-1]
            data = next((q for q in f.stream(0) if q.len > 0), None)
            after = (data.client_state, data.server_state) if data else (None, None)
            ok = (p.client_state, p.server_state) == ("ESTABLISHED", "SYN_RECEIVED") and \
                after == ("ESTABLISHED", "ESTABLISHED")
            return ok, (f"after the last SYN-ACK (frame {p.frame}): client {p.client_state}, "
                        f"server {p.server_state}; after the request: client {after[0]}, "
                        f"server {after[1]}")

        def accept_late(f: Facts) -> tuple[bool, str]:
            acc, con = ctx.params.get("accepted", []), ctx.params.get("connected", [])
            if not acc or not con:
                return False, "no accept/connect time"
            gap = acc[0] - con[0]
            return abs(gap - self.send_after) < 0.3, \
                f"connect() returned at once; accept() {gap:.2f} s later"

        return [
            Expectation(f"the server sends its SYN-ACK at {fmt_times(want)} s: retransmitted "
                        "with a doubling wait (1 s, 2 s) while the ACK is missing", synacks),
            Expectation("the client, ESTABLISHED since the first SYN-ACK, answers each one with "
                        "an ACK (dropped by the server's nft rule)", client_acks),
            Expectation("the client's request (which carries the ACK) completes the handshake: "
                        "no more SYN-ACKs, the server replies", data_completes),
            backoff_verdict("synack", "doubling", lambda f: 0, "the server's"),
            Expectation("tcpscope's state machine agrees with the kernel: the server stays "
                        "SYN_RECEIVED while the client is ESTABLISHED, until the request",
                        states_meanwhile),
            Expectation("meanwhile `ss -tan` shows the connection half-open on the server "
                        "(SYN-RECV) and established on the client (ESTAB)", half_open,
                        source="kernel"),
            Expectation("connect() returns at once, accept() only when the request arrives",
                        accept_late, source="program"),
        ]


def _has_state(ss_text: str, state: str, port: str) -> bool:
    for line in ss_text.splitlines():
        parts = line.split()
        if parts and parts[0] == state and any(p.endswith(f":{port}") for p in parts[3:5]):
            return True
    return False
