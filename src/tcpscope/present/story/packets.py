"""What each packet of a connection does and why, as facts.

A `Teller` walks one connection's rows of an `Analysis` and makes a `Step` per
packet. It reads every fact from the analysis: the records and annotations,
both endpoints' states and events, the connection's `Lifecycle` (its SYNs and
SYN-ACKs, its transitions, the options each side offered), the connection row
(who sent each packet, `analysis/connections.py`) and how far each side had got
before the packet
(`analysis/progress.py`). What it keeps itself is what it has already told.
"""
from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from ...analysis.annotation import ANN_KIND, flag_names
from ...analysis.connections import Connection, decode, sent_by_server
from ...analysis.engine import Analysis
from ...analysis.lifecycle import Lifecycle, SideOptions
from ...analysis.progress import SoFar, progress
from ...analysis.states import State
from ...pipeline import StreamNotFound
from ...wire.options import FastOpen, parse_options
from ...wire.record import ACK, CWR, ECE, FIN, OPTION, RST, SYN
from ...wire.seq import MOD
from ...wire.text import tcp_flags_text
from .model import PREVIEW_BYTES, Extra, Fact, Step

__all__ = ["Teller", "ORDINARY", "FIN_ACK_MISSED", "teller_for"]

#: A pure ACK this much later than the handshake's round trip is called delayed (a hint).
DELAYED_ACK_MIN_S = 0.02
#: Facts that an ordinary data / ACK packet may carry and still be folded into a run.
ORDINARY = frozenset({"data.send", "data.send_bin", "data.again", "data.continues", "ack.data",
                      "ack.upto", "ack.same"})
FIN_ACK_MISSED = "infer.fin_ack_not_captured"   # the first ACK of a FIN: a packet not captured
_ANALYSED = ANN_KIND["analysed"]
_SIDES = ("client", "server")


class _Told:
    """What the story has told about one side so far."""

    __slots__ = ("options", "first_data", "first_ack", "window")

    def __init__(self) -> None:
        self.options = False
        self.first_data = False
        self.first_ack = False
        self.window = False


class Teller:
    """One connection of an `Analysis`, told packet by packet."""

    def __init__(self, a: Analysis, stream: int, rows: np.ndarray, conn_row: np.void,
                 life: Lifecycle, extra: Extra) -> None:
        self.a = a
        self.stream = stream
        self.rows = rows
        self.life = life
        self.extra = extra
        recs = a.records[rows]
        self.from_server = sent_by_server(conn_row, recs)
        self.before = progress(recs, a.annotations[rows], a.frames[rows], self.from_server)
        self.by_frame = {int(a.frames[r]): int(r) for r in rows.tolist()}
        self.trans: dict[int, list[Any]] = {}
        self.sanom: dict[int, list[Any]] = {}
        for t in life.transitions:
            self.trans.setdefault(t.frame, []).append(t)
        for an in life.state_anomalies:
            self.sanom.setdefault(an.frame, []).append(an)
        self.told = (_Told(), _Told())
        self.t0 = int(a.ts_ns[rows[0]])
        self.initial = self._initial_states()
        self.irtt: float | None = None
        self.told_dupack: tuple[int, int | None] | None = None

    # -- helpers ---------------------------------------------------------------

    def _initial_states(self) -> tuple[State, State]:
        """Each side's state before the first packet: the first transition's old state."""
        c = State(int(self.a.client_state[self.rows[0]]))
        s = State(int(self.a.server_state[self.rows[0]]))
        firsts: dict[str, State] = {}
        for t in self.life.transitions:
            firsts.setdefault(t.side, t.old)
        return firsts.get("client", c), firsts.get("server", s)

    def row_of(self, frame: int) -> int | None:
        return self.by_frame.get(frame)

    def ts(self, row: int) -> int:
        return int(self.a.ts_ns[row])

    def _isn(self, side: int, frame: int) -> int | None:
        """The side's ISN as the capture showed it up to `frame` (included): the sequence
        number of its latest first SYN or first SYN-ACK there, None if none."""
        firsts = [f[0] for f in (self.life.syn_frames[side], self.life.synack_frames[side])
                  if f and f[0] <= frame]
        if not firsts:
            return None
        return int(self.a.records[self.by_frame[max(firsts)]]["seq"])

    def _sent_control(self, side: int, frame: int) -> bool:
        """The side had sent a SYN or SYN-ACK before `frame`."""
        return any(f and f[0] < frame
                   for f in (self.life.syn_frames[side], self.life.synack_frames[side]))

    def _syn_len(self, side: int, frame: int) -> int:
        """Payload bytes on the side's last SYN with data before `frame` (Fast Open)."""
        out = 0
        for f in self.life.syn_frames[side]:
            if f < frame:
                n = int(self.a.records[self.by_frame[f]]["payload_len"])
                out = n or out
        return out

    # -- the packets -----------------------------------------------------------

    def steps(self) -> list[Step]:
        return [self._step(k, row) for k, row in enumerate(self.rows.tolist())]

    def step(self, k: int) -> Step:
        """The `k`-th packet alone (a long story tells a few, in order: what was
        taught before them is what this teller told)."""
        return self._step(k, int(self.rows[k]))

    def _step(self, k: int, row: int) -> Step:
        from .anomalies import anomaly_facts

        a = self.a
        rec = a.records[row]
        ann = a.annotations[row]
        frame = int(a.frames[row])
        ts = int(a.ts_ns[row])
        fs = bool(self.from_server[k])
        xi, yi = int(fs), int(not fs)
        x, y = _SIDES[xi], _SIDES[yi]
        xb, yb = self.before[k][xi], self.before[k][yi]
        fl = int(rec["tcp_flags"])
        analysed = int(ann["kind"]) == _ANALYSED
        has_ack = bool(fl & ACK)
        length = int(rec["payload_len"])
        tags = tuple(flag_names(int(ann["flags"])))
        ws = int(ann["win_scaled"])
        step = Step(
            row=row, frame=frame, ts_ns=ts, t=(ts - self.t0) / 1e9, from_server=fs,
            flags=tcp_flags_text(fl), seq=int(rec["seq"]), ack=int(rec["ack"]) if has_ack else None,
            rel_seq=int(ann["rel_seq"]) if analysed else None,
            rel_ack=int(ann["rel_ack"]) if analysed and has_ack else None,
            length=length, win=int(rec["win"]), win_scaled=ws if ws >= 0 else None,
            options=_option_names(rec), tags=tags, dup_ack_num=int(ann["dup_ack_num"]),
            client_state=State(int(a.client_state[row])),
            server_state=State(int(a.server_state[row])),
        )
        facts = step.facts
        events = a.events.get(row, ())
        teaching = False

        if not analysed:
            facts.append(Fact("pkt.unanalysed", {"side": x}))
        elif fl & RST:
            self._rst(step, rec, xi, yi, events, facts)
        elif fl & SYN:
            self._syn(step, rec, xi, yi, facts)
        else:
            if length:
                teaching |= self._data(step, xi, xb, facts)
            if has_ack:
                teaching |= self._ack(step, ann, xi, yi, xb, yb, facts)
            if fl & FIN:
                self._fin(step, x, xb, facts)
        told = self.told[xi]
        if analysed and not fl & (SYN | RST) and not told.window and int(ann["win_scale"]) == -1:
            told.window = True
            teaching = True
            facts.append(Fact("win.unknown", {"side": x, "win": step.win}))
        if analysed and not fl & (SYN | RST) and not told.window and step.win_scaled is not None:
            scale = int(ann["win_scale"])
            if scale > 0:
                told.window = True
                teaching = True
                facts.append(Fact("win.scaled", {"side": x, "win": step.win,
                                                 "factor": 1 << scale, "scaled": step.win_scaled}))

        for name in tags:
            f = anomaly_facts(self, name, step, ann, x, y)
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
        if any(t.reason == FIN_ACK_MISSED for t in self.trans.get(frame, ())):
            facts.append(self._fin_ack_missed(k, rec, ann, x, y))
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
                facts.append(Fact("ev.half_close", {"side": x, "peer": y}))
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
                         and all(f.id in ORDINARY for f in facts))
        return step

    # -- SYN, SYN-ACK ----------------------------------------------------------

    def _syn(self, step: Step, rec: np.void, xi: int, yi: int, facts: list[Fact]) -> None:
        x, y = _SIDES[xi], _SIDES[yi]
        isn = step.seq
        frame, ts = step.frame, step.ts_ns
        life = self.life
        if step.ack is None:
            syns = life.syn_frames[xi]
            prior = bisect.bisect_left(syns, frame)
            if not prior:
                other_syn = bool(life.syn_frames[yi]) and life.syn_frames[yi][0] < frame
                facts.append(Fact("syn.simultaneous" if other_syn else "syn.first",
                                  {"side": x, "isn": isn}))
            else:
                pf = syns[prior - 1]
                facts.append(Fact("syn.retransmit", {
                    "side": x, "copy": prior + 1, "dt": (ts - self.ts(self.by_frame[pf])) / 1e9,
                    "prev_frame": pf, "isn": isn}))
            if step.length:
                facts.append(Fact("syn.data", {"len": step.length, "last": step.length}))
            if not prior:
                facts.append(Fact("syn.win", {"win": step.win}))
        else:
            synacks = life.synack_frames[xi]
            prior = bisect.bisect_left(synacks, frame)
            if not prior:
                peer_isn = self._isn(yi, frame - 1)
                ack = step.ack
                params = {"side": x, "peer": y, "isn": isn, "ack": ack}
                peer_syn_len = self._syn_len(yi, frame)
                if peer_isn is None:
                    facts.append(Fact("synack.reply_unseen", params))
                elif ack == (peer_isn + 1) % MOD and life.syn_frames[xi] \
                        and life.syn_frames[xi][0] < frame:
                    # simultaneous open: its SYN again, now acknowledging the peer's
                    facts.append(Fact("synack.simultaneous", {**params, "peer_isn": peer_isn}))
                elif ack == (peer_isn + 1) % MOD:
                    facts.append(Fact("synack.reply", {**params, "peer_isn": peer_isn}))
                    if peer_syn_len:
                        facts.append(Fact("synack.tfo_refused", {"len": peer_syn_len}))
                elif peer_syn_len and ack == (peer_isn + 1 + peer_syn_len) % MOD:
                    facts.append(Fact("synack.reply_tfo", {**params, "peer_isn": peer_isn,
                                                           "len": peer_syn_len}))
                else:
                    facts.append(Fact("synack.odd", {**params, "peer_isn": peer_isn}))
                facts.append(Fact("syn.win", {"win": step.win}))
            else:
                pf = synacks[prior - 1]
                facts.append(Fact("synack.retransmit", {
                    "side": x, "copy": prior + 1, "dt": (ts - self.ts(self.by_frame[pf])) / 1e9,
                    "prev_frame": pf}))
        told, peer_told = self.told[xi], self.told[yi]
        if not told.options:
            facts.extend(self._options(step, rec, xi, yi))
            told.options = True
            if step.ack is not None and peer_told.options:
                facts.extend(self._negotiated(yi, xi))

    def _offered(self, side: int) -> SideOptions:
        return self.life.server_options if side else self.life.client_options

    def _options(self, step: Step, rec: np.void, xi: int, yi: int) -> list[Fact]:
        """What each option means, the first time it appears in the connection; the options
        of the answering side that the first already explained, in a short list."""
        x = _SIDES[xi]
        present = int(rec["opt_present"])
        found: list[tuple[str, Fact, Fact]] = []   # (name, long fact, short fact)
        if present & OPTION["MSS"]:
            mss = int(rec["mss"])
            found.append(("mss", Fact("opt.mss", {"side": x, "mss": mss}),
                          Fact("opt.short.mss", {"mss": mss})))
        if present & OPTION["WSCALE"]:
            shift = min(int(rec["wscale"]), 14)
            found.append(("wscale", Fact("opt.wscale" if shift else "opt.wscale_zero",
                                         {"side": x, "shift": shift, "factor": 1 << shift}),
                          Fact("opt.short.wscale", {"shift": shift, "factor": 1 << shift})))
        if present & OPTION["SACK_PERM"]:
            found.append(("sack", Fact("opt.sack", {"side": x}), Fact("opt.short.sack")))
        if present & OPTION["TIMESTAMP"]:
            tsval = int(rec["ts_val"])
            found.append(("ts", Fact("opt.ts", {"side": x, "tsval": tsval}),
                          Fact("opt.short.ts", {"tsval": tsval})))
        if present & OPTION["TFO"]:
            tfo = None
            raw = self.extra.syn_options.get(step.frame)
            if raw is not None:
                tfo = next((o for o in parse_options(raw) if isinstance(o, FastOpen)), None)
            if tfo is None:
                f = Fact("opt.tfo", {"side": x})
            elif tfo.is_request:
                f = Fact("opt.tfo_request", {"side": x})
            else:
                f = Fact("opt.tfo_cookie", {"side": x, "bytes": len(tfo.cookie)})
            found.append(("tfo", f, f))
        fl = int(rec["tcp_flags"])
        if (fl & ACK and fl & ECE and not fl & CWR) or (not fl & ACK and fl & ECE and fl & CWR):
            found.append(("ecn", Fact("opt.ecn", {"side": x}), Fact("opt.short.ecn")))
        if not found:
            return [Fact("opt.none", {"side": x})]
        told = _offered_names(self._offered(yi)) if self.told[yi].options else set()
        longs = [lf for name, lf, _ in found if name not in told or name == "tfo"]
        shorts = [sf for name, _, sf in found if name in told and name != "tfo"]
        out: list[Fact] = []
        if shorts:
            out.append(Fact("opt.reply", {"side": x, "items": shorts}))
        return out + longs

    def _negotiated(self, ci: int, si: int) -> list[Fact]:
        """What the two SYNs settle (ci: the side of the first SYN, si: the SYN-ACK's)."""
        c, s = _SIDES[ci], _SIDES[si]
        co, so = self._offered(ci), self._offered(si)
        out: list[Fact] = []
        if co.mss is not None and so.mss is not None:
            out.append(Fact("nego.mss", {"side": c, "peer": s, "mss": co.mss,
                                         "peer_mss": so.mss}))
        if co.wscale is not None and so.wscale is not None:
            out.append(Fact("nego.wscale", {"side": c, "peer": s, "factor": 1 << co.wscale,
                                            "peer_factor": 1 << so.wscale}))
        elif co.wscale is not None or so.wscale is not None:
            out.append(Fact("nego.no_wscale", {"side": s if co.wscale is not None else c}))
        if co.sack_permitted and so.sack_permitted:
            out.append(Fact("nego.sack"))
        elif co.sack_permitted or so.sack_permitted:
            out.append(Fact("nego.no_sack", {"side": s if co.sack_permitted else c}))
        if co.timestamps and so.timestamps:
            out.append(Fact("nego.ts"))
        return out

    # -- data, ACKs, FIN ---------------------------------------------------------

    def _data(self, step: Step, xi: int, xb: SoFar, facts: list[Fact]) -> bool:
        x = _SIDES[xi]
        told = self.told[xi]
        rel = step.rel_seq or 0
        n = step.length
        teaching = False
        text = _quote(self.extra.payloads.get(step.frame), n)
        params = {"side": x, "len": n, "rel_seq": rel, "last": rel + n - 1}
        if 0 <= xb.data_end and rel + n <= xb.data_end:
            # Older bytes: a resend, or a late original (the anomalies say which).
            facts.append(Fact("data.again", {**params, "high": xb.data_end}))
        elif text is None:
            facts.append(Fact("data.send_bin", {**params, "next": rel + n}))
        else:
            facts.append(Fact("data.send", {**params, "next": rel + n, "text": text}))
        isn = self._isn(xi, step.frame - 1)
        if not told.first_data and rel == 1 and isn is not None:
            facts.append(Fact("data.first", {"isn": isn, "seq": step.seq}))
            teaching = True
        elif (xb.data_by is not None and rel == xb.data_end
              and "retransmission" not in step.tags):
            pf, ps, pl = xb.data_by
            facts.append(Fact("data.continues", {"prev_frame": pf, "prev_seq": ps,
                                                 "prev_len": pl, "rel_seq": rel}))
        if not told.first_data:
            told.first_data = True
            teaching = True
        return teaching

    def _ack(self, step: Step, ann: np.void, xi: int, yi: int, xb: SoFar, yb: SoFar,
             facts: list[Fact]) -> bool:
        x, y = _SIDES[xi], _SIDES[yi]
        rel_ack = step.rel_ack
        if rel_ack is None:
            return False
        teaching = False
        if rel_ack > xb.acked:
            prev = xb.acked
            acked_frame = int(ann["acked_frame"])
            arow = self.row_of(acked_frame) if acked_frame > 0 else None
            rtt = int(ann["ack_rtt_ns"])
            peer_isn = self._isn(yi, step.frame - 1)
            if yb.fin_seq is not None and rel_ack == yb.fin_seq + 1:
                facts.append(Fact("ack.fin", {"side": x, "rel_ack": rel_ack,
                                              "fin_seq": yb.fin_seq, "frame": yb.fin_frame}))
                teaching = True
            elif rel_ack == 1 and self._sent_control(yi, step.frame) and prev < 1 \
                    and peer_isn is not None:
                facts.append(Fact("hs.ack", {"side": x, "peer": y, "ack": step.ack,
                                             "peer_isn": peer_isn, "rel_ack": rel_ack}))
                teaching = True
            elif arow is not None and rtt >= 0 and self._covers(arow, rel_ack):
                aa = self.a.annotations[arow]
                seq, n = int(aa["rel_seq"]), int(self.a.records[arow]["payload_len"])
                facts.append(Fact("ack.data", {"side": x, "rel_ack": rel_ack,
                                               "frame": acked_frame, "seq": seq, "len": n,
                                               "rtt": rtt / 1e9}))
                told = self.told[xi]
                if not told.first_ack:
                    told.first_ack = True
                    teaching = True
                if (step.length == 0 and self.irtt is not None and rtt / 1e9 >= DELAYED_ACK_MIN_S
                        and rtt / 1e9 > 10 * self.irtt):
                    facts.append(Fact("ack.delayed", {"rtt": rtt / 1e9, "irtt": self.irtt}))
                    teaching = True
            elif prev < 0:
                facts.append(Fact("ack.first", {"side": x, "rel_ack": rel_ack}))
                teaching = True
            else:
                facts.append(Fact("ack.upto", {"side": x, "rel_ack": rel_ack,
                                               "newly": rel_ack - prev}))
        elif step.length == 0 and not step.flags.startswith("F") and not step.tags:
            facts.append(Fact("ack.same", {"side": x, "rel_ack": rel_ack}))
        return teaching

    def _fin_ack_missed(self, k: int, rec: np.void, ann: np.void, x: str, y: str) -> Fact:
        """The evidence of a first ACK of a FIN the capture missed: the sender's IPv4 IDs."""
        ip_id, prev_id, prev_frame = int(rec["ip_id"]), None, None
        recs = self.a.records
        mine = self.from_server[:k] == (x == "server")
        for j in np.flatnonzero(mine)[::-1].tolist():
            r = int(self.rows[j])
            if int(recs[r]["ip_id"]):
                prev_id, prev_frame = int(recs[r]["ip_id"]), int(self.a.frames[r])
                break
        return Fact("fin.ack_missed", {"side": x, "peer": y, "ip_id": ip_id,
                                       "prev_id": prev_id, "prev_frame": prev_frame,
                                       "count": int(ann["ip_id_gap"])})

    def _covers(self, arow: int, rel_ack: int) -> bool:
        aa = self.a.annotations[arow]
        return int(self.a.records[arow]["payload_len"]) > 0 and int(aa["next_rel_seq"]) == rel_ack

    def _fin(self, step: Step, x: str, xb: SoFar, facts: list[Fact]) -> None:
        fin_seq = (step.rel_seq or 0) + step.length
        if xb.fin_seq is None or fin_seq > xb.fin_seq:
            facts.append(Fact("fin.send" if xb.fin_seq is None else "fin.again",
                              {"side": x, "fin_seq": fin_seq, "next": fin_seq + 1}))
        else:
            facts.append(Fact("fin.retransmit", {"side": x, "fin_seq": fin_seq,
                                                 "frame": xb.fin_frame}))

    def _rst(self, step: Step, rec: np.void, xi: int, yi: int, events: tuple[str, ...],
             facts: list[Fact]) -> None:
        x = _SIDES[xi]
        if "rejected" in events:
            port = int(rec["sport"])
            peer_isn = self._isn(yi, step.frame - 1)
            if step.ack is not None and peer_isn is not None and step.ack == (peer_isn + 1) % MOD:
                facts.append(Fact("rst.refuse", {"side": x, "port": port, "ack": step.ack,
                                                 "peer_isn": peer_isn}))
            else:
                facts.append(Fact("rst.refuse_noack", {"side": x, "port": port}))
        elif "connection_reset" in events:
            facts.append(Fact("rst.abort", {"side": x}))
        else:
            facts.append(Fact("rst.late", {"side": x}))
        if step.length:
            facts.append(Fact("rst.data", {"len": step.length}))


def teller_for(a: Analysis, stream: int, extra: Extra | None = None) -> tuple[Teller, Connection]:
    """The teller of `stream` of `a`, and its connection (StreamNotFound if absent)."""
    rows = a.stream(stream)
    if not rows.size:
        raise StreamNotFound.number(stream)
    conn_row = a.connections[a.connections["stream"] == stream][0]
    teller = Teller(a, stream, rows, conn_row, a.lifecycles[stream], extra or Extra())
    return teller, decode(conn_row)


def _offered_names(o: SideOptions) -> set[str]:
    """The options a side's SYN offered, by the names `Teller._options` gives them."""
    return {name for name, on in (("mss", o.mss is not None), ("wscale", o.wscale is not None),
                                  ("sack", o.sack_permitted), ("ts", o.timestamps),
                                  ("tfo", o.tfo)) if on}


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
