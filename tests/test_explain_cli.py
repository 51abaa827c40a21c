"""`tcpscope explain` on the command line: streams, languages, errors, colour, progress."""
from __future__ import annotations

import io
import subprocess
import sys

from conftest import FIXTURES, ROOT
from tcpscope.present.explain import ProgressFile, render_lines, write_explain

DEMO = ROOT / "src" / "tcpscope" / "data" / "demo.pcap"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tcpscope", *args], capture_output=True,
                          text=True, timeout=120)


def test_explain_one_stream_of_several():
    res = run("explain", str(FIXTURES / "rst_abort.pcap"), "--stream", "1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Stream 1: client 127.0.0.1:38792 → server 127.0.0.1:5000")
    assert "Stream 0" not in res.stdout
    both = run("explain", str(FIXTURES / "rst_abort.pcap"))
    assert "Stream 0:" in both.stdout and "Stream 1:" in both.stdout


def test_explain_missing_stream_and_bad_input():
    res = run("explain", str(DEMO), "--stream", "7")
    assert res.returncode == 1 and "no TCP stream 7" in res.stderr
    res = run("explain", str(ROOT / "README.md"))
    assert res.returncode == 1 and res.stderr.startswith("tcpscope: ")
    res = run("explain", str(DEMO), "--lang", "fr")
    assert res.returncode == 2


def test_explain_reads_stdin_and_is_plain_when_piped():
    res = subprocess.run([sys.executable, "-m", "tcpscope", "explain", "-", "--lang", "zh"],
                         input=DEMO.read_bytes(), capture_output=True, timeout=120)
    assert res.returncode == 0
    text = res.stdout.decode()
    assert "三次握手完成" in text and "\x1b[" not in text


def test_all_narrates_every_packet():
    folded, full = io.StringIO(), io.StringIO()
    write_explain(FIXTURES / "lossy_transfer.pcap", folded)
    write_explain(FIXTURES / "lossy_transfer.pcap", full, group_min=None)
    assert "ordinary packets, told together" in folded.getvalue()
    assert "ordinary packets, told together" not in full.getvalue()
    assert full.getvalue().count("\n  40  ") == 1 and folded.getvalue().count("\n  40  ") == 0


def test_colour_only_when_asked():
    lines = [[("frame", "frame"), (" text", None)]]
    plain, rich = io.StringIO(), io.StringIO()
    render_lines(lines, plain)
    render_lines(lines, rich, color=True)
    assert plain.getvalue() == "frame text\n"
    assert "\x1b[" in rich.getvalue() and "frame" in rich.getvalue()


def test_progress_file_reports_bytes(tmp_path):
    seen = []
    with open(DEMO, "rb") as raw:
        src = ProgressFile(raw, str(DEMO), seen.append)
        out = io.StringIO()
        write_explain(src, out)
    assert seen and seen[-1] == DEMO.stat().st_size
    assert "Stream 0" in out.getvalue()
