"""Ladders: text within 100 columns, Mermaid that Mermaid's grammar accepts, SVG that is a
well-formed standalone file (and renders, where rsvg-convert / mermaid-cli are installed)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import CORPUS, FIXTURES, ROOT
from tcpscope.present.i18n import dwidth
from tcpscope.present.ladder import (
    build_ladder, render_mermaid, render_svg, render_text, render_text_rows,
)
from tcpscope.present.story import build_stories, collect

DEMO = ROOT / "src" / "tcpscope" / "data" / "demo.pcap"
CAPTURES = [DEMO] + sorted(FIXTURES.glob("*.pcap")) + [
    p for p in (CORPUS / "zeek__tcp_retransmit-fast009.pcap",
                CORPUS / "seladb__one_tcp_stream.pcap",
                CORPUS / "zeek__chksums_ip6-tcp-bad-chksum.pcap") if p.exists()]


def ladders(path, lang="en"):
    a, extra = collect(path)
    stories = build_stories(a, extra)
    out = []
    for st in stories[:6]:
        out.append((st, build_ladder([st], lang)))
    return out


# -- Mermaid's sequenceDiagram grammar (the subset tcpscope writes) -------------------------
# After packages/mermaid/src/diagrams/sequence/parser/sequenceDiagram.jison: an actor is
# [^+\->:\n,;]+ (and a keyword, matched first, must not start it); a message's or note's text
# is ":" then [^#\n;]+ ('#' starts a comment, ';' ends the statement); the participant's
# description is [^#\n;]*.
ACTOR = r"[^+\->:\n,;]+"
ARROWS = ("->>", "-->>", "->", "-->", "-x", "--x", "-)", "--)")
KEYWORDS = ("participant", "actor", "create", "destroy", "box", "loop", "rect", "opt", "alt",
            "else", "par", "and", "critical", "option", "break", "end", "left of", "right of",
            "links", "link", "properties", "details", "over", "note", "activate", "deactivate",
            "title", "autonumber", "off", "sequencediagram", "accTitle", "accDescr")
PARTICIPANT = re.compile(rf"participant ({ACTOR}?) as ([^#\n;]*)")
MESSAGE = re.compile(rf"({ACTOR})({'|'.join(re.escape(a) for a in sorted(ARROWS, key=len, reverse=True))})({ACTOR}):([^#\n;]+)")
NOTE = re.compile(rf"[Nn]ote (left of|right of|over) ({ACTOR}?)(?:,({ACTOR}?))?:([^#\n;]+)")


def check_mermaid(text: str) -> dict[str, int]:
    """Raise AssertionError unless `text` parses as Mermaid's sequenceDiagram; count statements."""
    lines = text.split("\n")
    assert lines[0] == "sequenceDiagram"
    assert text.endswith("\n")
    declared: set[str] = set()
    counts = {"participant": 0, "message": 0, "note": 0}
    for ln in lines[1:]:
        s = ln.strip()
        if not s:
            continue
        assert "#" not in s and ";" not in s, ln
        assert "<" not in s and ">" not in s.replace("->>", "").replace("-->>", ""), ln
        if s.startswith("participant "):
            m = PARTICIPANT.fullmatch(s)
            assert m, ln
            actor = m.group(1).strip()
            assert not actor.lower().startswith(KEYWORDS), ln
            declared.add(actor)
            counts["participant"] += 1
        elif s.lower().startswith("note "):
            m = NOTE.fullmatch(s)
            assert m and m.group(4).strip(), ln
            for actor in (m.group(2), m.group(3)):
                assert actor is None or actor.strip() in declared, ln
            counts["note"] += 1
        else:
            m = MESSAGE.fullmatch(s)
            assert m, ln
            assert m.group(1).strip() in declared and m.group(3).strip() in declared, ln
            assert m.group(4).strip(), ln
            counts["message"] += 1
    return counts


def test_mermaid_check_rejects_what_mermaid_rejects():
    good = "sequenceDiagram\n    participant E1 as a\n    participant E2 as b\n    E1->>E2: hi\n"
    assert check_mermaid(good)["message"] == 1
    for bad in ("sequenceDiagram\n    participant E1 as a\n    E1->>E2: hi\n",
                "sequenceDiagram\n    participant E1 as a\n    participant E2 as b\n"
                "    E1->>E2: dup ack #2\n",
                "sequenceDiagram\n    participant E1 as a\n    E1=>E1: x\n",
                "sequenceDiagram\n    participant end as a\n"):
        with pytest.raises(AssertionError):
            check_mermaid(bad)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_mermaid_is_a_valid_sequence_diagram(path, lang):
    for st, lad in ladders(path, lang):
        counts = check_mermaid(render_mermaid(lad))
        assert counts["participant"] == len(lad.lanes)
        assert counts["message"] == len(st.steps)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_text_fits_100_columns_and_draws_every_packet(path):
    for st, lad in ladders(path, "zh") + ladders(path, "en"):
        lines = render_text(lad)
        assert all(dwidth(ln) <= 100 for ln in lines), max(lines, key=dwidth)
        drawn = [r.frame for _, r in render_text_rows(lad) if r is not None and r.kind == "packet"]
        assert drawn == [s.frame for s in st.steps]


def test_text_folds_runs_when_asked():
    a, extra = collect(FIXTURES / "lossy_transfer.pcap")
    st = build_stories(a, extra)[0]
    folded = render_text(build_ladder([st], fold=True))
    assert any("frames 35–48: 14 ordinary packets" in ln for ln in folded)
    assert len(folded) < len(render_text(build_ladder([st])))


def test_several_connections_share_lanes():
    a, extra = collect(FIXTURES / "rst_abort.pcap")
    stories = build_stories(a, extra)
    lad = build_ladder(stories)
    assert [lane.role for lane in lad.lanes] == ["client", "client", "server"]
    text = render_text(lad)
    assert all(dwidth(ln) <= 100 for ln in text)
    assert check_mermaid(render_mermaid(lad))["message"] == sum(len(s.steps) for s in stories)
    ET.fromstring(render_svg(lad))


@pytest.mark.parametrize("path", [DEMO, FIXTURES / "lossy_transfer.pcap",
                                  FIXTURES / "rst_abort.pcap"], ids=lambda p: p.name)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_svg_is_well_formed(path, lang):
    a, extra = collect(path)
    stories = build_stories(a, extra)
    lad = build_ladder(stories, lang)
    svg = render_svg(lad)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    width, height = float(root.get("width")), float(root.get("height"))
    arrows = [el for el in root.iter(f"{ns}line") if el.get("marker-end")]
    assert len(arrows) == sum(len(s.steps) for s in stories)
    for el in root.iter():
        for attr in ("x", "x1", "x2"):
            if el.get(attr) is not None:
                assert 0 <= float(el.get(attr)) <= width
        for attr in ("y", "y1", "y2"):
            if el.get(attr) is not None:
                assert 0 <= float(el.get(attr)) <= height


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="rsvg-convert not installed "
                    "(Debian: librsvg2-bin)")
def test_svg_renders_with_rsvg(tmp_path):
    a, extra = collect(DEMO)
    svg = tmp_path / "demo.svg"
    svg.write_text(render_svg(build_ladder(build_stories(a, extra), "zh")), encoding="utf-8")
    png = tmp_path / "demo.png"
    subprocess.run(["rsvg-convert", str(svg), "-o", str(png)], check=True, timeout=60)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.skipif(shutil.which("mmdc") is None, reason="mermaid-cli (mmdc) not installed")
def test_mermaid_renders_with_mermaid_cli(tmp_path):
    a, extra = collect(FIXTURES / "lossy_transfer.pcap")
    src = tmp_path / "l.mmd"
    src.write_text(render_mermaid(build_ladder(build_stories(a, extra))), encoding="utf-8")
    cmd = ["mmdc", "-i", str(src), "-o", str(tmp_path / "l.svg")]
    chromium = shutil.which("chromium")
    if chromium:  # Debian's chromium, headless, as root
        conf = tmp_path / "puppeteer.json"
        conf.write_text(f'{{"executablePath": "{chromium}", "args": ["--no-sandbox"]}}')
        cmd += ["-p", str(conf)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr


def test_ladder_command(tmp_path):
    out = tmp_path / "l.svg"
    res = subprocess.run([sys.executable, "-m", "tcpscope", "ladder", str(DEMO), "--stream", "0",
                          "--format", "svg", "-o", str(out)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    ET.parse(out)
    res = subprocess.run([sys.executable, "-m", "tcpscope", "ladder", str(DEMO), "--stream", "0",
                          "--format", "mermaid"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and check_mermaid(res.stdout)["message"] == 18
    res = subprocess.run([sys.executable, "-m", "tcpscope", "ladder", str(DEMO), "--stream", "3"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "no TCP stream 3" in res.stderr
