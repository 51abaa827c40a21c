#!/usr/bin/env python3
"""Write a capture of N spoofed SYNs (default one million) for the audit's memory bound.

Every SYN comes from a different random IPv4 source (as ``hping3 --rand-source`` sends
them), with a random source port and ISN, to one target (10.0.0.2:80), at a steady rate
in capture time (default 100 000 SYNs/s). Frames are built with tcpscope's packet builder
and written one by one with its pcap writer (snaplen 128), so the script's memory stays
flat whatever N is. The file is not committed; ~90 bytes a packet on disk::

    .venv/bin/python bench/make_synflood.py /tmp/synflood-1m.pcap
    .venv/bin/python bench/make_synflood.py /tmp/synflood-small.pcap --count 50000

Then ``/usr/bin/time -v .venv/bin/python -c 'import tcpscope; tcpscope.audit(PATH)'``
shows the audit's peak RSS; docs/audit.md says what it should be.
"""
from __future__ import annotations

import argparse
import random
import sys

from tcpscope.capture.writer import PcapWriter
from tcpscope.wire import linktypes
from tcpscope.wire.builder import TCP, Ether, Frame, IPv4
from tcpscope.wire.options import Mss, Nop, SackPermitted, WindowScale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=100_000.0, help="SYNs per second")
    ap.add_argument("--target", default="10.0.0.2")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    template = Frame(Ether(), IPv4(dst=args.target),
                     TCP(dport=args.port, flags="S", win=64240,
                         options=(Mss(1460), SackPermitted(), Nop(), WindowScale(7))))
    t0 = 1_700_000_000 * 10**9
    step = int(1e9 / args.rate)
    with PcapWriter(args.out, linktypes.ETHERNET, snaplen=128) as w:
        for i in range(args.count):
            src = rng.getrandbits(32) | 0x0100_0000  # never 0.x.x.x
            frame = template.with_ip(src=src.to_bytes(4, "big"), id=rng.getrandbits(16))
            frame = frame.with_tcp(sport=rng.randrange(1024, 65536), seq=rng.getrandbits(32))
            w.write(t0 + i * step, frame.build())
            if i and i % 100_000 == 0:
                print(f"{i} SYNs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
