"""The command-line contract: exit codes and one-line errors (DESIGN.md)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tcpscope.present.demo import demo_capture


def tcpscope(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tcpscope", *args], input=stdin,
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("content", [b"", b"# just some notes\n", bytes(range(256)) * 4])
def test_not_a_capture_is_one_line_and_exit_1(tmp_path: Path, content: bytes):
    bad = tmp_path / "notes.txt"
    bad.write_bytes(content)
    res = tcpscope("read", str(bad))
    assert res.returncode == 1
    err = res.stderr.decode()
    assert err.count("\n") == 1 and str(bad) in err and err.startswith("tcpscope: ")
    assert res.stdout == b""


def test_missing_file_and_directory_exit_1(tmp_path: Path):
    for target in (tmp_path / "nope.pcap", tmp_path):
        res = tcpscope("read", str(target))
        assert res.returncode == 1
        assert res.stderr.decode().count("\n") == 1


def test_usage_error_is_exit_2():
    assert tcpscope("read").returncode == 2
    assert tcpscope("read", "x.pcap", "--no-such-option").returncode == 2


def test_damaged_file_lists_what_comes_before_and_says_where(tmp_path: Path):
    with demo_capture() as path:
        data = path.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])  # inside the last record
    res = tcpscope("read", str(cut))
    assert res.returncode == 0
    assert res.stdout.decode().count("\n") == 17
    err = res.stderr.decode()
    assert "damaged" in err and "frame 18" in err and err.count("\n") == 1


def test_standard_input(tmp_path: Path):
    with demo_capture() as path:
        data = path.read_bytes()
    res = tcpscope("read", "-c", "3", "-", stdin=data)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().count("\n") == 3


@pytest.mark.parametrize("args", [
    ("explain", "--stream", "7"), ("ladder", "--stream", "7"), ("follow", "--stream", "7"),
])
def test_a_missing_stream_is_one_line_naming_the_file_and_exit_1(args: tuple[str, ...]):
    with demo_capture() as path:
        res = tcpscope(args[0], str(path), *args[1:])
    err = res.stderr.decode()
    assert res.returncode == 1
    assert err.count("\n") == 1 and err.startswith(f"tcpscope: {path}: no TCP stream 7"), err
    assert "KeyError" not in err and "Traceback" not in err


def test_the_lab_names_the_programs_it_misses_before_it_starts(tmp_path: Path):
    """With nothing on PATH, `lab run` says in one line what is missing and starts nothing."""
    import os

    from tcpscope.cli.lab import LAB_PROGRAMS, UNPRIVILEGED_LAB_PROGRAMS

    res = subprocess.run([sys.executable, "-m", "tcpscope", "lab", "run", "handshake"],
                         capture_output=True, timeout=120, env={**os.environ, "PATH": str(tmp_path)})
    err = res.stderr.decode()
    assert res.returncode == 1 and res.stdout == b""
    assert err.count("\n") == 1 and err.startswith("tcpscope: lab: ")
    expected = LAB_PROGRAMS if os.geteuid() == 0 else UNPRIVILEGED_LAB_PROGRAMS
    assert all(p in err for p in expected), err
