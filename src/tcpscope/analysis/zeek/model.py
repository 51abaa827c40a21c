"""ZeekModel: Zeek's TCP analysis, literally, one packet at a time (the reference model).

What is modelled, and why it matches Zeek (docs/conns.md has the long form):

- Zeek's TCP analyzer per connection: two endpoints with Zeek's seven states
  (INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET), their
  start / last / ack sequence numbers with 32-bit wrap counting, the history
  letters with Zeek's exact rules (S H A D F R once-per-kind or on a new
  sequence number, I and Q, C G T W on the 1st, 10th, 100th ... occurrence), the
  roles (originator = sender of the first packet; flipped with ``^`` by the
  likely-server-port heuristic or a SYN / SYN-ACK reversal), the payload sizes
  from sequence space (``orig_bytes`` / ``resp_bytes``), and the content gaps of
  its reassembler (``G`` / ``g``, ``missed_bytes``) - including the rule that a
  payload Zeek did not fully capture (snap length) never reaches the
  reassembler, so its acknowledgement is a gap.
- ConnSize's packet and IP-byte counts, and ``duration`` (last - first packet,
  where time stops once both sides closed).
- ``conn_state`` from the endpoint pair, as base/protocols/conn/main.zeek.
- Zeek's default options: checksums are verified (a bad or offloaded TCP checksum
  drops the packet after a ``C``; a bad IPv4 header checksum drops it before a
  connection exists) unless ``ignore_checksums`` (``zeek -C``); Zeek's default
  ``likely_server_ports``; ``report_gaps_for_partial = F``; reassembly on.

The model is fed the engine's batches: `feed` turns them into the columns Zeek reads
(`Columns`) and `_feed_rows` takes the rows one by one through `_process` (Zeek's
TCPAnalyzer::DeliverPacket and TCPSessionAdapter::Process). fast.py's ZeekTracker
replaces only that last step for runs of rows that can be taken in bulk.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ...wire.record import ACK, CSUM, FIN, KIND, REASON, RST, SYN
from ...wire.seq import seq_diff
from ...wire.text import format_address
from ..annotation import ANN_KIND
from .conn_log import (CLOSED, ESTABLISHED, INACTIVE, PARTIAL, RESET, STATE_NAMES, SYN_ACK_SENT,
                       SYN_SENT, ZeekConn, conn_state, is_local, make_uid)
from .connection import (H_ACK, H_DATA, H_FIN, H_FIN_RST, H_MULTI, H_RST, H_SYN, M32, M64,
                         TCP_ATTEMPT_DELAY, TCP_CLOSE_DELAY, TCP_CONNECTION_LINGER,
                         TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS,
                         TCP_MAX_ABOVE_HOLE_WITHOUT_ANY_ACKS, TCP_MAX_INITIAL_WINDOW,
                         TCP_RESET_DELAY, TOO_LARGE_SEQ_DELTA, Connection, Endpoint)

__all__ = ["ZeekModel", "LIKELY_SERVER_PORTS"]

#: Ports Zeek treats as likely servers when a connection starts without a SYN (or with a
#: SYN-ACK): the TCP ports its default scripts register (``likely_server_ports``, built by
#: each base/protocols/*/main.zeek). With ``zeek -b`` and no protocol script it is empty.
LIKELY_SERVER_PORTS: frozenset[int] = frozenset({
    21, 2811,  # ftp
    22,  # ssh
    25, 587,  # smtp
    53,  # dns
    80, 81, 631, 1080, 3128, 8000, 8080, 8888,  # http (1080 also socks)
    88, 750,  # krb_tcp
    110,  # pop3
    135,  # dce_rpc
    139, 445,  # smb
    143,  # imap
    389, 3268,  # ldap
    443, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223,  # ssl
    502,  # modbus
    1434, 3306,  # mysql
    1883,  # mqtt
    3389,  # rdp
    5222, 5269,  # xmpp
    5432,  # postgresql
    6379,  # redis
    6666, 6667, 6668, 6669,  # irc
    20000,  # dnp3
})


@dataclass(slots=True)
class Columns:
    """The rows of a batch Zeek sees (TCP, in a stream), as the columns it reads."""

    stream: np.ndarray
    c: np.ndarray
    ts: np.ndarray
    frame: np.ndarray
    flags: np.ndarray
    seq: np.ndarray
    ack: np.ndarray
    plen: np.ndarray
    pcap: np.ndarray
    win: np.ndarray
    ip_len: np.ndarray
    hdr_ok: np.ndarray
    bad: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    row: np.ndarray  #: index of each row in the batch's records (rows Zeek never sees are left out)


class ZeekModel:
    """Zeek's view of every TCP connection, fed batch by batch (sans-IO), one row at a time:
    the reference the fast path (`ZeekTracker`) is tested against.

    Args:
        ignore_checksums: as ``zeek -C``: accept packets whose checksum is bad.
        likely_server_ports: the ports of Zeek's role-flip heuristic (default:
            what Zeek's default scripts register; ``frozenset()`` for ``zeek -b``).
        report_gaps_for_partial: Zeek's option of that name (counts gaps of
            connections not cleanly established in ``missed_bytes``).
        excessive_data_without_further_acks: Zeek's option of that name (0 = off).
    """

    def __init__(self, *, ignore_checksums: bool = False,
                 likely_server_ports: frozenset[int] | set[int] = LIKELY_SERVER_PORTS,
                 report_gaps_for_partial: bool = False,
                 excessive_data_without_further_acks: int =
                 TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS) -> None:
        self.ignore_checksums = ignore_checksums
        self.excessive = excessive_data_without_further_acks
        self.likely = frozenset(likely_server_ports)
        self.report_gaps_for_partial = report_gaps_for_partial
        self._conns: dict[int, Connection] = {}
        self._done: dict[int, list[ZeekConn]] = {}   # per stream: its ended connections
        self._parts: dict[int, int] = {}
        self.offloaded = 0  #: packets dropped for an offloaded (partial) checksum
        self.bad_checksums = 0  #: packets dropped for a bad checksum

    # -- feeding -------------------------------------------------------------------------

    def feed(self, records: np.ndarray, annotations: np.ndarray, ts_ns: np.ndarray) -> None:
        """Consume one batch (the records, the engine's annotations for them, timestamps)."""
        n = len(records)
        if n == 0:
            return
        ts = np.asarray(ts_ns, dtype=np.int64)
        stream = annotations["stream"]
        ok = (stream >= 0) & (records["kind"] == KIND["TCP"])
        if not self.ignore_checksums:
            # Zeek's IP analyzer drops a bad IPv4 header checksum before any connection exists.
            ok &= records["ip_csum_status"] != CSUM["BAD"]
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return
        every = idx.size == n

        def rec(name: str) -> np.ndarray:  # one field of the kept rows (no copy of whole rows)
            return records[name] if every else records[name][idx]

        def ann(name: str) -> np.ndarray:
            return annotations[name] if every else annotations[name][idx]

        # Direction-free bit per row: 1 when (src, sport) > (dst, dport).
        src = np.ascontiguousarray(rec("src")).view(">u8").reshape(-1, 2)
        dst = np.ascontiguousarray(rec("dst")).view(">u8").reshape(-1, 2)
        sp, dp = rec("sport"), rec("dport")
        gt = (src[:, 0] > dst[:, 0]) | ((src[:, 0] == dst[:, 0]) & (
            (src[:, 1] > dst[:, 1]) | ((src[:, 1] == dst[:, 1]) & (sp > dp))))
        # Zeek drops a TCP header it cannot read whole (after the connection exists).
        hdr_ok = (ann("kind") == ANN_KIND["analysed"]) & (
            rec("stop_reason") != REASON["TRUNCATED_TCP_OPTIONS"])
        csum = rec("tcp_csum_status")
        bad = np.zeros(len(idx), dtype=bool)
        if not self.ignore_checksums:
            bad = (csum == CSUM["BAD"]) | (csum == CSUM["OFFLOAD"])
            self.offloaded += int(np.count_nonzero(hdr_ok & (csum == CSUM["OFFLOAD"])))
            self.bad_checksums += int(np.count_nonzero(hdr_ok & (csum == CSUM["BAD"])))
        cols = Columns(
            stream=ann("stream"), c=gt.astype(np.int8), ts=ts[idx], frame=ann("frame"),
            flags=rec("tcp_flags"), seq=rec("seq"), ack=rec("ack"), plen=rec("payload_len"),
            pcap=rec("payload_cap"), win=rec("win"), ip_len=rec("ip_len"), hdr_ok=hdr_ok,
            bad=bad, sport=sp, dport=dp, row=idx,
        )
        self._feed_columns(cols, records)

    def _feed_columns(self, cols: Columns, rec: np.ndarray) -> None:
        """A batch's rows, in order (the fast path takes over here)."""
        self._feed_rows(cols, rec, None)

    def _feed_rows(self, cols: "Columns", rec: np.ndarray, idx: np.ndarray | None) -> None:
        """The per-packet model over rows `idx` of the batch (all of them for None), in order."""
        def col(a: np.ndarray) -> list:
            return (a if idx is None else a[idx]).tolist()

        stream_l = col(cols.stream)
        c_l = col(cols.c)
        ts_l = col(cols.ts)
        frame_l = col(cols.frame)
        flags_l = col(cols.flags)
        seq_l = col(cols.seq)
        ack_l = col(cols.ack)
        plen_l = col(cols.plen)
        pcap_l = col(cols.pcap)
        win_l = col(cols.win)
        ipl_l = col(cols.ip_len)
        hdr_l = col(cols.hdr_ok)
        bad_l = col(cols.bad)
        sp_l = col(cols.sport)
        dp_l = col(cols.dport)
        rec_i = col(cols.row)  # where each row is in the batch's records
        conns = self._conns
        for i in range(len(stream_l)):
            s = stream_l[i]
            t = ts_l[i]
            flags = flags_l[i]
            conn = conns.get(s)
            if conn is not None:
                reason = self._expired(conn, t)
                if reason is None and flags & SYN and hdr_l[i]:
                    reason = self._reuse(conn, flags, seq_l[i])
                if reason is not None:
                    conn.removed_reason = reason
                    self._finish(conn)
                    conn = None
            if conn is None:
                conn = self._new_conn(s, c_l[i], t, frame_l[i], flags, sp_l[i], dp_l[i], rec,
                                      rec_i[i])
                conns[s] = conn
            is_orig = c_l[i] == conn.orig_c
            conn.last_frame = frame_l[i]
            if not hdr_l[i]:
                continue
            if bad_l[i]:
                conn.scaled(conn.orig if is_orig else conn.resp, "C")
                continue
            if (conn.orig.state == SYN_ACK_SENT and conn.resp.state == INACTIVE
                    and not flags & (SYN | RST) and (flags & ACK or plen_l[i])):
                conn.flip_after_synack()
                is_orig = not is_orig
            self._process(conn, is_orig, t, flags, seq_l[i], ack_l[i], plen_l[i],
                          pcap_l[i] >= plen_l[i], win_l[i], ipl_l[i])

    # -- connections: creation, splits, end -------------------------------------------------

    def _new_conn(self, s: int, c: int, t: int, frame: int, flags: int, sport: int, dport: int,
                  rec: np.ndarray, i: int) -> Connection:
        part = self._parts.get(s, -1) + 1
        self._parts[s] = part
        prev = self._conns.get(s)
        reason = prev.removed_reason if prev is not None else None
        v = int(rec["ip_version"][i])
        addr = (format_address(rec["src"][i], v), sport, format_address(rec["dst"][i], v), dport)
        conn = Connection(s, part, reason if part else None, c, t, frame, addr)
        # TCPAnalyzer::WantConnection: a connection that starts without a SYN, or with a
        # SYN-ACK, is flipped when its source port looks like a server's.
        if (not flags & SYN or flags & ACK) and sport in self.likely:
            if dport in self.likely:
                flip = not flags & SYN and sport < dport
            else:
                flip = True
            if flip:
                conn.flip()
        return conn

    def _expired(self, conn: Connection, t: int) -> str | None:
        """Would one of Zeek's timers have removed `conn` before a packet at time `t`?"""
        if conn.delete_at is not None and t >= conn.delete_at:
            return "closed"
        if conn.reset_at is not None and t >= conn.reset_at and conn.is_active:
            return "reset"
        if (conn.attempt_at is not None and t >= conn.attempt_at and conn.is_active
                and conn.orig.state in (SYN_SENT, SYN_ACK_SENT) and conn.resp.state == INACTIVE):
            return "attempt_timeout"
        if t >= conn.last_ns + conn.inactivity:
            return "inactivity_timeout"
        if (conn.is_active and conn.orig.state == INACTIVE and conn.resp.state == INACTIVE
                and t > conn.last_ns + TCP_CONNECTION_LINGER):
            return "expired"
        return None

    def _reuse(self, conn: Connection, flags: int, seq: int) -> str | None:
        """TCPSessionAdapter::IsReuse for a SYN on an existing connection."""
        orig, resp = conn.orig, conn.resp
        conn_orig = orig
        if flags & ACK:
            if orig.state != INACTIVE:
                return None
            conn_orig = resp
        if not (orig.did_close or resp.did_close):
            if seq == conn_orig.start & M32:
                return None
            if (not flags & ACK and conn_orig.state == SYN_ACK_SENT and resp.state == INACTIVE
                    and seq == resp.start & M32):
                return None
        return "reuse"

    def _finish(self, conn: Connection) -> None:
        self._done.setdefault(conn.stream, []).append(_result(conn))

    # -- the per-packet model (TCPAnalyzer::DeliverPacket + TCPSessionAdapter::Process) ------

    def _process(self, conn: Connection, is_orig: bool, t: int, flags: int, seq: int, ack: int,
                 length: int, full: bool, win: int, ip_len: int) -> None:
        ep = conn.orig if is_orig else conn.resp
        peer = ep.peer
        syn, fin, rst, ackf = flags & SYN, flags & FIN, flags & RST, flags & ACK
        # SetPartialStatus
        if is_orig:
            if not conn.first_seen & 1:
                conn.is_partial = (not syn) or bool(ackf)
        elif not conn.first_seen & 2 and not conn.is_partial:
            conn.is_partial = not syn
        seg_len = length + (1 if syn else 0) + (1 if fin else 0) - (length if rst else 0)
        end = (seq + seg_len) & M32
        # init_endpoint
        st = ep.state
        if st == INACTIVE:
            if syn:
                ep.start = ep.ack_seq = seq
                ep.last_seq = end
            else:
                ep.start = ep.ack_seq = (seq - 1) & M32
                ep.last_seq = seq
        elif st in (SYN_SENT, SYN_ACK_SENT):
            if syn and seq != ep.start & M32:
                ep.init_seqs(seq, end)
        elif st in (ESTABLISHED, PARTIAL):
            if syn:
                ep.init_seqs(seq, end)
        elif st == RESET:
            if syn and ep.prev_state == INACTIVE:
                ep.init_seqs(seq, end)
        rel_seq, underflow = _relative(ep, seq, ep.last_seq, ep.seq_wraps)
        # update_history
        nbits = (1 if syn else 0) + (1 if fin else 0) + (1 if rst else 0)
        if nbits > 1:
            if fin and rst:
                conn.check_hist(ep, H_FIN_RST, "I")
            else:
                conn.check_hist(ep, H_MULTI, "Q")
        elif nbits == 1:
            if syn:
                code = "H" if ackf else "S"
                if conn.check_hist(ep, H_SYN, code) and rel_seq != ep.h_syn:
                    conn.add_hist(ep, code)
                ep.h_syn = rel_seq
            elif fin:
                if conn.check_hist(ep, H_FIN, "F") and (rel_seq + length) & M64 != ep.h_fin:
                    conn.add_hist(ep, "F")
                ep.h_fin = (rel_seq + length) & M64
            else:
                if conn.check_hist(ep, H_RST, "R") and rel_seq != ep.h_rst:
                    conn.add_hist(ep, "R")
                ep.h_rst = rel_seq
        elif length:
            conn.check_hist(ep, H_DATA, "D")
        elif ackf:
            conn.check_hist(ep, H_ACK, "A")
        # update_window: a zero window (scaling a zero keeps it zero)
        if win == 0 and not rst and peer.state != CLOSED and ep.state != RESET:
            conn.scaled(ep, "W")
        if not conn.both_closed():
            conn.last_ns = t
        if fin:
            ep.fin_cnt += 1
            ep.fin_seq = (rel_seq + seg_len) & M64
        if rst:
            ep.rst_cnt += 1
        rel_ack = 0
        if ackf:
            if peer.state == INACTIVE:
                rel_ack = 1
                peer.start = peer.ack_seq = peer.last_seq = (ack - 1) & M32
            else:
                rel_ack, aunder = _relative(peer, ack, peer.ack_seq, peer.ack_wraps)
                if aunder:
                    rel_ack = 0
                elif not rst:
                    delta_ack = seq_diff(ack, peer.ack_seq)
                    if not (ack == 0 and delta_ack > TOO_LARGE_SEQ_DELTA) and delta_ack > 0:
                        peer.update_ack_seq(ack)
        # update_last_seq
        delta_last = seq_diff(end, ep.last_seq)
        if (syn or rst) and (delta_last > TOO_LARGE_SEQ_DELTA or delta_last < -TOO_LARGE_SEQ_DELTA):
            pass
        elif fin and ep.last_seq == (ep.start + 1) & M32:
            ep.update_last_seq(end)
        elif ep.state == RESET:
            pass
        elif delta_last > 0:
            ep.update_last_seq(end)
        elif length > 0:
            conn.scaled(ep, "T")
        do_close, gen_event = self._state_machine(conn, ep, peer, t, seq, ack, length, delta_last,
                                                  is_orig, flags)
        if ackf:
            self._ack_received(conn, peer, rel_ack)
        if length > 0 and not rst and not underflow:
            rel_data = (rel_seq + 1) & M64 if syn else rel_seq
            if full:
                self._data_sent(conn, ep, rel_data, length)
        self._check_eof(conn, ep)
        if do_close:
            self._closed(conn, ep, ep.peer, gen_event)
        # ConnSize: the sender's counters (they follow the roles through any flip, zeek#5047).
        ep.pkts += 1
        ep.ip_bytes += ip_len

    def _state_machine(self, conn: Connection, ep: Endpoint, peer: Endpoint, t: int, seq: int,
                       ack: int, length: int, delta_last: int, is_orig: bool,
                       flags: int) -> tuple[bool, bool]:
        syn, fin, rst, ackf = flags & SYN, flags & FIN, flags & RST, flags & ACK
        do_close = gen_event = False
        st = ep.state
        if st == INACTIVE:
            if syn:
                if is_orig:
                    conn.set_state(ep, SYN_ACK_SENT if ackf else SYN_SENT)
                    conn.attempt_at = t + TCP_ATTEMPT_DELAY
                else:
                    if ackf:
                        pass
                    elif peer.state == SYN_ACK_SENT and seq == ep.start & M32:
                        # a SYN / SYN-ACK reversal: flip the roles, establish
                        conn.is_partial = False
                        conn.flip()
                        conn.set_state(peer, ESTABLISHED)
                        conn.first_seen |= 1
                    if peer.state == SYN_SENT:
                        conn.set_state(peer, ESTABLISHED)
                    conn.set_state(ep, ESTABLISHED)
            if fin:
                conn.set_state(ep, CLOSED)
                do_close = gen_event = True
            if rst:
                conn.set_state(ep, RESET)
                is_reject = False
                if is_orig:
                    if peer.state == ESTABLISHED:
                        is_reject = True
                elif peer.state in (SYN_SENT, SYN_ACK_SENT):
                    is_reject = True
                do_close = True
                gen_event = not is_reject
            if ep.state == INACTIVE:
                if not is_orig and length == 0 and conn.orig.state == SYN_SENT:
                    pass
                elif ackf and peer.state == ESTABLISHED:
                    conn.set_state(ep, ESTABLISHED)
                    conn.is_partial = False
                    conn.first_seen |= 1 if is_orig else 2
                else:
                    conn.set_state(ep, PARTIAL)
        elif st in (SYN_SENT, SYN_ACK_SENT):
            if fin:
                conn.set_state(ep, CLOSED)
                do_close = gen_event = True
            if rst:
                conn.set_state(ep, RESET)
                conn.is_active = False  # ConnectionReset
                do_close = True
        elif st in (ESTABLISHED, PARTIAL):
            if syn and st == PARTIAL and peer.state == INACTIVE and not ackf:
                conn.set_state(ep, SYN_SENT)
            if fin and not rst:
                conn.set_state(ep, CLOSED)
                if peer.state == RESET and peer.prev_state == CLOSED:
                    conn.set_state(peer, CLOSED)
                do_close = gen_event = True
            if rst:
                conn.set_state(ep, RESET)
                do_close = True
                if peer.state != RESET or peer.prev_state != ESTABLISHED:
                    conn.is_active = False
        elif st == CLOSED:
            if rst and peer.state != CLOSED:
                conn.set_state(ep, RESET)
                if not ep.did_close:
                    do_close = True
                conn.reset_at = t + TCP_RESET_DELAY
        # RESET: nothing changes
        # CheckPIA_FirstPacket (with the direction the packet arrived with)
        conn.first_seen |= 1 if is_orig else 2
        return do_close, gen_event

    # -- reassembly (gaps) and closing --------------------------------------------------------

    def _clean(self, ep: Endpoint) -> bool:
        def c(a: Endpoint) -> bool:
            return a.state == ESTABLISHED or (a.state == CLOSED and a.prev_state == ESTABLISHED)
        return c(ep) and c(ep.peer)

    def _gap(self, conn: Connection, ep: Endpoint, length: int) -> None:
        clean = self._clean(ep)
        if clean:
            conn.scaled(ep, "G")
        if clean or self.report_gaps_for_partial:
            conn.missed += length

    def _ack_received(self, conn: Connection, ep: Endpoint, seq: int) -> None:
        """TCP_Reassembler::AckReceived on the endpoint whose data `seq` acknowledges."""
        r = ep.r
        if ep.fin_cnt > 0 and seq >= ep.fin_seq:
            seq = (ep.fin_seq - 1) & M64
        if seq <= r.trim:
            return
        if seq > r.last:
            self._undelivered(conn, ep, seq)
        r.trim_to(seq)
        if r.blocks and r.blocks[0][0] == r.last:
            # DataBlockList::Trim: a block the skipped data made deliverable is delivered.
            self._block_inserted(ep)
        self._check_eof(conn, ep)

    def _block_inserted(self, ep: Endpoint) -> None:
        """Reassembler::BlockInserted for a block that starts at last_reassem_seq."""
        r = ep.r
        r.deliver()
        if ep.no_data_acked() and ep.size() > TCP_MAX_INITIAL_WINDOW and r.last > r.trim:
            r.trim_to(r.last)

    def _undelivered(self, conn: Connection, ep: Endpoint, up_to: int) -> None:
        r = ep.r
        if up_to <= 2 and conn.is_partial:
            return
        if not r.skip:
            for lo, hi in r.blocks:
                if hi <= r.last or lo < r.last:
                    continue
                if lo >= up_to:
                    break
                self._gap(conn, ep, lo - r.last)
                r.last = lo
                self._block_inserted(ep)
            if up_to > r.last:
                self._gap(conn, ep, up_to - r.last)
        if up_to > r.last:
            r.last = up_to

    def _data_sent(self, conn: Connection, ep: Endpoint, seq: int, length: int) -> None:
        r = ep.r
        if r.skip:
            return
        ack = ep.ack_rel()
        upper = seq + length
        if seq < ack:
            if upper <= ack:
                return
            seq = ack
        if upper <= r.trim:
            return
        if seq < r.trim:
            seq = r.trim
        r.insert(seq, upper)
        if seq <= r.last < upper:
            self._block_inserted(ep)
        if ep.no_data_acked() and r.blocks and r.blocks[-1][1] - r.last > \
                TCP_MAX_ABOVE_HOLE_WITHOUT_ANY_ACKS:
            r.blocks = []
            r.skip = True
        if self.excessive and r.size() > self.excessive:
            r.blocks = []
            r.skip = True

    def _data_pending(self, ep: Endpoint) -> bool:
        r = ep.r
        if r.skip:
            return False
        delivered = ep.start + r.last
        last = (ep.seq_wraps << 32) + ep.last_seq
        if last < delivered:
            return False
        if delivered != last - 1 and delivered != last:
            return True
        if ep.state != RESET and ep.peer.r.undelivered():
            return True
        return False

    def _check_eof(self, conn: Connection, ep: Endpoint) -> None:
        r = ep.r
        if (not r.did_eof and (ep.fin_cnt > 0 or ep.state in (CLOSED, RESET))
                and not self._data_pending(ep)):
            r.did_eof = True
            if conn.close_deferred:
                self._closed(conn, ep, ep.peer, conn.deferred_gen)
                conn.close_deferred = False

    def _closed(self, conn: Connection, ep: Endpoint, peer: Endpoint, gen_event: bool) -> None:
        """TCPSessionAdapter::ConnectionClosed."""
        if self._data_pending(ep):
            conn.close_deferred = True
            if not conn.deferred_gen:
                conn.deferred_gen = gen_event
            return
        conn.close_deferred = False
        if ep.did_close:
            return
        ep.did_close = True
        if ep.state == RESET or peer.did_close or peer.state == INACTIVE:
            if ep.prev_state != INACTIVE or peer.state != INACTIVE:
                if conn.deferred_gen:
                    gen_event = True
                    conn.deferred_gen = False
                if gen_event:
                    conn.is_active = False  # ConnectionFinished
            conn.attempt_at = None  # CancelTimers
            at = conn.last_ns + TCP_CLOSE_DELAY
            if conn.delete_at is None or at < conn.delete_at:
                conn.delete_at = at

    # -- results -------------------------------------------------------------------------

    def rows(self) -> list[ZeekConn]:
        """Every Zeek connection so far (the open ones as they stand), in stream order."""
        out = [z for done in self._done.values() for z in done] + \
            [_result(c) for c in self._conns.values()]
        out.sort(key=lambda z: (z.stream, z.part))
        return out

    def retire(self, streams: list[int]) -> list[ZeekConn]:
        """Forget these streams (the engine made them final: no row reaches them again);
        their Zeek connections as `rows` gives them."""
        out: list[ZeekConn] = []
        for st in streams:
            out += self._done.pop(st, [])
            conn = self._conns.pop(st, None)
            if conn is not None:
                out.append(_result(conn))
            self._parts.pop(st, None)
        out.sort(key=lambda z: (z.stream, z.part))
        return out

    def fields(self, rows: list[ZeekConn] | None = None) -> dict[int, ZeekConn]:
        """Per tcp.stream, the Zeek connection its first packet started (``zeek_rows`` set),
        of `rows` (default: every row so far)."""
        rows = self.rows() if rows is None else rows
        counts: dict[int, int] = {}
        for z in rows:
            counts[z.stream] = counts.get(z.stream, 0) + 1
        out: dict[int, ZeekConn] = {}
        for z in rows:
            if z.part == 0:
                out[z.stream] = dataclasses.replace(z, zeek_rows=counts[z.stream])
        return out


def _relative(ep: Endpoint, cur: int, last: int, wraps: int) -> tuple[int, bool]:
    """get_relative_seq: (relative number as Zeek's uint64, underflow)."""
    delta = seq_diff(cur, last)
    if delta < 0:
        if wraps and cur > last:
            wraps -= 1
    elif delta > 0:
        if cur < last:
            wraps += 1
    if wraps == 0:
        d = seq_diff(cur, ep.start)
        return d & M64, d < 0
    return ep.rel(cur, wraps), False


def _result(conn: Connection) -> ZeekConn:
    o, r = conn.orig, conn.resp
    a = conn.addr_row  # first packet's (src, sport, dst, dport)
    first_is_orig = conn.orig_c == conn.c0
    if first_is_orig:
        oh, op, rh, rp = a
    else:
        rh, rp, oh, op = a
    history = "".join(conn.hist)
    osz, rsz = o.size(), r.size()
    dur = conn.last_ns - conn.start_ns
    return ZeekConn(
        stream=conn.stream, uid=make_uid(conn.stream, conn.part, conn.start_ns, a),
        ts_ns=conn.start_ns, orig_h=oh, orig_p=op, resp_h=rh, resp_p=rp,
        duration_ns=dur if dur > 0 else None, orig_bytes=osz if dur > 0 else None,
        resp_bytes=rsz if dur > 0 else None,
        conn_state=conn_state(o.state, r.state, osz, rsz, history),
        local_orig=is_local(oh), local_resp=is_local(rh), missed_bytes=conn.missed,
        history=history, orig_pkts=o.pkts, orig_ip_bytes=o.ip_bytes, resp_pkts=r.pkts,
        resp_ip_bytes=r.ip_bytes, orig_state=STATE_NAMES[o.state],
        resp_state=STATE_NAMES[r.state], orig_size=osz, resp_size=rsz,
        first_frame=conn.first_frame,
        last_frame=conn.last_frame, part=conn.part, split_reason=conn.split_reason,
    )
