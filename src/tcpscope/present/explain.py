"""`tcpscope explain`: a connection's story in plain language, English or Chinese.

For each connection: a heading, the ladder (present/ladder.py, ordinary runs
folded), then every packet narrated -- what it is, the arithmetic that ties it
to earlier packets, what its options mean, each state change with its reason
and how it is known, each anomaly with its rule and evidence frames -- and a
summary. The words come from the catalogues (present/i18n/), the facts and
their numbers from present/story/.

The text is laid out once, as lines of styled spans: written plain (stable, for
pipes, files and the golden tests) or through rich with colours on a terminal.
Every line fits in 100 columns (CJK characters count two).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import IO, Any, BinaryIO

from ..analysis.engine import DEFAULT_MODE
from ..pipeline import Chunk, Options, Result, StreamNotFound, run
from .i18n import Catalogue, catalogue, dwidth, truncate, wrap
from .ladder import build_ladder, label, render_text_rows
from .story import GROUP_MIN, ConnectionStory, Fact, Run, Step, StoryCollector, build_story
from .story.episodes import (
    Chapter, ModelRows, build_long_story, frame_items, long_stream, told_items,
)

__all__ = ["Span", "Line", "explain_story", "write_explain", "render_lines", "ProgressFile",
           "WIDTH", "MAX_STREAMS"]

WIDTH = 100
#: Without --stream, at most this many connections are told.
MAX_STREAMS = 20
INDENT = "      "

Span = tuple[str, str | None]   # (text, rich style or None)
Line = list[Span]

_STYLE = {
    "title": "bold",
    "frame": "bold cyan",
    "c2s": "blue",
    "s2c": "green",
    "anom": "yellow",
    "state": "cyan",
    "event": "magenta",
    "dim": "dim",
    "head": "bold underline",
}


def _style_of(fact: Fact) -> tuple[str | None, str]:
    """(style, prefix) of a fact's lines."""
    if fact.id.startswith("anom."):
        return "anom", "    ! "
    if fact.id.startswith("state."):
        return "state", "    » "
    if fact.id.startswith("ev.") or fact.id.startswith("hs.complete"):
        return "event", INDENT
    return None, INDENT


def _fact_lines(cat: Catalogue, fact: Fact, prefix: str, style: str | None,
                width: int) -> list[Line]:
    text = cat.render(fact.id, fact.params)
    return [[(ln, style)] for ln in wrap(text, width, prefix, INDENT)]


def explain_story(story: ConnectionStory, lang: str = "en", *, width: int = WIDTH,
                  ladder: bool = True) -> list[Line]:
    """One connection told as styled lines (its `items`: packets, folded runs, and the
    chapters of a long story, present/story/episodes.py)."""
    cat = catalogue(lang)
    out: list[Line] = []
    title, *rest = story.intro
    out.extend([[(ln, "title")] for ln in wrap(cat.render(title.id, title.params), width)])
    for f in rest:
        out.extend([[(ln, None)] for ln in wrap(cat.render(f.id, f.params), width)])
    if ladder:
        out.append([])
        lad = build_ladder([replace(story, items=told_items(story))], lang, fold=True)
        for text, r in render_text_rows(lad, width):
            style = None
            if r is not None and r.kind == "packet":
                style = "s2c" if r.src > r.dst else "c2s"
            out.append([(text, style)])
    out.append([])
    for item in story.items:
        if isinstance(item, Run):
            out.extend(_run_lines(cat, item, width))
        elif isinstance(item, Chapter):
            out.extend(_chapter_lines(cat, story, item, width))
        else:
            out.extend(_step_lines(cat, story, item, width))
        out.append([])
    if story.summary:
        out.append([(cat.render("sum.title"), "head")])
        for f in story.summary:
            style = "anom" if f.id.startswith("sum.anomaly") else None
            for ln in wrap(cat.render(f.id, f.params), width, "  - ", "    "):
                out.append([(ln, style)])
    return out


def _step_lines(cat: Catalogue, story: ConnectionStory, step: Step, width: int) -> list[Line]:
    arrow = (f"{cat.term('term.side', step.sender)} → "
             f"{cat.term('term.side', 'client' if step.from_server else 'server')}")
    head_left = f"{step.frame:>4}  {step.t:.6f}  "
    lab = label(step, cat)
    room = width - dwidth(head_left) - dwidth(arrow) - 2
    lines: list[Line] = [[(head_left, "frame"), (arrow, "s2c" if step.from_server else "c2s"),
                          ("  " + truncate(lab, room), "title")]]
    for f in step.facts:
        style, prefix = _style_of(f)
        lines.extend(_fact_lines(cat, f, prefix, style, width))
    return lines


def _chapter_lines(cat: Catalogue, story: ConnectionStory, ch: Chapter,
                   width: int) -> list[Line]:
    head, *rest = ch.facts
    lines: list[Line] = [[(ln, "head" if k == 0 else None)] for k, ln in
                         enumerate(wrap(cat.render(head.id, head.params), width, "• ", "  "))]
    for f in rest:
        lines.extend([[(ln, None)] for ln in wrap(cat.render(f.id, f.params), width, "  ", "  ")])
    for step in ch.steps:
        lines.extend(_step_lines(cat, story, step, width))
    return lines


def _run_lines(cat: Catalogue, run: Run, width: int) -> list[Line]:
    head, *rest = run.facts
    lines: list[Line] = []
    text = cat.render(head.id, head.params)
    for k, ln in enumerate(wrap(text, width, f"{run.first:>4}  ", INDENT)):
        lines.append([(ln, "dim" if k else "frame")])
    for f in rest:
        lines.extend(_fact_lines(cat, f, INDENT, None, width))
    return lines


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def render_lines(lines: Iterable[Line], out: IO[str], *, color: bool = False) -> None:
    """Write lines: plain text, or with rich styles (`color`)."""
    if not color:
        for line in lines:
            out.write("".join(text for text, _ in line).rstrip().replace("\u00a0", " ") + "\n")
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=out, force_terminal=True, width=WIDTH + 20, highlight=False,
                      soft_wrap=True, emoji=False)
    for line in lines:
        t = Text()
        for text, style in line:
            t.append(text.replace("\u00a0", " "), style=_STYLE.get(style or "", None))
        t.rstrip()
        console.print(t, markup=False, highlight=False, soft_wrap=True)


def write_explain(source: str | os.PathLike | BinaryIO, out: IO[str], *,
                  streams: list[int] | None = None, lang: str = "en", color: bool = False,
                  mode: str = DEFAULT_MODE, group_min: int | None = GROUP_MIN,
                  max_streams: int = MAX_STREAMS, frames: tuple[int, int] | None = None,
                  on_batch: Callable[[int], None] | None = None, fmt: str = "text") -> int:
    """Explain `streams` of a capture; None: every connection if there are at most
    `max_streams`, else the capture overview (present/overview.py).

    A connection of more than `episodes.LONG_MIN` packets is told by episodes, unless
    `group_min` is None (every packet); `frames` (first, last) tells just those frames,
    packet by packet. `fmt` "json": one JSON object per connection and line, its facts
    (story/facts.py). Returns the number of connections told. StreamNotFound if a
    chosen stream is absent.
    """
    from .overview import OverviewCollector, overview_lines

    cat = catalogue(lang)
    wanted = sorted(set(streams)) if streams else None
    story = StoryCollector(wanted, max_streams=None if wanted else max_streams)
    model = ModelRows(wanted if wanted else range(max_streams), mode)
    gate = overview = None
    consumers: list[Any] = [story, model]
    if wanted is None:
        gate, overview = _Gate(consumers, max_streams), OverviewCollector()
        consumers = [gate, overview]
    # the overview takes finished connections as they come (a told stream keeps its state)
    run(source, consumers, Options(mode=mode, keep_transitions=story.keep_transitions(),
                                   retire=wanted is None), on_batch=on_batch)
    if gate is not None and gate.over:
        assert overview is not None
        if fmt == "json":
            raise StreamNotFound(f"JSON facts are per connection and the capture has more than "
                                 f"{max_streams}: choose them with --stream or -Y")
        render_lines(overview_lines(overview.overview(), lang), out, color=color)
        return 0
    analysis, extra = story.analysis, story.extra
    assert analysis is not None
    total = int(analysis.connections.shape[0])
    chosen = wanted or list(range(total))
    if not chosen:
        if fmt != "json":
            render_lines([[(cat.render("explain.no_tcp"), None)]], out, color=color)
        return 0
    for s in chosen:
        if s >= total:
            raise StreamNotFound.number(s, total)
    for k, s in enumerate(chosen):
        if fmt == "json":
            # imported here: json's regular expressions would cost every command that
            # imports this module (packets takes ProgressFile from it)
            from .story.facts import story_line
            out.write(story_line(build_story(analysis, s, extra, group_min=group_min)))
            continue
        if long_stream(analysis, s) and (group_min is not None or frames is not None):
            st = build_long_story(analysis, s, extra, model.model, group_min=group_min,
                                  frames=frames)
        else:
            st = build_story(analysis, s, extra, group_min=group_min)
            if frames is not None:
                st.items = frame_items(st, frames[0], frames[1], group_min)
        lines = explain_story(st, lang)
        if k:
            lines = [[("─" * WIDTH, "dim")], []] + lines
        render_lines(lines, out, color=color)
    return len(chosen)


class _Gate:
    """Feeds `consumers` while the capture has at most `limit` connections; past that
    (`over`), drops them and what they kept: the capture gets an overview instead."""

    def __init__(self, consumers: list[Any], limit: int) -> None:
        self.consumers = consumers
        self.limit = limit
        self.over = False

    def feed(self, chunk: Chunk) -> None:
        if self.over:
            return
        assert chunk.annotations is not None
        if chunk.annotations["stream"].max(initial=-1) >= self.limit:
            self.over = True
            self.consumers = []
            return
        for c in self.consumers:
            c.feed(chunk)

    def finish(self, result: Result) -> None:
        for c in self.consumers:
            c.finish(result)


# ---------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------

@dataclass
class ProgressFile:
    """A binary file that reports how many bytes were read (for a progress bar)."""

    raw: BinaryIO
    name: str
    report: Callable[[int], Any]
    done: int = 0

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)
        if n:
            self.done += n
            self.report(self.done)
        return n or 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.done += len(data)
        self.report(self.done)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()
