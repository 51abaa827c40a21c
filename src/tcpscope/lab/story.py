"""How the lab tells the story of a capture.

`render_story(facts, out)` is called once per experiment, after the capture is
analysed and before the expectations are checked. It prints `tcpscope explain`
of the capture (the ladder with both endpoints' states and every packet told,
for the first connections) and a short summary from the analysis: one line per
connection and the packets the engine flagged. `set_story_renderer` swaps the
renderer.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import IO

from .facts import Facts

__all__ = ["render_story", "set_story_renderer", "default_story", "StoryRenderer"]

#: A renderer: (facts of the capture, output, at most this many packets listed).
StoryRenderer = Callable[[Facts, IO[str], int], None]

LISTING_LIMIT = 40
#: Connections `tcpscope explain` tells per experiment (a SYN flood has hundreds).
EXPLAINED_STREAMS = 3


def default_story(facts: Facts, out: IO[str], limit: int = LISTING_LIMIT) -> None:
    """`tcpscope explain` of the capture (its first connections), then a summary per connection."""
    from ..present.explain import write_explain

    out.write(f"$ tcpscope explain {facts.path.name}\n")
    write_explain(str(facts.path), out, max_streams=EXPLAINED_STREAMS)
    out.write("\n")
    for line in summary_lines(facts):
        out.write(line + "\n")


def summary_lines(facts: Facts, max_conns: int = 6) -> list[str]:
    """A short summary: one line per connection, then the engine's flags with frames."""
    lines = []
    conns = facts.connections
    for c in conns[:max_conns]:
        seq = " ".join(facts.flag_sequence(c["stream"])[:14])
        more = " …" if len(facts.stream(c["stream"])) > 14 else ""
        cs, ss = c["client_side"], c["server_side"]
        lines.append(
            f"stream {c['stream']}: {c['client']}:{c['client_port']} -> "
            f"{c['server']}:{c['server_port']}, {cs['packets']}+{ss['packets']} packets, "
            f"{cs['bytes']}+{ss['bytes']} data bytes; flags: {seq}{more}")
        lc = facts.lifecycle(c["stream"])
        if lc is not None:
            lines.append(
                f"    handshake {lc.handshake}, teardown {lc.teardown}; final states: client "
                f"{lc.client_final.name}, server {lc.server_final.name}"
                + (f"; TIME_WAIT: {lc.time_wait_side}" if lc.time_wait_side else ""))
    if len(conns) > max_conns:
        lines.append(f"... and {len(conns) - max_conns} more connections")
    flagged: dict[str, list[int]] = {}
    for p in facts.packets:
        for name in p.analysis:
            flagged.setdefault(name, []).append(p.frame)
    for name, frames in flagged.items():
        shown = ", ".join(str(f) for f in frames[:12]) + (" …" if len(frames) > 12 else "")
        lines.append(f"tcpscope flags {name.replace('_', ' ')}: {len(frames)} "
                     f"(frame{'s' if len(frames) > 1 else ''} {shown})")
    return lines


_renderer: StoryRenderer = default_story


def set_story_renderer(renderer: StoryRenderer) -> StoryRenderer:
    """Use `renderer` to tell every experiment's story; returns the previous one."""
    global _renderer
    previous, _renderer = _renderer, renderer
    return previous


def render_story(facts: Facts, out: IO[str], limit: int = LISTING_LIMIT) -> None:
    """Tell the story of an experiment's capture (the swap point for `tcpscope explain`)."""
    _renderer(facts, out, limit)
