"""Damage is never silent: every command and the Python API, on a truncated capture, a
corrupted record, a corrupted compressed file, captures joined with cat, and one damaged
file among several, exit 0 with one stderr line per damaged file (which file, where, why;
what came before it is read and analysed), or exit 1 with one line when nothing usable
remains (docs/capture.md, "Damage")."""
from __future__ import annotations

import gzip
import struct
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import tcpscope
from tcpscope.capture.errors import CaptureDamageWarning
from tcpscope.cli import main
from tcpscope.present.demo import demo_capture

#: Every file command, with what it needs to show one connection (the demo's stream 0).
COMMANDS = {
    "read": [], "packets": [], "conns": [], "explain": [], "audit": [],
    "ladder": ["--stream", "0"], "follow": ["--stream", "0"], "timeline": ["--stream", "0"],
    "graph": ["--stream", "0", "--kind", "tcptrace", "-o", "{tmp}/g.svg"],
    "report": ["-o", "{tmp}/r.html"],
}


@pytest.fixture(scope="module")
def demo() -> bytes:
    with demo_capture() as path:
        return path.read_bytes()


def damaged_inputs(demo: bytes, tmp: Path) -> dict[str, tuple[list[str], bytes | None, str]]:
    """name -> (files, stdin, what the stderr line says)."""
    cut = tmp / "cut.pcap"
    cut.write_bytes(demo[:-30])                       # inside the last record
    bad = bytearray(demo)
    at = 24
    for _ in range(9):
        at += 16 + struct.unpack_from("<I", demo, at + 8)[0]
    struct.pack_into("<I", bad, at + 8, 0xFFFFFFF0)  # the 10th record's caplen
    rec = tmp / "record.pcap"
    rec.write_bytes(bytes(bad))
    gz = bytearray(gzip.compress(demo))
    gz[len(gz) // 2] ^= 0xFF                          # the middle of the deflate stream
    zgz = tmp / "corrupt.pcap.gz"
    zgz.write_bytes(bytes(gz))
    good = tmp / "good.pcap"
    good.write_bytes(demo)
    return {
        "truncated": ([str(cut)], None, f"{cut}: capture damaged at byte 1478 (frame 18)"),
        "record": ([str(rec)], None, f"{rec}: capture damaged at byte {at} (frame 10)"),
        "compressed": ([str(zgz)], None, f"{zgz}: capture damaged"),
        "cat": (["-"], demo + demo, "-: capture damaged at byte 1560 (frame 19): another "
                                    "capture file starts here"),
        "many": ([str(good), str(cut)], None, f"{cut}: capture damaged at byte 1478"),
    }


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_reports_damage_once(command: str, demo: bytes, tmp_path: Path) -> None:
    runner = CliRunner()
    for kind, (files, stdin, says) in damaged_inputs(demo, tmp_path).items():
        args = [command, *files, *[a.format(tmp=tmp_path) for a in COMMANDS[command]]]
        res = runner.invoke(main, args, input=stdin)
        assert res.exit_code == 0, (kind, res.stderr, res.exception)
        lines = [ln for ln in res.stderr.splitlines() if "damaged" in ln]
        assert len(lines) == 1, (kind, res.stderr)
        assert lines[0].startswith(f"tcpscope: {says}"), (kind, lines[0])
        if command not in ("graph", "report"):
            assert res.stdout, kind  # what came before the damage is shown


def test_nothing_usable_is_one_line_and_exit_1(demo: bytes, tmp_path: Path) -> None:
    head = tmp_path / "head.pcap"
    head.write_bytes(demo[:10])
    for command, extra in COMMANDS.items():
        res = CliRunner().invoke(main, [command, str(head),
                                        *[a.format(tmp=tmp_path) for a in extra]])
        assert res.exit_code == 1 and res.stderr.count("\n") == 1, (command, res.stderr)
        assert res.stderr.startswith(f"tcpscope: {head}: truncated pcap file header")


def test_a_run_stopped_by_its_consumer_reports_no_damage_past_it(demo: bytes,
                                                                  tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(demo[:-30])
    res = CliRunner().invoke(main, ["read", "-c", "3", str(cut)])
    assert res.exit_code == 0 and res.stdout.count("\n") == 3 and res.stderr == ""


def test_the_api_keeps_and_warns_the_damage(demo: bytes, tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(demo[:-30])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        a = tcpscope.analyze(str(cut))
        report = tcpscope.audit(str(cut))
    assert len(a.records) == 17
    [(name, damage)] = a.damages
    assert name == str(cut) and damage.frame == 18 and damage.byte_offset == 1478
    damaged = [w for w in seen if issubclass(w.category, CaptureDamageWarning)]
    assert len(damaged) == 2 and all(str(cut) in str(w.message) for w in damaged)
    assert report.findings is not None
    good = tmp_path / "good.pcap"
    good.write_bytes(demo)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an intact capture warns nothing
        assert tcpscope.analyze(str(good)).damages == []
