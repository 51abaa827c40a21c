"""A long connection told by episodes: the handshake and the teardown packet by packet,
the transfer between them as chapters with their numbers.

A connection of more than `LONG_MIN` packets is too long to narrate packet by
packet (a bulk transfer of 190,000 packets made 98,000 lines). Its story keeps
the opening and the closing packets as they are, and tells the transfer as
`Chapter` items:

- its phases, from the sender model's round trips (`analysis.congestion.rounds`):
  each run of slow start, and the steady state (congestion avoidance with its
  recoveries), with the congestion window estimate, bytes delivered and rate;
- each loss recovery or window reduction (`analysis.congestion.episodes`: the
  trigger, segments lost and retransmitted, how long it took), the first few told
  with the packet that began them, the rest counted by trigger;
- zero-window stalls (from the receiver's zero window to the first open window
  it advertises again, with the probes between) and idle gaps.

The sender model is part of the improved mode. `ModelRows` is the pipeline
consumer that keeps its rows for the streams told: the run's own annotations in
improved mode, else those of a second engine in improved mode fed with just those
streams' packets (a connection's model depends only on its own packets).
`--frames A-B` (present/explain.py) tells any range of the packets in full.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.lib import recfunctions as rfn

from ...analysis import congestion
from ...analysis.annotation import flag_names
from ...analysis.engine import Analysis, Analyzer
from ...pipeline import Chunk, Options, Result, Source, run
from ...wire.text import format_endpoint, tcp_flags_text
from .collect import StoryCollector
from .model import GROUP_MIN, ConnectionStory, Extra, Fact, Run, Step
from .packets import teller_for
from .summary import fold, intro_facts, summary_facts

__all__ = ["LONG_MIN", "Chapter", "ModelRows", "Model", "Brief", "is_long", "episode_items",
           "frame_items", "build_long_story", "long_stream", "collect_long", "told_items", "model_chapters"]

#: A connection with more packets than this is told by episodes.
LONG_MIN = 1000
#: Recovery episodes told one by one (with the packet that began each); more RTOs and
#: spurious recoveries are added up to `NOTABLE`.
DETAILED = 2
NOTABLE = 1
#: Of those, how many are told with the packet that began them.
NARRATED = 1
#: Zero-window stalls and idle gaps told one by one (each kind).
STALLS = 4
#: A silence at least this long, and this many times the handshake's round trip, is idle.
IDLE_MIN_S = 0.5
IDLE_RTTS = 10
#: Packets kept at each end of the story (handshake, teardown), at most.
ENDS = 10

#: annotation columns the sender model's rounds and episodes read
_ANN = ("stream", "frame", "from_server", "kind", "flags", "rel_ack", "win_scaled", "cwnd_est",
        "ssthresh_est", "in_flight", "cc_phase", "limited_by", "cc_round", "cc_event",
        "cc_trigger", "cc_episode_start", "cc_episode_end", "cc_episode_trigger",
        "cc_episode_lost", "cc_episode_retx")
_REC = ("tcp_flags", "payload_len")


@dataclass
class Chapter:
    """A part of a long story told as a whole: its facts (the first is its heading)."""

    first: int               #: its first frame
    facts: list[Fact]
    steps: list[Step] = field(default_factory=list)  #: packets narrated with it
    want: list[int] = field(default_factory=list)    #: their indexes in the story's packets


@dataclass
class Model:
    """The sender model's rows of one stream (improved mode)."""

    annotations: np.ndarray
    records: np.ndarray
    ts_ns: np.ndarray


class ModelRows:
    """Pipeline consumer: the sender model's rows of `streams` (see the module's doc)."""

    def __init__(self, streams: Iterable[int], mode: str) -> None:
        self.wanted = np.array(sorted(set(streams)), np.int64)
        self.engine = None if mode == "improved" else Analyzer("improved")
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.model: Model | None = None

    def feed(self, chunk: Chunk) -> None:
        assert chunk.annotations is not None
        s = chunk.annotations["stream"]
        idx = np.flatnonzero(np.isin(s, self.wanted))
        if not idx.size:
            return
        rec = chunk.records[idx]
        ts = chunk.ts_ns[idx]
        if self.engine is None:
            ann = chunk.annotations[idx]
        else:
            b = chunk.batch
            ann = self.engine.feed(rec, ts, np.asarray(b.frame_numbers)[idx],
                                   np.asarray(b.iface, dtype=np.uint16)[idx])
            ann["stream"] = s[idx]   # the second engine numbers its streams itself
        self._parts.append((rfn.repack_fields(ann[list(_ANN)]),
                            rfn.repack_fields(rec[list(_REC)]), ts))

    def finish(self, result: Result) -> None:
        if not self._parts:
            return
        ann, rec, ts = (np.concatenate(p) for p in zip(*self._parts))
        self._parts = []
        self.model = Model(ann, rec, ts)


def collect_long(source: Source, streams: Iterable[int] | None, *, mode: str = "wireshark",
                 on_batch: Callable[[int], None] | None = None
                 ) -> tuple[Analysis, Extra, Model | None]:
    """`collect` (the rows of `streams`, None: all), with the sender model's rows of
    `streams` for the long ones (`ModelRows`)."""
    story = StoryCollector(streams)
    model = ModelRows(streams if streams is not None else (), mode)
    run(source, [story, model] if streams else [story],
        Options(mode=mode, keep_transitions=story.keep_transitions()), on_batch=on_batch)
    assert story.analysis is not None
    return story.analysis, story.extra, model.model


def told_items(story: ConnectionStory) -> list[Step | Run]:
    """The packets a story tells (its steps and runs, and those of its chapters), in
    order: what its ladder draws."""
    out: list[Step | Run] = []
    for item in story.items:
        if isinstance(item, Chapter):
            out.extend(item.steps)
        else:
            out.append(item)
    return out


def is_long(story: ConnectionStory) -> bool:
    return len(story.steps) > LONG_MIN


def long_stream(analysis: Analysis, stream: int) -> bool:
    """The stream has more than `LONG_MIN` packets in `analysis`."""
    return int(analysis.stream(stream).size) > LONG_MIN


class Brief:
    """A packet of a long story that is not narrated: what its chapters and summary read
    of it (a `Step` has the same attributes, and its facts)."""

    __slots__ = ("frame", "ts_ns", "t", "from_server", "length", "tags", "flags", "win")

    def __init__(self, frame: int, ts_ns: int, t: float, from_server: bool, length: int,
                 tags: tuple[str, ...], flags: str, win: int) -> None:
        self.frame, self.ts_ns, self.t, self.from_server = frame, ts_ns, t, from_server
        self.length, self.tags, self.flags, self.win = length, tags, flags, win

    @property
    def sender(self) -> str:
        return "server" if self.from_server else "client"


def build_long_story(analysis: Analysis, stream: int, extra: Extra | None, model: Model | None,
                     *, group_min: int | None = GROUP_MIN,
                     frames: tuple[int, int] | None = None) -> ConnectionStory:
    """The story of a long connection by episodes (or of `frames` only), narrating just
    the packets it tells: its other packets stay `Brief`, so memory does not grow with
    a Step and its facts per packet. The same story as `episode_items` makes of
    `build_story`'s (the narrated packets are told by the same `Teller`, in order)."""
    teller, conn = teller_for(analysis, stream, extra)
    life = teller.life
    briefs = _briefs(analysis, teller.rows, teller.from_server)

    def tell(ks: list[int]) -> list[Step]:
        return [teller.step(k) for k in ks]

    story = ConnectionStory(
        stream=stream, client=format_endpoint(conn.client.addr, conn.client.port),
        server=format_endpoint(conn.server.addr, conn.server.port), initial=teller.initial,
        intro=intro_facts(stream, conn, teller.initial, briefs),  # type: ignore[arg-type]
        steps=briefs, items=[],  # type: ignore[arg-type]
        summary=summary_facts(life, briefs), lifecycle=life)  # type: ignore[arg-type]
    if frames is not None:
        story.items = frame_items(story, frames[0], frames[1], group_min, tell)
    else:
        story.items = episode_items(story, model, group_min, tell)
    return story


def _briefs(a: Analysis, rows: np.ndarray, from_server: np.ndarray) -> list[Brief]:
    ts = a.ts_ns[rows]
    t0 = int(ts[0])
    rec = a.records   # column by column: no copy of whole rows
    tags: dict[int, tuple[str, ...]] = {}
    letters: dict[int, str] = {}
    out = []
    for frame, t, fs, n, f, fl, win in zip(
            a.frames[rows].tolist(), ts.tolist(), np.asarray(from_server).tolist(),
            rec["payload_len"][rows].tolist(), a.annotations["flags"][rows].tolist(),
            rec["tcp_flags"][rows].tolist(), rec["win"][rows].tolist()):
        if f not in tags:
            tags[f] = tuple(flag_names(f))
        if fl not in letters:
            letters[fl] = tcp_flags_text(fl)
        out.append(Brief(frame, t, (t - t0) / 1e9, bool(fs), n, tags[f], letters[fl], win))
    return out


#: The narrated `Step` of each packet index asked for (ascending): a `Teller` tells them
#: in order, so what it has taught before carries on.
Tell = Callable[[list[int]], list[Step]]


def _all_told(steps: Sequence[Step]) -> Tell:
    return lambda ks: [steps[k] for k in ks]


def frame_items(story: ConnectionStory, first: int, last: int, group_min: int | None,
                tell: Tell | None = None) -> list[Step | Run | Chapter]:
    """The packets of frames `first`..`last`, narrated as a short story's are."""
    ks = [k for k, s in enumerate(story.steps) if first <= s.frame <= last]
    steps = (tell or _all_told(story.steps))(ks)
    head = Chapter(first, [Fact("episode.frames", {"first": first, "last": last,
                                                   "count": len(steps),
                                                   "packets": len(story.steps)})])
    return [head, *fold(steps, group_min)]


def episode_items(story: ConnectionStory, model: Model | None, group_min: int | None,
                  tell: Tell | None = None) -> list[Step | Run | Chapter]:
    """The story's items told by episodes: opening, chapters of the transfer, closing.

    `story.steps` may be `Brief` packets (`build_long_story`): `tell` then narrates
    the few that are told one by one."""
    steps = story.steps
    n = len(steps)
    first_data = next((k for k, s in enumerate(steps) if s.length), n)
    open_end = min(first_data, ENDS)
    # the teardown from its first FIN or RST, if among the last packets; else the last two
    ends = next((k for k in range(max(n - ENDS, 0), n)
                 if "F" in steps[k].flags or "R" in steps[k].flags), n - 2)
    close_start = max(ends, open_end)
    chapters: list[Chapter] = []
    if open_end < close_start:
        chapters = _transfer(story, model, open_end, close_start)
    want = sorted({*range(open_end), *range(close_start, n),
                   *(k for c in chapters for k in c.want)})
    told = dict(zip(want, (tell or _all_told(steps))(want)))
    for c in chapters:
        c.steps = [told[k] for k in c.want]
    return [*fold([told[k] for k in range(open_end)], group_min), *chapters,
            *fold([told[k] for k in range(close_start, n)], group_min)]


def _transfer(story: ConnectionStory, model: Model | None, lo: int, hi: int) -> list[Chapter]:
    """The chapters of packets `lo`..`hi` - 1: the transfer's heading, then its phases,
    recoveries, zero-window stalls and idle gaps in the order they began."""
    steps = story.steps
    middle = steps[lo:hi]
    frames = np.fromiter((s.frame for s in steps), np.int64, len(steps))

    def index(frame: int) -> int | None:
        k = int(np.searchsorted(frames, frame))
        return k if lo <= k < hi and frames[k] == frame else None

    t0 = steps[0].ts_ns
    chapters: list[Chapter] = []
    eps: list[congestion.Episode] = []
    if model is not None:
        m = model
        eps = congestion.episodes(m.annotations, m.ts_ns, story.stream)
        rounds = congestion.rounds(m.records, m.annotations, m.ts_ns, story.stream)
        chapters += _phases(rounds, eps, middle[-1].frame, t0)
        chapters += _recoveries(eps, index, t0)
    rtt = story.lifecycle.handshake_rtt if story.lifecycle is not None else None
    chapters += _stalls(middle, lo, t0) + _idle(middle, rtt or 0.0)
    chapters.sort(key=lambda c: c.first)
    # zoom in on the first recovery, else on the transfer's start: 100 packets
    at = (index(eps[0].start_frame) or lo) if eps else lo
    span = steps[at:min(at + 100, hi)]
    head = Chapter(middle[0].frame, [
        Fact("episode.transfer", {
            "first": middle[0].frame, "last": middle[-1].frame, "count": len(middle),
            "duration": (middle[-1].ts_ns - middle[0].ts_ns) / 1e9, "stream": story.stream}),
        Fact("episode.zoom", {"stream": story.stream, "first": span[0].frame,
                              "last": span[-1].frame})])
    if not chapters:
        chapters.append(Chapter(middle[0].frame, [Fact("episode.no_model")]))
    return [head, *chapters]


def model_chapters(model: Model, stream: int) -> list[Chapter]:
    """The chapters the sender model alone can tell (phases, recoveries), for a
    connection whose packets were not kept (the report's longest)."""
    m = model
    eps = congestion.episodes(m.annotations, m.ts_ns, stream)
    rounds = congestion.rounds(m.records, m.annotations, m.ts_ns, stream)
    t0 = int(m.ts_ns[0])
    out = _phases(rounds, eps, int(m.annotations["frame"][-1]), t0)
    out += _recoveries(eps, lambda frame: None, t0)
    return sorted(out, key=lambda c: c.first)


def _t(ts_ns: int, t0: int) -> float:
    return round((ts_ns - t0) / 1e9, 3)


def _phases(rounds: np.ndarray, eps: list[congestion.Episode], last_frame: int,
            t0: int) -> list[Chapter]:
    """The first slow start, then the rest as one steady state (with how often slow
    start began again), from the round trips."""
    if not rounds.size:
        return []
    slow = np.array([congestion.PHASES[p] == "slow_start" for p in rounds["phase"]])
    k = int(np.argmin(slow)) if not slow.all() else int(rounds.size)
    out = []
    for a, b in ((0, k), (k, int(rounds.size))):
        if a == b:
            continue
        r = rounds[a:b]
        first = int(r["frame"][0])
        last_ts = int(r["ts_ns"][-1] + r["duration_ns"][-1])
        cwnd = r["cwnd"]
        delivered = int(r["delivered"].sum())
        secs = max(last_ts - int(r["ts_ns"][0]), 1) / 1e9
        params = {"first": first, "last": int(rounds["frame"][b]) - 1 if b < rounds.size
                  else last_frame, "t0": _t(int(r["ts_ns"][0]), t0), "t1": _t(last_ts, t0),
                  "rounds": b - a, "bytes": delivered,
                  "mbps": round(delivered * 8 / secs / 1e6, 1)}
        if a == 0 and k > 0:
            out.append(Chapter(first, [Fact("episode.slow_start", {
                **params, "cwnd0": int(cwnd[0]), "cwnd1": int(cwnd.max())})]))
            continue
        inside = sum(1 for e in eps if params["first"] <= e.start_frame <= params["last"])
        facts = [Fact("episode.steady", {**params, "lo": int(cwnd.min()), "hi": int(cwnd.max()),
                                         "median": int(np.median(cwnd)), "episodes": inside})]
        again = slow[a:b]
        restarts = int(np.count_nonzero(again[1:] & ~again[:-1]) + again[0])
        if restarts:
            facts.append(Fact("episode.restarts", {"count": restarts,
                                                   "rounds": int(again.sum())}))
        out.append(Chapter(first, facts))
    return out


def _recoveries(eps: list[congestion.Episode], index: Callable[[int], int | None],
                t0: int) -> list[Chapter]:
    """The first recoveries, and the notable ones (RTOs, undone), told (the first
    `NARRATED` with their packet); the rest counted."""
    told = set(range(min(DETAILED, len(eps))))
    for kind in ("rto", "spurious"):
        more = [k for k, e in enumerate(eps) if k not in told
                and (e.spurious if kind == "spurious" else e.trigger == kind)]
        told.update(more[:NOTABLE])
    out = []
    for k in sorted(told):
        e = eps[k]
        params = {"n": k + 1, "start": e.start_frame, "t": _t(e.start_ns, t0),
                  "lost": e.lost, "retx": e.retransmitted,
                  "how": [Fact(f"episode.by.{e.trigger}")]}
        if e.end_frame is None or e.end_ns is None:
            facts = [Fact("episode.recovery_open", params)]
        else:
            facts = [Fact("episode.recovery", {**params, "end": e.end_frame,
                                               "dur": (e.end_ns - e.start_ns) / 1e9})]
        if e.spurious:
            facts.append(Fact("episode.undone"))
        k = index(e.start_frame) if len(out) < NARRATED else None
        out.append(Chapter(e.start_frame, facts, want=[k] if k is not None else []))
    rest = [e for k, e in enumerate(eps) if k not in told]
    if rest:
        triggers = Counter(e.trigger for e in rest)
        # told after the recoveries named one by one
        out.append(Chapter(max(rest[-1].start_frame, out[-1].first), [Fact("episode.more", {
            "count": len(rest), "lost": sum(e.lost for e in rest),
            "retx": sum(e.retransmitted for e in rest),
            "first": rest[0].start_frame, "last": rest[-1].start_frame,
            "triggers": [f"{t} {n}" for t, n in triggers.most_common()]})]))
    return out


def _stalls(steps: Sequence[Step], lo: int, t0: int) -> list[Chapter]:
    """Zero-window stalls: a side's zero window until it advertises an open one again
    (`lo`: the index of `steps[0]` in the story)."""
    stalls: list[tuple[Step, Step | None, int]] = []
    open_: dict[bool, tuple[Step, int]] = {}
    at: dict[int, int] = {}
    for k, s in enumerate(steps, lo):
        if "zero_window" in s.tags and s.from_server not in open_:
            open_[s.from_server] = (s, 0)
            at[s.frame] = k
        elif "zero_window_probe" in s.tags and (not s.from_server) in open_:
            z, n = open_[not s.from_server]
            open_[not s.from_server] = (z, n + 1)
        elif s.from_server in open_ and s.win > 0 and "zero_window" not in s.tags:
            z, n = open_.pop(s.from_server)
            stalls.append((z, s, n))
    stalls += [(z, None, n) for z, n in open_.values()]
    stalls.sort(key=lambda x: x[0].frame)
    out = []
    for z, end, probes in stalls[:STALLS]:
        params = {"side": z.sender, "frame": z.frame, "t": _t(z.ts_ns, t0), "probes": probes}
        if end is None:
            fact = Fact("episode.zero_window_open", params)
        else:
            fact = Fact("episode.zero_window", {**params, "until": end.frame,
                                                "dur": (end.ts_ns - z.ts_ns) / 1e9})
        out.append(Chapter(z.frame, [fact], want=[at[z.frame]]))
    if len(stalls) > STALLS:
        rest = stalls[STALLS:]
        out.append(Chapter(rest[0][0].frame, [Fact("episode.more_zero", {
            "count": len(rest), "first": rest[0][0].frame, "last": rest[-1][0].frame})]))
    return out


def _idle(steps: Sequence[Step], rtt: float) -> list[Chapter]:
    """Silences of at least `IDLE_MIN_S` and `IDLE_RTTS` handshake round trips (`rtt`)."""
    least = max(IDLE_MIN_S, IDLE_RTTS * rtt)
    ts = np.array([s.ts_ns for s in steps], np.int64)
    gaps = np.flatnonzero(np.diff(ts) >= least * 1e9)
    out = []
    for k in gaps[:STALLS].tolist():
        a, b = steps[k], steps[k + 1]
        out.append(Chapter(b.frame, [Fact("episode.idle", {
            "gap": (b.ts_ns - a.ts_ns) / 1e9, "first": a.frame, "last": b.frame,
            "t": round(a.t, 3)})]))
    if gaps.size > STALLS:
        rest = gaps[STALLS:]
        out.append(Chapter(steps[int(rest[0]) + 1].frame, [Fact("episode.more_idle", {
            "count": int(rest.size),
            "total": float((ts[rest + 1] - ts[rest]).sum()) / 1e9})]))
    return out
