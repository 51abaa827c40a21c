#!/usr/bin/env python3
"""How much the audit holds, and how long it takes, on captures given on the command line.

For each capture, in a fresh process: wall and CPU seconds, peak RSS, the peak of what
Python and numpy allocated (tracemalloc: the audit's tables and rings, one batch of
packets; not the engine's own per-connection state, which its C code allocates), the
engine's own count of state bytes, and the audit's tracked entries::

    .venv/bin/python bench/audit_memory.py /work/bench-data/bench.pcap /tmp/synflood-1m.pcap

Not a test: compare runs of the same machine, as ratios.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import resource
import sys
import time
import tracemalloc


def measure(path: str, queue: mp.Queue, trace: bool) -> None:
    from tcpscope.analysis.audit import Audit
    from tcpscope.pipeline import Options, run

    if trace:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    audit = Audit()
    result = run(path, [audit], Options(mode="improved", states=False, retire=True))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_py = tracemalloc.get_traced_memory()[1] if trace else None
    rep = audit.report
    engine = result.analyzer.stats()
    queue.put({
        "capture": path, "packets": result.rows, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "python_numpy_peak_mb": round(peak_py / 2**20, 1) if trace else None,
        "engine_state_mb": round((engine["state_bytes"] + engine["summary_bytes"]
                                  + engine["peak_segment_bytes"]) / 2**20, 1),
        "findings": [f.kind for f in rep.findings],
        "tracked": {k: v.get("entries") for k, v in rep.stats["detectors"].items()},
    })


def main(argv: list[str]) -> int:
    ctx = mp.get_context("spawn")    # a fresh process per run: its own peak RSS
    for path in argv:
        for trace in (False, True):   # tracemalloc slows the run: times from the first
            q = ctx.Queue()
            p = ctx.Process(target=measure, args=(path, q, trace))
            p.start()
            out = q.get()
            p.join()
            print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
