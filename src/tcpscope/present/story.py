"""A connection's story as structured facts: what each packet does and why, in numbers.

`build_story(analysis, stream)` walks one connection's rows of an `Analysis`
(records, annotations, states, events, lifecycle) and produces, per packet, a
`Step` with a list of `Fact` (a message id and named parameters). Every number
in a fact is read from the analysis: sequence and acknowledgement numbers from
the records and annotations, round-trip times from ``ack_rtt_ns`` / ``irtt_ns``,
rules and evidence frames from the engine, state changes from the lifecycle's
`Transition` list. Where a fact states arithmetic (``ack = ISN + 1``) both
sides of the equation are parameters, so tests/test_explain_numbers.py can
check it against the capture.

Nothing here is a sentence: present/explain.py renders the facts through a
message catalogue (present/i18n/, one per language), present/ladder.py draws
the steps.

Runs of ordinary packets (data and ACKs with no anomaly, no state change and
nothing new to teach) are folded into a `Run` so a bulk transfer stays
readable.

`collect(source, streams)` reads a capture once and keeps only what the story
needs: the rows of the chosen streams, a few bytes of each payload (to quote
it) and the options of SYNs (to tell a Fast Open cookie from a request).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO

import numpy as np

from ..analysis.annotation import ANN_KIND, FLAG, FLAG_BIT, flag_names
from ..analysis.engine import Analysis, conn_to_dict
from ..analysis.lifecycle import Lifecycle, LifecycleTracker
from ..analysis.rules import RULES_BY_CODE
from ..analysis.states import Confidence, State
from ..pipeline import Options, Pipeline, StreamNotFound
from ..wire.options import FastOpen, parse_options
from ..wire.text import format_endpoint, tcp_flags_text
from ..wire.record import ACK, ECE, CWR, FIN, OPTION, RECORD_DTYPE, RST, SYN

__all__ = [
    "Fact", "Step", "Run", "ConnectionStory", "Extra", "build_story", "build_stories", "collect",
    "PREVIEW_BYTES", "GROUP_MIN",
]

#: Payload bytes kept per data segment, to quote it.
PREVIEW_BYTES = 40
#: Shortest run of ordinary packets that is told as one.
GROUP_MIN = 8
#: A pure ACK this much later than the handshake's round trip is called delayed (a hint).
DELAYED_ACK_MIN_S = 0.02

_ANALYSED = ANN_KIND["analysed"]
_FIN_ACK_MISSED = "infer.fin_ack_not_captured"   # the first ACK of a FIN: a packet not captured
_U32 = 1 << 32


@dataclass(frozen=True)
class Fact:
    """One thing to say: a message id of the catalogues and its named parameters."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    """One packet of the connection, with what it means."""

    row: int                 #: row in the Analysis
    frame: int
    ts_ns: int
    t: float                 #: seconds since the connection's first packet
    from_server: bool
    flags: str               #: tcpdump letters (S, S., P., F., R., .)
    seq: int                 #: raw sequence number
    ack: int | None          #: raw acknowledgement number (None without the ACK bit)
    rel_seq: int | None
    rel_ack: int | None
    length: int              #: payload bytes
    win: int                 #: raw window field
    win_scaled: int | None   #: bytes, when the scale is known
    options: tuple[str, ...]  #: short option names for labels ("mss 1460", "sackOK", ...)
    tags: tuple[str, ...]    #: analysis flags, Wireshark's names
    dup_ack_num: int
    client_state: State
    server_state: State
    #: confidence of the last change of each side's state on this packet (None: no change)
    client_change: str | None = None
    server_change: str | None = None
    facts: list[Fact] = field(default_factory=list)
    ordinary: bool = False

    @property
    def sender(self) -> str:
        return "server" if self.from_server else "client"


@dataclass
class Run:
    """Consecutive ordinary packets told as one."""

    steps: list[Step]
    facts: list[Fact]

    @property
    def first(self) -> int:
        return self.steps[0].frame

    @property
    def last(self) -> int:
        return self.steps[-1].frame


@dataclass
class ConnectionStory:
    stream: int
    client: str              #: "addr:port" ([addr]:port for IPv6)
    server: str
    initial: tuple[State, State]
    intro: list[Fact]
    steps: list[Step]        #: every packet
    items: list[Step | Run]  #: what is told: steps, with ordinary runs folded
    summary: list[Fact]
    lifecycle: Lifecycle | None = None


@dataclass
class Extra:
    """What the story quotes beyond the analysis: payload starts and SYN options, by frame."""

    payloads: dict[int, bytes] = field(default_factory=dict)
    syn_options: dict[int, bytes] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def collect(source: str | os.PathLike | BinaryIO, streams: Iterable[int] | None = None, *,
            mode: str = "wireshark", max_streams: int | None = None,
            on_batch: Callable[[int], None] | None = None) -> tuple[Analysis, Extra]:
    """Read a capture once; keep the rows of `streams` (None: all streams, or the first
    `max_streams`), with the lifecycle of every connection.

    `on_batch(frames)` is called after each batch (for a progress display).
    """
    wanted = None if streams is None else np.array(sorted(set(streams)), dtype=np.int64)
    pipe = Pipeline([], Options(mode=mode, states=False))
    an = pipe.result.analyzer
    # Transitions only for the streams told: a big capture's other connections keep counts only.
    if wanted is not None:
        keep: Any = frozenset(wanted.tolist())
    elif max_streams is not None:
        keep = max_streams.__gt__
    else:
        keep = True
    tracker = LifecycleTracker(keep_transitions=keep)
    extra = Extra()
    recs, anns, ts, frames, ifaces, cst, sst = [], [], [], [], [], [], []
    events: dict[int, tuple[str, ...]] = {}
    kept = 0
    for chunk in pipe.read(source):
        batch, records, ann = chunk.batch, chunk.records, chunk.annotations
        life = tracker.feed(records, ann, np.asarray(batch.ts_ns, dtype=np.int64))
        s = ann["stream"]
        sel = s >= 0
        if wanted is not None:
            sel &= np.isin(s, wanted)
        elif max_streams is not None:
            sel &= s < max_streams
        idx = np.flatnonzero(sel)
        if idx.size:
            r = records[idx]
            recs.append(r)
            anns.append(ann[idx])
            ts.append(np.asarray(batch.ts_ns, dtype=np.int64)[idx])
            fr = batch.frame_numbers[idx]
            frames.append(fr)
            ifaces.append(np.asarray(batch.iface, dtype=np.uint16)[idx])
            cst.append(life.client[idx])
            sst.append(life.server[idx])
            pos = {int(row): kept + k for k, row in enumerate(idx.tolist())}
            for row, ev in life.events.items():
                if row in pos:
                    events[pos[row]] = ev
            _keep_bytes(batch, r, fr, idx, extra)
            kept += idx.size
        if on_batch is not None:
            on_batch(len(records))

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    from ..analysis.annotation import ANNOTATION_DTYPE

    analysis = Analysis(
        path=pipe.result.name,
        mode=mode,
        records=cat(recs, RECORD_DTYPE).astype(RECORD_DTYPE),
        annotations=cat(anns, ANNOTATION_DTYPE).astype(ANNOTATION_DTYPE),
        ts_ns=cat(ts, np.int64), frames=cat(frames, np.int64), iface=cat(ifaces, np.uint16),
        connections=an.connections().copy(), stats=an.stats(),
        client_state=cat(cst, np.uint8), server_state=cat(sst, np.uint8), events=events,
        lifecycles=tracker.lifecycles(),
    )
    return analysis, extra


def _keep_bytes(batch: Any, r: np.ndarray, fr: np.ndarray, idx: np.ndarray, extra: Extra) -> None:
    data = batch.data
    base = np.asarray(batch.offset)[idx]
    syn = (r["tcp_flags"] & SYN) != 0
    has_opts = syn & (r["opt_len"] > 0)
    for k in np.flatnonzero(has_opts).tolist():
        off = int(r["opt_off"][k])
        start = int(base[k]) + off
        extra.syn_options[int(fr[k])] = bytes(data[start:start + int(r["opt_len"][k])])
    for k in np.flatnonzero(r["payload_cap"] > 0).tolist():
        start = int(base[k]) + int(r["l4_off"][k]) + int(r["tcp_hlen"][k])
        n = min(int(r["payload_cap"][k]), PREVIEW_BYTES)
        extra.payloads[int(fr[k])] = bytes(data[start:start + n])


# ---------------------------------------------------------------------------
# Building the story
# ---------------------------------------------------------------------------

class _Side:
    __slots__ = ("name", "isn", "syns", "synacks", "syn_len", "told_options", "data_segments",
                 "last_data", "max_next", "fin_seq", "fin_frame", "fin_next", "acked",
                 "told_first_data", "told_first_ack", "told_window", "opts", "sent_any")

    def __init__(self, name: str) -> None:
        self.name = name
        self.isn: int | None = None
        self.syns: list[tuple[int, int]] = []      # (frame, ts_ns)
        self.synacks: list[tuple[int, int]] = []
        self.syn_len = 0
        self.told_options = False
        self.data_segments = 0
        self.last_data: tuple[int, int, int] | None = None  # (frame, rel_seq, len)
        self.max_next = -1
        self.fin_seq: int | None = None
        self.fin_frame = 0
        self.fin_next: int | None = None
        self.acked = -1
        self.told_first_data = False
        self.told_first_ack = False
        self.told_window = False
        self.opts: dict[str, Any] | None = None
        self.sent_any = False


#: Facts that an ordinary data / ACK packet may carry and still be folded into a run.
_ORDINARY = frozenset({"data.send", "data.send_bin", "data.again", "data.continues", "ack.data", "ack.upto",
                       "ack.same"})


def build_stories(analysis: Analysis, extra: Extra | None = None, *,
                  group_min: int | None = GROUP_MIN) -> list[ConnectionStory]:
    """Every connection with rows in `analysis`, in stream order."""
    streams = np.unique(analysis.annotations["stream"])
    return [build_story(analysis, int(s), extra, group_min=group_min)
            for s in streams.tolist() if s >= 0]


def build_story(analysis: Analysis, stream: int, extra: Extra | None = None, *,
                group_min: int | None = GROUP_MIN) -> ConnectionStory:
    """The story of one connection (StreamNotFound if the analysis has no such stream)."""
    rows = analysis.stream(stream)
    if not rows.size:
        raise StreamNotFound(f"no TCP stream {stream} in the capture")
    conn_rows = analysis.connections[analysis.connections["stream"] == stream]
    conn = conn_to_dict(conn_rows[0])
    life: Lifecycle | None = analysis.lifecycles.get(stream)
    extra = extra or Extra()
    b = _Builder(analysis, stream, rows, conn, life, extra)
    steps = b.steps()
    items = _fold(steps, group_min)
    for it in items:
        if isinstance(it, Run):
            it.facts = _run_facts(it.steps)
    return ConnectionStory(
        stream=stream,
        client=format_endpoint(conn["client"], conn["client_port"]),
        server=format_endpoint(conn["server"], conn["server_port"]),
        initial=b.initial, intro=b.intro_facts(steps), steps=steps, items=items,
        summary=b.summary_facts(steps), lifecycle=life,
    )


class _Builder:
    def __init__(self, a: Analysis, stream: int, rows: np.ndarray, conn: dict[str, Any],
                 life: Lifecycle | None, extra: Extra) -> None:
        self.a = a
        self.stream = stream
        self.rows = rows
        self.conn = conn
        self.life = life
        self.extra = extra
        self.client_key = (conn["client"], conn["client_port"])
        self.by_frame = {int(a.frames[r]): int(r) for r in rows.tolist()}
        self.trans: dict[int, list[Any]] = {}
        self.sanom: dict[int, list[Any]] = {}
        if life is not None:
            for t in life.transitions:
                self.trans.setdefault(t.frame, []).append(t)
            for an in life.state_anomalies:
                self.sanom.setdefault(an.frame, []).append(an)
        self.sides = {"client": _Side("client"), "server": _Side("server")}
        self.t0 = int(a.ts_ns[rows[0]])
        self.initial = self._initial_states()
        self.irtt: float | None = None
        self.told_dupack: tuple[int, int | None] | None = None

    # -- helpers ---------------------------------------------------------------

    def _initial_states(self) -> tuple[State, State]:
        """Each side's state before the first packet: the first transition's old state."""
        c = State(int(self.a.client_state[self.rows[0]]))
        s = State(int(self.a.server_state[self.rows[0]]))
        if self.life is not None:
            firsts: dict[str, State] = {}
            for t in self.life.transitions:
                firsts.setdefault(t.side, t.old)
            c, s = firsts.get("client", c), firsts.get("server", s)
        return c, s

    def _from_server(self, rec: np.void) -> bool:
        import ipaddress

        v = int(rec["ip_version"])
        raw = bytes(rec["src"])
        addr = str(ipaddress.IPv4Address(raw[:4]) if v == 4 else ipaddress.IPv6Address(raw))
        return (addr, int(rec["sport"])) != self.client_key

    def _row(self, frame: int) -> int | None:
        return self.by_frame.get(frame)

    def _t(self, row: int) -> int:
        return int(self.a.ts_ns[row])

    # -- the packets -----------------------------------------------------------

    def steps(self) -> list[Step]:
        out = []
        for row in self.rows.tolist():
            out.append(self._step(row))
        return out

    def _step(self, row: int) -> Step:
        a = self.a
        rec = a.records[row]
        ann = a.annotations[row]
        frame = int(a.frames[row])
        ts = int(a.ts_ns[row])
        fs = self._from_server(rec)
        x = self.sides["server" if fs else "client"]
        y = self.sides["client" if fs else "server"]
        fl = int(rec["tcp_flags"])
        analysed = int(ann["kind"]) == _ANALYSED
        has_ack = bool(fl & ACK)
        length = int(rec["payload_len"])
        rel_seq = int(ann["rel_seq"]) if analysed else None
        rel_ack = int(ann["rel_ack"]) if analysed and has_ack else None
        aflags = int(ann["flags"])
        tags = tuple(flag_names(aflags))
        ws = int(ann["win_scaled"])
        step = Step(
            row=row, frame=frame, ts_ns=ts, t=(ts - self.t0) / 1e9, from_server=fs,
            flags=tcp_flags_text(fl), seq=int(rec["seq"]), ack=int(rec["ack"]) if has_ack else None,
            rel_seq=rel_seq, rel_ack=rel_ack, length=length, win=int(rec["win"]),
            win_scaled=ws if ws >= 0 else None, options=_option_names(rec), tags=tags,
            dup_ack_num=int(ann["dup_ack_num"]),
            client_state=State(int(a.client_state[row])),
            server_state=State(int(a.server_state[row])),
        )
        facts = step.facts
        events = a.events.get(row, ())
        teaching = False

        if not analysed:
            facts.append(Fact("pkt.unanalysed", {"side": x.name}))
        elif fl & RST:
            self._rst(step, rec, x, y, events, facts)
        elif fl & SYN:
            self._syn(step, rec, ann, x, y, facts)
        else:
            if length:
                teaching |= self._data(step, x, facts)
            if has_ack:
                teaching |= self._ack(step, ann, x, y, events, facts)
            if fl & FIN:
                self._fin(step, x, facts)
        if analysed and not fl & (SYN | RST) and not x.told_window and int(ann["win_scale"]) == -1:
            x.told_window = True
            teaching = True
            facts.append(Fact("win.unknown", {"side": x.name, "win": step.win}))
        if analysed and not fl & (SYN | RST) and not x.told_window and step.win_scaled is not None:
            scale = int(ann["win_scale"])
            if scale > 0:
                x.told_window = True
                teaching = True
                facts.append(Fact("win.scaled", {"side": x.name, "win": step.win,
                                                 "factor": 1 << scale, "scaled": step.win_scaled}))
        x.sent_any = True

        for name in tags:
            f = self._anomaly(name, step, ann, x, y)
            if f is not None:
                facts.extend(f)

        # State changes, with their reasons and how they are known.
        for t in self.trans.get(frame, ()):
            facts.append(Fact("state.change", {"side": t.side, "old": t.old.name,
                                               "new": t.new.name, "reason": t.reason,
                                               "conf": t.confidence}))
            if t.side == "client":
                step.client_change = t.confidence
            else:
                step.server_change = t.confidence
        if any(t.reason == _FIN_ACK_MISSED for t in self.trans.get(frame, ())):
            facts.append(self._fin_ack_missed(row, rec, ann, x, y))
        for an in self.sanom.get(frame, ()):
            facts.append(Fact("state.anomaly", {"side": an.side, "state": an.state.name,
                                                "event": an.event, "anomaly": an.anomaly}))
        # Consequences.
        for ev in events:
            if ev == "handshake_complete":
                irtt = int(ann["irtt_ns"])
                if irtt >= 0:
                    self.irtt = irtt / 1e9
                    facts.append(Fact("hs.complete", {"rtt": irtt / 1e9}))
                else:
                    facts.append(Fact("hs.complete_nortt"))
            elif ev == "half_close":
                facts.append(Fact("ev.half_close", {"side": x.name, "peer": y.name}))
            elif ev == "time_wait_entered":
                for t in self.trans.get(frame, ()):
                    if t.new == State.TIME_WAIT:
                        both = t.old == State.CLOSING   # a simultaneous close: both closed first
                        facts.append(Fact("ev.time_wait_simultaneous" if both else
                                          "ev.time_wait", {"side": t.side}))
            elif ev == "connection_closed":
                facts.append(Fact("ev.closed", {"client": step.client_state.name,
                                                 "server": step.server_state.name}))
        step.ordinary = (not teaching and not tags and not events and bool(facts)
                         and all(f.id in _ORDINARY for f in facts))
        return step

    # -- SYN, SYN-ACK ----------------------------------------------------------

    def _syn(self, step: Step, rec: np.void, ann: np.void, x: _Side, y: _Side,
             facts: list[Fact]) -> None:
        isn = step.seq
        frame, ts = step.frame, step.ts_ns
        if step.ack is None:
            x.syns.append((frame, ts))
            if len(x.syns) == 1:
                x.isn = isn
                other_syn = bool(y.syns)
                facts.append(Fact("syn.simultaneous" if other_syn else "syn.first",
                                  {"side": x.name, "isn": isn}))
            else:
                pf, pts = x.syns[-2]
                facts.append(Fact("syn.retransmit", {"side": x.name, "copy": len(x.syns),
                                                     "dt": (ts - pts) / 1e9, "prev_frame": pf,
                                                     "isn": isn}))
            if step.length:
                x.syn_len = step.length
                facts.append(Fact("syn.data", {"len": step.length, "last": step.length}))
            if len(x.syns) == 1:
                facts.append(Fact("syn.win", {"win": step.win}))
        else:
            x.synacks.append((frame, ts))
            if len(x.synacks) == 1:
                x.isn = isn
                peer_isn = y.isn
                ack = step.ack
                params = {"side": x.name, "peer": y.name, "isn": isn, "ack": ack}
                if peer_isn is None:
                    facts.append(Fact("synack.reply_unseen", params))
                elif ack == (peer_isn + 1) % _U32 and x.syns and x.syns[0][0] != frame:
                    # simultaneous open: its SYN again, now acknowledging the peer's
                    facts.append(Fact("synack.simultaneous", {**params, "peer_isn": peer_isn}))
                elif ack == (peer_isn + 1) % _U32:
                    facts.append(Fact("synack.reply", {**params, "peer_isn": peer_isn}))
                    if y.syn_len:
                        facts.append(Fact("synack.tfo_refused", {"len": y.syn_len}))
                elif y.syn_len and ack == (peer_isn + 1 + y.syn_len) % _U32:
                    facts.append(Fact("synack.reply_tfo", {**params, "peer_isn": peer_isn,
                                                           "len": y.syn_len}))
                else:
                    facts.append(Fact("synack.odd", {**params, "peer_isn": peer_isn}))
                facts.append(Fact("syn.win", {"win": step.win}))
                if step.rel_ack is not None:
                    x.acked = max(x.acked, step.rel_ack)
            else:
                pf, pts = x.synacks[-2]
                facts.append(Fact("synack.retransmit", {"side": x.name, "copy": len(x.synacks),
                                                        "dt": (ts - pts) / 1e9,
                                                        "prev_frame": pf}))
        if not x.told_options:
            facts.extend(self._options(step, rec, x, y))
            x.told_options = True
            if step.ack is not None and y.opts is not None and x.opts is not None:
                facts.extend(self._negotiated(y, x))

    def _options(self, step: Step, rec: np.void, x: _Side, y: _Side) -> list[Fact]:
        """What each option means, the first time it appears in the connection; the options
        of the answering side that the first already explained, in a short list."""
        present = int(rec["opt_present"])
        opts: dict[str, Any] = {}
        found: list[tuple[str, Fact, Fact]] = []   # (name, long fact, short fact)
        if present & OPTION["MSS"]:
            mss = int(rec["mss"])
            opts["mss"] = mss
            found.append(("mss", Fact("opt.mss", {"side": x.name, "mss": mss}),
                          Fact("opt.short.mss", {"mss": mss})))
        if present & OPTION["WSCALE"]:
            shift = min(int(rec["wscale"]), 14)
            opts["wscale"] = shift
            found.append(("wscale", Fact("opt.wscale" if shift else "opt.wscale_zero",
                                         {"side": x.name, "shift": shift, "factor": 1 << shift}),
                          Fact("opt.short.wscale", {"shift": shift, "factor": 1 << shift})))
        if present & OPTION["SACK_PERM"]:
            opts["sack"] = True
            found.append(("sack", Fact("opt.sack", {"side": x.name}), Fact("opt.short.sack")))
        if present & OPTION["TIMESTAMP"]:
            opts["ts"] = True
            tsval = int(rec["ts_val"])
            found.append(("ts", Fact("opt.ts", {"side": x.name, "tsval": tsval}),
                          Fact("opt.short.ts", {"tsval": tsval})))
        if present & OPTION["TFO"]:
            opts["tfo"] = True
            tfo = None
            raw = self.extra.syn_options.get(step.frame)
            if raw is not None:
                tfo = next((o for o in parse_options(raw) if isinstance(o, FastOpen)), None)
            if tfo is None:
                f = Fact("opt.tfo", {"side": x.name})
            elif tfo.is_request:
                f = Fact("opt.tfo_request", {"side": x.name})
            else:
                f = Fact("opt.tfo_cookie", {"side": x.name, "bytes": len(tfo.cookie)})
            found.append(("tfo", f, f))
        fl = int(rec["tcp_flags"])
        if (fl & ACK and fl & ECE and not fl & CWR) or (not fl & ACK and fl & ECE and fl & CWR):
            found.append(("ecn", Fact("opt.ecn", {"side": x.name}), Fact("opt.short.ecn")))
        x.opts = opts
        if not found:
            return [Fact("opt.none", {"side": x.name})]
        told = set(y.opts or {}) if y.told_options else set()
        longs = [lf for name, lf, _ in found if name not in told or name == "tfo"]
        shorts = [sf for name, _, sf in found if name in told and name != "tfo"]
        out: list[Fact] = []
        if shorts:
            out.append(Fact("opt.reply", {"side": x.name, "items": shorts}))
        return out + longs

    def _negotiated(self, c: _Side, s: _Side) -> list[Fact]:
        """What the two SYNs settle (c: the side of the first SYN, s: the SYN-ACK's)."""
        co, so = c.opts or {}, s.opts or {}
        out: list[Fact] = []
        if "mss" in co and "mss" in so:
            out.append(Fact("nego.mss", {"side": c.name, "peer": s.name, "mss": co["mss"],
                                         "peer_mss": so["mss"]}))
        if "wscale" in co and "wscale" in so:
            out.append(Fact("nego.wscale", {"side": c.name, "peer": s.name,
                                            "factor": 1 << co["wscale"],
                                            "peer_factor": 1 << so["wscale"]}))
        elif "wscale" in co or "wscale" in so:
            out.append(Fact("nego.no_wscale", {"side": s.name if "wscale" in co else c.name}))
        if co.get("sack") and so.get("sack"):
            out.append(Fact("nego.sack"))
        elif co.get("sack") or so.get("sack"):
            out.append(Fact("nego.no_sack", {"side": s.name if co.get("sack") else c.name}))
        if co.get("ts") and so.get("ts"):
            out.append(Fact("nego.ts"))
        return out

    # -- data, ACKs, FIN ---------------------------------------------------------

    def _data(self, step: Step, x: _Side, facts: list[Fact]) -> bool:
        rel = step.rel_seq or 0
        n = step.length
        teaching = False
        text = _quote(self.extra.payloads.get(step.frame), n)
        params = {"side": x.name, "len": n, "rel_seq": rel, "last": rel + n - 1}
        if 0 <= x.max_next and rel + n <= x.max_next:
            # Older bytes: a resend, or a late original (the anomalies say which).
            facts.append(Fact("data.again", {**params, "high": x.max_next}))
        elif text is None:
            facts.append(Fact("data.send_bin", {**params, "next": rel + n}))
        else:
            facts.append(Fact("data.send", {**params, "next": rel + n, "text": text}))
        x.max_next = max(x.max_next, rel + n)
        if not x.told_first_data and rel == 1 and x.isn is not None:
            facts.append(Fact("data.first", {"isn": x.isn, "seq": step.seq}))
            teaching = True
        elif (x.last_data is not None and rel == x.last_data[1] + x.last_data[2]
              and "retransmission" not in step.tags):
            pf, ps, pl = x.last_data
            facts.append(Fact("data.continues", {"prev_frame": pf, "prev_seq": ps,
                                                 "prev_len": pl, "rel_seq": rel}))
        if not x.told_first_data:
            x.told_first_data = True
            teaching = True
        if x.last_data is None or rel + n > x.last_data[1] + x.last_data[2]:
            x.last_data = (step.frame, rel, n)
        x.data_segments += 1
        return teaching

    def _ack(self, step: Step, ann: np.void, x: _Side, y: _Side, events: tuple[str, ...],
             facts: list[Fact]) -> bool:
        rel_ack = step.rel_ack
        if rel_ack is None:
            return False
        teaching = False
        if rel_ack > x.acked:
            prev = x.acked
            x.acked = rel_ack
            acked_frame = int(ann["acked_frame"])
            arow = self._row(acked_frame) if acked_frame > 0 else None
            rtt = int(ann["ack_rtt_ns"])
            if y.fin_next is not None and rel_ack == y.fin_next:
                facts.append(Fact("ack.fin", {"side": x.name, "rel_ack": rel_ack,
                                              "fin_seq": y.fin_seq, "frame": y.fin_frame}))
                teaching = True
            elif rel_ack == 1 and y.syns + y.synacks and prev < 1 and y.isn is not None:
                facts.append(Fact("hs.ack", {"side": x.name, "peer": y.name, "ack": step.ack,
                                             "peer_isn": y.isn, "rel_ack": rel_ack}))
                teaching = True
            elif arow is not None and rtt >= 0 and self._covers(arow, rel_ack):
                aa = self.a.annotations[arow]
                seq, n = int(aa["rel_seq"]), int(self.a.records[arow]["payload_len"])
                facts.append(Fact("ack.data", {"side": x.name, "rel_ack": rel_ack,
                                               "frame": acked_frame, "seq": seq, "len": n,
                                               "rtt": rtt / 1e9}))
                if not x.told_first_ack:
                    x.told_first_ack = True
                    teaching = True
                if (step.length == 0 and self.irtt is not None and rtt / 1e9 >= DELAYED_ACK_MIN_S
                        and rtt / 1e9 > 10 * self.irtt):
                    facts.append(Fact("ack.delayed", {"rtt": rtt / 1e9, "irtt": self.irtt}))
                    teaching = True
            elif prev < 0:
                facts.append(Fact("ack.first", {"side": x.name, "rel_ack": rel_ack}))
                teaching = True
            else:
                facts.append(Fact("ack.upto", {"side": x.name, "rel_ack": rel_ack,
                                               "newly": rel_ack - prev}))
        elif step.length == 0 and not step.flags.startswith("F") and not step.tags:
            facts.append(Fact("ack.same", {"side": x.name, "rel_ack": rel_ack}))
        return teaching

    def _fin_ack_missed(self, row: int, rec: np.void, ann: np.void, x: _Side, y: _Side) -> Fact:
        """The evidence of a first ACK of a FIN the capture missed: the sender's IPv4 IDs."""
        ip_id, prev_id, prev_frame = int(rec["ip_id"]), None, None
        recs = self.a.records
        for r in self.rows[: int(np.searchsorted(self.rows, row))][::-1].tolist():
            if self._from_server(recs[r]) == (x.name == "server") and int(recs[r]["ip_id"]):
                prev_id, prev_frame = int(recs[r]["ip_id"]), int(self.a.frames[r])
                break
        return Fact("fin.ack_missed", {"side": x.name, "peer": y.name, "ip_id": ip_id,
                                       "prev_id": prev_id, "prev_frame": prev_frame,
                                       "count": int(ann["ip_id_gap"])})

    def _covers(self, arow: int, rel_ack: int) -> bool:
        aa = self.a.annotations[arow]
        return int(self.a.records[arow]["payload_len"]) > 0 and int(aa["next_rel_seq"]) == rel_ack

    def _fin(self, step: Step, x: _Side, facts: list[Fact]) -> None:
        fin_seq = (step.rel_seq or 0) + step.length
        if x.fin_seq is None or fin_seq > x.fin_seq:
            first = x.fin_seq is None
            x.fin_seq, x.fin_frame, x.fin_next = fin_seq, step.frame, fin_seq + 1
            facts.append(Fact("fin.send" if first else "fin.again",
                              {"side": x.name, "fin_seq": fin_seq, "next": fin_seq + 1}))
        else:
            facts.append(Fact("fin.retransmit", {"side": x.name, "fin_seq": fin_seq,
                                                 "frame": x.fin_frame}))

    def _rst(self, step: Step, rec: np.void, x: _Side, y: _Side, events: tuple[str, ...],
             facts: list[Fact]) -> None:
        if "rejected" in events:
            port = int(rec["sport"])
            if step.ack is not None and y.isn is not None and step.ack == (y.isn + 1) % _U32:
                facts.append(Fact("rst.refuse", {"side": x.name, "port": port, "ack": step.ack,
                                                 "peer_isn": y.isn}))
            else:
                facts.append(Fact("rst.refuse_noack", {"side": x.name, "port": port}))
        elif "connection_reset" in events:
            facts.append(Fact("rst.abort", {"side": x.name}))
        else:
            facts.append(Fact("rst.late", {"side": x.name}))
        if step.length:
            facts.append(Fact("rst.data", {"len": step.length}))

    # -- anomalies -----------------------------------------------------------------

    def _anomaly(self, name: str, step: Step, ann: np.void, x: _Side,
                 y: _Side) -> list[Fact] | None:
        bit = FLAG_BIT[name]
        code = int(ann["rule"][bit])
        rule_id = RULES_BY_CODE[code].id if code in RULES_BY_CODE else "?"
        ev = [int(ann["evidence_frame"][i]) for i in range(int(ann["n_evidence"]))
              if int(ann["evidence_flag"][i]) == bit and int(ann["evidence_frame"][i]) > 0]
        base = {"rule": rule_id}
        rel = step.rel_seq or 0
        ts = step.ts_ns
        first = ev[0] if ev else 0
        frow = self._row(first) if first else None

        def dt(frame_row: int | None) -> float | None:
            return None if frame_row is None else (ts - self._t(frame_row)) / 1e9

        if name == "retransmission":
            if rule_id in ("retx.implied_by_fast", "retx.implied_by_spurious"):
                return None
            if frow is None:
                return [Fact("anom.retransmission_noev", {**base, "rel_seq": rel})]
            if step.length:
                return [Fact("anom.retransmission", {**base, "orig": first, "dt": dt(frow),
                                                     "rel_seq": rel,
                                                     "last": rel + step.length - 1})]
            return [Fact("anom.retransmission_ctl", {**base, "orig": first, "dt": dt(frow)})]
        if name == "fast_retransmission":
            drow = self._row(ev[1]) if len(ev) >= 2 else None
            n = int(self.a.annotations[drow]["dup_ack_num"]) if drow is not None else 0
            if n >= 1 and int(self.a.annotations[drow]["rel_ack"]) == rel:
                return [Fact("anom.fast_retransmission", {
                    **base, "n": n, "rel_seq": rel, "dup_frame": ev[1], "dt": dt(drow),
                    "orig_ack": ev[0]})]
            return [Fact("anom.fast_retransmission_noev", {**base, "rel_seq": rel})]
        if name == "spurious_retransmission":
            return [Fact("anom.spurious_retransmission", {**base, "frame": first})]
        if name == "out_of_order":
            return [Fact("anom.out_of_order", {**base, "frame": first, "dt": dt(frow)})]
        if name == "lost_segment":
            expected = None
            if frow is not None:
                expected = int(self.a.annotations[frow]["next_rel_seq"])
            if expected is not None and rel > expected:
                return [Fact("anom.lost_segment", {**base, "side": x.name, "expected": expected,
                                                   "rel_seq": rel, "gap": rel - expected,
                                                   "frame": first})]
            return [Fact("anom.lost_segment_noev", {**base, "side": x.name})]
        if name == "ack_lost_segment":
            return [Fact("anom.ack_lost_segment", {**base, "rel_ack": step.rel_ack or 0,
                                                   "peer": y.name, "frame": first})]
        if name == "duplicate_ack":
            again = self.told_dupack == (first, step.rel_ack)
            self.told_dupack = (first, step.rel_ack)
            out = [Fact("anom.duplicate_ack_again" if again else "anom.duplicate_ack",
                        {**base, "n": step.dup_ack_num, "frame": first,
                         "rel_ack": step.rel_ack or 0})]
            blocks = self._sack_blocks(step)
            if blocks:
                out.append(Fact("anom.sack", {"blocks": blocks}))
            return out
        if name == "zero_window":
            return [Fact("anom.zero_window", {**base, "side": x.name})]
        if name == "zero_window_probe":
            return [Fact("anom.zero_window_probe", {**base, "frame": first})]
        if name == "zero_window_probe_ack":
            return [Fact("anom.zero_window_probe_ack", {**base, "frame": first})]
        if name == "window_full":
            return [Fact("anom.window_full", {**base, "frame": first})]
        if name == "window_update":
            if frow is not None and int(self.a.annotations[frow]["win_scaled"]) >= 0 \
                    and step.win_scaled is not None:
                return [Fact("anom.window_update", {
                    **base, "old": int(self.a.annotations[frow]["win_scaled"]),
                    "new": step.win_scaled, "frame": first})]
            return [Fact("anom.window_update_noev", base)]
        if name == "keep_alive":
            return [Fact("anom.keep_alive", {**base, "side": x.name})]
        if name == "keep_alive_ack":
            return [Fact("anom.keep_alive_ack", {**base, "frame": first})]
        if name == "reused_ports":
            return [Fact("anom.reused_ports", {**base, "frame": first})]
        if name == "capture_duplicate":
            return [Fact("anom.capture_duplicate", {**base, "frame": first})]
        return [Fact("anom.other", {**base, "flag": name})]

    def _sack_blocks(self, step: Step) -> list[str]:
        """The SACK blocks of an ACK, relative to the same base as its ACK number."""
        rec = self.a.records[step.row]
        n = int(rec["sack_count"])
        if not n or step.ack is None or step.rel_ack is None:
            return []
        out = []
        for i in range(min(n, 4)):
            left, right = int(rec["sack"][2 * i]), int(rec["sack"][2 * i + 1])
            lo = step.rel_ack + _signed32(left - step.ack)
            hi = lo + (right - left) % _U32
            out.append(f"{lo}-{hi - 1}")
        return out

    # -- the connection ------------------------------------------------------------

    def intro_facts(self, steps: list[Step]) -> list[Fact]:
        c = self.conn
        first, last = steps[0], steps[-1]
        start = datetime.fromtimestamp(first.ts_ns // 1_000_000_000, timezone.utc)
        facts = [
            Fact("conn.title", {"stream": self.stream,
                                "client": format_endpoint(c["client"], c["client_port"]),
                                "server": format_endpoint(c["server"], c["server_port"])}),
            Fact("conn.when", {"packets": len(steps), "duration": (last.ts_ns - first.ts_ns) / 1e9,
                               "start": start.strftime("%Y-%m-%d %H:%M:%S UTC")}),
        ]
        if c["role_guessed"]:
            facts.append(Fact("conn.guessed"))
        ci, si = self.initial
        if ci == State.UNKNOWN and si == State.UNKNOWN:
            facts.append(Fact("conn.initial_unknown"))
        else:
            facts.append(Fact("conn.initial", {"client": ci.name, "server": si.name}))
        return facts

    def summary_facts(self, steps: list[Step]) -> list[Fact]:
        life = self.life
        out: list[Fact] = []
        if life is None:
            return out
        kind = life.handshake
        cl, sv = self.sides["client"], self.sides["server"]
        if kind == "rejected":
            out.append(Fact("sum.handshake.rejected", {"side": life.rejected_by or "server"}))
        elif kind == "unanswered":
            out.append(Fact("sum.handshake.unanswered", {"count": len(cl.syns)}))
        else:
            out.append(Fact(f"sum.handshake.{kind.replace('+', '_')}"))
        if life.handshake_rtt is not None:
            out.append(Fact("sum.rtt", {"rtt": life.handshake_rtt}))
        if life.syn_retries:
            out.append(Fact("sum.syn_retries", {"count": life.syn_retries,
                                                "intervals": list(life.syn_intervals),
                                                "backoff": life.syn_backoff}))
        if life.synack_retries:
            out.append(Fact("sum.synack_retries", {"count": life.synack_retries,
                                                   "intervals": list(life.synack_intervals),
                                                   "backoff": life.synack_backoff}))
        neg = life.negotiated
        feats = []
        if neg.get("wscale"):
            feats.append("wscale")
        if neg.get("sack"):
            feats.append("sack")
        if neg.get("timestamps"):
            feats.append("timestamps")
        if neg.get("ecn"):
            feats.append("ecn")
        if neg.get("tfo"):
            feats.append("tfo")
        if feats:
            out.append(Fact("sum.features", {"features": feats}))
        for i, side in enumerate(("client", "server")):
            segs = sum(1 for s in steps if s.length and s.sender == side)
            if life.bytes[i]:
                out.append(Fact("sum.data", {"side": side, "bytes": life.bytes[i],
                                             "segments": segs, "packets": life.packets[i]}))
            elif life.packets[i]:
                out.append(Fact("sum.nodata", {"side": side, "packets": life.packets[i]}))
            else:
                out.append(Fact("sum.silent", {"side": side}))
        if life.anomalies:
            for flag in flag_names(sum(FLAG[f] for f in life.anomalies)):
                frames = [s.frame for s in steps if flag in s.tags]
                params = {"flag": flag, "count": life.anomalies[flag], "frames": frames[:8]}
                if len(frames) > 8:
                    out.append(Fact("sum.anomaly_more", {**params, "rest": len(frames) - 8}))
                else:
                    out.append(Fact("sum.anomaly", params))
        else:
            out.append(Fact("sum.no_anomalies"))
        td = life.teardown
        fins = [s for s in steps if "F" in s.flags]
        first = fins[0].sender if fins else None
        second = "server" if first == "client" else "client"
        if td in ("4way", "3way", "half_close") and first is not None:
            out.append(Fact(f"sum.teardown.{td}", {"first": first, "second": second}))
        else:
            out.append(Fact(f"sum.teardown.{td}"))
        if life.teardown_inferred == _FIN_ACK_MISSED and first is not None:
            frame = next(t.frame for t in life.transitions if t.reason == _FIN_ACK_MISSED)
            out.append(Fact("sum.fin_ack_missed", {"first": first, "second": second,
                                                   "frame": frame}))
        tw = life.time_wait_side
        if tw == "both":
            out.append(Fact("sum.time_wait_both"))
        elif tw is not None:
            out.append(Fact("sum.time_wait", {"side": tw}))
        out.append(Fact("sum.final", {"client": life.client_final.name,
                                      "server": life.server_final.name}))
        return out


def _option_names(rec: np.void) -> tuple[str, ...]:
    present = int(rec["opt_present"])
    out = []
    if present & OPTION["MSS"]:
        out.append(f"mss {int(rec['mss'])}")
    if present & OPTION["SACK_PERM"]:
        out.append("sackOK")
    if present & OPTION["SACK"]:
        out.append("sack")
    if present & OPTION["TIMESTAMP"] and int(rec["tcp_flags"]) & SYN:
        out.append("TS")
    if present & OPTION["WSCALE"]:
        out.append(f"ws {int(rec['wscale'])}")
    if present & OPTION["TFO"]:
        out.append("tfo")
    if present & OPTION["MPTCP"]:
        out.append("mptcp")
    return tuple(out)


def _signed32(d: int) -> int:
    d %= _U32
    return d - _U32 if d >= 1 << 31 else d


def _quote(payload: bytes | None, length: int) -> str | None:
    """The payload as short text, if it is text; None if binary or not kept."""
    if not payload:
        return None
    cut = payload[:PREVIEW_BYTES]
    text = None
    for end in (len(cut), len(cut) - 1, len(cut) - 2, len(cut) - 3):
        try:
            text = cut[:end].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    if not text:
        return None
    shown = (text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t"))
    if not shown.isprintable():
        return None
    if length > len(cut):
        shown += "…"
    return shown


# ---------------------------------------------------------------------------
# Folding ordinary runs
# ---------------------------------------------------------------------------

def _fold(steps: list[Step], group_min: int | None) -> list[Step | Run]:
    if not group_min:
        return list(steps)
    out: list[Step | Run] = []
    run: list[Step] = []

    def flush() -> None:
        if len(run) >= group_min:
            out.append(Run(list(run), []))
        else:
            out.extend(run)
        run.clear()

    for s in steps:
        if s.ordinary:
            run.append(s)
        else:
            flush()
            out.append(s)
    flush()
    return out


def _run_facts(steps: list[Step]) -> list[Fact]:
    facts = [Fact("run.summary", {"first": steps[0].frame, "last": steps[-1].frame,
                                  "count": len(steps)})]
    for side in ("client", "server"):
        data = [s for s in steps if s.sender == side and s.length]
        if data:
            lo = min(s.rel_seq or 0 for s in data)
            hi = max((s.rel_seq or 0) + s.length for s in data)
            facts.append(Fact("run.data", {"side": side, "segments": len(data),
                                           "bytes": sum(s.length for s in data),
                                           "from_seq": lo, "to_seq": hi - 1}))
    for side in ("client", "server"):
        acks = [s for s in steps if s.sender == side and not s.length and s.rel_ack is not None]
        if acks:
            facts.append(Fact("run.acks", {"side": side, "count": len(acks),
                                           "rel_ack": max(s.rel_ack or 0 for s in acks)}))
    return facts
