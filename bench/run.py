#!/usr/bin/env python3
"""Time tcpscope against tcpdump, tshark, dpkt and scapy on one capture, in one run.

    .venv/bin/python bench/run.py bench/out/bench.pcap [--only NAME ...] [--scapy-prefix N]

Every row runs in its own subprocess, one after the other, on the same file
(read once beforehand, so every row finds it in the page cache). For each row:
wall time, packets per second, the ratio to tcpdump's time (`x tcpdump`: 2.0
means twice as long) and peak memory (the child's max RSS, from wait4(2)).
Rows whose tool or API is missing are skipped with a visible note; a row that
fails says why. The table is printed; the same numbers go to
bench/out/run-<time>.json.

To add a row, add a `Row` to ROWS: either a command (`argv`, with `{file}`) or a
Python snippet (`code`, run by this interpreter with the capture path in
sys.argv[1] and printing the number of packets it handled), plus what it needs
(`needs_cmd` / `needs_import`). A row with `prefix` handles only the first
N packets (`{prefix}` in argv / sys.argv[2]); its time is extrapolated to the
whole file and marked `~`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PY = sys.executable


@dataclass
class Row:
    name: str
    what: str
    argv: list[str] | None = None  # a command; stdout goes to /dev/null
    code: str | None = None  # a Python snippet; prints the packet count
    needs_cmd: str | None = None
    needs_import: str | None = None
    prefix: int | None = None  # handles only the first N packets; extrapolated


# --------------------------------------------------------------------------- snippets

TCPSCOPE_BULK = """
import sys
from tcpscope.capture import open_capture
from tcpscope.wire.dissect import dissect_batch
n = 0
with open_capture(sys.argv[1]) as reader:
    for batch in reader:
        records = dissect_batch(batch)
        n += len(records)
print(n)
"""

SACK_SHARE = """
import sys
from tcpscope.capture.reader import open_capture
from tcpscope.wire.dissect import dissect_batch
n = sack = 0
with open_capture(sys.argv[1]) as reader:
    for batch in reader:
        records = dissect_batch(batch)
        n += len(records)
        sack += int((records["sack_count"] > 0).sum())
print(n, sack)
"""

TCPSCOPE_ANALYSIS = """
import sys
MODE = "wireshark"
from tcpscope.analysis.engine import Analyzer
from tcpscope.capture import open_capture
from tcpscope.wire.dissect import dissect_batch
n = 0
analyzer = Analyzer(mode=MODE)
with open_capture(sys.argv[1]) as reader:
    for batch in reader:
        records = dissect_batch(batch)
        analyzer.feed(records, batch.ts_ns, batch.frame_numbers, batch.iface)
        n += len(records)
conns = analyzer.connections()
print(n)
"""

DPKT = """
import sys, socket
import dpkt
n = 0
acc = 0
with open(sys.argv[1], "rb") as f:
    for ts, buf in dpkt.pcap.UniversalReader(f):
        n += 1
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
            continue
        tcp = ip.data
        if not isinstance(tcp, dpkt.tcp.TCP):
            continue
        # every TCP field the bulk path produces: ports, seq/ack, flags, offset, window,
        # checksum, urgent pointer, options (raw), payload length
        acc ^= (tcp.sport ^ tcp.dport ^ tcp.seq ^ tcp.ack ^ tcp.flags ^ tcp.off ^ tcp.win
                ^ tcp.sum ^ tcp.urp ^ len(tcp.opts) ^ len(tcp.data))
print(n)
"""

SCAPY = """
import sys
from scapy.utils import PcapReader
from scapy.layers.inet import TCP
limit = int(sys.argv[2])
n = 0
acc = 0
with PcapReader(sys.argv[1]) as reader:
    for pkt in reader:
        n += 1
        if TCP in pkt:
            t = pkt[TCP]
            acc ^= (t.sport ^ t.dport ^ t.seq ^ t.ack ^ int(t.flags) ^ (t.dataofs or 0)
                    ^ t.window ^ (t.chksum or 0) ^ t.urgptr ^ len(t.options) ^ len(t.payload))
        if n >= limit:
            break
print(n)
"""

TSHARK_FIELDS = [
    "frame.number", "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.seq", "tcp.ack",
    "tcp.flags", "tcp.len", "tcp.window_size", "tcp.analysis.flags",
    "tcp.analysis.retransmission", "tcp.analysis.out_of_order", "tcp.analysis.duplicate_ack_num",
    "tcp.analysis.bytes_in_flight", "tcp.analysis.ack_rtt",
]

ROWS: list[Row] = [
    Row("tcpdump", "tcpdump -nn -r FILE > /dev/null (the baseline)",
        argv=["tcpdump", "-nn", "-r", "{file}"], needs_cmd="tcpdump"),
    Row("tcpscope read", "tcpscope read FILE > /dev/null (tcpdump-compatible listing)",
        argv=[str(Path(PY).with_name("tcpscope")), "read", "{file}"],
        needs_import="tcpscope.present.tcpdump"),
    Row("tcpscope bulk", "open_capture + dissect_batch: every TCP field into columns",
        code=TCPSCOPE_BULK, needs_import="tcpscope.wire.dissect"),
    Row("tcpscope analysis", "read + dissect + every tcp.analysis verdict + connection table",
        code=TCPSCOPE_ANALYSIS, needs_import="tcpscope.analysis.engine"),
    Row("tcpscope analysis improved", "the same in improved mode (the default): hindsight "
        "verdicts, signals and the sender model (cwnd, phase)",
        code=TCPSCOPE_ANALYSIS.replace('MODE = "wireshark"', 'MODE = "improved"'),
        needs_import="tcpscope.analysis.engine"),
    Row("tcpscope packets", "tcpscope packets FILE --mode wireshark --format jsonl > /dev/null "
        "(what tshark's row does, as JSON)",
        argv=[str(Path(PY).with_name("tcpscope")), "packets", "{file}", "--mode", "wireshark",
              "--format", "jsonl"],
        needs_import="tcpscope.present.packets"),
    Row("tcpscope packets improved", "tcpscope packets FILE --format jsonl > /dev/null (the "
        "default, improved mode: every column of the sender model too)",
        argv=[str(Path(PY).with_name("tcpscope")), "packets", "{file}", "--format", "jsonl"],
        needs_import="tcpscope.present.packets"),
    Row("tcpscope conns", "tcpscope conns FILE --format csv > /dev/null (states, Zeek's view, "
        "the sender model's columns)",
        argv=[str(Path(PY).with_name("tcpscope")), "conns", "{file}", "--format", "csv"],
        needs_import="tcpscope.present.conns"),
    Row("tshark analysis", "tshark -r FILE -T fields -e tcp.stream -e tcp.analysis.* ... > /dev/null",
        argv=["tshark", "-n", "-r", "{file}", "-T", "fields",
              *[arg for f in TSHARK_FIELDS for arg in ("-e", f)]],
        needs_cmd="tshark"),
    Row("dpkt", "dpkt: iterate the pcap, parse Ethernet/IP/TCP, read every TCP field",
        code=DPKT, needs_import="dpkt"),
    Row("scapy", "scapy PcapReader, read every TCP field (first {prefix} packets, extrapolated)",
        code=SCAPY, needs_import="scapy", prefix=100_000),
]


# --------------------------------------------------------------------------- running


@dataclass
class Result:
    name: str
    what: str
    status: str = "ok"  # ok | skipped | failed
    note: str = ""
    packets: int | None = None  # packets this row handled
    wall_s: float | None = None  # measured
    wall_full_s: float | None = None  # for the whole file (extrapolated if prefix)
    extrapolated: bool = False
    pkts_per_s: float | None = None
    x_tcpdump: float | None = None
    max_rss_mb: float | None = None
    extra: dict = field(default_factory=dict)


def missing(row: Row) -> str | None:
    if row.needs_cmd and shutil.which(row.needs_cmd) is None:
        return f"{row.needs_cmd} not installed"
    if row.needs_import:
        probe = subprocess.run([PY, "-c", f"import {row.needs_import}"], capture_output=True,
                               text=True, timeout=120)
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["?"])[-1]
            return f"cannot import {row.needs_import}: {last}"
    return None


def measure(argv: list[str], capture_stdout: bool) -> tuple[int, float, float, str, str]:
    """Run argv; return (exit code, wall seconds, max RSS MB, stdout, stderr tail)."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out, \
            open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=out if capture_stdout else devnull, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        out.seek(0)
        stderr = err.read()[-2000:].decode(errors="replace")
        stdout = out.read(10000).decode(errors="replace") if capture_stdout else ""
    return proc.returncode, wall, usage.ru_maxrss / 1024, stdout, stderr


def run_row(row: Row, capture: Path, total_packets: int) -> Result:
    res = Result(row.name, row.what.replace("{prefix}", f"{row.prefix:,}" if row.prefix else ""))
    why = missing(row)
    if why:
        res.status, res.note = "skipped", why
        return res
    subst = {"{file}": str(capture), "{prefix}": str(row.prefix or "")}
    if row.argv is not None:
        argv = [subst.get(a, a) for a in row.argv]
    else:
        argv = [PY, "-c", row.code, str(capture)] + ([str(row.prefix)] if row.prefix else [])
    code, wall, rss, stdout, stderr = measure(argv, capture_stdout=row.code is not None)
    res.wall_s, res.max_rss_mb = wall, rss
    if code != 0:
        res.status = "failed"
        res.note = f"exit {code}: " + ((stderr.strip().splitlines() or ["?"])[-1])[:200]
        return res
    if row.code is not None:
        try:
            res.packets = int(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            res.status, res.note = "failed", f"printed no packet count: {stdout[:100]!r}"
            return res
    else:
        res.packets = min(total_packets, row.prefix) if row.prefix else total_packets
    if row.prefix and res.packets < total_packets:
        res.extrapolated = True
        res.wall_full_s = wall * total_packets / res.packets
        res.note = f"measured {res.packets:,} packets in {wall:.1f} s; time extrapolated to the file"
    else:
        res.wall_full_s = wall
        if res.packets != total_packets:
            res.note = f"handled {res.packets:,} of {total_packets:,} packets"
    res.pkts_per_s = res.packets / wall if wall > 0 else None
    return res


def count_packets(capture: Path) -> int:
    meta = capture.with_suffix(".json")
    if meta.exists():
        try:
            n = json.loads(meta.read_text()).get("packets_captured")
            if n:
                return int(n)
        except (ValueError, OSError):
            pass
    proc = subprocess.run(["capinfos", "-c", "-M", "-T", str(capture)], capture_output=True,
                          text=True, timeout=600, check=True)
    return int(proc.stdout.strip().splitlines()[-1].split("\t")[-1])


def sack_share(capture: Path) -> float | None:
    """The fraction of packets that carry SACK blocks (None without tcpscope)."""
    proc = subprocess.run([PY, "-c", SACK_SHARE, str(capture)], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        return None
    n, sack = map(int, proc.stdout.split())
    return sack / n if n else 0.0


def warm(capture: Path) -> None:
    with open(capture, "rb") as f:
        while f.read(1 << 24):
            pass


def table(results: list[Result]) -> str:
    head = f"{'row':<18} {'packets':>10} {'wall s':>9} {'pkts/s':>11} {'x tcpdump':>9} {'max RSS MB':>10}  note"
    lines = [head, "-" * len(head)]
    for r in results:
        if r.status != "ok":
            lines.append(f"{r.name:<18} {'':>10} {'':>9} {'':>11} {'':>9} {'':>10}  "
                         f"{r.status.upper()}: {r.note}")
            continue
        mark = "~" if r.extrapolated else ""
        ratio = f"{r.x_tcpdump:.2f}" if r.x_tcpdump is not None else "-"
        lines.append(
            f"{r.name:<18} {r.packets:>10,} {mark + format(r.wall_full_s, '.2f'):>9} "
            f"{r.pkts_per_s:>11,.0f} {mark + ratio:>9} {r.max_rss_mb:>10,.0f}  {r.note}"
        )
    return "\n".join(lines)


def versions() -> dict:
    def first_line(argv: list[str]) -> str | None:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    info = {"tcpdump": first_line(["tcpdump", "--version"]),
            "tshark": first_line(["tshark", "--version"]), "python": sys.version.split()[0]}
    for mod in ("tcpscope", "dpkt", "scapy", "numpy"):
        p = subprocess.run([PY, "-c", f"import {mod}; print(getattr({mod}, '__version__', '?'))"],
                           capture_output=True, text=True, timeout=120)
        info[mod] = p.stdout.strip() if p.returncode == 0 else None
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture", type=Path)
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="run only these rows (repeatable); tcpdump always runs")
    ap.add_argument("--scapy-prefix", type=int, default=None, help="packets for scapy (default 100000)")
    ap.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = ap.parse_args(argv)
    if not args.capture.is_file():
        ap.error(f"{args.capture}: no such file (make one with bench/make_capture.py)")
    rows = ROWS
    if args.only:
        unknown = set(args.only) - {r.name for r in ROWS}
        if unknown:
            ap.error(f"unknown rows {sorted(unknown)}; rows: {[r.name for r in ROWS]}")
        rows = [r for r in ROWS if r.name == "tcpdump" or r.name in args.only]
    if args.scapy_prefix:
        for r in rows:
            if r.name == "scapy":
                r.prefix = args.scapy_prefix

    total = count_packets(args.capture)
    size = args.capture.stat().st_size
    sack = sack_share(args.capture)
    print(f"{args.capture}: {total:,} packets, {size / 1e6:.1f} MB"
          + (f", {100 * sack:.1f} % with SACK blocks" if sack is not None else "")
          + f"; {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}", flush=True)
    warm(args.capture)
    results: list[Result] = []
    for row in rows:
        print(f"  {row.name} ...", end="", flush=True)
        res = run_row(row, args.capture, total)
        results.append(res)
        print(f" {res.status} {res.wall_s:.1f} s" if res.wall_s is not None else f" {res.status}",
              flush=True)
    base = next((r for r in results if r.name == "tcpdump" and r.status == "ok"), None)
    for r in results:
        if base and r.status == "ok":
            r.x_tcpdump = r.wall_full_s / base.wall_full_s
    print()
    print(table(results))

    OUT.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = args.json or OUT / f"run-{stamp}.json"
    doc = {
        "capture": str(args.capture), "capture_bytes": size, "packets": total,
        "sack_share": sack,
        "when": stamp, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(), "results": [r.__dict__ for r in results],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
