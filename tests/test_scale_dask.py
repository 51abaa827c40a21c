"""The same answers from a real Dask cluster: a `dask scheduler` and two `dask worker`
processes on 127.0.0.1, started and stopped here, every wait bounded; one worker killed
(SIGKILL) mid-run changes nothing. Skipped, saying so, without the dask extra."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tcpscope.pipeline import Input
from tcpscope.present.audit import audit_file
from tcpscope.present.conns import collect, render
from tcpscope.scale.driver import Scale, scaled_audit, scaled_conns

distributed = pytest.importorskip("distributed",
                                  reason="the dask extra (pip install 'tcpscope[dask]')")

ROOT = Path(__file__).resolve().parents[1]
PCAPS = sorted(str(p) for p in (ROOT / "fixtures").rglob("*.pcap"))
START_S = 60


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
         "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "30"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def _wait_workers(address: str, n: int) -> None:
    deadline = time.monotonic() + START_S
    with distributed.Client(address, timeout=START_S, set_as_default=False) as client:
        while len(client.scheduler_info()["workers"]) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} dask workers did not join in {START_S} s")
            time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster():
    address = f"tcp://127.0.0.1:{_port()}"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs += [_worker(address), _worker(address)]
        _wait_workers(address, 2)
        yield address, procs
    finally:
        _stop(procs)


def test_dask_same_answers(cluster, tmp_path: Path):
    """Two fixtures read whole and cut into ranges, and all the fixtures as one merged
    input: conns (jsonl, zeek) and the audit equal one process's."""
    address, _ = cluster
    scale = Scale(dask=address, unit_bytes=16 << 10, buckets=5)
    big = sorted(PCAPS, key=os.path.getsize)[-2:]
    for files in ([big[0]], [big[1]], PCAPS):
        inp = Input(tuple(files))
        ref = collect(inp, "improved")
        got = scaled_conns(inp, "improved", scale)
        for fmt in ("jsonl", "zeek"):
            assert render(got, fmt) == render(ref, fmt), (files[:2], fmt)
        if len(files) == 1:
            assert scaled_audit(inp, "improved", scale).as_dicts() == \
                audit_file(files[0]).as_dicts()


def test_dask_cli(cluster):
    address, _ = cluster
    path = sorted(PCAPS, key=os.path.getsize)[-1]
    base = [sys.executable, "-m", "tcpscope", "conns", path, "--format", "csv"]
    one = subprocess.run(base, capture_output=True, timeout=120, check=True).stdout
    many = subprocess.run([*base, "--dask", address], capture_output=True, timeout=300,
                          check=True).stdout
    assert many == one


def test_dask_worker_killed_mid_run(cluster):
    """A worker SIGKILLed while the run goes on: Dask moves its tasks to the other one; the
    answer is still exact. A new worker joins for the tests after this one."""
    address, procs = cluster
    inp = Input(tuple(PCAPS))
    ref = render(collect(inp, "wireshark"), "jsonl")
    out: dict = {}

    def work() -> None:
        try:
            out["got"] = render(scaled_conns(inp, "wireshark",
                                             Scale(dask=address, unit_bytes=4 << 10,
                                                   buckets=16)), "jsonl")
        except BaseException as exc:  # reported below
            out["error"] = exc

    t = threading.Thread(target=work)
    t.start()
    time.sleep(1.0)
    alive = t.is_alive()
    victim = procs[1]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=20)
    t.join(timeout=300)
    procs.append(_worker(address))
    assert not t.is_alive()
    assert "error" not in out, out.get("error")
    assert alive, "the run ended before the worker was killed"
    assert out["got"] == ref
