"""`tcpscope audit`'s output: the table and JSON Lines, in English and Chinese, every
sentence rendered from the catalogues with the finding's own numbers and rule."""
from __future__ import annotations

import io
import json

import pytest

import tcpscope
from tcpscope.analysis.audit import KINDS
from tcpscope.present.audit import audit_file, sentence, write_report
from tcpscope.present.i18n import LANGS, catalogue, dwidth

from conftest import FIXTURES

AUDIT_FIXTURES = sorted((FIXTURES / "audit").glob("*.pcap"))


@pytest.fixture(scope="module")
def reports():
    return {p.name: audit_file(p) for p in AUDIT_FIXTURES}


def test_every_kind_has_its_words_in_every_language():
    for lang in LANGS:
        cat = catalogue(lang)
        for kind in KINDS:
            assert cat.has(f"audit.kind.{kind}") and cat.has(f"audit.{kind}.rule"), (lang, kind)


def test_the_fixtures_show_every_kind(reports):
    assert {f.kind for r in reports.values() for f in r.findings} == set(KINDS)


@pytest.mark.parametrize("lang", LANGS)
def test_every_finding_renders_with_its_numbers_and_rule(reports, lang):
    for rep in reports.values():
        for f in rep.findings:
            text = sentence(f, lang)
            assert str(f.count) in text, (f.kind, text)
            rule = catalogue(lang).render(f"audit.{f.kind}.rule", {**f.params, **{
                k: "x" for k in ("technique", "verdict", "role")}})
            assert rule.split("{")[0][:8] in text


def test_jsonl_has_the_contract_keys(reports):
    out = io.StringIO()
    write_report(reports["synflood.pcap"], "jsonl", "en", out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["kind"] for r in rows] == ["syn_flood"] * 3 + ["syn_cookies"] * 2
    for r in rows:
        for key in ("kind", "source", "target", "first_ts", "last_ts", "count",
                    "evidence_frames", "confidence", "sentence", "rule", "thresholds"):
            assert key in r
        assert set(r["evidence_frames"]) == {"sample", "total"}
        assert len(r["evidence_frames"]["sample"]) <= 8 <= r["evidence_frames"]["total"]
    first = rows[0]
    assert first["target"] == "10.200.1.2" and first["port"] == 5000
    assert "301 SYNs" in first["sentence"] and "Snort" in first["sentence"]


def test_table_in_english_and_chinese(reports):
    for lang, words in (("en", ("port scan", "Rule:", "Evidence: frames")),
                        ("zh", ("端口扫描", "规则：", "证据："))):
        out = io.StringIO()
        write_report(reports["scans.pcap"], "table", lang, out)
        text = out.getvalue()
        assert all(w in text for w in words), lang
        assert all(dwidth(line) <= 100 for line in text.splitlines()), lang
    assert "22, 80, 443" not in text          # the table says counts; jsonl lists ports


def test_no_findings_says_so():
    out = io.StringIO()
    write_report(audit_file(FIXTURES / "lo_ipv4.pcap"), "table", "en", out)
    assert "No findings" in out.getvalue()


def test_api_matches_the_presenter():
    rep = tcpscope.audit(FIXTURES / "audit" / "isn.pcap")
    assert [f.kind for f in rep.findings] == ["isn"]
    assert rep.findings[0].as_dict()["verdict"] == "constant_increment"


def test_the_command(tmp_path):
    from click.testing import CliRunner

    from tcpscope.cli import main

    runner = CliRunner()
    path = str(FIXTURES / "audit" / "scans.pcap")
    r = runner.invoke(main, ["audit", path])
    assert r.exit_code == 0 and r.output.startswith(f"tcpscope audit: {path}\n")
    r = runner.invoke(main, ["audit", path, "--format", "jsonl", "--lang", "zh"])
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert r.exit_code == 0 and len(rows) == 7 and "端口" in rows[0]["sentence"]
    bad = tmp_path / "not.pcap"
    bad.write_bytes(b"hello")
    r = runner.invoke(main, ["audit", str(bad)])
    assert r.exit_code == 1
    assert runner.invoke(main, ["audit", path, "--format", "csv"]).exit_code == 2
