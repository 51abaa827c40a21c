"""Port and host scans of a namespace host (SYN, connect, FIN, NULL, Xmas, ACK), audited."""
from __future__ import annotations

import random
import socket
import struct
import threading
import time

from ..base import PROGRAM_DEADLINE, Context, Expectation, Experiment, register
from ..facts import Facts
from ..setups import CLIENT_IP, MAC_C, MAC_S, SERVER_IP, two_hosts
from .cookies import audited
from .flood import send_frames

__all__ = ["Scans", "probe_frames", "PORTS", "OPEN", "DROPPED", "CLOSED", "TECHNIQUES",
           "HOSTS", "HOSTS_OPEN", "HOSTS_DROPPED", "prepare_target"]

#: nmap's 20 most common TCP ports (nmap-services), the ports every scan probes.
PORTS = (21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1723, 3306, 3389,
         5900, 8080)
OPEN = (22, 80, 443, 8080)         #: a listener on each
DROPPED = (135, 139, 445, 3389)    #: nft drops what comes to these
CLOSED = tuple(p for p in PORTS if p not in OPEN + DROPPED)
#: technique -> TCP flags of the probe and the scanner's source port; "connect" uses sockets
TECHNIQUES = {"syn": ("S", 45001), "connect": (None, 0), "fin": ("F", 45003),
              "null": ("", 45004), "xmas": ("FPU", 45005), "ack": ("A", 45006)}
#: the host scan: port 22 on 10.200.1.10 ... 10.200.1.41 (32 addresses of the server)
HOSTS = tuple(f"10.200.1.{i}" for i in range(10, 42))
HOSTS_OPEN = HOSTS[:4]             #: listening on port 22
HOSTS_DROPPED = HOSTS[-4:]         #: nft drops port 22 to these
HOST_SCAN_SPORT = 45010
GAP = 0.01                         #: seconds between probes
#: netstat counters read before and after, in both namespaces
COUNTERS = ("Tcp.OutRsts", "Tcp.InErrs", "Tcp.ActiveOpens", "Tcp.PassiveOpens",
            "Tcp.AttemptFails", "TcpExt.ListenDrops")
CONNECT_TIMEOUT = 0.5


def probe_frames(flags: str, targets: list[tuple[str, int]], sport: int, seed: int) -> list[bytes]:
    """One probe (these TCP flags, no payload) from the client's address and `sport` to each
    (address, port), built with tcpscope's packet builder."""
    from ...wire.builder import IPv4, TCP, Ether, Frame
    from ...wire.options import Mss

    rng = random.Random(seed)
    mac_c, mac_s = (bytes.fromhex(m.replace(":", "")) for m in (MAC_C, MAC_S))
    opts = (Mss(1460),) if flags == "S" else ()
    return [Frame(Ether(src=mac_c, dst=mac_s),
                  IPv4(src=CLIENT_IP, dst=addr, id=rng.randrange(65536)),
                  TCP(sport=sport, dport=port, seq=rng.randrange(1 << 32),
                      ack=rng.randrange(1 << 32) if "A" in flags else 0,
                      flags=flags or 0, win=1024, options=opts)).build()
            for addr, port in targets]


def connect_scan(targets: list[tuple[str, int]], results: dict) -> None:
    """connect() to each target, then close at once with an RST (SO_LINGER 0, as nmap -sT)."""
    for addr, port in targets:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.settimeout(CONNECT_TIMEOUT)
        try:
            s.connect((addr, port))
            results[port] = "open"
        except ConnectionRefusedError:
            results[port] = "closed"
        except (TimeoutError, OSError):
            results[port] = "filtered"
        finally:
            s.close()


def prepare_target(topo, ns: str) -> None:
    """The host scan's extra addresses, and nft dropping the DROPPED ports and hosts."""
    for addr in HOSTS:
        topo.addr(ns, "s0", f"{addr}/24")
    topo.nft(ns, f"""
table inet scan {{
    chain input {{
        type filter hook input priority 0; policy accept;
        tcp dport {{ {", ".join(map(str, DROPPED))} }} drop
        ip daddr {{ {", ".join(HOSTS_DROPPED)} }} tcp dport 22 drop
    }}
}}
""")


def listeners(ready: threading.Event, stop: threading.Event) -> None:
    """Listen on the OPEN ports of the server's address and on port 22 of HOSTS_OPEN;
    never accept (the kernel completes handshakes by itself)."""
    socks = []
    try:
        for addr, port in [(SERVER_IP, p) for p in OPEN] + [(a, 22) for a in HOSTS_OPEN]:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            s.listen(64)
            socks.append(s)
        ready.set()
        stop.wait(PROGRAM_DEADLINE)
    finally:
        for s in socks:
            s.close()


@register
class Scans(Experiment):
    name = "scans"
    title = "port scans (SYN, connect, FIN, NULL, Xmas, ACK) and a host scan, audited"
    listing_limit = 12
    does = f"""
    The server (10.200.1.2) listens on ports {", ".join(map(str, OPEN))}; nft in its
    namespace drops what comes to {", ".join(map(str, DROPPED))}; the other ports of nmap's
    top 20 are closed. From the client's namespace (10.200.1.1) a scanner written with
    tcpscope's packet builder sends one probe per port over an AF_PACKET socket, {GAP * 1000:.0f}
    ms apart: SYN, FIN, NULL (no flags), Xmas (FIN+PSH+URG) and ACK scans, each from its own
    source port; a connect scan uses sockets (connect, then close with an RST, as nmap -sT).
    Then a SYN host scan of port 22 on 32 of the server's addresses (10.200.1.10-41: four
    listen, four are dropped by nft, the rest refuse). `tcpscope audit` reads the capture.
    """
    why = """
    A closed port answers any probe without RST with an RST; an open port answers a SYN with
    a SYN-ACK (the scanner's own kernel, which has no socket for it, resets it: a half-open
    "SYN scan") and ignores a lone FIN, a NULL or an Xmas segment (RFC 9293 §3.10.7.2); a
    port whose packets a firewall drops answers nothing. An ACK probe draws an RST from open
    and closed ports alike: it only tells filtered from unfiltered. The audit counts, per
    source and target, the distinct ports of failed or probing attempts (Zeek: 15 in 5 min),
    and tells the technique from the probes' flags and from what the open ports got.
    """
    look_at = """
    `tcp.flags.syn == 1 && tcp.flags.ack == 1`: the open ports; `tcp.flags.reset == 1`:
    the closed ones (and the scanner's resets of the SYN-ACKs).
    """

    def run(self, ctx: Context) -> None:
        topo = ctx.need_topo()
        h = two_hosts(topo)
        prepare_target(topo, h.server)
        ctx.say(f"server: listeners on {OPEN} and on port 22 of {HOSTS_OPEN[0]}..."
                f"{HOSTS_OPEN[-1]}; nft drops {DROPPED} and port 22 of {HOSTS_DROPPED[0]}...")
        ctx.say("scanner: " + ", ".join(f"{k} scan" for k in TECHNIQUES) +
                f" of {len(PORTS)} ports, then a SYN scan of port 22 on {len(HOSTS)} addresses")
        ready, stop = threading.Event(), threading.Event()
        connect_results: dict[int, str] = {}
        ctx.params["connect"] = connect_results
        before = {role: topo.netstat_counters(ns) for role, ns in
                  (("scanner", h.client), ("target", h.server))}
        with ctx.capture("c0", "tcp", ns=h.client):
            server = ctx.threads()
            server.start(h.server, listeners, ready, stop)
            if not ready.wait(5):
                raise RuntimeError("listeners did not start")
            for i, (tech, (flags, sport)) in enumerate(TECHNIQUES.items()):
                t = ctx.threads()
                targets = [(SERVER_IP, p) for p in PORTS]
                if flags is None:
                    t.start(h.client, connect_scan, targets, connect_results)
                else:
                    t.start(h.client, send_frames, "c0", probe_frames(flags, targets, sport, i), GAP)
                t.join(PROGRAM_DEADLINE)
                time.sleep(0.3)
            t = ctx.threads()
            t.start(h.client, send_frames, "c0",
                    probe_frames("S", [(a, 22) for a in HOSTS], HOST_SCAN_SPORT, 99), GAP)
            t.join(PROGRAM_DEADLINE)
            time.sleep(0.5)
            stop.set()
            server.join(PROGRAM_DEADLINE)
        after = {role: topo.netstat_counters(ns) for role, ns in
                 (("scanner", h.client), ("target", h.server))}
        ctx.kernel["counters"] = {role: {k: after[role].get(k, 0) - before[role].get(k, 0)
                                         for k in COUNTERS} for role in before}
        ctx.kernel_notes.append(
            "RSTs sent: target " + str(ctx.kernel["counters"]["target"]["Tcp.OutRsts"]) +
            " (closed ports), scanner " + str(ctx.kernel["counters"]["scanner"]["Tcp.OutRsts"]) +
            " (its kernel resetting the SYN-ACKs of the raw SYN scans and connect()'s aborts)")

    def expectations(self, ctx: Context) -> list[Expectation]:
        def port_scan(tech: str) -> Expectation:
            states = {"syn": (OPEN, CLOSED, len(DROPPED)), "connect": (OPEN, CLOSED, len(DROPPED)),
                      "ack": ((), tuple(sorted(OPEN + CLOSED)), len(DROPPED))}
            want = states.get(tech, ((), CLOSED, len(OPEN + DROPPED)))

            def check(f: Facts) -> tuple[bool, str]:
                hits = [d for d in audited(str(f.path)).get("port_scan", [])
                        if d["technique"] == tech]
                if len(hits) != 1:
                    return False, f"{len(hits)} port_scan findings with technique {tech}"
                d = hits[0]
                got = (tuple(d["open_ports"]), tuple(d["closed_ports"]), d["filtered_count"])
                ok = got == (tuple(sorted(want[0])), tuple(sorted(want[1])), want[2]) and \
                    d["source"] == CLIENT_IP and d["target"] == SERVER_IP
                return ok, (f"{tech}: {d['ports']} ports; open {d['open_ports']}, closed "
                            f"{len(d['closed_ports'])}, filtered {d['filtered_count']}; "
                            f"confidence {d['confidence']}")

            what = {"syn": "SYN (half-open)", "connect": "connect", "fin": "FIN", "null": "NULL",
                    "xmas": "Xmas", "ack": "ACK"}[tech]
            told = ("open = " + ", ".join(map(str, OPEN))) if tech in ("syn", "connect") else \
                ("every port that is not dropped answers an RST" if tech == "ack" else
                 "only the closed ports answer (RST)")
            return Expectation(f"a {what} scan of {len(PORTS)} ports: {told}", check)

        def host_scan(f: Facts) -> tuple[bool, str]:
            hits = audited(str(f.path)).get("host_scan", [])
            if len(hits) != 1:
                return False, f"{len(hits)} host_scan findings"
            d = hits[0]
            # the SYN port scan probed port 22 of the server's own address too
            ok = (d["hosts"] == len(HOSTS) + 1 and d["port"] == 22 and d["technique"] == "syn"
                  and sorted(d["open_hosts"]) == sorted(HOSTS_OPEN + (SERVER_IP,))
                  and d["filtered_count"] == len(HOSTS_DROPPED))
            return ok, (f"{d['hosts']} hosts on port {d['port']} ({d['technique']}): open "
                        f"{d['open_hosts']}, closed {d['closed_count']}, filtered "
                        f"{d['filtered_count']}")

        def connect_agrees(f: Facts) -> tuple[bool, str]:
            res = ctx.params.get("connect", {})
            want = {p: "open" if p in OPEN else "filtered" if p in DROPPED else "closed"
                    for p in PORTS}
            return res == want, f"connect() said: {sorted(res.items())}"

        def nothing_else(f: Facts) -> tuple[bool, str]:
            kinds = {k: len(v) for k, v in audited(str(f.path)).items()
                     if k not in ("port_scan", "host_scan")}
            return not kinds, f"other findings: {kinds or 'none'}"

        return [*(port_scan(t) for t in TECHNIQUES),
                Expectation(f"a SYN scan of port 22 on {len(HOSTS)} addresses: a host scan (of "
                            f"{len(HOSTS) + 1}: the SYN port scan probed {SERVER_IP}:22 too)",
                            host_scan),
                Expectation("the connect scan's own sockets saw the same open, closed and "
                            "filtered ports", connect_agrees, source="program"),
                Expectation("no other finding (no flood, no failed-connection storm)",
                            nothing_else)]
