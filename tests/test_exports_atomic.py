"""Exports are written completely or not at all (capture/writer.py `AtomicOutput`): every
``-o`` and ``-w`` into a missing directory, a read-only one or a full disk is one line and
exit 1, with neither the file nor a temporary left; SIGINT and SIGTERM remove the
temporary; SIGKILL at any moment never leaves a partial file under the final name; the
file gets the mode the umask allows (docs/capture.md, "Writing")."""
from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tcpscope.capture import open_capture, write_pcap
from tcpscope.cli import main
from tcpscope.present.demo import demo_capture

#: Every export: the command and its options, OUT standing for the output's path.
EXPORTS = {
    "conns": ["conns", "--format", "csv", "-o", "OUT"],
    "conns-parquet": ["conns", "--format", "parquet", "-o", "OUT"],
    "packets": ["packets", "-o", "OUT"],
    "packets-w": ["packets", "-o", "/dev/null", "-w", "OUT"],
    "read-w": ["read", "-w", "OUT"],
    "ladder": ["ladder", "--stream", "0", "-o", "OUT"],
    "ladder-svg": ["ladder", "--stream", "0", "--format", "svg", "-o", "OUT"],
    "follow": ["follow", "--stream", "0", "-o", "OUT"],
    "timeline": ["timeline", "--stream", "0", "-o", "OUT"],
    "audit": ["audit", "-o", "OUT"],
    "graph": ["graph", "--stream", "0", "--kind", "tcptrace", "-o", "OUT"],
    "report": ["report", "-o", "OUT"],
}
SUFFIX = {"graph": ".svg", "read-w": ".pcap", "packets-w": ".pcapng", "report": ".html"}


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    with demo_capture() as path:
        yield str(path)


def invoke(name: str, capture: str, out: Path) -> tuple[int, str]:
    args = [str(out) if a == "OUT" else a for a in EXPORTS[name]]
    res = CliRunner().invoke(main, [args[0], capture, *args[1:]])
    return res.exit_code, res.stderr


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_each_export_is_whole_and_honours_the_umask(name: str, demo: str, tmp_path: Path) -> None:
    out = tmp_path / f"out{SUFFIX.get(name, '.txt')}"
    old = os.umask(0o027)
    try:
        code, err = invoke(name, demo, out)
    finally:
        os.umask(old)
    assert code == 0, err
    assert out.stat().st_size > 0 and (out.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_missing_directory_is_one_line(name: str, demo: str, tmp_path: Path) -> None:
    out = tmp_path / "no" / f"out{SUFFIX.get(name, '.txt')}"
    code, err = invoke(name, demo, out)
    assert code == 1 and err == f"tcpscope: {out}: cannot write: No such file or directory\n"
    assert list(tmp_path.iterdir()) == []


@contextlib.contextmanager
def mounted(path: Path, options: str) -> Iterator[Path]:
    """A small tmpfs at `path` (root only), unmounted afterwards."""
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs",
                                            str(path)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_read_only_directory_is_one_line(name: str, demo: str, tmp_path: Path) -> None:
    with mounted(tmp_path / "ro", "ro,size=64k") as ro:
        out = ro / f"out{SUFFIX.get(name, '.txt')}"
        code, err = invoke(name, demo, out)
        assert code == 1 and err == f"tcpscope: {out}: cannot write: Read-only file system\n"
        assert list(ro.iterdir()) == []


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_full_disk_is_one_line_and_leaves_nothing(name: str, demo: str, tmp_path: Path) -> None:
    with mounted(tmp_path / "full", "size=64k") as full:
        filler = full / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        out = full / f"out{SUFFIX.get(name, '.txt')}"
        code, err = invoke(name, demo, out)
        assert code == 1 and err == f"tcpscope: {out}: cannot write: No space left on device\n"
        assert [p.name for p in full.iterdir()] == ["filler"]


def test_full_standard_output_is_one_line(demo: str) -> None:
    res = subprocess.run([sys.executable, "-m", "tcpscope", "conns", demo],
                         stdout=open("/dev/full", "wb"), stderr=subprocess.PIPE, timeout=120)
    assert res.returncode == 1
    assert res.stderr.decode().splitlines()[-1] == \
        "tcpscope: standard output: No space left on device"


def test_a_device_is_written_in_place_not_replaced(demo: str) -> None:
    code, err = invoke("conns", demo, Path("/dev/null"))
    assert code == 0 and Path("/dev/null").is_char_device()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, demo: str) -> str:
    """The demo's frames 3000 times over (51,000 frames): exports that take a while."""
    with open_capture(demo) as cap:
        frames = [(int(ts), b.frame_bytes(i))
                  for b in cap for i, ts in enumerate(b.ts_ns.tolist())]
    path = tmp_path_factory.mktemp("big") / "big.pcap"
    span = frames[-1][0] - frames[0][0] + 1_000_000

    def all_frames() -> Iterator[tuple[int, bytes]]:
        for k in range(3000):
            for ts, data in frames:
                yield ts + k * span, data

    write_pcap(path, all_frames(), 1)
    return str(path)


def start(big: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tcpscope", "packets", big, "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_never_leaves_a_partial_file(big: str, tmp_path: Path) -> None:
    rng = random.Random(13)
    whole = None
    for i in range(6):
        out = tmp_path / f"p{i}.jsonl"
        proc = start(big, out)
        time.sleep(rng.uniform(0.3, 3.0))
        proc.kill()
        proc.wait()
        if out.exists():  # it finished before the kill: then it is whole
            whole = whole or out.read_bytes()
            assert out.read_bytes() == whole and whole.endswith(b"\n")
        for p in tmp_path.glob(f".p{i}.jsonl.*.tmp"):
            p.unlink()   # SIGKILL cannot clean up; the temporary is never the target


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_remove_the_temporary(big: str, tmp_path: Path, sig: int) -> None:
    out = tmp_path / "p.jsonl"
    proc = start(big, out)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".p.jsonl.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(tmp_path.glob(".p.jsonl.*.tmp")), "the export never started"
    proc.send_signal(sig)
    proc.wait(timeout=60)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode in (1, 130, -sig, 128 + sig), (proc.returncode, err)
    assert list(tmp_path.iterdir()) == [], (proc.returncode, err)
