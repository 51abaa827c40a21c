"""The reference driver: every TCP row through the state machine, in capture order.

`ReferenceTracker` is the lifecycle layer's definition: each row of each
connection goes to its `ConnectionLife` (the state machine and the lifecycle's
bookkeeping). `fast.LifecycleTracker`, what the commands run, must give the same
per-row states, events and lifecycles (tests/test_lifecycle_fast.py holds it to
that on every capture). `TrackerBase` is what both share: the connections, the
per-connection counts, the roles the engine may swap, and the summaries.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable
from typing import Any

import numpy as np

from ..annotation import FLAG_NAMES
from ..states import Segment, State
from .connection import ConnectionLife, Rows, seglen
from .model import Lifecycle, LifecycleBatch

__all__ = ["TrackerBase", "ReferenceTracker", "Keep", "cookie_answers", "correct_rows"]

_SYN, _SYN_ACK = 0x02, 0x12
_SECOND = 1_000_000_000

#: Which streams keep their transitions: all (True), none (False), a set, or a predicate.
Keep = bool | Collection[int] | Callable[[int], bool]



def grow(a: np.ndarray, n: int, fill: Any, dummy: Any) -> np.ndarray:
    """Room for streams 0..n-1 plus the last slot, which non-TCP rows (stream -1) index."""
    if a.shape[0] > n:
        return a
    cap = max(n + 1, 2 * a.shape[0], 1024)
    b = np.full((cap,) + a.shape[1:], fill, dtype=a.dtype)
    if a.shape[0]:
        b[: a.shape[0] - 1] = a[:-1]
    b[-1] = dummy
    return b


class TrackerBase:
    """Both endpoints' states and the lifecycle of every connection, batch by batch.

    Args:
        keep_transitions: keep every `Transition` and `StateAnomaly` for
            `lifecycles()` (the default); or only for the streams in a collection,
            or those a predicate ``f(stream) -> bool`` accepts, so that telling
            one connection of a big capture does not keep every connection's.
        summaries: count packets, bytes, times and analysis flags per connection
            for `lifecycles()` (the default). ``tcpscope packets`` turns both off:
            the per-row states and events need neither.
    """

    def __init__(self, *, keep_transitions: Keep = True, summaries: bool = True) -> None:
        if isinstance(keep_transitions, bool) or callable(keep_transitions):
            self._keep = keep_transitions
        else:
            self._keep = frozenset(keep_transitions).__contains__
        self.summaries = summaries
        self._lives: dict[int, ConnectionLife] = {}
        # Per stream, plus a last "dummy" slot: stream -1 (not TCP) indexes it; [:, 0] is
        # the client -> server way.
        self._pkts = np.zeros((1, 2), np.int64)
        self._bytes = np.zeros((1, 2), np.int64)
        self._last_ts = np.zeros(1, np.int64)
        self._flag_counts = np.zeros((1, len(FLAG_NAMES)), np.int64)
        self._irtt = np.full(1, -1, np.int64)    # the engine's iRTT, once a row carries it
        self._flips: list[tuple[int, int]] = []  # (index, row) where roles swapped, this batch
        # the last connection of each 4-tuple, and its endpoints (client's, server's); the
        # 4-tuple of each stream tracked (`retire` lets both go)
        self._tuples: dict[frozenset, tuple[ConnectionLife, tuple, tuple]] = {}
        self._tuple_of: dict[int, frozenset] = {}
        # the corrections of retired streams whose transitions are kept (`corrections`)
        self._retired_fixes: dict[int, list[tuple[int, int, int, int]]] = {}
        # The per-stream arrays hold streams base, base + 1, ...: `retire` moves the base up
        # to the oldest stream still tracked, so that they follow the active connections.
        self._base = 0

    def _reserve(self, n: int) -> None:
        if not self.summaries:   # no per-connection counts: nothing per stream to keep
            return
        self._pkts = grow(self._pkts, n, 0, 0)
        self._bytes = grow(self._bytes, n, 0, 0)
        self._last_ts = grow(self._last_ts, n, np.iinfo(np.int64).min, 0)
        self._flag_counts = grow(self._flag_counts, n, 0, 0)
        self._irtt = grow(self._irtt, n, -1, -1)

    def _sided(self) -> list[np.ndarray]:
        """The per-stream arrays indexed [stream, way], which a role swap turns round."""
        return [self._pkts, self._bytes] if self.summaries else []

    def _fills(self) -> dict[str, Any]:
        """Each per-stream array (by attribute) and what a stream not seen yet holds."""
        return {"_pkts": 0, "_bytes": 0, "_last_ts": np.iinfo(np.int64).min,
                "_flag_counts": 0, "_irtt": -1}

    # ------------------------------------------------------------------

    def feed(self, records: np.ndarray, annotations: np.ndarray,
             ts_ns: np.ndarray) -> LifecycleBatch:
        """The next batch, in capture order: the states after each row and the events it caused,
        as each row showed them when it came (what a live view shows; the same whatever the
        batches). Later rows may prove some wrong: `corrections()` says which, for a
        consumer that keeps rows (`pipeline.Collect`)."""
        n = int(annotations.shape[0])
        if n == 0:
            return LifecycleBatch(np.zeros(0, np.uint8), np.zeros(0, np.uint8), {})
        # streams as indexes of the per-stream arrays (-1, not TCP: the dummy slot)
        s = annotations["stream"]
        if self._base:
            s = np.where(s >= 0, s - self._base, -1)
        self._reserve(int(s.max()) + 1)
        ts_all = np.asarray(ts_ns, dtype=np.int64)
        length = seglen(records)
        self._flips = []
        out = self._states(records, annotations, ts_all, s, length)
        fs = annotations["from_server"].astype(np.int64)
        for index, row in self._flips:
            # Rows before the engine swapped the roles count for the other side.
            fs[:row][s[:row] == index] ^= 1
        key = s * 2 + fs                       # stream -1 lands on the dummy slot
        self._count(records, annotations, ts_all, s, key, length)
        return out

    def _states(self, records: np.ndarray, annotations: np.ndarray, ts_all: np.ndarray,
                s: np.ndarray, length: np.ndarray) -> LifecycleBatch:
        raise NotImplementedError

    def _count(self, records: np.ndarray, annotations: np.ndarray, ts_all: np.ndarray,
               s: np.ndarray, key: np.ndarray, length: np.ndarray) -> None:
        """Packets, bytes, last time, analysis flags and iRTT per connection, with numpy."""
        if not self.summaries:
            return
        n = s.shape[0]
        width = 2 * self._pkts.shape[0]       # every key is below it (-1 -> the dummy slot)
        key_nn = np.where(s >= 0, key, key + width)
        self._pkts.reshape(-1)[:] += np.bincount(key_nn, minlength=width)
        # float weights are exact here: a batch's bytes stay far below 2**53
        self._bytes.reshape(-1)[:] += np.bincount(key_nn, weights=length,
                                                  minlength=width).astype(np.int64)
        last = np.full(self._last_ts.shape[0], -1, np.int64)   # each stream's last row
        np.maximum.at(last, s, np.arange(n, dtype=np.int64))
        hit = np.flatnonzero(last >= 0)
        self._last_ts[hit] = ts_all[last[hit]]
        af = annotations["flags"]
        nz = np.flatnonzero(af)
        if nz.size:
            nflags = len(FLAG_NAMES)
            bits = (af[nz].astype(np.int64)[:, None] >> np.arange(nflags)) & 1
            r, c = np.nonzero(bits)
            np.add.at(self._flag_counts.reshape(-1), s[nz][r] * nflags + c, 1)
        rtt = np.flatnonzero(annotations["irtt_ns"] >= 0)
        if rtt.size:
            streams, first = np.unique(s[rtt], return_index=True)
            new = self._irtt[streams] < 0
            self._irtt[streams[new]] = annotations["irtt_ns"][rtt[first[new]]]

    # ------------------------------------------------------------------
    # Connections and roles
    # ------------------------------------------------------------------

    def _new_life(self, stream: int, first: Segment, index: int,
                  records: np.ndarray) -> ConnectionLife:
        """The connection whose first row is `first` (row `index` of the batch)."""
        keep = self._keep if isinstance(self._keep, bool) else bool(self._keep(stream))
        lc = ConnectionLife(stream, first, keep=keep)
        if lc.guessed:
            lc.client_id = _identity(records, index, first)
        r = records[index]
        src, dst = (bytes(r["src"]), int(r["sport"])), (bytes(r["dst"]), int(r["dport"]))
        ends = (dst, src) if first.from_server else (src, dst)   # (client's, server's)
        key = frozenset(ends)
        prev = self._tuples.get(key)
        self._tuples[key] = (lc, *ends)
        self._tuple_of[stream] = key
        if first.flags & _SYN_ACK == _SYN:   # a first SYN: the listener it went to
            lc.server_id = ends[1]
            if prev is not None:
                _reuse_time_wait(lc, ends, prev)
        self._lives[stream] = lc
        return lc

    def _apply(self, lc: ConnectionLife, seg: Segment, index: int,
               records: np.ndarray) -> tuple[str, ...] | None:
        """One row through its connection (not a capture duplicate: it changes nothing)."""
        if lc.guessed and not seg.role_guessed:
            self._check_roles(lc, index, seg, records)
        return lc.on_row(seg)

    def _judge_cookies(self) -> None:
        """Each half-open connection's `syn_cookie`, judged with its listener's others
        (`cookie_answers`)."""
        for lc, cookie in cookie_answers(self.cookie_evidence()).items():
            lc.syn_cookie = cookie

    def cookie_evidence(self) -> list[tuple[ConnectionLife, tuple[bytes, int], list[int]]]:
        """(connection, its listener, its SYN-ACK times) of every half-open connection the
        server answered: what `cookie_answers` judges (a scaled run judges the pieces'
        evidence together)."""
        out = []
        for lc in self._lives.values():
            if lc.server_id is not None:
                sa = lc.half_open_synacks()
                if sa:
                    out.append((lc, lc.server_id, sa))
        return out

    def corrections(self) -> dict[int, list[tuple[int, int, int, int]]]:
        """Per stream, the rows the whole capture so far corrects (`ConnectionLife.corrections`):
        what a consumer that kept rows of earlier batches applies (`correct_rows`)."""
        self._judge_cookies()
        out = dict(self._retired_fixes)
        for st, lc in self._lives.items():
            cors = lc.corrections()
            if cors:
                out[st] = cors
        return out

    def _check_roles(self, lc: ConnectionLife, index: int, seg: Segment,
                     records: np.ndarray) -> None:
        """The engine fixes guessed roles when a handshake appears: follow it."""
        lc.guessed = False
        if lc.client_id is not None and _identity(records, index, seg) != lc.client_id:
            lc.swap_roles()
            st = lc.stream - self._base
            for arr in self._sided():
                arr[st] = arr[st][::-1].copy()
            self._flips.append((st, index))
        lc.client_id = None

    # ------------------------------------------------------------------
    # Summaries
    # ------------------------------------------------------------------

    def retire(self, streams: Collection[int]) -> dict[int, Lifecycle]:
        """Forget these streams (the engine made them final: no row reaches them again);
        their lifecycles, when the tracker keeps summaries."""
        out = {}
        for st in streams:
            lc = self._lives.pop(st, None)
            key = self._tuple_of.pop(st, None)
            if key is not None and self._tuples.get(key, (None,))[0] is lc:
                del self._tuples[key]
            if lc is None:
                continue
            keep = self._keep if isinstance(self._keep, bool) else bool(self._keep(st))
            if keep:
                cors = lc.corrections()
                if cors:
                    self._retired_fixes[st] = cors
            if self.summaries:
                out[st] = self._lifecycle(st, lc)
        if self._lives:
            self._rebase(min(self._lives))
        return out

    def _rebase(self, base: int) -> None:
        """Index 0 of the per-stream arrays is stream `base` from now on (it only grows:
        the streams below it were retired, and no row reaches them again)."""
        d = base - self._base
        if d <= 0:
            return
        for name, fill in self._fills().items():
            body = getattr(self, name)[:-1]      # the last slot is the dummy's
            keep = max(body.shape[0] - d, 0)
            body[:keep] = body[body.shape[0] - keep:]
            body[keep:] = fill
        self._base = base

    def _lifecycle(self, st: int, lc: ConnectionLife) -> Lifecycle:
        st -= self._base
        return lc.lifecycle((int(self._pkts[st, 0]), int(self._pkts[st, 1])),
                            (int(self._bytes[st, 0]), int(self._bytes[st, 1])),
                            int(self._last_ts[st]), self._flag_counts[st], int(self._irtt[st]))

    def lifecycles(self) -> dict[int, Lifecycle]:
        """One `Lifecycle` per stream seen so far (at any time; later batches update them)."""
        if not self.summaries:
            raise ValueError("a tracker with summaries=False keeps no per-connection counts; "
                             "lifecycles() needs summaries=True")
        self._judge_cookies()
        return {st: self._lifecycle(st, lc) for st, lc in sorted(self._lives.items())}


def cookie_answers(evidence: Iterable[tuple[Hashable, Hashable, list[int]]]) -> dict[Any, bool]:
    """SYN cookies (the listener keeps no state): a listener that resent the SYN-ACKs of
    the requests it queued, more than a second after it answered another SYN whose
    SYN-ACK it never resent and nobody acknowledged, answered that one with a cookie.
    `evidence`: (key, listener, SYN-ACK times) per half-open connection; returns
    {key: answered with a cookie}."""
    groups: dict[Hashable, list[tuple[Hashable, list[int]]]] = {}
    for key, listener, sa in evidence:
        groups.setdefault(listener, []).append((key, sa))
    out = {}
    for group in groups.values():
        last = max((t for _, sa in group for t in sa[1:]), default=-1)
        for key, sa in group:
            out[key] = len(sa) == 1 and last > sa[0] + _SECOND
    return out


def _reuse_time_wait(lc: ConnectionLife, ends: tuple, prev: tuple) -> None:
    """A new connection's SYN on a 4-tuple an endpoint still holds in TIME-WAIT (RFC 6191):
    that endpoint starts the new connection in TIME-WAIT, not CLOSED or LISTEN."""
    old, *old_ends = prev
    for ep, end in zip((old.cs.client, old.cs.server), old_ends):
        if ep.state == State.TIME_WAIT:
            side = 0 if end == ends[0] else 1
            new = (lc.cs.client, lc.cs.server)[side]
            new.state = lc.cs.initial[side] = int(State.TIME_WAIT)
            lc.time_wait_reused = ("client", "server")[side]
            lc.reused_from = old.stream


def correct_rows(fixes: list[tuple[int, int, int, int, int]], stream: np.ndarray,
                 frames: np.ndarray, client: np.ndarray, server: np.ndarray) -> None:
    """Apply corrections (stream, side, first frame, end frame or -1, state) to rows, in
    order (rows in frame order)."""
    if not stream.size:
        return
    by_stream: dict[int, list[tuple[int, int, int, int]]] = {}
    for st, side, f0, f1, state in fixes:
        by_stream.setdefault(st, []).append((side, f0, f1, state))
    mark = np.zeros(int(stream.max()) + 2, bool)   # stream -1 reads the last slot: False
    mark[[st for st in by_stream if st < mark.size - 1]] = True
    rows = np.flatnonzero(mark[stream])
    if not rows.size:
        return
    rows = rows[np.argsort(stream[rows], kind="stable")]
    sts = stream[rows]
    cuts = np.flatnonzero(sts[1:] != sts[:-1]) + 1
    for part in np.split(rows, cuts):
        fr = frames[part]
        for side, f0, f1, state in by_stream[int(stream[part[0]])]:
            a = int(fr.searchsorted(f0))
            b = fr.size if f1 < 0 else int(fr.searchsorted(f1))
            (server if side else client)[part[a:b]] = state


def _identity(records: np.ndarray, index: int, seg: Segment) -> tuple[bytes, int]:
    """(address, port) of the client, as the direction of row `index` says."""
    r = records[index]
    if seg.from_server:
        return bytes(r["dst"]), int(r["dport"])
    return bytes(r["src"]), int(r["sport"])


class ReferenceTracker(TrackerBase):
    """Every TCP row through its connection's state machine (the definition; slow)."""

    def _states(self, records: np.ndarray, annotations: np.ndarray, ts_all: np.ndarray,
                s: np.ndarray, length: np.ndarray) -> LifecycleBatch:
        n = s.shape[0]
        client = np.zeros(n, np.uint8)
        server = np.zeros(n, np.uint8)
        events: dict[int, tuple[str, ...]] = {}
        tcp = np.flatnonzero(s >= 0)
        rows = Rows(records, annotations, ts_all, length, tcp)
        lives, base = self._lives, self._base
        for k, (stream, index, duplicate) in enumerate(zip(
                (s[tcp] + base).tolist(), tcp.tolist(), rows.duplicate.tolist())):
            seg = rows.segment(k)
            lc = lives.get(stream)
            if lc is None:
                lc = self._new_life(stream, seg, index, records)
            if not duplicate:   # a copy of a packet already seen changes nothing
                ev = self._apply(lc, seg, index, records)
                if ev:
                    events[index] = ev
            client[index] = lc.cs.client.state
            server[index] = lc.cs.server.state
        return LifecycleBatch(client, server, events)

