"""One connection's lifecycle: its `ConnectionStates`, and what each row did to it.

`ConnectionLife.on_row` applies one row (a `Segment`: the engine's facts about
one TCP segment) to the state machine and returns the lifecycle events it caused;
it keeps what the connection's `Lifecycle` reports (SYNs and their times, the
options offered, FINs and who acknowledged them, the RST). Both trackers
(`reference.ReferenceTracker`, `fast.LifecycleTracker`) drive it.
"""
from __future__ import annotations

import numpy as np

from ...wire.record import OPTION, WARNING
from ..annotation import ANN_KIND, FLAG, FLAG_NAMES
from ..machine import ConnectionStates
from ..states import SYNCHRONIZED, Confidence, Segment, State
from .model import LIFECYCLE_EVENTS, Lifecycle, SideOptions, backoff_verdict

__all__ = ["Rows", "ConnectionLife", "seglen"]

_FIN, _SYN, _RST, _ACK, _ECE, _CWR = 0x01, 0x02, 0x04, 0x10, 0x40, 0x80
_ACK_LOST = FLAG["ack_lost_segment"]
_CAPDUP = FLAG["capture_duplicate"]
_ANALYSED = ANN_KIND["analysed"]
_LEN_FROM_FRAME, _SNAP_CUT = WARNING["IP_LENGTH_EXCEEDS_FRAME"], WARNING["SNAPLEN_TRUNCATED"]
_MAX_WSCALE = 14  # RFC 7323 §2.3: a larger shift is used as 14
_OPT_MSS, _OPT_WSCALE, _OPT_SACK_PERM, _OPT_TS, _OPT_TFO = (
    OPTION["MSS"], OPTION["WSCALE"], OPTION["SACK_PERM"], OPTION["TIMESTAMP"], OPTION["TFO"])
_CW, _CLOSED, _TW, _CLOSING, _SYN_SENT = (
    int(State.CLOSE_WAIT), int(State.CLOSED), int(State.TIME_WAIT), int(State.CLOSING),
    int(State.SYN_SENT))
_SYNC = frozenset(int(s) for s in SYNCHRONIZED)
_DONE = frozenset({_CLOSED, _TW})
_FIN_ACK_MISSED = "infer.fin_ack_not_captured"
_INFERRED = Confidence.INFERRED
_EVENT_ORDER = {name: i for i, name in enumerate(LIFECYCLE_EVENTS)}
_new_segment = tuple.__new__   # a Segment from its fields, in order, without checks


class Rows:
    """Some TCP rows of a batch, as the lifecycle reads them: per row a `Segment` (`segment`;
    made when it is read), whether it is a capture duplicate, and columns the fast driver
    reads with numpy."""

    def __init__(self, records: np.ndarray, annotations: np.ndarray, ts_ns: np.ndarray,
                 length: np.ndarray, rows: np.ndarray) -> None:
        def ann(name: str) -> np.ndarray:
            return annotations[name][rows]

        ann_flags = ann("flags")
        self.index = rows
        self.flags = records["tcp_flags"][rows].astype(np.int64)
        self.from_server = ann("from_server").astype(np.int64)
        self.length = length[rows].astype(np.int64)
        self.analysed = ann("kind") == _ANALYSED
        self.next_rel_seq = ann("next_rel_seq")
        self.duplicate = (ann_flags & _CAPDUP) != 0   #: a copy of a packet already seen
        self.rel_ack = ann("rel_ack")
        #: it carries an ACK the engine analysed (`rel_ack` is its acknowledgement)
        self.acks = ((self.flags & _ACK) != 0) & self.analysed
        columns = (   # the Segment's fields, in its order
            ann("frame"), ts_ns[rows], self.from_server, self.flags, self.length,
            ann("rel_seq"), self.rel_ack, self.next_rel_seq, self.analysed,
            (ann_flags & _ACK_LOST) != 0, ann("ip_id_gap"), ann("role_guessed"),
            records["opt_present"][rows], records["mss"][rows], records["wscale"][rows])
        assert len(columns) == len(Segment._fields)
        self._segments = np.empty((rows.size, len(columns)), np.int64)
        for j, col in enumerate(columns):
            self._segments[:, j] = col

    def __len__(self) -> int:
        return int(self.index.size)

    def segment(self, k: int) -> Segment:
        return _new_segment(Segment, self._segments[k].tolist())


def seglen(records: np.ndarray) -> np.ndarray:
    """Each row's TCP payload length, as the engine counts it: the IP length's, except when
    the IP length claims more than the frame holds (not by the snap length), where the
    segment ends with the frame, as in Wireshark."""
    plen = records["payload_len"]
    warn = records["warnings"]
    odd = (warn & _LEN_FROM_FRAME) != 0
    if not odd.any():
        return plen
    odd &= (warn & _SNAP_CUT) == 0
    return np.where(odd, records["payload_cap"], plen)


class ConnectionLife:
    """One connection: its endpoints' states and what its lifecycle reports."""

    __slots__ = (
        "stream", "cs", "guessed", "client_id", "first_ts", "first_frame", "opens", "syn_seen",
        "opts", "rejected", "rejected_by", "data_on_syn", "synack_acked_data",
        "handshake_frame", "fins", "fin_frames", "first_fin_side", "first_fin_by_fin",
        "fin_acked", "half_close", "closing", "rst_side", "rst_frame", "rst_before_close",
        "closed_emitted", "teardown_inferred", "server_id", "syn_cookie",
        "time_wait_reused", "reused_from",
    )

    def __init__(self, stream: int, first: Segment, *, keep: bool) -> None:
        self.stream = stream
        self.cs = ConnectionStates.for_first_segment(first.flags, keep=keep)
        self.guessed = bool(first.role_guessed)
        #: (address, port) of the client while the roles are a guess (set by the tracker)
        self.client_id: tuple[bytes, int] | None = None
        self.first_ts = first.ts_ns
        self.first_frame = first.frame
        # each side's SYNs (without ACK) and SYN-ACKs: [(frame, ts_ns)], client's then server's
        # every SYN and SYN-ACK: (1 for a SYN-ACK else 0, side, frame, ts_ns), in order
        self.opens: list[tuple[int, int, int, int]] = []
        self.syn_seen = False   # a SYN (without ACK) from either side
        self.opts: list[SideOptions | None] = [None, None]
        self.rejected = False
        self.rejected_by: str | None = None
        self.data_on_syn = False
        self.synack_acked_data = False
        self.handshake_frame: int | None = None
        self.fins = [False, False]          # each side sent a FIN (or one is inferred)
        self.fin_frames: list[int | None] = [None, None]   # each side's first FIN, captured
        self.first_fin_side = -1
        self.first_fin_by_fin: bool | None = None  # the first FIN's first ACK came on a FIN
        self.fin_acked = [False, False]
        self.half_close = False
        self.closing = False
        self.rst_side = -1
        self.rst_frame: int | None = None
        self.rst_before_close = False
        self.closed_emitted = False
        self.teardown_inferred: str | None = None
        #: (address, port) of the listener a first SYN went to (set by the tracker)
        self.server_id: tuple[bytes, int] | None = None
        #: the listener answered with a SYN cookie and kept no state (the tracker judges it)
        self.syn_cookie = False
        #: the side that held this 4-tuple in TIME-WAIT when the SYN reused it (RFC 6191), and
        #: the connection it held it for (set by the tracker)
        self.time_wait_reused: str | None = None
        self.reused_from: int | None = None

    def swap_roles(self) -> None:
        """The engine swapped the guessed roles: what each side did changes hands."""
        self.cs.swap_roles()
        self.opens = [(k, side ^ 1, f, t) for k, side, f, t in self.opens]
        for name in ("opts", "fins", "fin_frames", "fin_acked"):
            setattr(self, name, getattr(self, name)[::-1])
        if self.first_fin_side >= 0:
            self.first_fin_side ^= 1
        if self.rst_side >= 0:
            self.rst_side ^= 1

    # ------------------------------------------------------------------
    # One row
    # ------------------------------------------------------------------

    def on_row(self, row: Segment) -> tuple[str, ...] | None:
        """Apply one row (not a capture duplicate); the lifecycle events it caused, in order."""
        (frame, _ts, fs, fl, length, _seq, rel_ack, _next, analysed, _unseen, _gap, _guessed,
         _opts, _mss, _wscale) = row
        cs = self.cs
        if fs:
            xe, ye = cs.server, cs.client
        else:
            xe, ye = cs.client, cs.server
        ev: list[str] = []
        control = fl & 7
        rejected = False
        if control:
            if fl & _RST:
                # A RST that answers a SYN from a side that never answered otherwise.
                rejected = ye.state == _SYN_SENT and not xe.sent_synack
            elif fl & _SYN:
                self._on_syn(row, analysed, ev)
        x_before = xe.state
        cs.on_segment(row)
        changes = cs.changes
        if not (changes or control or ye.fin_next is not None or cs.anomaly_count):
            return tuple(ev) if ev else None    # nothing that could make an event

        yi = 1 - fs
        if control & _RST:
            if rejected:
                ev.append("rejected")
                self.rejected = True
                self.rejected_by = xe.side
            elif changes:
                ev.append("connection_reset")
            if changes and self.rst_side < 0:
                self.rst_side = xe.index
                self.rst_frame = frame
                self.rst_before_close = not (self.fin_acked[0] and self.fin_acked[1])
        inferred = revised = False
        fin_ack_missed = False
        for side, _old, new, conf, reason in changes:
            if conf == _INFERRED:
                inferred = True
                if reason.startswith("revise."):
                    revised = True
                    if new not in _SYNC:
                        # the change that completed the handshake is taken back: a later one
                        self.handshake_frame = None
                if reason == "infer.fin_not_captured" and side == yi:
                    self._saw_fin(yi, ev)
                elif reason == _FIN_ACK_MISSED:
                    fin_ack_missed = True
            if new == _CLOSING:
                if not self.closing:
                    self.closing = True
                    ev.append("simultaneous_close")
            elif new == _TW:
                ev.append("time_wait_entered")
        if control & _FIN and not control & _RST:
            if self.fin_frames[fs] is None:
                self.fin_frames[fs] = frame
            self._saw_fin(fs, ev)
        if fl & _ACK and analysed and not control & (_RST | _SYN) and ye.fin_next is not None \
                and rel_ack >= ye.fin_next:
            if not self.fin_acked[yi]:
                self.fin_acked[yi] = True
                ev.append("fin_acked")
                if yi == self.first_fin_side and self.first_fin_by_fin is None:
                    # a FIN/ACK merged, unless its first ACK came in a packet the capture missed
                    self.first_fin_by_fin = bool(fl & _FIN) and not fin_ack_missed
                    if fin_ack_missed and fl & _FIN:
                        self.teardown_inferred = _FIN_ACK_MISSED   # "4way" rests on it
            if length and not self.half_close and x_before == _CW:
                self.half_close = True
                ev.append("half_close")
        c, s = cs.client.state, cs.server.state
        if (self.handshake_frame is None and self.syn_seen
                and c in _SYNC and s in _SYNC):
            self.handshake_frame = frame
            ev.append("handshake_complete")
        if changes and not self.closed_emitted and c in _DONE and s in _DONE:
            self.closed_emitted = True
            ev.append("connection_closed")
        if revised:
            ev.append("state_revised")
        if inferred:
            ev.append("state_inferred")
        if cs.anomaly_count:
            ev.append("state_anomaly")
        if not ev:
            return None
        if len(ev) > 1:
            ev.sort(key=_EVENT_ORDER.__getitem__)
        return tuple(ev)

    def _on_syn(self, row: Segment, analysed: bool, ev: list[str]) -> None:
        """Handshake bookkeeping of a SYN or SYN-ACK row."""
        fs, fl = row.from_server, row.flags
        synack = 1 if fl & _ACK else 0
        copies = 1
        for k, side, _, _ in self.opens:
            if k == synack and side == fs:
                copies += 1
        self.opens.append((synack, fs, row.frame, row.ts_ns))
        if synack:
            if fs:
                if copies > 1:
                    ev.append("synack_retransmit")
                if analysed and row.rel_ack > 1:
                    self.synack_acked_data = True
        else:
            if copies > 1:
                ev.append("syn_retransmit")
            elif not self.syn_seen:
                ev.append("handshake_started")
            self.syn_seen = True
            if row.length:
                if not self.data_on_syn:
                    ev.append("data_on_syn")
                self.data_on_syn = True
        if self.opts[fs] is None:
            self.opts[fs] = _options(row.opt_present, row.mss, row.wscale, fl)

    def _saw_fin(self, side: int, ev: list[str]) -> None:
        if self.fins[side]:
            return
        self.fins[side] = True
        if self.first_fin_side < 0:
            self.first_fin_side = side
            ev.append("teardown_started")

    # ------------------------------------------------------------------
    # The summary
    # ------------------------------------------------------------------

    def lifecycle(self, packets: tuple[int, int], nbytes: tuple[int, int], last_ts: int,
                  flag_counts: np.ndarray, irtt_ns: int) -> Lifecycle:
        """The connection's `Lifecycle`, with the tracker's per-connection counts and the
        engine's iRTT (-1: none)."""
        cs = self.cs
        syns = (self._copies(0, 0), self._copies(0, 1))
        synacks = (self._copies(1, 0), self._copies(1, 1))
        syn_iv = _intervals(syns[0])
        synack_iv = _intervals(synacks[1])
        copt = self.opts[0] or SideOptions()
        sopt = self.opts[1] or SideOptions()
        both = self.opts[0] is not None and self.opts[1] is not None
        negotiated = {
            "mss": (copt.mss, sopt.mss),
            "wscale": (copt.wscale, sopt.wscale) if both and copt.wscale is not None
            and sopt.wscale is not None else None,
            "sack": both and copt.sack_permitted and sopt.sack_permitted,
            "timestamps": both and copt.timestamps and sopt.timestamps,
            "ecn": both and copt.ecn and sopt.ecn,
            "tfo": (copt.tfo and sopt.tfo) or (self.data_on_syn and self.synack_acked_data),
        }
        finals, fixes, withdrawn = cs.hindsight(self.syn_cookie)
        c_final, s_final = State(finals[0]), State(finals[1])
        transitions = list(cs.transitions)
        for i in withdrawn:
            transitions[i] = transitions[i]._replace(revised=True)
        tw = [c_final == State.TIME_WAIT, s_final == State.TIME_WAIT]
        teardown = self.teardown_kind()
        done = self.handshake_frame is not None
        closer = self.rst_side if teardown.startswith("rst") else self.first_fin_side
        return Lifecycle(
            stream=self.stream,
            handshake=self.handshake_kind(),
            handshake_complete=done,
            syn_retries=max(len(syns[0]) - 1, 0),
            syn_intervals=syn_iv,
            syn_backoff=backoff_verdict(syn_iv),
            synack_retries=max(len(synacks[1]) - 1, 0),
            synack_intervals=synack_iv,
            synack_backoff=backoff_verdict(synack_iv),
            data_on_syn=self.data_on_syn,
            client_options=copt,
            server_options=sopt,
            negotiated=negotiated,
            teardown=teardown,
            teardown_complete=(self.rst_side >= 0) or (self.fin_acked[0] and self.fin_acked[1]),
            time_wait_side=("both" if all(tw) else "client" if tw[0]
                            else "server" if tw[1] else None),
            client_final=c_final,
            server_final=s_final,
            first_ts=self.first_ts / 1e9,
            last_ts=last_ts / 1e9,
            duration=(last_ts - self.first_ts) / 1e9,
            packets=packets,
            bytes=nbytes,
            handshake_rtt=irtt_ns / 1e9 if irtt_ns >= 0 and done else None,
            anomalies={FLAG_NAMES[b]: int(c) for b, c in enumerate(flag_counts) if c},
            role_guessed=self.guessed,
            transitions=transitions,
            state_anomalies=list(cs.anomalies),
            first_frame=self.first_frame,
            rejected_by=self.rejected_by,
            teardown_inferred=self.teardown_inferred if self.teardown_inferred
            and teardown == "4way" else None,
            syn_frames=tuple(tuple(f for f, _ in side) for side in syns),
            synack_frames=tuple(tuple(f for f, _ in side) for side in synacks),
            fin_frames=tuple(self.fin_frames),
            handshake_frame=self.handshake_frame,
            closer=("client", "server")[closer] if closer >= 0 else None,
            rst_frame=self.rst_frame,
            initial=(State(cs.initial[0]), State(cs.initial[1])),
            syn_cookie=self.syn_cookie,
            time_wait_reused=self.time_wait_reused,
            reused_from=self.reused_from,
            corrections=self.corrections(),
        )

    def corrections(self) -> list[tuple[int, int, int, int]]:
        """Rows whose states the whole capture corrects: (side index, first frame, frame it
        ends before or -1 for the end, state), in the order to apply them."""
        return self.cs.corrections + self.cs.hindsight(self.syn_cookie)[1]

    def half_open_synacks(self) -> list[int]:
        """The times of the server's SYN-ACKs while the handshake is not complete (none
        after it, or when refused)."""
        if self.handshake_frame is not None or self.rejected:
            return []
        return [t for _, t in self._copies(1, 1)]

    def _copies(self, synack: int, side: int) -> list[tuple[int, int]]:
        """(frame, ts_ns) of a side's SYNs (synack=0) or SYN-ACKs (1)."""
        return [(f, t) for k, s, f, t in self.opens if k == synack and s == side]

    def handshake_kind(self) -> str:
        syns, server_syns, synacks = self._copies(0, 0), self._copies(0, 1), self._copies(1, 1)
        if not syns:
            return "midstream"
        if server_syns:
            return "simultaneous"
        if not synacks:
            return "rejected" if self.rejected else "unanswered"
        if self.handshake_frame is None and not self.data_on_syn:
            return "half_open"
        if len(syns) > 1 or len(synacks) > 1:
            return "3way+retries"
        return "3way"

    def teardown_kind(self) -> str:
        if self.rst_side >= 0 and self.rst_before_close:
            return "rst_server" if self.rst_side else "rst_client"
        if self.first_fin_side < 0:
            return {1: "rst_server", 0: "rst_client"}.get(self.rst_side, "none")
        if self.closing:
            return "simultaneous"
        if self.half_close or not (self.fins[0] and self.fins[1]):
            return "half_close"
        if self.first_fin_by_fin:
            return "3way"
        return "4way"


def _options(present: int, mss: int, wscale: int, fl: int) -> SideOptions:
    """A SYN's (or SYN-ACK's) offer, from its record's option summary."""
    synack = bool(fl & _ACK)
    return SideOptions(
        mss=mss if present & _OPT_MSS else None,
        wscale=min(wscale, _MAX_WSCALE) if present & _OPT_WSCALE else None,
        sack_permitted=bool(present & _OPT_SACK_PERM),
        timestamps=bool(present & _OPT_TS),
        tfo=bool(present & _OPT_TFO),
        ecn=bool(fl & _ECE) and (not (fl & _CWR) if synack else bool(fl & _CWR)),
    )


def _intervals(copies: list[tuple[int, int]]) -> tuple[float, ...]:
    return tuple((b - a) / 1e9 for (_, a), (_, b) in zip(copies, copies[1:]))
