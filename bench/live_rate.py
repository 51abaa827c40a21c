#!/usr/bin/env python3
"""Can `tcpscope live` keep up? Loopback TCP at a fixed packet rate, drops counted.

Run as root (it creates a throwaway network namespace, so the traffic and the
capture stay on that namespace's own loopback and nothing else on the machine
is seen or disturbed)::

    sudo .venv/bin/python bench/live_rate.py                  # 100k data segments/s, 10 s
    sudo .venv/bin/python bench/live_rate.py --rate 50000 --rate 100000 --rate 200000
    sudo .venv/bin/python bench/live_rate.py --rate 0         # unpaced: as fast as it goes

For each rate it runs, one after another:

- **tcpdump alone**: ``tcpdump -i lo -w /dev/null -U --immediate-mode`` with the
  same filter and buffer as tcpscope's helper: the helper's own cost and drops;
- **tcpscope live**: ``tcpscope live -i lo --netns NS --format jsonl tcp port P``
  (events to a file), which reads tcpdump's pipe, dissects, analyses and prints;
- **tcpscope live -w**: the same, also saving the pcapng.

The traffic comes from a small C program (compiled here with gcc: a Python
sender cannot pace 100k sends/s on this machine): C connections on
127.0.0.1, each send() of S bytes with TCP_NODELAY is one segment, paced to R
segments/s in total for D seconds; the receiver reads and discards, so the
kernel adds its ACKs on top (the packet rate on the wire is > R).

It reports, per run: packets tcpdump captured, the packet rate that gives,
frames tcpscope read (must equal captured), the kernel drop counter (tcpdump's
"packets dropped by kernel"), and the CPU seconds tcpscope and its helper used.
Results also go to bench/out/live-rate-<UTC time>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

GENERATOR_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* gen IFACE FLOWS SIZE RATE SECONDS
 * Injects complete TCP conversations on IFACE (lo) through an AF_PACKET socket:
 * per flow a handshake, then data segments of SIZE bytes from 10.9.0.1 to
 * 10.9.0.2:7000 with an ACK back after every second one, RATE packets/s in total
 * (0 = as fast as it goes) for SECONDS, then FIN, FIN-ACK, ACK. Nobody owns the
 * addresses (forwarding is off in the namespace), so the kernel drops each frame
 * after the capture has seen it: no TCP stack in the loop, the count is exact.
 * Prints: packets sent, seconds. */

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s) {
    for (; n > 1; p += 2, n -= 2) s += (uint32_t)p[0] << 8 | p[1];
    if (n) s += (uint32_t)p[0] << 8;
    return s;
}
static uint16_t fold(uint32_t s) {
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static int sock_fd; static struct sockaddr_ll where; static long packets; static uint16_t ipid;

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static void emit(int to_server, uint16_t cport, uint32_t seq, uint32_t ack, uint8_t flags, int len) {
    static uint8_t f[2048];
    uint8_t c_ip[4] = {10, 9, 0, 1}, s_ip[4] = {10, 9, 0, 2};
    memset(f, 0, 14 + 40);
    f[12] = 0x08; f[13] = 0x00;
    uint8_t *ip = f + 14, *tcp = ip + 20;
    ip[0] = 0x45; put16(ip + 2, 40 + len); put16(ip + 4, ipid++); ip[6] = 0x40; ip[8] = 64; ip[9] = 6;
    memcpy(ip + 12, to_server ? c_ip : s_ip, 4); memcpy(ip + 16, to_server ? s_ip : c_ip, 4);
    put16(ip + 10, fold(sum16(ip, 20, 0)));
    put16(tcp, to_server ? cport : 7000); put16(tcp + 2, to_server ? 7000 : cport);
    put32(tcp + 4, seq); put32(tcp + 8, ack); tcp[12] = 5 << 4; tcp[13] = flags; put16(tcp + 14, 65535);
    memset(tcp + 20, 'x', len);
    uint8_t pseudo[12]; memcpy(pseudo, ip + 12, 8); pseudo[8] = 0; pseudo[9] = 6; put16(pseudo + 10, 20 + len);
    put16(tcp + 16, fold(sum16(tcp, 20 + len, sum16(pseudo, 12, 0))));
    if (sendto(sock_fd, f, 14 + 40 + len, 0, (struct sockaddr *)&where, sizeof where) < 0) {
        perror("sendto"); exit(1);
    }
    packets++;
}

enum { FIN = 1, SYN = 2, PSH = 8, ACK = 16 };

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: gen IFACE FLOWS SIZE RATE SECONDS\n"); return 2; }
    int flows = atoi(argv[2]), size = atoi(argv[3]);
    double rate = atof(argv[4]), seconds = atof(argv[5]);
    sock_fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (sock_fd < 0) { perror("socket"); return 1; }
    memset(&where, 0, sizeof where);
    where.sll_family = AF_PACKET; where.sll_ifindex = if_nametoindex(argv[1]); where.sll_halen = 6;
    if (!where.sll_ifindex) { perror("if_nametoindex"); return 1; }
    uint32_t *cs = calloc(flows, 4), *ss = calloc(flows, 4);
    long *n = calloc(flows, sizeof *n);
    for (int i = 0; i < flows; i++) {       /* handshakes; ISNs near the 2^32 wrap */
        uint16_t port = 40000 + i; cs[i] = 0xFFFF0000u + 7919u * i; ss[i] = 0xFFFFF000u - 104729u * i;
        emit(1, port, cs[i], 0, SYN, 0);
        emit(0, port, ss[i], cs[i] + 1, SYN | ACK, 0);
        cs[i]++; ss[i]++;
        emit(1, port, cs[i], ss[i], ACK, 0);
    }
    double t0 = now(), end = t0 + seconds;
    long start = packets;
    int k = 0;
    for (;;) {
        double t = now();
        if (t >= end) break;
        long due = rate > 0 ? (long)((t - t0) * rate) + start : packets + 64;
        if (packets >= due) {
            struct timespec ts = {0, 20000}; nanosleep(&ts, NULL);
            continue;
        }
        while (packets < due) {
            int i = k++ % flows; uint16_t port = 40000 + i;
            emit(1, port, cs[i], ss[i], PSH | ACK, size); cs[i] += size;
            if (++n[i] % 2 == 0) emit(0, port, ss[i], cs[i], ACK, 0);
        }
    }
    double took = now() - t0;
    for (int i = 0; i < flows; i++) {
        uint16_t port = 40000 + i;
        emit(1, port, cs[i], ss[i], FIN | ACK, 0);
        emit(0, port, ss[i], cs[i] + 1, FIN | ACK, 0);
        emit(1, port, cs[i] + 1, ss[i] + 1, ACK, 0);
    }
    printf("%ld %.6f\n", packets, took);
    return 0;
}
"""


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


def build_generator(workdir: Path) -> Path:
    src = workdir / "gen.c"
    exe = workdir / "gen"
    src.write_text(GENERATOR_C)
    sh("gcc", "-O2", "-o", str(exe), str(src))
    return exe


def run_one(kind: str, ns: str, gen: Path, args: argparse.Namespace, rate: int,
            workdir: Path) -> dict:
    filt = ["tcp", "port", "7000"]
    events = workdir / f"events-{kind}-{rate}.jsonl"
    pcapng = workdir / f"live-{rate}.pcapng"
    if kind == "tcpdump":
        cmd = ["ip", "netns", "exec", ns, "tcpdump", "-i", "lo", "-w", "/dev/null", "-U",
               "--immediate-mode", "-s", str(args.snaplen), "-B", str(args.buffer_kib), "-n",
               "--time-stamp-precision", "nano", "--", *filt]
    else:
        cmd = [sys.executable, "-m", "tcpscope", "live", "-i", "lo", "--netns", ns,
               "--format", "jsonl", "-B", str(args.buffer_kib), "-s", str(args.snaplen), *filt]
        if kind == "tcpscope-w":
            cmd[6:6] = ["-w", str(pcapng)]
    out = open(events, "w")
    err = open(workdir / f"stderr-{kind}-{rate}.txt", "w+")
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True)
    # Wait until the capture listens ("listening on" from tcpdump, or tcpscope's banner).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        err.seek(0)
        text = err.read()
        if "listening on" in text or "capturing on" in text:
            break
        if proc.poll() is not None:
            raise SystemExit(f"{kind} failed to start: {text}")
        time.sleep(0.05)
    time.sleep(0.3)
    gen_out = sh("ip", "netns", "exec", ns, str(gen), "lo", str(args.flows),
                 str(args.size), str(rate), str(args.seconds), timeout=args.seconds + 60)
    sent, took = gen_out.stdout.split()
    time.sleep(0.5)  # let the pipe drain
    os.killpg(proc.pid, 2)
    _, status, usage = os.wait4(proc.pid, 0)
    out.close()
    err.seek(0)
    err_text = err.read()
    err.close()
    result = {"kind": kind, "rate_target": rate, "packets_sent": int(sent),
              "gen_seconds": float(took), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
              "exit": os.waitstatus_to_exitcode(status)}
    if kind == "tcpdump":
        from tcpscope.capture.live import parse_helper_stats

        stats = parse_helper_stats(err_text)
        result.update(captured=stats.captured, received_by_filter=stats.received_by_filter,
                      dropped_by_kernel=stats.dropped_by_kernel, frames_read=None)
    else:
        summary = None
        for line in events.read_text().splitlines():
            obj = json.loads(line)
            if obj.get("event") == "summary":
                summary = obj
        if summary is None:
            raise SystemExit(f"{kind}: no summary; stderr: {err_text}")
        cap = summary["capture"] or {}
        result.update(captured=cap.get("captured"),
                      received_by_filter=cap.get("received_by_filter"),
                      dropped_by_kernel=cap.get("dropped_by_kernel"),
                      frames_read=summary["frames"], connections=summary["connections"])
        if kind == "tcpscope-w":
            from tcpscope.capture import open_capture

            with open_capture(pcapng) as cap_file:
                result["frames_in_file"] = sum(len(b) for b in cap_file)
            pcapng.unlink()
    result["pkts_per_s"] = round((result["captured"] or 0) / float(took))
    events.unlink()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, action="append",
                    help="packets per second (repeatable; 0 = as fast as the sender goes)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--flows", type=int, default=8, help="TCP conversations (round robin)")
    ap.add_argument("--size", type=int, default=100, help="payload bytes per data segment")
    ap.add_argument("--buffer-kib", type=int, default=32768)
    ap.add_argument("--snaplen", type=int, default=256,
                    help="-s for tcpdump and tcpscope (256: tcpscope live's default; 0: whole "
                         "packets)")
    ap.add_argument("--only", choices=["tcpdump", "tcpscope", "tcpscope-w"], action="append")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("live_rate.py needs root (network namespace, capture)", file=sys.stderr)
        return 1
    for tool in ("tcpdump", "ip", "gcc"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 1
    rates = args.rate or [100_000]
    kinds = args.only or ["tcpdump", "tcpscope", "tcpscope-w"]
    ns = f"tcpscope-rate-{os.getpid()}"
    results = []
    with tempfile.TemporaryDirectory(prefix="tcpscope-rate-") as tmp:
        workdir = Path(tmp)
        gen = build_generator(workdir)
        sh("ip", "netns", "add", ns)
        try:
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            print(f"{'run':<12} {'target/s':>9} {'sent':>9} {'captured':>9} {'pkts/s':>8} "
                  f"{'read':>9} {'dropped':>8} {'cpu s':>6}")
            for rate in rates:
                for kind in kinds:
                    r = run_one(kind, ns, gen, args, rate, workdir)
                    results.append(r)
                    read = "-" if r["frames_read"] is None else str(r["frames_read"])
                    print(f"{kind:<12} {rate or 'max':>9} {r['packets_sent']:>9} "
                          f"{r['captured']:>9} {r['pkts_per_s']:>8} {read:>9} "
                          f"{r['dropped_by_kernel']:>8} {r['cpu_s']:>6}", flush=True)
                    if r.get("frames_in_file") is not None and \
                            r["frames_in_file"] != r["frames_read"]:
                        print(f"   -w file holds {r['frames_in_file']} frames, "
                              f"read {r['frames_read']}")
        finally:
            sh("ip", "netns", "del", ns, check=False)
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    meta = {"when": stamp, "seconds": args.seconds, "flows": args.flows, "size": args.size,
            "cpus": os.cpu_count(), "tcpdump": sh("tcpdump", "--version").stdout.splitlines()[0],
            "python": sys.version.split()[0], "results": results}
    (out_dir / f"live-rate-{stamp}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
