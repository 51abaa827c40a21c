#!/usr/bin/env python3
"""Make the benchmark capture: a few million packets of real kernel TCP.

Run as root:  python3 bench/make_capture.py [--out bench/out/bench.pcap] [--scale 1.0]
                                            [--profile standard|lossy] [--loss PERCENT]

Three network namespaces, made for this run and deleted afterwards (also on
failure):

    ns A (senders, clients)  a0 ── ra  ns R (router)  rb ── b0  ns B (servers)
    10.200.1.1                  10.200.1.254 / 10.200.2.254        10.200.2.2

Ethernet veths, MTU 1500, TSO/GSO/GRO off and gso_max_segs 1, so every segment
the capture shows is one the wire would carry. Loss, congestion and reordering
are made in R, on the forwarded path: drops on the sender's own netfilter or
qdisc are not losses (its TCP is told and just sends again). All at once:

- loss: bulk flows to port 5001; R's nft forward hook drops --loss percent
  (default 1 %) of them at random (`numgen random mod 10000 < 100`);
- congestion: bulk flows to port 5002 share a tbf (rate-limited, short queue)
  under R's htb egress toward B: queueing delay and tail drops;
- reordering: bulk flows to port 5003; R sends a random 1 % of their segments
  through a slow htb class, so they arrive a few ms late, behind later segments;
- bulk flows to port 5000 with nothing injected. They are not pristine: veth
  delivers through per-CPU input backlogs, so a sender thread that moves between
  the 2 CPUs reorders its own segments a little, and a full backlog drops
  (`backlog_drops` in the JSON counts those, machine-wide);
- short connections to port 6000: connect, 64-byte request, 256-byte response,
  close (client first); and refused connections to the closed port 6001.

`--profile lossy` makes R drop --loss percent (default 15 %) of every bulk
flow's segments (ports 5000-5003, on top of what else it does to them), so that
about a fifth of all packets are ACKs carrying SACK blocks: the capture on which
per-packet cost of printing options shows (bench/README.md).

tcpdump runs in B on b0 (the receiver's side of the bottleneck), snapshot
length 128 bytes (enough for Ethernet + IPv4 + a TCP header with 40 bytes of
options; keeps the file ~150 bytes a packet), with a 64 MB buffer. The
script reports packets captured and dropped by the kernel (should be 0).

Everything is bounded: each flow stops at its byte budget or at --max-seconds,
whichever comes first; every socket has a timeout; every thread is joined with a
deadline. Default budgets give about 2.5 million packets (~340 MB) in about a minute
on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))
from netlab import Lab, Threads, capture, run  # noqa: E402

A4, RA4, RB4, B4 = "10.200.1.1", "10.200.1.254", "10.200.2.254", "10.200.2.2"
MAC = {"a0": "02:00:00:00:0a:01", "ra": "02:00:00:00:0a:fe", "rb": "02:00:00:00:0b:fe",
       "b0": "02:00:00:00:0b:01"}
TIMEOUT = 20.0  # every socket operation; --profile lossy raises it (see PROFILES)
CHUNK = 256 * 1024

# (port, flows, bytes per flow at scale 1, what R does to them)
BULK = [
    (5000, 2, 240_000_000, "no injected impairment"),
    (5001, 4, 240_000_000, "random loss (--loss percent, 1 % by default)"),
    (5002, 4, 160_000_000, "tbf bottleneck: 300 Mbit/s shared, 100 KB queue"),
    (5003, 4, 240_000_000, "1% of segments delayed through a slow class"),
]
SHORT_PORT, REFUSED_PORT = 6000, 6001
#: per --profile: (ports R drops --loss percent of, default --loss, socket timeout). Under
#: 15 % loss a segment lost seven times in a row waits 25 s (RTO backoff from 200 ms),
#: which happens about once per capture: the lossy profile waits up to two minutes.
PROFILES = {"standard": ("5001", 1.0, 20.0), "lossy": ("5000-5003", 15.0, 120.0)}


def topology(lab: Lab, loss_ports: str, loss: float) -> tuple[str, str, str]:
    a, r, b = lab.netns("a"), lab.netns("r"), lab.netns("b")
    for ns in (a, r, b):
        lab.no_ipv6(ns)
        # thousands of short connections from one client: let TIME_WAIT ports be reused
        lab.sysctl(ns, "net.ipv4.tcp_tw_reuse", 1)
        lab.sysctl(ns, "net.ipv4.ip_local_port_range", "10000 65000")
    lab.veth(a, "a0", r, "ra", mac_a=MAC["a0"], mac_b=MAC["ra"], offloads=False)
    lab.veth(r, "rb", b, "b0", mac_a=MAC["rb"], mac_b=MAC["b0"], offloads=False)
    lab.sysctl(r, "net.ipv4.ip_forward", 1)
    for ns, ifname, cidr in ((a, "a0", f"{A4}/24"), (r, "ra", f"{RA4}/24"),
                             (r, "rb", f"{RB4}/24"), (b, "b0", f"{B4}/24")):
        lab.addr(ns, ifname, cidr)
    for ns, ip, peer, dev in ((a, RA4, "ra", "a0"), (r, A4, "a0", "ra"),
                              (r, B4, "b0", "rb"), (b, RB4, "rb", "b0")):
        lab.neigh(ns, ip, MAC[peer], dev)
    run("ip", "-n", a, "route", "add", "default", "via", RA4)
    run("ip", "-n", b, "route", "add", "default", "via", RB4)

    # R's egress toward B: htb; 1:10 default (fast), 1:20 slow (reordering), 1:30 with a tbf
    # leaf (the congestion bottleneck).
    for cmd in (
        "qdisc add dev rb root handle 1: htb default 10",
        "class add dev rb parent 1: classid 1:10 htb rate 10gbit",
        "class add dev rb parent 1: classid 1:20 htb rate 20mbit",
        "class add dev rb parent 1: classid 1:30 htb rate 10gbit",
        "qdisc add dev rb parent 1:30 handle 30: tbf rate 300mbit burst 64kb limit 100kb",
    ):
        lab.sh(r, "tc", *cmd.split())
    lab.nft(r, f"""
table inet bench {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        ip daddr {B4} tcp dport {loss_ports} numgen random mod 10000 < {round(loss * 100)} drop
        ip daddr {B4} tcp dport 5002 meta priority set 1:30
        ip daddr {B4} tcp dport 5003 meta length > 1000 numgen random mod 1000 < 10 meta priority set 1:20
    }}
}}""")
    return a, r, b


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n


def bulk_server(port: int, flows: int, ready: threading.Event, stats: Stats, deadline: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as ls:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((B4, port))
        ls.listen(flows)
        ls.settimeout(TIMEOUT)
        ready.set()
        workers = []

        def drain(conn: socket.socket) -> None:
            buf = bytearray(CHUNK)
            with conn:
                conn.settimeout(TIMEOUT)
                total = 0
                while n := conn.recv_into(buf):
                    total += n
                stats.add(f"bulk_bytes_{port}", total)

        for _ in range(flows):
            conn, _ = ls.accept()
            t = threading.Thread(target=drain, args=(conn,), daemon=True)
            t.start()
            workers.append(t)
        for t in workers:
            t.join(max(1.0, deadline - time.monotonic() + TIMEOUT))


def bulk_client(port: int, budget: int, ready: threading.Event, stop_at: float) -> None:
    ready.wait(TIMEOUT)
    block = bytes(range(256)) * (CHUNK // 256)
    with socket.create_connection((B4, port), timeout=TIMEOUT) as s:
        sent = 0
        while sent < budget and time.monotonic() < stop_at:
            n = min(CHUNK, budget - sent)
            s.sendall(block[:n])
            sent += n


def recv_upto(s: socket.socket, n: int) -> None:
    """Read `n` bytes, or up to the end of the stream if it comes first."""
    got = 0
    while got < n:
        chunk = s.recv(n - got)
        if not chunk:
            break
        got += len(chunk)


def short_server(ready: threading.Event, stop: threading.Event, stats: Stats) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as ls:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((B4, SHORT_PORT))
        ls.listen(512)
        ls.settimeout(0.2)
        ready.set()
        response = b"R" * 255 + b"\n"
        while not stop.is_set():
            try:
                conn, _ = ls.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(TIMEOUT)
                try:
                    recv_upto(conn, 64)
                    conn.sendall(response)
                    while conn.recv(1024):  # until the client's FIN
                        pass
                    stats.add("short_served")
                except OSError:
                    stats.add("short_server_errors")


def short_clients(count: int, ready: threading.Event, stop_at: float, stats: Stats) -> None:
    ready.wait(TIMEOUT)
    request = b"Q" * 63 + b"\n"
    for _ in range(count):
        if time.monotonic() >= stop_at:
            break
        try:
            with socket.create_connection((B4, SHORT_PORT), timeout=TIMEOUT) as s:
                s.sendall(request)
                recv_upto(s, 256)
            stats.add("short_done")
        except OSError:
            stats.add("short_client_errors")


def refused_clients(count: int, stop_at: float, stats: Stats) -> None:
    for _ in range(count):
        if time.monotonic() >= stop_at:
            break
        try:
            socket.create_connection((B4, REFUSED_PORT), timeout=TIMEOUT).close()
            stats.add("refused_unexpectedly_open")
        except ConnectionRefusedError:
            stats.add("refused")
        time.sleep(0.002)


def softnet_drops() -> int:
    """Packets the kernel dropped because a CPU's input backlog was full (all CPUs)."""
    total = 0
    for line in Path("/proc/net/softnet_stat").read_text().splitlines():
        total += int(line.split()[1], 16)
    return total


def make(out: Path, scale: float, max_seconds: float, shorts: int, refused: int,
         snaplen: int, profile: str, loss: float) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = Stats()
    started = time.monotonic()
    backlog_drops = softnet_drops()
    with Lab("tsbench") as lab:
        loss_ports = PROFILES[profile][0]
        a, r, b = topology(lab, loss_ports, loss)
        stop_at = time.monotonic() + max_seconds
        args = ["-i", "b0", "-s", str(snaplen), "-B", "65536"]
        with capture(b, str(out), args, settle=1.0) as cap:
            workers = Threads()
            stop_short = threading.Event()
            short_ready = threading.Event()
            workers.start(b, short_server, short_ready, stop_short, stats)
            clients = Threads()
            for port, flows, per_flow, _ in BULK:
                ready = threading.Event()
                workers.start(b, bulk_server, port, flows, ready, stats, stop_at)
                for _ in range(flows):
                    clients.start(a, bulk_client, port, int(per_flow * scale), ready, stop_at)
            for _ in range(4):
                clients.start(a, short_clients, shorts // 4, short_ready, stop_at, stats)
            clients.start(a, refused_clients, refused, stop_at, stats)
            clients.join(max_seconds + 2 * TIMEOUT)
            stop_short.set()
            workers.join(2 * TIMEOUT)
        r_stats = lab.sh(r, "tc", "-s", "qdisc", "show", "dev", "rb").stdout
        nft_stats = lab.sh(r, "nft", "list", "ruleset").stdout
    elapsed = time.monotonic() - started
    result = {
        "file": str(out),
        "bytes": out.stat().st_size,
        "packets_captured": cap.captured,
        "packets_dropped_by_kernel": cap.dropped,
        "seconds": round(elapsed, 1),
        "snaplen": snaplen,
        "scale": scale,
        "profile": profile,
        "loss_percent": loss,
        "loss_ports": loss_ports,
        "counts": stats.counts,
        "backlog_drops": softnet_drops() - backlog_drops,
        "flows": [{"port": p, "flows": f, "bytes_per_flow": int(n * scale), "what": w}
                  for p, f, n, w in BULK],
        "router_qdisc": r_stats,
        "router_nft": nft_stats,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "bench.pcap")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every bulk flow's byte budget")
    ap.add_argument("--max-seconds", type=float, default=240.0, help="stop every flow by then")
    ap.add_argument("--shorts", type=int, default=8000, help="short connections")
    ap.add_argument("--refused", type=int, default=2000, help="refused connection attempts")
    ap.add_argument("--snaplen", type=int, default=128)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="standard",
                    help="standard: random loss on port 5001 only; lossy: on every bulk port")
    ap.add_argument("--loss", type=float, default=None,
                    help="percent of segments the router drops at random on the loss ports "
                         "(0.01 steps; default 1, or 15 with --profile lossy)")
    args = ap.parse_args(argv)
    if args.loss is None:
        args.loss = PROFILES[args.profile][1]
    global TIMEOUT
    TIMEOUT = PROFILES[args.profile][2]
    if not 0 <= args.loss <= 100:
        ap.error("--loss is a percentage, 0 to 100")
    if os.geteuid() != 0:
        ap.error("run as root (network namespaces, tcpdump)")
    result = make(args.out, args.scale, args.max_seconds, args.shorts, args.refused, args.snaplen,
                  args.profile, args.loss)
    meta = args.out.with_suffix(".json")
    meta.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.out}: {result['packets_captured']} packets, {result['bytes'] / 1e6:.1f} MB, "
          f"{result['packets_dropped_by_kernel']} dropped by the capture, in {result['seconds']} s")
    print(json.dumps(result["counts"], sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
