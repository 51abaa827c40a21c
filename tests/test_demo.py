"""`tcpscope demo`: the bundled capture of the classic experiment, explained."""
from __future__ import annotations

import io
import subprocess
import sys

from tcpscope.lab.facts import Facts
from tcpscope.present.demo import demo_capture, run_demo
from tcpscope.present.i18n import dwidth


def test_demo_capture_is_the_classic_experiment():
    with demo_capture() as path:
        facts = Facts.from_capture(path)
    packets = facts.packets
    assert len(packets) == 18
    payloads = [facts.payload(p) for p in packets if p.len]
    assert payloads == [b"Welcome!", b"Alice", b"Hello, Alice!", b"Bob", b"Hello, Bob!", b"exit"]
    assert {p.dport for p in packets if p.bits == 0x002} == {5000}


def _demo(lang: str) -> str:
    out = io.StringIO()
    run_demo(out, lang)
    return out.getvalue()


def test_demo_tells_the_whole_story_in_english():
    text = _demo("en")
    flat = " ".join(text.split())
    # the ladder: one arrow per packet, the states beside it
    assert sum(1 for ln in text.splitlines() if "│──" in ln or "│◀──" in ln) == 18
    assert "SYN_SENT │── S seq 0 win 65495" in text
    # every packet narrated, the handshake arithmetic with real numbers
    for frame in range(1, 19):
        assert f"\n{frame:>4}  " in text
    assert "initial sequence number (ISN) 2103642269" in flat
    assert "ack = 2103642270 = the client's ISN 2103642269 + 1" in flat
    assert "ack = 3654645073 = the server's ISN 3654645072 + 1" in flat
    assert '"Welcome!"' in flat and '"Hello, Alice!"' in flat
    assert "ack 13 = 9 + 4" in flat and "delayed ACK" in flat
    assert "ack 14 = 13 + 1: it acknowledges the FIN of frame 15" in flat
    assert "The client enters TIME_WAIT" in flat and "2 MSL" in flat
    # the summary and what to try next
    assert "The client sent 12 bytes of data in 3 segments" in flat
    assert "The server sent 32 bytes of data in 3 segments" in flat
    assert "Closed with four packets" in flat
    assert "tcpscope explain FILE" in text and "tcpscope ladder FILE" in text
    assert all(dwidth(ln) <= 100 for ln in text.splitlines())
    assert "\x1b[" not in text


def test_demo_in_chinese_uses_the_usual_terms():
    text = _demo("zh")
    flat = "".join(text.split())
    for term in ("三次握手", "四次挥手", "初始序列号", "确认号", "最大报文段长度", "窗口扩大因子",
                 "选择确认", "时间戳", "TIME_WAIT", "2MSL", "延迟确认"):
        assert term in flat, term
    assert "ack=2103642270=客户端的ISN2103642269+1" in flat
    assert all(dwidth(ln) <= 100 for ln in text.splitlines())


def test_demo_command_runs():
    res = subprocess.run([sys.executable, "-m", "tcpscope", "demo"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "three-way handshake" in res.stdout and "\x1b[" not in res.stdout
    res = subprocess.run([sys.executable, "-m", "tcpscope", "demo", "--lang", "zh"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "三次握手" in res.stdout
