"""`tcpscope report`: one self-contained HTML page, looked at in headless Chromium.

- the page fetches nothing (no URL in a src, href or url(), no <link>), in en and zh;
- it opens without a console error; the connection table has a row per connection
  (up to its cap) and sorts by a column when its header is clicked; the filter hides the
  rows without the words; a connection's section opens from its link; each detailed
  connection has one ladder SVG and one plot per graph;
- the table's rows and the overview's numbers are the analysis's;
- the command writes the file whole or not at all, and reads standard input too.
The screenshot of the first test is docs/report.png's source.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import tcpscope
from conftest import CORPUS, FIXTURES
from graph_synth import bulk_pcap
from tcpscope.cli import main
from tcpscope.present.report import TABLE_MAX, collect_report, write_report

ECHO = CORPUS / "zeek__echo-connections.pcap.gz"


@pytest.fixture(scope="module")
def merged(tmp_path_factory) -> Path:
    """A bulk transfer with losses and CE marks, and the lab's short connections."""
    d = tmp_path_factory.mktemp("report")
    return bulk_pcap(d / "bulk.pcap", 1500, loss_every=300, ce_every=555)


def _fetches(page: str) -> list[str]:
    return re.findall(r'(?:src|href)\s*=\s*"(?!#)[^"]*"|url\((?!#)[^)]*\)|<link\b', page)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_in_a_browser(browser, tmp_path, merged, lang):
    out = tmp_path / f"report-{lang}.html"
    data = write_report(merged, out, lang=lang)
    page = out.read_text(encoding="utf-8")
    assert not _fetches(page)
    p = browser.open(out)
    assert p.errors == []
    n_rows = p.eval("document.querySelectorAll('#conns tbody tr').length")
    assert n_rows == len(data.overview.rows) == 1
    assert p.eval("document.querySelectorAll('details.conn').length") == len(data.details)
    plots = p.eval("document.querySelectorAll('details.conn figure.tcpscope-graph "
                   "svg.tcpscope-plot').length")
    assert plots == sum(len(d.figures) for d in data.details) >= 4
    assert p.eval("document.querySelectorAll('.ladder svg').length") == \
        sum(1 for d in data.details if d.story is not None)
    p.screenshot(tmp_path / f"report-{lang}.png", full_page=False)


@pytest.mark.skipif(not ECHO.exists(), reason="shared capture missing")
def test_table_sorts_filters_and_opens(browser, tmp_path):
    out = tmp_path / "echo.html"
    data = write_report(ECHO, out)
    a = tcpscope.analyze(ECHO, mode="improved")
    total = int(a.connections.shape[0])
    assert len(data.overview.rows) == total
    assert sum(data.overview.handshakes.values()) == total
    p = browser.open(out)
    assert p.errors == []
    rows = p.eval("document.querySelectorAll('#conns tbody tr').length")
    assert rows == min(total, TABLE_MAX)

    def column(i):
        return p.eval(f"Array.from(document.querySelectorAll('#conns tbody tr'))"
                      f".map(r => +r.cells[{i}].getAttribute('data-v'))")

    p.eval("document.querySelectorAll('#conns th')[3].click()")       # packets, ascending
    asc = column(3)
    assert asc == sorted(asc)
    p.eval("document.querySelectorAll('#conns th')[3].click()")       # descending
    desc = column(3)
    assert desc == sorted(desc, reverse=True) and desc[0] == max(asc)
    # the filter: the rows of one client port only
    port = data.overview.rows[7].client
    p.eval(f"var f = document.getElementById('filter'); f.value = {port!r};"
           "f.dispatchEvent(new Event('input'))")
    shown = p.eval("Array.from(document.querySelectorAll('#conns tbody tr'))"
                   ".filter(r => r.style.display !== 'none').length")
    assert shown == 1
    assert p.eval("document.getElementById('shown').textContent") == "1"
    # a detailed connection opens from its link
    second = data.details[1].row.stream
    assert p.eval(f"document.getElementById('s{second}').open") is False
    p.eval(f"location.hash = '#s{second}'")
    p.eval("new Promise(r => setTimeout(r, 50))")
    assert p.eval(f"document.getElementById('s{second}').open") is True


def test_report_cli_writes_whole_or_nothing(tmp_path):
    out = tmp_path / "r.html"
    r = CliRunner().invoke(main, ["report", str(FIXTURES / "lossy_transfer.pcap"), "-o", str(out),
                                  "--lang", "zh"])
    assert r.exit_code == 0, r.output
    assert r.output == ""       # nothing on stdout; progress only on a terminal's stderr
    assert "抓包概览" in out.read_text(encoding="utf-8")
    bad = CliRunner().invoke(main, ["report", str(tmp_path / "missing.pcap"), "-o",
                                    str(tmp_path / "x.html")])
    assert bad.exit_code == 1
    assert not (tmp_path / "x.html").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_report_reads_standard_input(tmp_path):
    data = (FIXTURES / "zero_window.pcap").read_bytes()
    out = tmp_path / "stdin.html"
    r = CliRunner().invoke(main, ["report", "-", "-o", str(out)], input=data)
    assert r.exit_code == 0, r.output
    assert "id=\"s0\"" in out.read_text(encoding="utf-8")


def test_details_are_chosen_and_bounded(merged):
    data = collect_report(merged, details=1)
    assert len(data.details) == 1
    d = data.details[0]
    assert d.story is not None and d.model is not None
    assert {f.kind for f in d.figures} == {"tcptrace", "throughput", "rtt", "window", "cwnd"}
    w = collect_report(merged, mode="wireshark", details=1)
    assert w.details[0].missing == ["cwnd"]


def test_a_connection_too_long_for_a_story_keeps_its_episodes(merged, tmp_path, monkeypatch):
    import tcpscope.present.report as report

    monkeypatch.setattr(report, "STORY_MAX", 100)
    out = tmp_path / "long.html"
    data = write_report(merged, out, details=1)
    d = data.details[0]
    assert d.story is None and d.model is not None and d.figures
    page = out.read_text(encoding="utf-8")
    assert "too many to keep for a story" in page
    assert "The transfer by episodes" in page and "Recovery 1 (" in page


def test_python_api(tmp_path):
    data = tcpscope.report(FIXTURES / "lossy_transfer.pcap", tmp_path / "api.html", lang="zh")
    assert data.overview.connections == 1 and (tmp_path / "api.html").exists()


@pytest.mark.skipif(not ECHO.exists(), reason="shared capture missing")
def test_the_table_is_capped_and_says_so(tmp_path, monkeypatch):
    import tcpscope.present.report.page as page

    monkeypatch.setattr(page, "TABLE_MAX", 10)
    out = tmp_path / "capped.html"
    data = write_report(ECHO, out, details=2)
    text = out.read_text(encoding="utf-8")
    rows = re.search(r'<tbody>(.*?)</tbody></table></div>', text, re.S).group(1)
    assert rows.count("<tr") == 10
    assert f"The table shows 10 of the {len(data.overview.rows)} connections" in text
