"""The fast driver: the reference's answers, with Python only for rows that can change them.

Most rows of a capture are the steady middle of a connection: both endpoints
ESTABLISHED (or FIN-WAIT-2 / CLOSE-WAIT once a half-close is established), an
ordinary segment (no SYN, FIN or RST, no ACK of unseen data) that changes no
state and records no anomaly. `LifecycleTracker` gives such rows their
connection's current states with numpy and sends every other row through its
`ConnectionLife`, as `reference.ReferenceTracker` sends them all.

A skipped row is still a segment to the state machine. What it does besides
keeping the states is replayed, so the answers stay the reference's on every
row (tests/test_lifecycle_fast.py):

* its sequence numbers count in its sender's ``max_end``: brought up to date
  from the rows skipped before the next row the machine sees (from a per-stream
  array for earlier batches);
* a segment from a side that holds an assumed receive (``Endpoint.pending``)
  may confirm it: in a steady state it contradicts none, so the first that
  settles it (`Pending.settled_by`) ends it;
* it makes its sender one that has sent (``sent_any``). That needs no replay: a
  side in a steady state got there by a segment of its own or holds an
  assumption, so the machine saw one of its segments before any is skipped.
"""
from __future__ import annotations

import bisect
import gc

import numpy as np

from ..annotation import ANN_KIND, FLAG
from ..machine import Endpoint
from ..states import State
from .connection import ConnectionLife, Rows
from .model import LifecycleBatch
from .reference import Keep, TrackerBase, grow

__all__ = ["LifecycleTracker"]

_FIN, _SYN, _RST = 0x01, 0x02, 0x04
_CONTROL = _FIN | _SYN | _RST
_ACK_LOST = FLAG["ack_lost_segment"]
_CAPDUP = FLAG["capture_duplicate"]
_ANALYSED = ANN_KIND["analysed"]
_EST, _FW2, _CW = int(State.ESTABLISHED), int(State.FIN_WAIT_2), int(State.CLOSE_WAIT)
# Steady modes: 0 = every row matters; 1 = both ESTABLISHED; 2 / 3 = half-closed with the
# client / server in FIN-WAIT-2 (then its payload rows matter too: data after its FIN).
_HOT, _STEADY, _STEADY_C_FW2, _STEADY_S_FW2 = 0, 1, 2, 3
#: Skipped runs shorter than this are brought up to date in Python, longer ones with numpy.
_SHORT = 64


def steady_mode(lc: ConnectionLife) -> int:
    """Whether an ordinary row changes nothing in this connection, and which rows still matter.

    Not while a side in ESTABLISHED or CLOSE-WAIT holds a FIN (only an anomaly lets it
    send one): the peer's ACK of it is an anomaly there."""
    cs = lc.cs
    c, s = cs.client.state, cs.server.state
    cf, sf = cs.client.fin_next is None, cs.server.fin_next is None
    if c == _EST and s == _EST and cf and sf:
        return _STEADY
    if lc.half_close and c == _FW2 and s == _CW and sf:
        return _STEADY_C_FW2
    if lc.half_close and c == _CW and s == _FW2 and cf:
        return _STEADY_S_FW2
    return _HOT


class LifecycleTracker(TrackerBase):
    """Both endpoints' states and the lifecycle of every connection, batch by batch
    (`TrackerBase` has the arguments); the reference's answers, at numpy speed."""

    def __init__(self, *, keep_transitions: Keep = True, summaries: bool = True) -> None:
        super().__init__(keep_transitions=keep_transitions, summaries=summaries)
        self._cs = np.zeros(1, np.uint8)         # current client state, per stream
        self._ss = np.zeros(1, np.uint8)
        self._steady = np.ones(1, np.int8)       # the dummy is steady: never Python
        # each way: the highest next_rel_seq of an analysed non-RST row (the machine's
        # max_end), over the batches fed so far
        self._maxend = np.full((1, 2), -1, np.int64)
        # steady streams whose side (way) holds an assumed receive: a batch with a row of
        # that side walks the stream (the row may settle it)
        self._pending = np.zeros((1, 2), bool)
        self._watched = np.zeros(1, bool)        # either side

    def _reserve(self, n: int) -> None:
        super()._reserve(n)
        self._cs = grow(self._cs, n, 0, 0)
        self._ss = grow(self._ss, n, 0, 0)
        self._steady = grow(self._steady, n, _HOT, _STEADY)
        self._maxend = grow(self._maxend, n, -1, -1)
        self._pending = grow(self._pending, n, False, False)
        self._watched = grow(self._watched, n, False, False)

    def _sided(self) -> list[np.ndarray]:
        return super()._sided() + [self._maxend]

    def _fills(self) -> dict[str, object]:
        return {**super()._fills(), "_cs": 0, "_ss": 0, "_steady": _HOT, "_maxend": -1,
                "_pending": False, "_watched": False}

    def _states(self, records: np.ndarray, annotations: np.ndarray, ts_all: np.ndarray,
                s: np.ndarray, length: np.ndarray) -> LifecycleBatch:
        events: dict[int, tuple[str, ...]] = {}
        fl = records["tcp_flags"]
        af = annotations["flags"]
        fs = annotations["from_server"]
        tcp = s >= 0

        # Rows that may change a state or the machine's memory; connections that need Python
        # for this batch.
        cand = ((fl & _CONTROL) != 0) & tcp
        flagged = bool(af.any())
        if flagged:
            cand |= (af & _ACK_LOST) != 0
        steady = self._steady[s]
        half = steady >= _STEADY_C_FW2
        if half.any():
            # half-closed: payload from the FIN-WAIT-2 side is data after its FIN
            fw2_side = (steady == _STEADY_S_FW2).astype(np.uint8)
            cand |= half & (fs == fw2_side) & (length > 0)
        if flagged:
            cand &= (af & _CAPDUP) == 0
        hot = cand | (steady == _HOT)
        watched = self._watched[s]
        if watched.any():
            # rows of a side that holds an assumed receive
            w = np.flatnonzero(watched)
            hot[w] |= self._pending.reshape(-1)[s[w] * 2 + fs[w]]
        need_stream = np.zeros(self._steady.shape[0], bool)
        need_stream[s[hot]] = True
        need_stream[-1] = False

        # Everything else keeps its connection's current states (non-TCP rows: the dummy, 0).
        client = self._cs[s]
        server = self._ss[s]
        ni = np.flatnonzero(need_stream[s])
        if ni.size:
            # The walk makes many small objects, none in a reference cycle; the cyclic
            # collector would only rescan every connection's objects again and again.
            paused = gc.isenabled()
            gc.disable()
            try:
                self._walk(records, annotations, ts_all, s, cand, ni, length, client, server,
                           events)
            finally:
                if paused:
                    gc.enable()
        return LifecycleBatch(client, server, events)

    def _count(self, records: np.ndarray, annotations: np.ndarray, ts_all: np.ndarray,
               s: np.ndarray, key: np.ndarray, length: np.ndarray) -> None:
        super()._count(records, annotations, ts_all, s, key, length)
        # what the machine counts in max_end: every analysed row but a RST's
        counted = (annotations["kind"] == _ANALYSED) & ((records["tcp_flags"] & _RST) == 0)
        if counted.any():
            np.maximum.at(self._maxend.reshape(-1), key[counted],
                          annotations["next_rel_seq"][counted])

    def _walk(self, records, annotations, ts_all, s, cand, ni, length, client, server,
              events) -> None:
        """Rows of connections that need Python, connection by connection, in capture order."""
        o = ni[np.argsort(s[ni], kind="stable")]
        rows = Rows(records, annotations, ts_all, length, o)   # by walk position
        so = s[o]
        fs_o, len_o = rows.from_server, rows.length
        # what each row adds to its sender's max_end (-1: nothing), as the machine counts it
        end_o = np.where(rows.analysed & ((rows.flags & _RST) == 0), rows.next_rel_seq, -1)
        ends = (np.where(fs_o == 0, end_o, -1), np.where(fs_o == 1, end_o, -1))
        # each side's rows (walk positions), for the rows that may settle an assumption
        by_side = (np.flatnonzero(fs_o == 0), np.flatnonzero(fs_o == 1))
        bounds = np.flatnonzero(so[1:] != so[:-1]) + 1
        starts = [0] + bounds.tolist()
        stops = bounds.tolist() + [int(o.size)]
        cpos = np.flatnonzero(cand[o]).tolist()   # candidate rows, in walk order
        o_l, duplicate = o.tolist(), rows.duplicate.tolist()
        lives, base = self._lives, self._base
        out_rows: list[int] = []
        out_c: list[int] = []
        out_s: list[int] = []
        for a, b, stream in zip(starts, stops, so[starts].tolist()):
            lc = lives.get(stream + base)   # `stream` indexes the per-stream arrays
            first = None
            if lc is None:
                first = rows.segment(a)
                lc = self._new_life(stream + base, first, o_l[a], records)
            else:   # rows of earlier batches the machine did not see
                for ep in (lc.cs.client, lc.cs.server):
                    ep.max_end = max(ep.max_end, int(self._maxend[stream, ep.index]))
            cs = lc.cs
            mode = int(self._steady[stream])
            seen = a     # walk positions before it: applied to the endpoints
            k = a
            while k < b:
                if mode:
                    p = bisect.bisect_left(cpos, k)
                    j = cpos[p] if p < len(cpos) and cpos[p] < b else b
                    if mode != _STEADY and j > k:
                        # half-closed: payload from the FIN-WAIT-2 side is data after its FIN
                        side = 0 if mode == _STEADY_C_FW2 else 1
                        hit = np.flatnonzero((fs_o[k:j] == side) & (len_o[k:j] > 0))
                        if hit.size:
                            j = k + int(hit[0])
                    if j > k:
                        for ep in (cs.client, cs.server):
                            if ep.pending is not None:
                                _settle(ep, rows, duplicate, by_side[ep.index], k, j)
                        r = o[k:j]
                        client[r] = cs.client.state
                        server[r] = cs.server.state
                        k = j
                        continue
                if seen < k:   # the rows skipped since the machine's last row
                    if k - seen < _SHORT:
                        top = [-1, -1]
                        for side, end in zip(fs_o[seen:k].tolist(), end_o[seen:k].tolist()):
                            if end > top[side]:
                                top[side] = end
                    else:
                        top = [int(ends[0][seen:k].max()), int(ends[1][seen:k].max())]
                    for ep in (cs.client, cs.server):
                        if top[ep.index] > ep.max_end:
                            ep.max_end = top[ep.index]
                seen = k + 1
                index = o_l[k]
                if not duplicate[k]:   # a copy of a packet already seen changes nothing
                    seg = first if k == a and first is not None else rows.segment(k)
                    roles = lc.guessed and not seg.role_guessed
                    if roles:
                        self._check_roles(lc, index, seg, records)
                    ev = lc.on_row(seg)
                    if ev:
                        events[index] = ev
                    cs = lc.cs
                    # the mode changes only with a state, a FIN, the half-close or the roles
                    if ev or cs.changes or seg.flags & _CONTROL or roles:
                        mode = steady_mode(lc)
                out_rows.append(index)
                out_c.append(cs.client.state)
                out_s.append(cs.server.state)
                k += 1
            self._cs[stream] = cs.client.state
            self._ss[stream] = cs.server.state
            self._steady[stream] = mode
            pending = (bool(mode) and cs.client.pending is not None,
                       bool(mode) and cs.server.pending is not None)
            self._pending[stream] = pending
            self._watched[stream] = pending[0] or pending[1]
        if out_rows:
            client[out_rows] = out_c
            server[out_rows] = out_s


def _settle(ep: Endpoint, rows: Rows, duplicate: list[bool], mine: np.ndarray, k: int,
            j: int) -> None:
    """The endpoint's rows among walk positions k..j-1 are skipped. In a steady state an
    ordinary row contradicts no assumption: the first that settles the endpoint's
    assumption ends it (`Pending.settled_by`), as the machine would."""
    q = int(mine.searchsorted(k))
    for i in mine[q:q + int(mine[q:].searchsorted(j))].tolist():
        if not duplicate[i] and ep.pending.settled_by(bool(rows.acks[i]), int(rows.rel_ack[i])):
            ep.pending = None
            return
