"""ZeekTracker: the Zeek model (model.py) with a numpy fast path, the same results faster.

The model is literal, one pass of Python per TCP row (a few us a row). Most rows of a
long connection are "ordinary": no SYN, FIN or RST, both endpoints already past the
handshake, no letter to add. For those the model only adds counts and moves frontiers
that are running maxima (the highest sequence number sent and acknowledged, the
reassembler's delivery and trim points), so a run of them is applied with numpy in one
step. Connections are independent, so each stream's rows of a batch are taken in their
own order. A run stops exactly at the first row the model must see (first D / A of a
side, the 1st / 10th / 100th ... C, W, T or G, an idle time a timer would notice, a hole
or block the in-order reassembler cannot take), which then goes through the model's
`_process`. A reassembler with only a few payload events Zeek would reassemble (holes,
crossings of blocks) runs the model's own `_data_sent` / `_ack_received` for each, with
the ACK runs between them in bulk (`_sim`).

Every row has exactly the effect the model gives it: tests/test_zeek_fast.py runs both on
every capture, fixture and Zeek agreement case and on generated conversations, and
asserts identical results. docs/conns.md has the measurements.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...wire.record import ACK, FIN, RST, SYN
from ...wire.seq import seq_diff, seq_diff_array
from .conn_log import ESTABLISHED, INACTIVE, PARTIAL, ZeekConn
from .connection import H_ACK, H_DATA, M32, Connection, Endpoint, Reassembler
from .model import Columns, ZeekModel

__all__ = ["ZeekTracker"]


class ZeekTracker(ZeekModel):
    """Zeek's view of every TCP connection, as `ZeekModel` gives it, with runs of ordinary
    rows applied with numpy (5-15x faster on bulk transfers). Takes ZeekModel's options.

    The class attributes below tune when the fast path is tried; any values give the same
    results (the tests run it at its most eager too).
    """

    #: Streams with fewer rows in a batch go through the per-packet model whole.
    min_group = 64
    #: A run of ordinary rows shorter than this is not worth numpy's overhead (nor is an
    #: attempt that took fewer rows than this: the next one waits, see `_walk`).
    min_run = 64
    #: Fewest and most rows the per-packet model takes before the next attempt, when the
    #: connection was not ready or an attempt was not worth it (doubling in between).
    min_backoff = 16
    max_backoff = 1024
    #: Rows a stream's first fast attempt may take, and the least any attempt may.
    first_chunk = 4096
    min_chunk = 256
    #: A run with at most this many payload events Zeek reassembles may have holes: those
    #: events go through the model's reassembler one by one (_sim).
    sim_max = 64

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.fast_rows = 0  #: rows the numpy fast path applied (the rest went row by row)
        self._chunk: dict[int, int] = {}  # per stream: rows its next fast attempt may take

    def retire(self, streams: list[int]) -> list[ZeekConn]:
        for st in streams:
            self._chunk.pop(st, None)
        return super().retire(streams)

    def _feed_columns(self, cols: Columns, rec: np.ndarray) -> None:
        """Each stream's rows in its own order: runs of ordinary rows in bulk, the rest
        through the model."""
        n = len(cols.stream)
        flags = cols.flags.astype(np.int64)
        sfr = (flags & (SYN | FIN | RST)) != 0
        # 0: header Zeek cannot read (only the timers and last_frame see it); 1: bad checksum
        # (a C and nothing else); 2: ordinary candidate; 3: always the per-packet model.
        cls = np.full(n, _SLOW, dtype=np.int8)
        hdr = cols.hdr_ok
        cls[~hdr] = _NOP
        cls[hdr & cols.bad & ~sfr] = _BAD
        cls[hdr & ~cols.bad & ~sfr & ~(((flags & ACK) != 0) & (cols.ack == 0))] = _GOOD
        order = np.argsort(cols.stream, kind="stable")
        ss = cols.stream[order]
        starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
        ends = np.r_[starts[1:], n]
        big = (ends - starts) >= self.min_group
        if not big.any():
            self._feed_rows(cols, rec, None)
            return
        if not big.all():
            small = np.repeat(~big, ends - starts)
            self._feed_rows(cols, rec, np.sort(order[small]))
        g = _Group(cols, cls, flags)
        for a, b in zip(starts[big].tolist(), ends[big].tolist()):
            self._walk(cols, rec, g, order[a:b])

    def _fast_ready(self, conn: Connection | None) -> bool:
        """Can a run of ordinary rows of `conn` start now (nothing but counters can change)?"""
        if conn is None or conn.delete_at is not None or conn.reset_at is not None:
            return False
        o, r = conn.orig, conn.resp
        return (o.state in _FAST_STATES and r.state in _FAST_STATES
                and not (o.state == INACTIVE and r.state == INACTIVE)
                and not (o.fin_cnt or r.fin_cnt or o.did_close or r.did_close
                         or conn.close_deferred))

    def _walk(self, cols: Columns, rec: np.ndarray, g: "_Group", gidx: np.ndarray) -> None:
        """One stream's rows of a batch, in order: runs of ordinary rows in bulk, the rest
        through the per-packet model."""
        v = g.take(gidx)
        m = len(gidx)
        cls_l = v.cls.tolist()
        slow_at = np.flatnonzero(v.cls == _SLOW)
        s = int(cols.stream[gidx[0]])
        chunk = self._chunk.get(s, self.first_chunk)
        pos = 0
        backoff = self.min_backoff
        while pos < m:
            if cls_l[pos] == _SLOW:
                q = pos + 1
                while q < m and cls_l[q] == _SLOW:
                    q += 1
                self._feed_rows(cols, rec, gidx[pos:q])
                pos = q
                continue
            k = int(np.searchsorted(slow_at, pos))
            end = int(slow_at[k]) if k < len(slow_at) else m
            if end - pos < self.min_run:
                self._feed_rows(cols, rec, gidx[pos:end])
                pos = end
                continue
            if self._fast_ready(self._conns.get(s)):
                # At most `chunk` rows at a time: it grows while runs go through whole and
                # shrinks to about what went through when one stops early, so a stream
                # that keeps stopping does not pay numpy for rows it will not take.
                hi = min(end, pos + chunk)
                brk = self._fast(self._conns[s], v, pos, hi)
                done, pos = brk - pos, brk
                if pos == hi:
                    backoff = self.min_backoff
                    chunk = min(2 * chunk, 1 << 24)
                    continue
                chunk = max(self.min_chunk, 2 * done)
                if done >= self.min_run:
                    # a row that adds a letter or needs the model: that row alone
                    backoff = self.min_backoff
                    self._feed_rows(cols, rec, gidx[pos:pos + 1])
                    pos += 1
                    continue
            # Not ready, or the attempt was not worth it: the per-packet model for a while,
            # for longer each time in a row this happens (an attempt costs about as much as
            # a few dozen rows of the model, so this bounds what failed attempts cost).
            q = min(end, pos + backoff)
            self._feed_rows(cols, rec, gidx[pos:q])
            pos = q
            backoff = min(2 * backoff, self.max_backoff)
        self._chunk[s] = chunk

    def _fast(self, conn: Connection, v: "_Group", lo: int, hi: int) -> int:
        """Apply rows [lo, hi) of one stream (`v`) as ordinary rows, up to the first one
        the per-packet model must see; return that row's index (`hi` when none).

        Every test below is on a prefix (a row's verdict depends only on the rows before it
        and the state at `lo`), so the first row any of them stops at is where the model
        takes over, and the rows before it are applied exactly.
        """
        sl = slice(lo, hi)
        n = hi - lo
        cls = v.cls[sl]
        good = cls == _GOOD
        ts = v.ts[sl]
        # Zeek's timers: only inactivity can fire here, measured from the last row that
        # moved last_ns (header and checksum failures do not).
        last_good = np.maximum.accumulate(np.where(good, np.arange(n), -1))
        prev = np.empty(n, dtype=np.int64)
        prev[0] = -1
        prev[1:] = last_good[:-1]
        since = np.where(prev >= 0, ts[np.maximum(prev, 0)], conn.last_ns)
        brk = _first(ts >= since + conn.inactivity, n)
        o, r = conn.orig, conn.resp
        clean = o.state == ESTABLISHED and r.state == ESTABLISHED
        c_orig = v.c[sl] == conn.orig_c
        # What each side's rows do to that side: counters, letters, the highest sequence
        # number sent (a running maximum), T, W, C.
        sends: dict[bool, tuple] = {}
        for ep, mine in ((o, c_orig), (r, ~c_orig)):
            shift = 0 if ep.is_orig else 16
            bi = np.flatnonzero(mine & (cls == _BAD))
            brk = min(brk, _kth(bi, None, ep.chk_t - ep.chk, n))
            gi = np.flatnonzero(mine & good)
            gi = gi[:np.searchsorted(gi, brk)]
            if gi.size and (ep.state == INACTIVE
                            or not conn.first_seen & (1 if ep.is_orig else 2)):
                brk = min(brk, int(gi[0]))  # a state change
                gi = gi[:0]
            if not gi.size:
                sends[ep.is_orig] = (bi, gi, None)
                continue
            rows = gi + lo
            plen = v.plen[rows]
            ackf = v.ackf[rows]
            data = plen > 0
            if not conn.hist_seen & (H_DATA << shift):
                brk = min(brk, _first_of(gi, data, n))
            if not conn.hist_seen & (H_ACK << shift):
                brk = min(brk, _first_of(gi, ~data & ackf, n))
            zero = v.win0[rows]
            brk = min(brk, _kth(gi, zero, ep.win0_t - ep.win0, n))
            last0 = (ep.seq_wraps << 32) + ep.last_seq
            u = _unwrap(v.end[rows], ep.last_seq, last0)
            brk = min(brk, _first_of(gi, np.abs(u - last0) >= _WINDOW, n))
            rxmt = data & (u <= _before(u, last0))
            brk = min(brk, _kth(gi, rxmt, ep.rxmt_t - ep.rxmt, n))
            sends[ep.is_orig] = (bi, gi, (rows, plen, ackf, data, u, rxmt, zero))
        # Each side's reassembler and acknowledged frontier: its own payload (when Zeek
        # would reassemble it) and the peer's ACKs, merged in row order.
        reasm = []
        for ep in (o, r):
            pr = ep.r
            _, pgi, pplan = sends[not ep.is_orig]
            if pplan is not None:
                ai = pgi[pplan[2]]
                av = v.ack[pplan[0][pplan[2]]]
            else:
                ai = av = np.zeros(0, dtype=np.int64)
            if ep.state == INACTIVE:  # the acknowledged side never sent (it has no rows here)
                reasm.append((ep, ai, av, None))
                continue
            a0 = (ep.ack_wraps << 32) + ep.ack_seq
            ua = a = av
            if ai.size:
                ua = _unwrap(av, ep.ack_seq, a0)
                a = ua - ep.start
                odd = (np.abs(ua - a0) >= _WINDOW) | (a < 0) | ((ua < 1 << 32) & (a >= 1 << 31))
                if conn.is_partial:
                    odd |= a <= 2
                brk = min(brk, _first_of(ai, odd, n))
            _, gi, plan = sends[ep.is_orig]
            di = gi[:0]
            s = ln = sent = None
            if plan is not None and not pr.skip:
                rows, plen, _, data, u, _, _ = plan
                full = data & v.full[rows]
                if full.any():
                    di = gi[full]
                    ln = plen[full]
                    s = u[full] - ep.start - ln
                    odd = (s < 0) | ((s + ep.start < 1 << 32) & (s >= 1 << 31))
                    brk = min(brk, _first_of(di, odd, n))
            if plan is not None:
                sent = (gi, np.maximum.accumulate(plan[4]))
            if di.size:
                pos = np.concatenate((di, ai))
                k = np.argsort(pos, kind="stable")
                pos = pos[k]
                isdata = np.zeros(len(pos), dtype=bool)
                isdata[:len(di)] = True
                isdata = isdata[k]
                start = np.concatenate((s, a))[k]  # payload: its first byte; ACK: the ACK
                val = np.concatenate((s + ln, a))[k]  # payload: its end; ACK: the ACK
            else:
                pos, isdata, start, val = ai, np.zeros(len(ai), dtype=bool), a, a
            ack_rel0 = a0 - ep.start
            p = self._plan_in_order(ep, ack_rel0, pos, isdata, start, val, n, clean)
            if p is not None and not (p[3] and di.size <= self.sim_max):
                rb, front, gap, _ = p
                brk = min(brk, rb)
                reasm.append((ep, ai, av, (ua, pos, _IN_ORDER, (val, isdata, front, gap,
                                                                ack_rel0))))
            elif di.size <= self.sim_max:
                # Few payload events (a hole, sporadic payload Zeek reassembles, ACKs that
                # reach blocks): the model's own reassembler for each of them, the ACKs
                # between them in bulk.
                ev = _Events(pos, isdata, start, ln, ai, ua, a0, sent, (ep.seq_wraps << 32)
                             + ep.last_seq)
                brk = min(brk, self._sim(_Scratch(conn), ep.clone(), ev, brk, clean))
                reasm.append((ep, ai, av, (ua, pos, _SIMULATED, ev)))
            else:  # many payload events and a block list: up to the first event that matters
                brk = min(brk, _first_of(pos, isdata | (start > pr.trim), n))
                reasm.append((ep, ai, av, (ua, pos, _OTHER, None)))
        if brk == 0:
            return lo
        # Apply rows [lo, lo + brk).
        for ep, ai, av, plan in reasm:
            na = int(np.searchsorted(ai, brk))
            if plan is None:
                if na:  # the acknowledged side never sent: each ACK sets its start again
                    ep.start = ep.ack_seq = ep.last_seq = (int(av[na - 1]) - 1) & M32
                continue
            ua, pos, mode, detail = plan
            k = int(np.searchsorted(pos, brk))
            if mode == _SIMULATED and k:
                self._sim(conn, ep, detail, brk, clean)
            if na:
                top = int(ua[:na].max())
                if top > (ep.ack_wraps << 32) + ep.ack_seq:
                    ep.ack_wraps, ep.ack_seq = top >> 32, top & M32
            if not k or mode != _IN_ORDER:
                continue
            val, isdata, front, gap, ack_rel0 = detail
            pr = ep.r
            val, isdata, front, gap = val[:k], isdata[:k], front[:k], gap[:k]
            if not pr.skip:
                if gap.any():
                    if clean:
                        ep.gap += int(np.count_nonzero(gap))
                    if clean or self.report_gaps_for_partial:
                        conn.missed += int((val[gap] - front[gap]).sum())
                _settle_blocks(pr, val, isdata, front, ack_rel0)
            last = max(pr.last, int(val.max()))
            acks = val[~isdata]
            if acks.size and int(acks.max()) > pr.trim:
                pr.trim = int(acks.max())
            pr.last = last
            if pr.blocks:
                pr.blocks[0][1] = last
        for is_orig, (bi, gi, plan) in sends.items():
            ep = o if is_orig else r
            ep.chk += int(np.searchsorted(bi, brk))
            ng = int(np.searchsorted(gi, brk))
            if not ng:
                continue
            rows, _, _, _, u, rxmt, zero = plan
            ep.pkts += ng
            ep.ip_bytes += int(v.ip_len[rows[:ng]].sum())
            top = int(u[:ng].max())
            if top > (ep.seq_wraps << 32) + ep.last_seq:
                ep.seq_wraps, ep.last_seq = top >> 32, top & M32
            ep.rxmt += int(np.count_nonzero(rxmt[:ng]))
            ep.win0 += int(np.count_nonzero(zero[:ng]))
        lg = int(last_good[brk - 1])
        if lg >= 0:
            conn.last_ns = int(ts[lg])
        conn.last_frame = int(v.frame[lo + brk - 1])
        self.fast_rows += brk
        return lo + brk

    def _plan_in_order(self, ep: Endpoint, ack_rel0: int, pos: np.ndarray, isdata: np.ndarray,
                       start: np.ndarray, val: np.ndarray, n: int,
                       clean: bool) -> tuple | None:
        """The vectorised plan for a reassembler whose data is all delivered (at most one
        block, ending at last_reassem_seq) and stays so: payload in order, ACKs anywhere.

        Returns None when the reassembler is not in that state, else (the first row it
        cannot take, last_reassem_seq before each event, which ACKs are gaps, whether
        that row is one the event-by-event path would take: a hole, Zeek's
        initial-window or excessive-data rules).
        """
        pr = ep.r
        blocks = pr.blocks
        if pr.skip:
            if pr.trim > pr.last:
                return None
        elif not (0 <= ack_rel0 <= pr.last and (
                (not blocks and pr.trim == pr.last)
                or (len(blocks) == 1 and blocks[0][1] == pr.last
                    and blocks[0][0] <= pr.trim < pr.last))):
            return None
        front = _before(val, pr.last)  # last_reassem_seq before each event
        gap = ~isdata & (val > front)
        rb, exact = n, False
        if isdata.any():
            if ep.no_data_acked():
                rb = _first_of(pos, isdata, n)
            else:
                rb = _first_of(pos, isdata & (start > front), n)  # a hole
                if self.excessive:
                    bmin = blocks[0][0] if blocks else pr.last  # the block never starts lower
                    big = isdata & (np.maximum(front, val) - bmin > self.excessive)
                    rb = min(rb, _first_of(pos, big, n))
            exact = rb < n
        if clean and not pr.skip:
            rb = min(rb, _kth(pos, gap, ep.gap_t - ep.gap, n))
        return rb, front, gap, exact

    def _sim(self, conn: Any, ep: Endpoint, ev: "_Events", stop: int, clean: bool) -> int:
        """One reassembler's events before row `stop`, exactly as the per-packet model does
        them: payload and ACKs that reach a block through the model's own code, runs of
        ACKs below every block in bulk. On a stand-in (`_Scratch`, a clone) it finds the
        row whose gap would add a G (returned; else `stop`); on the real connection it is
        only run up to a row before that.
        """
        r = ep.r
        nev = int(np.searchsorted(ev.pos, stop))
        i = 0
        while i < nev:
            if ev.isdata[i]:
                row = int(ev.pos[i])
                ev.set_state(ep, row)
                self._data_sent(conn, ep, int(ev.start[i]), int(ev.ln[ev.nth[i]]))
                i += 1
                continue
            j = min(int(ev.next_data[i]), nev)
            while i < j:
                above = [b[0] for b in r.blocks if b[1] > r.last]
                if r.trim <= r.last and all(x > r.last for x in above):
                    k = i + _first(ev.start[i:j] >= min(above, default=_INF), j - i)
                    if k > i:
                        hit = self._ack_run(conn, ep, ev, i, k, clean)
                        if hit is not None:
                            return hit
                        i = k
                        continue
                row = int(ev.pos[i])
                ev.set_state(ep, row)
                self._ack_received(conn, ep, int(ev.start[i]))
                if ep.gap >= ep.gap_t:
                    return row
                i += 1
        ev.set_state(ep, stop - 1)
        return stop

    def _ack_run(self, conn: Any, ep: Endpoint, ev: "_Events", i: int, k: int,
                 clean: bool) -> int | None:
        """ACK events [i, k) that stay below every block not yet delivered (and trim_seq is
        not above last_reassem_seq): each only moves the frontier (a gap when it passes
        last_reassem_seq) and the trim point. Returns the row of the gap that would add a
        G, without applying anything, if there is one."""
        r = ep.r
        a = ev.start[i:k]
        amax = int(a.max())
        if amax <= r.trim:
            return None  # all at or below trim_seq: nothing happens
        if not r.skip:
            gap = a > _before(a, r.last)
            cnt = int(np.count_nonzero(gap))
            if cnt:
                if clean:
                    need = ep.gap_t - ep.gap
                    if cnt >= need:
                        return int(ev.pos[i + int(np.flatnonzero(gap)[need - 1])])
                    ep.gap += cnt
                if clean or self.report_gaps_for_partial:
                    conn.missed += max(r.last, amax) - r.last
        if amax > r.last:
            r.last = amax
        r.trim = amax
        r.blocks = [b for b in r.blocks if b[1] > amax]
        return None


_NOP, _BAD, _GOOD, _SLOW = 0, 1, 2, 3  # row classes of the fast path (_feed_columns)
_IN_ORDER, _SIMULATED, _OTHER = range(3)  # how the fast path takes a reassembler's events
_INF = 1 << 70
_FAST_STATES = (INACTIVE, PARTIAL, ESTABLISHED)
#: A run's sequence numbers must stay this close to where the endpoint is, so that numpy's
#: unwrapping (each number against the previous) is Zeek's (each against the running maximum).
_WINDOW = 1 << 30


class _Group:
    """The columns the fast path reads, for a batch or (`take`) one stream's rows of it."""

    __slots__ = ("cls", "c", "ts", "frame", "plen", "full", "ackf", "ack", "end", "win0",
                 "ip_len")

    def __init__(self, cols: Columns | None = None, cls: np.ndarray | None = None,
                 flags: np.ndarray | None = None) -> None:
        if cols is None:
            return
        plen = cols.plen.astype(np.int64)
        self.cls = cls
        self.c = cols.c
        self.ts = cols.ts
        self.frame = cols.frame
        self.plen = plen
        self.full = cols.pcap >= cols.plen
        self.ackf = (flags & ACK) != 0
        self.ack = cols.ack.astype(np.int64)
        self.end = (cols.seq.astype(np.int64) + plen) & M32
        self.win0 = cols.win == 0
        self.ip_len = cols.ip_len.astype(np.int64)

    def take(self, idx: np.ndarray) -> "_Group":
        out = _Group()
        for name in self.__slots__:
            setattr(out, name, getattr(self, name)[idx])
        return out


class _Scratch:
    """A connection stand-in for planning a run on cloned endpoints: it counts gaps and
    missed bytes, adds no history."""

    __slots__ = ("is_partial", "missed", "close_deferred", "deferred_gen")

    def __init__(self, conn: Connection) -> None:
        self.is_partial = conn.is_partial
        self.missed = 0
        self.close_deferred = self.deferred_gen = False

    def scaled(self, ep: Endpoint, kind: str) -> None:
        if kind == "G":
            ep.gap += 1


class _Events:
    """One reassembler's events in a run, in row order (for _sim): payload of its side
    (first byte, length) and the peer's ACKs (relative), with what it takes to put the
    endpoint's acknowledged and sent frontiers where they are at any row."""

    __slots__ = ("pos", "isdata", "start", "ln", "nth", "next_data", "ack_rows", "ack_top",
                 "a0", "snd_rows", "snd_top", "l0")

    def __init__(self, pos: np.ndarray, isdata: np.ndarray, start: np.ndarray,
                 ln: np.ndarray | None, ack_rows: np.ndarray, ua: np.ndarray, a0: int,
                 sent: tuple | None, l0: int) -> None:
        self.pos, self.isdata, self.start, self.ln = pos, isdata, start, ln
        self.nth = np.cumsum(isdata) - 1  # which payload event (index into ln)
        at = np.flatnonzero(isdata)
        k = np.searchsorted(at, np.arange(len(pos)))
        self.next_data = np.append(at, len(pos))[k]  # the next payload event (or the end)
        self.ack_rows = ack_rows
        self.ack_top = np.maximum.accumulate(ua) if len(ua) else ua
        self.a0 = a0
        empty = np.zeros(0, dtype=np.int64)
        self.snd_rows, self.snd_top = sent if sent is not None else (empty, empty)
        self.l0 = l0

    def set_state(self, ep: Endpoint, row: int) -> None:
        """ep's highest acknowledged and highest sent numbers as they are after `row`."""
        k = int(np.searchsorted(self.ack_rows, row, "right"))
        top = max(self.a0, int(self.ack_top[k - 1])) if k else self.a0
        ep.ack_wraps, ep.ack_seq = top >> 32, top & M32
        k = int(np.searchsorted(self.snd_rows, row, "right"))
        top = max(self.l0, int(self.snd_top[k - 1])) if k else self.l0
        ep.seq_wraps, ep.last_seq = top >> 32, top & M32


def _unwrap(vals: np.ndarray, last32: int, last64: int) -> np.ndarray:
    """32-bit numbers as 64-bit ones: the first against (last32, last64), each next one
    against the one before (the nearest unwrapping, as TCP_Endpoint's wrap counting)."""
    out = np.empty(len(vals), dtype=np.int64)
    out[0] = last64 + seq_diff(int(vals[0]), last32)
    if len(vals) > 1:
        np.cumsum(seq_diff_array(np.diff(vals)), out=out[1:])
        out[1:] += out[0]
    return out


def _before(vals: np.ndarray, start: int) -> np.ndarray:
    """The running maximum before each element: max(start, vals[:i])."""
    out = np.empty(len(vals), dtype=np.int64)
    if len(vals):
        out[0] = start
        np.maximum(np.maximum.accumulate(vals[:-1]), start, out=out[1:])
    return out


def _settle_blocks(r: Reassembler, val: np.ndarray, isdata: np.ndarray, front: np.ndarray,
                   ack_rel0: int) -> None:
    """The block list after a run of in-order events (the fast path's "simple" reassembler:
    at most one block, everything delivered, so it always ends at last_reassem_seq).

    An ACK at or past the frontier removes the block; the first payload that is then
    inserted (its end beyond the acknowledged point and the trim point) starts a new one at
    the frontier. The caller sets the block's end.
    """
    ack = ~isdata
    acked = np.where(ack, val, -1)
    trim = _before(acked, r.trim)  # trim_seq before each event
    emptied = np.flatnonzero(ack & (val > trim) & (val >= front))
    after = int(emptied[-1]) + 1 if emptied.size else 0
    clamp = np.maximum(trim, _before(acked, ack_rel0))  # max(ack_rel, trim_seq) before each
    ins = np.flatnonzero(isdata[after:] & (val[after:] > clamp[after:]))
    if ins.size:
        if emptied.size or not r.blocks:
            r.blocks = [[int(front[after + int(ins[0])]), 0]]
    elif emptied.size:
        r.blocks = []


def _first(mask: np.ndarray, default: int) -> int:
    k = int(mask.argmax()) if len(mask) else 0
    return k if len(mask) and mask[k] else default


def _first_of(idx: np.ndarray, mask: np.ndarray, default: int) -> int:
    """The position (from `idx`) of the first row where `mask` holds, else `default`."""
    k = _first(mask, -1)
    return default if k < 0 else int(idx[k])


def _kth(idx: np.ndarray, mask: np.ndarray | None, k: int, default: int) -> int:
    """The position (from `idx`) of the k-th row (1-based) where `mask` holds, else `default`."""
    hits = idx if mask is None else idx[mask]
    return int(hits[k - 1]) if len(hits) >= k else default

