"""`tcpscope demo`: the bundled capture of the classic experiment, explained.

The capture (data/demo.pcap, see data/README.md) is a server on 127.0.0.1:5000 that
says `Welcome!` and answers each name with `Hello, <name>!`, and a client that sends
two names and `exit`. The demo is the first thing a new user sees: a short intro,
the ladder with both endpoints' states, every packet narrated (present/explain.py),
the summary, and the commands to try next -- in English or Chinese.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import IO

from tcpscope.present.explain import WIDTH, Line, explain_story, render_lines
from tcpscope.present.i18n import catalogue, wrap
from tcpscope.present.story import build_story, collect

__all__ = ["demo_capture", "demo_lines", "run_demo"]

_NEXT = ("next_explain", "next_ladder", "next_read", "next_conns", "next_follow", "next_lab")


@contextmanager
def demo_capture() -> Iterator[Path]:
    """The path of the bundled capture (extracted if the package is zipped)."""
    with resources.as_file(resources.files("tcpscope") / "data" / "demo.pcap") as path:
        yield path


def demo_lines(lang: str = "en") -> list[Line]:
    """The whole demo as styled lines."""
    cat = catalogue(lang)
    with demo_capture() as path:
        analysis, extra = collect(path)
        name = path.name
    lines: list[Line] = [[(cat.render("demo.title"), "head")], []]
    for text in ("demo.about", "demo.how"):
        for ln in wrap(cat.render(text, {"file": name} if text == "demo.about" else {}), WIDTH):
            lines.append([(ln, None)])
    lines.append([])
    for stream in sorted({int(s) for s in analysis.annotations["stream"] if s >= 0}):
        lines.extend(explain_story(build_story(analysis, stream, extra), lang))
    lines.append([])
    lines.append([(cat.render("demo.next_title"), "head")])
    for key in _NEXT:
        lines.append([("  " + cat.render(f"demo.{key}"), None)])
    return lines


def run_demo(out: IO[str], lang: str = "en", *, color: bool = False) -> None:
    render_lines(demo_lines(lang), out, color=color)

