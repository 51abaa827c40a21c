"""How spreading the work scales (docs/scale.md): one process vs the scaled path with 1 and
2 local workers on one big capture (byte ranges), per phase: wall time, CPU seconds of the
tasks, the driver's own time, peak memory per worker. Not a test; run by hand:

    .venv/bin/python bench/scale.py /work/bench-data/bench.pcap [--what conns|packets|dataset]

The capture is read in place. On a shared machine prefer the CPU seconds (they do not
count time waiting for a core) and repeat.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import tempfile
import time

from tcpscope.pipeline import Input
from tcpscope.present.conns import collect
from tcpscope.present.packets import write_packets
from tcpscope.scale import driver, partition, stitch
from tcpscope.scale.driver import Scale

LOG = os.path.join(tempfile.gettempdir(), f"tcpscope-scale-bench-{os.getpid()}.jsonl")


def _log(phase: str, fn, arg, **kw):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(arg, **kw)
    rec = {"phase": phase, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
           "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    with open(LOG, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return out


def timed_partition(unit, **kw):
    return _log("partition", partition.partition_unit, unit, **kw)


def timed_bucket(task):
    return _log("bucket", stitch.run_bucket, task)


def one(path: str, what: str) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    if what == "conns":
        collect(Input((path,)), "wireshark")
    elif what == "dataset":
        with tempfile.TemporaryDirectory() as d:
            write_packets(Input((path,)), os.path.join(d, "p.parquet"), "parquet")
    else:
        write_packets(Input((path,)), io.BytesIO(), "jsonl")
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def scaled(path: str, what: str, workers: int, unit_mb: int, buckets: int | None) -> dict:
    if os.path.exists(LOG):
        os.unlink(LOG)
    # the workers are forked: they see these wrappers
    real_p, real_b = driver.partition_unit, driver.run_bucket
    driver.partition_unit, driver.run_bucket = timed_partition, timed_bucket
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        scale = Scale(workers=workers, unit_bytes=unit_mb << 20, buckets=buckets)
        if what == "conns":
            driver.scaled_conns(Input((path,)), "wireshark", scale)
        elif what == "dataset":
            with tempfile.TemporaryDirectory() as d:
                driver.scaled_packets(Input((path,)), os.path.join(d, "ds"), "parquet",
                                      "wireshark", scale, dataset=True)
        else:
            driver.scaled_packets(Input((path,)), io.BytesIO(), "jsonl", "wireshark", scale)
        wall, driver_cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        driver.partition_unit, driver.run_bucket = real_p, real_b
    recs = [json.loads(line) for line in open(LOG)]
    os.unlink(LOG)
    out = {"workers": workers, "wall": wall, "driver_cpu": driver_cpu}
    for phase in ("partition", "bucket"):
        rs = [r for r in recs if r["phase"] == phase]
        out[phase] = {"tasks": len(rs), "cpu": sum(r["cpu"] for r in rs),
                      "max_task_cpu": max(r["cpu"] for r in rs),
                      "peak_rss_mb": max(r["maxrss_mb"] for r in rs)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--what", choices=["conns", "packets", "dataset"], default="conns")
    ap.add_argument("--unit-mb", type=int, default=64)
    ap.add_argument("--buckets", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    for _ in range(a.repeat):
        print(json.dumps({"one": one(a.capture, a.what)}), flush=True)
        for w in (1, 2):
            print(json.dumps(scaled(a.capture, a.what, w, a.unit_mb, a.buckets)), flush=True)
    print(f"load average: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
