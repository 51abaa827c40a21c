"""Message catalogues: every sentence tcpscope tells a person, one file per language.

A catalogue (``en.toml``, ``zh.toml`` beside this file) maps a message id to a
template. Nested TOML tables give dotted ids: ``[syn] first = "..."`` is
``syn.first``. A template names its parameters in braces, with an optional
format after a colon::

    "ack = {ack} = ISN {isn} + 1"          plain values (numbers as digits)
    "{rtt:dur}"                            a duration in seconds -> "18 µs", "2.3 ms"
    "{bytes:size}"                         a byte count -> "12 bytes", "350.2 KB"
    "{side:side}"                          a term looked up in the catalogue (term.side.client)
    "{frames:list}"                        a list -> "57, 58 and 60"
    "{n:ord}"                              an ordinal -> "3rd" (English only)
    "{n:pl(segment|segments)}"             the word for n (English only; no number printed)

The code never holds a sentence: present/story/ produces facts (a message id
and its named parameters, all numbers taken from the analysis) and `Catalogue.render`
turns them into text. tests/test_explain_i18n.py checks that both catalogues
have the same ids and the same parameter names per id.

Also here: display width (CJK characters take two columns) and a wrapper that
breaks Chinese text between characters and English text between words.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["LANGS", "Catalogue", "catalogue", "placeholders", "dwidth", "wrap", "pad", "truncate"]

LANGS = ("en", "zh")

#: ``{name}`` or ``{name:format}``
PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]+))?\}")

#: Formats that look a value up among the catalogue's terms, and where.
TERM_FORMATS = {
    "side": "term.side",
    "state": "term.state",
    "conf": "term.conf",
    "reason": "reason",
    "flag": "term.flag",
    "handshake": "term.handshake",
    "teardown": "term.teardown",
    "backoff": "term.backoff",
    "anomaly": "term.state_anomaly",
}


def placeholders(template: str) -> dict[str, str | None]:
    """The parameter names of a template, with their format (None: plain)."""
    return {m.group(1): m.group(2) for m in PLACEHOLDER.finditer(template)}


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, full + "."))
        elif isinstance(value, str):
            out[full] = value
        else:
            raise ValueError(f"catalogue entry {full!r} is not text")
    return out


@dataclass(frozen=True)
class Catalogue:
    """One language's messages, by dotted id."""

    lang: str
    messages: dict[str, str]

    def has(self, msg_id: str) -> bool:
        return msg_id in self.messages

    def template(self, msg_id: str) -> str:
        try:
            return self.messages[msg_id]
        except KeyError:
            raise KeyError(f"no message {msg_id!r} in the {self.lang} catalogue") from None

    def term(self, prefix: str, value: Any) -> str:
        """A term (``term.side.client``); an unknown value is shown as itself."""
        key = f"{prefix}.{_key(value)}"
        return self.messages.get(key, str(value))

    def render(self, msg_id: str, params: dict[str, Any] | None = None) -> str:
        """The message with its parameters filled in."""
        params = params or {}
        template = self.template(msg_id)

        def sub(m: re.Match[str]) -> str:
            name, fmt = m.group(1), m.group(2)
            if name not in params:
                raise KeyError(f"message {msg_id!r} needs parameter {name!r}")
            return self.format_value(params[name], fmt)

        return PLACEHOLDER.sub(sub, template)

    # -- formats --------------------------------------------------------------

    def format_value(self, value: Any, fmt: str | None) -> str:
        if fmt is None:
            return self.plain(value)
        if fmt in TERM_FORMATS:
            return self.term(TERM_FORMATS[fmt], value)
        if fmt == "dur":
            return self.duration(value)
        if fmt == "durlist":
            return self.join([self.duration(v) for v in value])
        if fmt == "size":
            return self.size(value)
        if fmt == "list":
            return self.join([self.plain(v) for v in value])
        if fmt == "flags":
            return self.join([self.term("term.flag", v) for v in value])
        if fmt == "facts":
            return self.join([self.render(f.id, f.params) for f in value])
        if fmt == "features":
            return self.join([self.term("term.feature", v) for v in value])
        if fmt == "ord":
            return ordinal(int(value))
        if fmt.startswith("pl(") and fmt.endswith(")"):
            one, _, many = fmt[3:-1].partition("|")
            return one if int(value) == 1 else many
        raise ValueError(f"unknown format {fmt!r}")

    def plain(self, value: Any) -> str:
        if isinstance(value, bool):
            return self.term("term.bool", value)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def duration(self, seconds: float) -> str:
        """18 µs, 2.3 ms, 40 ms, 1.02 s: a capture's precision, without false digits."""
        s = float(seconds)
        if abs(s) < 1e-3:
            return self.render("fmt.us", {"v": f"{s * 1e6:.0f}"})
        if abs(s) < 1e-2:
            return self.render("fmt.ms", {"v": f"{s * 1e3:.1f}"})
        if abs(s) < 1:
            return self.render("fmt.ms", {"v": f"{s * 1e3:.0f}"})
        if abs(s) < 100:
            return self.render("fmt.s", {"v": f"{s:.2f}"})
        return self.render("fmt.s", {"v": f"{s:.0f}"})

    def size(self, n: int) -> str:
        n = int(n)
        if n < 10_000:
            return self.render("fmt.bytes" if n != 1 else "fmt.byte", {"v": str(n)})
        if n < 10_000_000:
            return self.render("fmt.kb", {"v": f"{n / 1000:.1f}"})
        return self.render("fmt.mb", {"v": f"{n / 1e6:.1f}"})

    def join(self, items: list[str]) -> str:
        if not items:
            return ""
        if len(items) == 1:
            return items[0]
        sep = self.messages["fmt.sep"]
        last = self.messages["fmt.and"]
        head = sep.join(items[:-1])
        if last.strip() == last and not last.isascii():
            # CJK "and": a space only where it meets Latin letters or digits.
            left = " " if head[-1:].isascii() and head[-1:].isalnum() else ""
            right = " " if items[-1][:1].isascii() and items[-1][:1].isalnum() else ""
            return head + left + last + right + items[-1]
        return head + last + items[-1]


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(getattr(value, "name", value)).replace("+", "_")


def ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@lru_cache(maxsize=None)
def catalogue(lang: str) -> Catalogue:
    """The catalogue of `lang` (``en`` or ``zh``), read once."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")
    text = (resources.files(__name__) / f"{lang}.toml").read_text(encoding="utf-8")
    return Catalogue(lang, _flatten(tomllib.loads(text)))


# ---------------------------------------------------------------------------
# Display width and wrapping
# ---------------------------------------------------------------------------

def _cw(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def dwidth(text: str) -> int:
    """Columns `text` takes in a terminal (CJK characters take two)."""
    if text.isascii():
        return len(text)
    return sum(_cw(c) for c in text)


def pad(text: str, width: int, align: str = "<") -> str:
    """`text` padded with spaces to `width` display columns."""
    gap = max(0, width - dwidth(text))
    if align == ">":
        return " " * gap + text
    if align == "^":
        left = gap // 2
        return " " * left + text + " " * (gap - left)
    return text + " " * gap


def truncate(text: str, width: int) -> str:
    """`text` cut to `width` display columns, with … when cut."""
    if dwidth(text) <= width:
        return text
    out, w = [], 0
    for c in text:
        cw = _cw(c)
        if w + cw > width - 1:
            break
        out.append(c)
        w += cw
    return "".join(out) + "…"


# Chinese punctuation that must not start a line (a simple kinsoku rule).
_NO_END = set("（《「『【“‘([")
_NO_START = set("，。、；：？！）》」』】”’,.;:?!)]>%")
# A CJK character, a run of anything else but breakable spaces, or such spaces. A no-break
# space (U+00A0, between a number and its unit) keeps both on one line; it is written as a
# plain space.
_TOKEN = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]|[^ \t\n\u2e80-\u9fff"
                    r"\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+|[ \t\n]+")


def wrap(text: str, width: int, indent: str = "", subsequent: str | None = None) -> list[str]:
    """Greedy wrap by display width: between words, and between CJK characters.

    Chinese punctuation never starts a line: when it does not fit, the character
    before it moves down with it.
    """
    subsequent = indent if subsequent is None else subsequent
    lines: list[str] = []
    toks: list[str] = []        # tokens of the current line (spaces included)
    head = indent
    space = False

    def cur_w() -> int:
        return dwidth(head) + sum(dwidth(t) for t in toks)

    for tok in _TOKEN.findall(text):
        if tok[0] in " \t\n":
            space = bool(toks)
            continue
        sep = [" "] if space else []
        space = False
        if toks and cur_w() + len(sep) + dwidth(tok) > width:
            carry: list[str] = []
            glued = toks[-1].endswith("\u00a0")    # a number and its CJK unit
            if len(toks) > 1 and (glued or (tok[0] in _NO_START and not sep)):
                carry = [toks.pop()]
                # the carried token may itself be punctuation that must not start a line
                while len(toks) > 1 and carry[0][0] in _NO_START and not toks[-1].isspace():
                    carry.insert(0, toks.pop())
            if len(toks) > 1 and toks[-1] in _NO_END:   # an opening bracket never ends a line
                carry.insert(0, toks.pop())
            lines.append((head + "".join(toks)).rstrip().replace("\u00a0", " "))
            head, toks, sep = subsequent, carry, []
        toks.extend(sep)
        toks.append(tok)
    if toks or not lines:
        lines.append((head + "".join(toks)).rstrip().replace("\u00a0", " "))
    return lines
