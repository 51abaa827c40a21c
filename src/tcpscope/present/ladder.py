"""Ladder (flow) diagrams of TCP connections: text, Mermaid and SVG.

One lane per endpoint (address and port): two for a connection, more when
several connections between the same hosts are drawn together. An arrow per
packet, labelled with its flags, relative seq / ack, length, window (scaled
when the scale is known) and analysis tags; time (seconds since the first
packet) on the left; each endpoint's state after the packet beside its lane,
shown where it changes: ``~`` marks a state assumed (the packet is taken to
arrive), ``?`` one inferred.

Everything drawn comes from `story.Step` (numbers from the analysis); the only
words (tags, headers, legend) come from the message catalogue.

- `render_text`: box-drawing characters, at most 100 columns.
- `render_mermaid`: a Mermaid ``sequenceDiagram`` (checked by a grammar test,
  tests/test_ladder.py, and rendered by mermaid-cli when it is installed).
- `render_svg`: a standalone SVG file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from .i18n import Catalogue, catalogue, dwidth, pad, truncate
from .story import ConnectionStory, Run, Step

__all__ = ["Lane", "Row", "Ladder", "build_ladder", "render_text", "render_mermaid",
           "render_svg", "render_text_rows", "label", "WIDTH"]

WIDTH = 100
_MARK = {"observed": "", "assumed": "~", "inferred": "?", None: ""}


@dataclass
class Lane:
    key: str     #: "addr:port"
    role: str    #: "client" / "server" (of the first connection it appears in)


@dataclass
class Row:
    kind: str                      #: "initial", "packet" or "run"
    frame: int = 0
    t: float = 0.0
    src: int = -1                  #: lane index
    dst: int = -1
    step: Step | None = None
    run: Run | None = None
    states: dict[int, str] = field(default_factory=dict)  #: lane -> "STATE~" where it changed


@dataclass
class Ladder:
    lanes: list[Lane]
    rows: list[Row]
    cat: Catalogue

    def lane_title(self, i: int) -> str:
        lane = self.lanes[i]
        return f"{self.cat.term('term.side', lane.role)} {lane.key}"


def build_ladder(stories: list[ConnectionStory], lang: str = "en", *,
                 fold: bool = False) -> Ladder:
    """The rows of a ladder for one or more connections (`fold`: runs as one row;
    only for a single connection)."""
    cat = catalogue(lang)
    lanes: list[Lane] = []
    index: dict[str, int] = {}

    def lane(key: str, role: str) -> int:
        if key not in index:
            index[key] = len(lanes)
            lanes.append(Lane(key, role))
        return index[key]

    ends = []
    for st in stories:
        ends.append((lane(st.client, "client"), lane(st.server, "server")))
    if len(stories) > 1:
        # Keep clients left and servers right where the roles agree.
        order = sorted(range(len(lanes)), key=lambda i: (lanes[i].role != "client", i))
        remap = {old: new for new, old in enumerate(order)}
        lanes = [lanes[i] for i in order]
        ends = [(remap[c], remap[s]) for c, s in ends]

    first = Row("initial")
    for (c, s), st in zip(ends, stories):
        first.states.setdefault(c, st.initial[0].name)
        first.states.setdefault(s, st.initial[1].name)
    rows: list[Row] = [first]
    t0 = min((st.steps[0].ts_ns for st in stories if st.steps), default=0)
    entries: list[tuple[int, int, Row]] = []
    for (c, s), st in zip(ends, stories):
        items = st.items if fold and len(stories) == 1 else st.steps
        for it in items:
            if isinstance(it, Run):
                r = Row("run", frame=it.first, t=(it.steps[0].ts_ns - t0) / 1e9, src=c, dst=s,
                        run=it)
                entries.append((it.steps[0].ts_ns, it.first, r))
                continue
            src, dst = (s, c) if it.from_server else (c, s)
            r = Row("packet", frame=it.frame, t=(it.ts_ns - t0) / 1e9, src=src, dst=dst, step=it)
            if it.client_change is not None:
                r.states[c] = it.client_state.name + _MARK[it.client_change]
            if it.server_change is not None:
                r.states[s] = it.server_state.name + _MARK[it.server_change]
            entries.append((it.ts_ns, it.frame, r))
    entries.sort(key=lambda e: (e[1], e[0]))
    rows.extend(r for _, _, r in entries)
    return Ladder(lanes, rows, cat)


def label(step: Step, cat: Catalogue) -> str:
    """An arrow's label: flags, relative numbers, length, window, options, tags."""
    parts = [step.flags]
    if step.rel_seq is not None:
        parts.append(f"seq {step.rel_seq}")
    else:
        parts.append(f"seq {step.seq}")
    if step.rel_ack is not None:
        parts.append(f"ack {step.rel_ack}")
    if step.length:
        parts.append(f"len {step.length}")
    parts.append(f"win {step.win_scaled if step.win_scaled is not None else step.win}")
    if step.options:
        parts.append(" ".join(o for o in step.options))
    for tag in step.tags:
        if tag == "retransmission" and ("fast_retransmission" in step.tags
                                        or "spurious_retransmission" in step.tags):
            continue
        text = cat.term("term.tag", tag)
        if tag == "duplicate_ack" and step.dup_ack_num > 0:
            text += f" {step.dup_ack_num}"
        parts.append(f"[{text}]")
    return " ".join(parts)


def _run_label(run: Run, cat: Catalogue) -> str:
    return cat.render("ladder.run", {"first": run.first, "last": run.last,
                                     "count": len(run.steps)})


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------

def _time(t: float) -> str:
    return f"{t:.6f}"


def render_text(ladder: Ladder, width: int = WIDTH) -> list[str]:
    """The ladder as lines of text (no trailing spaces), at most `width` columns."""
    return [text for text, _ in render_text_rows(ladder, width)]


def render_text_rows(ladder: Ladder, width: int = WIDTH) -> list[tuple[str, Row | None]]:
    """The lines of `render_text`, each with the packet row it draws (None: other lines)."""
    if len(ladder.lanes) == 2:
        return _text_two(ladder, width)
    return _text_many(ladder, width)


def _text_two(ladder: Ladder, width: int) -> list[tuple[str, Row | None]]:
    cat = ladder.cat
    tw = max([8, dwidth(cat.render("explain.head_time"))] + [len(_time(r.t)) for r in ladder.rows])
    sw = max([13] + [dwidth(v) for r in ladder.rows for v in r.states.values()])
    fw = max([4] + [len(str(r.frame)) for r in ladder.rows])
    left = fw + 1 + tw + 1 + sw + 1     # up to the left lane
    inner = width - left - 2 - 1 - sw   # between the two lanes
    out: list[tuple[str, Row | None]] = [(t, None) for t in _titles(ladder, width)]
    head = (pad(cat.render("explain.head_frame"), fw, ">") + " "
            + pad(cat.render("explain.head_time"), tw) + " "
            + pad(cat.term("term.side", ladder.lanes[0].role), sw, ">") + " "
            + " " * (inner + 2) + " " + cat.term("term.side", ladder.lanes[1].role))
    out.append((head.rstrip(), None))
    for r in ladder.rows:
        ls, rs = r.states.get(0, ""), r.states.get(1, "")
        if r.kind == "initial":
            mid = "│" + " " * inner + "│"
            prefix = " " * (fw + 1 + tw + 1)
        else:
            prefix = f"{r.frame:>{fw}} {_time(r.t):<{tw}} "
            if r.kind == "run":
                text = truncate(_run_label(r.run, cat), inner - 2)
                mid = "┆" + pad(text, inner, "^") + "┆"
            else:
                mid = "│" + _arrow(label(r.step, cat), inner, r.src > r.dst) + "│"
        line = prefix + pad(ls, sw, ">") + " " + mid + " " + rs
        out.append((line.rstrip(), r))
    out.append((cat.render("ladder.legend"), None))
    return out


def _titles(ladder: Ladder, width: int) -> list[str]:
    """The lanes' names on one line, or one per line when they do not fit."""
    one = "  ⇄  ".join(ladder.lane_title(i) for i in range(len(ladder.lanes)))
    if dwidth(one) <= width:
        return [one]
    return [truncate(ladder.lane_title(i), width) for i in range(len(ladder.lanes))]


def _arrow(text: str, n: int, leftward: bool) -> str:
    """An arrow `n` columns long with `text` on it."""
    text = truncate(text, n - 6)
    body = f" {text} "
    rest = n - 3 - dwidth(body)
    if leftward:
        return "◀──" + body + "─" * rest
    return "──" + body + "─" * rest + "▶"


def _text_many(ladder: Ladder, width: int) -> list[tuple[str, Row | None]]:
    cat = ladder.cat
    n = len(ladder.lanes)
    tw = max([8] + [len(_time(r.t)) for r in ladder.rows])
    fw = max([4] + [len(str(r.frame)) for r in ladder.rows])
    left = fw + 1 + tw + 1
    avail = width - left - 1
    xs = [left + 6 + i * (avail - 12) // max(n - 1, 1) for i in range(n)]
    out: list[tuple[str, Row | None]] = []
    for i in range(n):
        out.append((truncate(f"[{i + 1}] {ladder.lane_title(i)}", width), None))

    def canvas() -> list[str]:
        c = [" "] * width
        for x in xs:
            c[x] = "│"
        return c

    def put_center(c: list[str], x: int, text: str) -> None:
        text = truncate(text, 16)
        start = max(0, min(width - dwidth(text), x - dwidth(text) // 2))
        _put(c, start, text)

    head = canvas()
    for i, x in enumerate(xs):
        put_center(head, x, f"[{i + 1}]")
    out.append(("".join(head).rstrip(), None))
    for r in ladder.rows:
        if r.kind != "initial":
            c = canvas()
            _put(c, 0, f"{r.frame:>{fw}} {_time(r.t):<{tw}}")
            a, b = sorted((xs[r.src], xs[r.dst]))
            if r.kind == "run":
                text = truncate(_run_label(r.run, cat), b - a - 2)
                for x in range(a + 1, b):
                    c[x] = " "
                _put(c, a + 1 + max(0, (b - a - 1 - dwidth(text)) // 2), text)
                c[a], c[b] = "┆", "┆"
            else:
                arrow = _arrow(label(r.step, cat), b - a - 1, r.src > r.dst)
                _put(c, a + 1, arrow)
            out.append(("".join(c).rstrip(), r))
        if r.states:
            c = canvas()
            for i, text in sorted(r.states.items()):
                put_center(c, xs[i], text)
            out.append(("".join(c).rstrip(), None))
    out.append((cat.render("ladder.legend"), None))
    return out


def _put(c: list[str], x: int, text: str) -> None:
    """Write `text` into a row of cells; a wide character takes two cells."""
    for ch in text:
        if x >= len(c):
            return
        c[x] = ch
        x += 1
        if dwidth(ch) == 2 and x < len(c):
            c[x] = ""
            x += 1


# ---------------------------------------------------------------------------
# Mermaid
# ---------------------------------------------------------------------------

def _mm(text: str) -> str:
    """Text safe inside a Mermaid message or note: no comment (#), statement end (;),
    HTML (<, >), entity (&) or line break."""
    return (text.replace("#", "no.").replace(";", ",").replace("<", "‹").replace(">", "›")
            .replace("&", "+").replace("\n", " ").strip())


def render_mermaid(ladder: Ladder) -> str:
    """A Mermaid ``sequenceDiagram``: a message per packet, states as notes."""
    cat = ladder.cat
    ids = [f"E{i + 1}" for i in range(len(ladder.lanes))]
    lines = ["sequenceDiagram"]
    for i, lane in enumerate(ladder.lanes):
        lines.append(f"    participant {ids[i]} as {_mm(ladder.lane_title(i))}")
    for r in ladder.rows:
        if r.kind == "run":
            lo, hi = sorted((r.src, r.dst))
            lines.append(f"    Note over {ids[lo]},{ids[hi]}: {_mm(_run_label(r.run, cat))}")
        elif r.kind == "packet":
            arrow = "-x" if "R" in r.step.flags else "->>"
            text = _mm(f"{r.frame} · {_time(r.t)} s · {label(r.step, cat)}")
            lines.append(f"    {ids[r.src]}{arrow}{ids[r.dst]}: {text}")
        for i, state in sorted(r.states.items()):
            lines.append(f"    Note over {ids[i]}: {_mm(state)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# SVG
# ---------------------------------------------------------------------------

_COLORS = {"c2s": "#1f5fbf", "s2c": "#1a7f37", "rst": "#cf222e", "tag": "#bc4c00",
           "lane": "#57606a", "state": "#24292f", "state_bg": "#eef2f7", "muted": "#57606a"}
_FONT = "DejaVu Sans Mono, Menlo, Consolas, Noto Sans Mono CJK SC, monospace"
_CHAR_W = 7.3   # px per column at 12 px DejaVu Sans Mono
# A white outline under the letters keeps a label readable where it crosses a lane.
_HALO = ' stroke="#ffffff" stroke-width="3" paint-order="stroke"'


def render_svg(ladder: Ladder) -> str:
    """A standalone SVG: lanes, one slanted arrow per packet, states in boxes."""
    cat = ladder.cat
    n = len(ladder.lanes)
    # More than two lanes: state pills go under the arrow's ends, which needs taller rows.
    row_h, top = (40 if n == 2 else 56), 96
    time_w = 150
    state_w = 130
    lane_gap = 560 if n == 2 else 300
    x0 = time_w + state_w
    xs = [x0 + i * lane_gap for i in range(n)]
    width = xs[-1] + state_w + 30
    height = top + row_h * len(ladder.rows) + 60
    e = lambda s: escape(s, {'"': "&quot;"})  # noqa: E731
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{_FONT}" font-size="12">',
        "<defs>",
    ]
    for name, color in (("c2s", _COLORS["c2s"]), ("s2c", _COLORS["s2c"]),
                        ("rst", _COLORS["rst"])):
        out.append(f'<marker id="head-{name}" viewBox="0 0 10 10" refX="9" refY="5" '
                   f'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>')
    out.append("</defs>")
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    title = cat.render("ladder.title", {"lanes": "  ⇄  ".join(
        ladder.lane_title(i) for i in range(n))})
    out.append(f'<text x="16" y="26" font-size="15" font-weight="bold" '
               f'fill="{_COLORS["state"]}">{e(title)}</text>')
    out.append(f'<text x="16" y="{top - 22}" fill="{_COLORS["muted"]}">'
               f'{e(cat.render("explain.head_frame"))}</text>')
    out.append(f'<text x="56" y="{top - 22}" fill="{_COLORS["muted"]}">'
               f'{e(cat.render("explain.head_time"))}</text>')
    bottom = top + row_h * (len(ladder.rows) - 1) + 14
    for i, x in enumerate(xs):
        out.append(f'<text x="{x}" y="{top - 40}" text-anchor="middle" font-weight="bold" '
                   f'fill="{_COLORS["state"]}">{e(ladder.lane_title(i))}</text>')
        out.append(f'<line x1="{x}" y1="{top - 30}" x2="{x}" y2="{bottom}" '
                   f'stroke="{_COLORS["lane"]}" stroke-width="2"/>')
    for k, r in enumerate(ladder.rows):
        y = top + k * row_h
        if r.kind != "initial":
            out.append(f'<text x="16" y="{y + 4}" fill="{_COLORS["muted"]}">{r.frame}</text>')
            out.append(f'<text x="56" y="{y + 4}" fill="{_COLORS["muted"]}">'
                       f'{_time(r.t)}</text>')
        if r.kind == "run":
            a, b = sorted((xs[r.src], xs[r.dst]))
            out.append(f'<rect x="{a + 12}" y="{y - 12}" width="{b - a - 24}" height="22" '
                       f'rx="4" fill="#f6f8fa" stroke="#d0d7de" stroke-dasharray="4 3"/>')
            out.append(f'<text x="{(a + b) / 2}" y="{y + 3}" text-anchor="middle" '
                       f'fill="{_COLORS["muted"]}">{e(_run_label(r.run, cat))}</text>')
        elif r.kind == "packet":
            step = r.step
            kind = "rst" if "R" in step.flags else ("s2c" if r.src > r.dst else "c2s")
            color = _COLORS[kind]
            xa, xb = xs[r.src], xs[r.dst]
            pad_x = 4 if xb > xa else -4
            out.append(f'<line x1="{xa + pad_x}" y1="{y - 6}" x2="{xb - pad_x}" y2="{y + 8}" '
                       f'stroke="{color}" stroke-width="1.6" marker-end="url(#head-{kind})"/>')
            text = label(step, cat)
            main, _, tags = text.partition(" [")
            span = abs(xb - xa) - 20
            main = truncate(main, max(8, int(span / _CHAR_W)))
            mid = (xa + xb) / 2
            if tags:
                tag_text = "[" + tags
                out.append(f'<text x="{mid}" y="{y - 10}" text-anchor="middle" fill="{color}"'
                           f'{_HALO}>{e(main)} <tspan fill="{_COLORS["tag"]}" font-weight="bold">'
                           f'{e(tag_text)}</tspan></text>')
            else:
                out.append(f'<text x="{mid}" y="{y - 10}" text-anchor="middle" '
                           f'fill="{color}"{_HALO}>{e(main)}</text>')
        for i, state in r.states.items():
            x = xs[i]
            w = max(60, int(dwidth(state) * _CHAR_W) + 14)
            if n == 2:
                bx = x - w - 10 if i == 0 else x + 10
                by = y - 11 if r.kind == "initial" else y - 1
            else:
                bx = x - w / 2
                by = y - 11 if r.kind == "initial" else y + 13
            out.append(f'<rect x="{bx}" y="{by}" width="{w}" height="18" rx="9" '
                       f'fill="{_COLORS["state_bg"]}" stroke="#8c959f"/>')
            out.append(f'<text x="{bx + w / 2}" y="{by + 13}" text-anchor="middle" '
                       f'font-size="11" fill="{_COLORS["state"]}">{e(state)}</text>')
    out.append(f'<text x="16" y="{height - 20}" font-size="11" xml:space="preserve" fill="{_COLORS["muted"]}">'
               f'{e(cat.render("ladder.legend"))}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
