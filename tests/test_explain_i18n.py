"""The message catalogues: the same ids and parameters in every language, every id the story
can produce is there, and the text layout (CJK width, wrapping) is right."""
from __future__ import annotations

from pathlib import Path

import re

import pytest

from tcpscope.analysis.annotation import FLAG_NAMES
from tcpscope.analysis.lifecycle import BACKOFF_VERDICTS, HANDSHAKE_KINDS, TEARDOWN_KINDS
from tcpscope.analysis.states import EXTRA_REASONS, GUARD_ANOMALIES, TABLE, State
from tcpscope.present import story as story_mod
from tcpscope.present.i18n import LANGS, catalogue, dwidth, placeholders, truncate, wrap
from tcpscope.present.story import Fact

#: the story package's modules, where every fact id is written
SRC = sorted(Path(story_mod.__file__).parent.glob("*.py"))


def test_same_ids_in_every_language():
    en = catalogue("en").messages
    for lang in LANGS:
        other = catalogue(lang).messages
        assert set(other) == set(en), (lang, sorted(set(other) ^ set(en)))


@pytest.mark.parametrize("lang", LANGS)
def test_same_parameters_per_id(lang):
    en = catalogue("en").messages
    other = catalogue(lang).messages
    for key, template in en.items():
        assert set(placeholders(other[key])) == set(placeholders(template)), key


@pytest.mark.parametrize("lang", LANGS)
def test_formats_are_known(lang):
    cat = catalogue(lang)
    for key, template in cat.messages.items():
        for name, fmt in placeholders(template).items():
            if fmt is None:
                continue
            # format_value raises on an unknown format; give it a value of the right shape
            value = {"dur": 0.5, "durlist": [1.0], "size": 10, "list": [1], "flags": [],
                     "features": [], "facts": [], "ord": 1}.get(fmt, 1)
            if fmt.startswith("pl("):
                value = 2
            elif fmt in ("side", "state", "conf", "reason", "flag", "handshake", "teardown",
                         "backoff", "anomaly"):
                value = "x"
            cat.format_value(value, fmt)


def test_every_fact_id_the_story_makes_is_in_the_catalogue():
    text = "".join(p.read_text(encoding="utf-8") for p in SRC)
    ids = set(re.findall(r'Fact\(\s*"([a-z_.0-9]+)"', text))
    ids |= {f"sum.handshake.{k.replace('+', '_')}" for k in HANDSHAKE_KINDS}
    ids |= {f"sum.teardown.{k}" for k in TEARDOWN_KINDS}
    assert len(ids) > 60
    for lang in LANGS:
        cat = catalogue(lang)
        missing = sorted(i for i in ids if not cat.has(i))
        assert not missing, (lang, missing)


@pytest.mark.parametrize("lang", LANGS)
def test_every_term_is_translated(lang):
    cat = catalogue(lang)
    reasons = {edge.reason for edge in TABLE if edge.reason} | set(EXTRA_REASONS)
    for rid in reasons:
        assert cat.has(f"reason.{rid}"), rid
    for s in State:
        assert cat.has(f"term.state.{s.name}")
    for flag in FLAG_NAMES:
        assert cat.has(f"term.flag.{flag}") and cat.has(f"term.tag.{flag}"), flag
    for v in BACKOFF_VERDICTS:
        assert cat.has(f"term.backoff.{v}")
    for a in GUARD_ANOMALIES:
        assert cat.has(f"term.state_anomaly.{a}")
    for side in ("client", "server"):
        assert cat.has(f"term.side.{side}")


def test_render_fills_parameters_and_formats():
    en, zh = catalogue("en"), catalogue("zh")
    f = Fact("hs.ack", {"side": "client", "peer": "server", "ack": 11, "peer_isn": 10,
                        "rel_ack": 1})
    assert en.render(f.id, f.params) == ("The client acknowledges the SYN-ACK: ack = 11 = the "
                                         "server's ISN 10 + 1 (relative ack 1).")
    assert "客户端确认 SYN-ACK：ack = 11 = 服务端的 ISN 10 + 1" in zh.render(f.id, f.params)
    assert en.duration(0.000018) == "18\u00a0µs"
    assert en.duration(0.0403) == "40\u00a0ms"
    assert en.duration(1.0212) == "1.02\u00a0s"
    assert zh.duration(0.0023) == "2.3\u00a0毫秒"
    assert en.join(["1", "2", "3"]) == "1, 2 and 3"
    assert zh.join(["SACK", "时间戳"]) == "SACK 和时间戳"
    with pytest.raises(KeyError):
        en.render("hs.ack", {"side": "client"})


def test_wrap_measures_cjk_and_keeps_punctuation_off_line_starts():
    text = "客户端发出 SYN，发起连接，并选定初始序列号（ISN）2103642269。" * 4
    lines = wrap(text, 40, "  ")
    assert all(dwidth(ln) <= 40 for ln in lines)
    assert not any(ln.strip()[:1] in "，。）：" for ln in lines)
    assert "".join(ln.strip() for ln in lines).replace(" ", "") == text.replace(" ", "")
    # a number stays with its unit
    lines = wrap("x" * 30 + " it took 18\u00a0µs in all", 40)
    assert any(ln.endswith("18 µs in all") or "18 µs" in ln for ln in lines)
    assert truncate("服务端服务端", 7) == "服务端…"
    assert dwidth("服务端 ab") == 9


@pytest.mark.parametrize("width", range(30, 90, 7))
def test_closing_punctuation_never_starts_a_line(width):
    text = "零窗口：服务端的接收缓冲区满了；在窗口重新打开之前，对方必须停止发送（规则 zwin.window_zero）。"
    for ln in wrap(text * 2, width, "    ! ", "      "):
        assert ln.strip()[:1] not in "）。，；：", ln
        assert not ln.endswith("（")
