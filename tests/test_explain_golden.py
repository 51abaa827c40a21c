"""Golden explanations (English and Chinese) and ladders (text and Mermaid).

One capture per way a connection opens and closes (the kernel-made `life_*` fixtures), the
bundled demo, loss and zero-window fixtures, and two shared captures (a fast retransmit, a
plain HTTP stream). A change of wording is a deliberate update::

    TCPSCOPE_UPDATE_GOLDEN=1 pytest tests/test_explain_golden.py

then read the diff.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from conftest import CORPUS, FIXTURES, ROOT
from tcpscope.present.explain import write_explain
from tcpscope.present.ladder import build_ladder, render_mermaid, render_text
from tcpscope.present.story import build_stories, collect

UPDATE = os.environ.get("TCPSCOPE_UPDATE_GOLDEN") == "1"
GOLDEN = ROOT / "tests" / "golden"
DEMO = ROOT / "src" / "tcpscope" / "data" / "demo.pcap"

LIFE = ("4way", "3way_close", "syn_retry", "synack_retry", "rejected", "unanswered", "simopen",
        "tfo", "half_close", "simclose", "rst_client", "rst_server", "midstream", "missing",
        "server_first")
CASES: dict[str, Path] = {f"life_{k}": FIXTURES / f"life_{k}.pcap" for k in LIFE}
CASES.update({
    "demo": DEMO,
    "lossy_transfer": FIXTURES / "lossy_transfer.pcap",
    "zero_window": FIXTURES / "zero_window.pcap",
    "rst_abort": FIXTURES / "rst_abort.pcap",
    "fast009": CORPUS / "zeek__tcp_retransmit-fast009.pcap",
    "one_tcp_stream": CORPUS / "seladb__one_tcp_stream.pcap",
})


def _compare(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run with TCPSCOPE_UPDATE_GOLDEN=1")
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.relative_to(ROOT)} differs (TCPSCOPE_UPDATE_GOLDEN=1 rewrites it)")


def _capture(name: str) -> Path:
    path = CASES[name]
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_explain_golden(name, lang):
    out = io.StringIO()
    write_explain(_capture(name), out, lang=lang)
    _compare(GOLDEN / "explain" / f"{name}.{lang}.txt", out.getvalue())


@pytest.mark.parametrize("name", sorted(CASES))
def test_ladder_golden(name):
    a, extra = collect(_capture(name))
    stories = build_stories(a, extra)
    lad = build_ladder(stories)
    _compare(GOLDEN / "ladder" / f"{name}.txt", "\n".join(render_text(lad)) + "\n")
    _compare(GOLDEN / "ladder" / f"{name}.mmd", render_mermaid(lad))
