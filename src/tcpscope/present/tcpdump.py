"""`tcpscope read`: the packet listing of ``tcpdump -nn -r FILE``, byte for byte.

Two paths produce the same text:

- the fast path prints ordinary TCP segments (the whole IP datagram captured,
  a plain link layer, no IP options or IPv6 extension headers, no payload for
  a port tcpdump decodes) from the dissected records' columns, with per-flow
  and per-second strings cached and the common ``nop,nop,TS`` option layout
  formatted without parsing;
- every other frame goes through `FramePrinter`, which walks the bytes the way
  tcpdump's printers do (see tcpdump_frame.py).

Both share tcpdump's relative-sequence table (`SeqTable`), so a connection
whose packets take different paths still prints tcpdump's numbers.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import IO

import numpy as np

from tcpscope.wire.dissect import dissect_batch
from tcpscope.wire.record import CSUM, KIND, WARNING

try:  # the native hot loop; the Python path below prints every frame without it
    from . import _tcpdump as _native
except ImportError:  # pragma: no cover - a build without the extension
    _native = None

from .tcpdump_frame import FLAGS_TEXT, FramePrinter, SeqTable, ip4_str, ip6_str
from .tcpdump_options import Cursor, Truncated, print_tcp_options
from .tcpdump_payload import print_rst_data, print_tcp_payload

__all__ = ["TcpdumpOptions", "Listing", "write_listing", "format_timestamp"]

M32 = 0xFFFFFFFF

#: Ports whose payload tcpdump hands to an application printer (either side).
APP_PORTS = frozenset({21, 22, 23, 25, 43, 53, 80, 179, 323, 554, 639, 646, 1723, 2049,
                       6379, 6633, 6653, 8080, 8554, 10288})

_APP_PORTS = np.array(sorted(APP_PORTS), dtype=np.uint16)
_KIND_TCP = KIND["TCP"]
_CSUM_OK, _CSUM_BAD, _CSUM_OFFLOAD = CSUM["OK"], CSUM["BAD"], CSUM["OFFLOAD"]
_WARN_LEN_FROM_FRAME = WARNING.get("IP_LENGTH_FROM_FRAME", 0)
_SLL_DIRS = {0: "In ", 1: "B  ", 2: "M  ", 3: "P  ", 4: "Out"}
_NOP_NOP_TS = 0x0101080A
_FLAGS_LIST = list(FLAGS_TEXT)


@dataclass(frozen=True)
class TcpdumpOptions:
    """tcpdump's flags that `read` honours.

    verbose: -v count; absolute: -S; tstyle: number of -t (0 = default local
    time, 1 = none, 2 = epoch, 3 = delta from the previous packet, 4 = date and
    time, 5 = delta from the first packet); count: -c; number: -# (frame numbers).
    """

    verbose: int = 0
    absolute: bool = False
    tstyle: int = 0
    count: int | None = None
    number: bool = False


class _Clock:
    """tcpdump's timestamp column, cached per second of capture time."""

    def __init__(self, tstyle: int) -> None:
        self.tstyle = tstyle
        self._sec = None
        self._head = ""
        self.ref: int | None = None  # -ttt / -ttttt reference, in microseconds

    def head(self, sec: int) -> str:
        """The part before the fraction for an absolute time (styles 0, 2, 4)."""
        if sec != self._sec:
            self._sec = sec
            self._head = _time_head(sec, self.tstyle)
        return self._head

    def stamp(self, us: int) -> str:
        style = self.tstyle
        if style == 1:
            return ""
        if style in (3, 5):
            ref = self.ref
            if ref is None or ref == 0:
                ref = us
                self.ref = us
            if us < ref:
                sign, d = "-", ref - us
            else:
                sign, d = " ", us - ref
            if style == 3:
                self.ref = us
            sec = d // 1_000_000
            if sec & 0x80000000:
                return sign + "[Error converting time] "
            t = time.gmtime(sec)
            return f"{sign}{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{d % 1_000_000:06d} "
        sec = us // 1_000_000
        head = self.head(sec)
        if head is None:
            return "[Error converting time] "
        return f"{head}.{us % 1_000_000:06d} "


def _time_head(sec: int, style: int) -> str | None:
    if sec & 0x80000000:  # tcpdump tests the low 32 bits: (unsigned)sec & 0x80000000
        return None
    if style == 2:
        return str(sec & M32)
    try:
        t = time.localtime(sec)
    except (OverflowError, OSError, ValueError):
        return "[localtime() or gmtime() couldn't convert the date and time]"
    if style == 4:
        return time.strftime("%Y-%m-%d %H:%M:%S", t)
    return f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def format_timestamp(ts_ns: int, tstyle: int = 0) -> str:
    """One timestamp as tcpdump prints it (with the trailing space), for tests and tools."""
    return _Clock(tstyle).stamp(ts_ns // 1000)


class _Rows:
    """Python formatting of chosen rows of one batch: every kind of frame.

    `format(range(n))` is the whole batch (used for -v and -ttt, where the columns
    are converted to lists once); `format((i,))` is one row between native runs.
    """

    __slots__ = ("listing", "batch", "rec", "n", "keys", "optcls", "app_cols", "_cols",
                 "_stamps", "_vparts", "fast")

    def __init__(self, listing: Listing, batch, rec: np.ndarray, n: int, keys: list[bytes],
                 optcls: np.ndarray, app: np.ndarray) -> None:
        self.listing = listing
        self.batch = batch
        self.rec = rec
        self.n = n
        self.keys = keys
        self.optcls = optcls
        self.fast = optcls >= 0
        app_idx = np.flatnonzero(app)
        self.app_cols = dict(zip(app_idx.tolist(), rec[app_idx][
            ["l3_off", "ip_len", "l4_off", "tcp_hlen", "sport", "dport", "payload_len"]].tolist()))
        self._cols: dict[str, list] | None = None
        self._stamps: list[str] | None = None
        self._vparts = None

    def _columns(self, whole: bool) -> tuple:
        if not whole:
            return None, None
        if self._cols is None:
            cols = self.rec[["tcp_flags", "seq", "ack", "win", "payload_len", "ts_val", "ts_ecr"]]
            self._cols = {k: cols[k].tolist() for k in cols.dtype.names}
            self._stamps = self.listing._stamps(self.batch, self.n)
        return self._cols, self._stamps

    def format(self, rows) -> list[str]:
        lst = self.listing
        opts = lst.opts
        v = opts.verbose
        absolute = opts.absolute
        batch, rec = self.batch, self.rec
        whole = isinstance(rows, range) and len(rows) == self.n
        cols, stamps = self._columns(whole)
        if v and self._vparts is None:
            self._vparts = lst._verbose_parts_all(rec, self.fast)
        flows = lst._flows
        flow_info = lst._flow_info
        number = opts.number
        first = batch.first_frame
        flags_text = FLAGS_TEXT
        optcls = self.optcls
        keys = self.keys
        out: list[str] = []
        append = out.append
        for i in rows:
            if whole:
                ts = stamps[i]
                fl, s, a, w = cols["tcp_flags"][i], cols["seq"][i], cols["ack"][i], cols["win"][i]
                pl, tv, te = cols["payload_len"][i], cols["ts_val"][i], cols["ts_ecr"][i]
            else:
                r = rec[i]
                ts = lst.clock.stamp(int(batch.ts_ns[i]) // 1000)
                fl, s, a, w = int(r["tcp_flags"]), int(r["seq"]), int(r["ack"]), int(r["win"])
                pl, tv, te = int(r["payload_len"]), int(r["ts_val"]), int(r["ts_ecr"])
            oc = int(optcls[i])
            if number:
                ts = f"{first + i:5d}  {ts}"
            if oc < 0:
                append(ts + lst._slow(batch, i) + "\n")
                continue
            kb = keys[i]
            info = flows.get(kb)
            if info is None:
                info = flow_info(kb)
            thseq = thack = 0
            if fl & 0x10 and not absolute:
                cell = info[2]
                if cell[0] is None or fl & 0x02:
                    if info[3]:
                        cell[0] = a - 1 & M32
                        cell[1] = s
                    else:
                        cell[0] = s
                        cell[1] = a - 1 & M32
                elif info[3]:
                    s = (s - cell[1]) & M32
                    a = (a - cell[0]) & M32
                else:
                    s = (s - cell[0]) & M32
                    a = (a - cell[1]) & M32
                thseq, thack = cell
            if pl:
                sq = f", seq {s}:{(s + pl) & M32}"
            elif fl & 0x07 or v > 1:
                sq = f", seq {s}"
            else:
                sq = ""
            if fl & 0x30:
                if fl & 0x10:
                    sq = f"{sq}, ack {a}"
                if fl & 0x20:  # tcpdump prints the urgent pointer after the window
                    w = f"{w}, urg {int(rec['urg'][i])}"
            pfx = info[0]
            if v:
                vheads, vcks = self._vparts
                pfx = pfx + vheads[i]
                sq = vcks[i] + sq
            head = f"{ts}{pfx}{info[1]}Flags [{flags_text[fl & 0xFF]}]{sq}, win {w}"
            if oc & 3 == 1:
                line = f"{head}, options [nop,nop,TS val {tv} ecr {te}], length {pl}"
            elif oc & 3 == 2:
                opt, ok = lst._options(batch, rec, i, fl, info[3], thseq, thack, pl)
                if not ok:
                    append(head + opt + "\n")
                    continue
                line = f"{head}{opt}, length {pl}"
            else:
                line = f"{head}, length {pl}"
            if oc & 4:
                line += lst._payload(batch, self.app_cols, i, fl)
            append(line + "\n")
        return out


class Listing:
    """Formats batches of frames; keeps tcpdump's cross-packet state (seq table, -ttt)."""

    def __init__(self, opts: TcpdumpOptions, *, fast: bool = True) -> None:
        """`fast=False` prints every frame through the reference path (for tests)."""
        self.opts = opts
        self.use_fast = fast
        self.seqs = SeqTable()
        self.printer = FramePrinter(opts.verbose, opts.absolute, self.seqs)
        self.clock = _Clock(opts.tstyle)
        self.printed = 0
        self._flows: dict[bytes, tuple] = {}

    @property
    def done(self) -> bool:
        return self.opts.count is not None and self.printed >= self.opts.count

    # ------------------------------------------------------------ batches

    def format_batch(self, batch, records: np.ndarray | None = None) -> str:
        """The listing lines of every frame of `batch` (up to -c), joined."""
        n = len(batch)
        if self.opts.count is not None:
            n = min(n, self.opts.count - self.printed)
        if n <= 0:
            return ""
        if records is None:
            records = dissect_batch(batch)
        rec = records[:n]
        fast = self._fast_mask(batch, rec, n)
        if not self.use_fast:
            fast[:] = False
        lines = self._lines(batch, rec, n, fast)
        self.printed += n
        return "".join(lines)

    def _fast_mask(self, batch, rec: np.ndarray, n: int) -> np.ndarray:
        lt = batch.linktype[:n]
        cap = batch.caplen[:n].astype(np.int64)
        orig = batch.origlen[:n].astype(np.int64)
        l3 = rec["l3_off"].astype(np.int64)
        ver = rec["ip_version"]
        hl = rec["ip_hlen"].astype(np.int64)
        iplen = rec["ip_len"].astype(np.int64)
        th = rec["tcp_hlen"].astype(np.int64)
        et = rec["ethertype"]
        raw = (lt == 101) | (lt == 12) | (lt == 14) | (lt == 228) | (lt == 229)
        expect = np.where(lt == 1, 14 + 4 * rec["vlan_depth"].astype(np.int64),
                 np.where(lt == 113, 16, np.where(lt == 276, 20,
                 np.where(raw, 0, np.where((lt == 0) | (lt == 108), 4, -1)))))
        ip_et = np.where(ver == 4, 0x0800, 0x86DD)
        whole = (cap == orig) & (l3 + iplen <= cap)
        # A segment the capture cut short (snaplen) after its TCP header prints the same
        # line, as long as nothing prints its payload (a port printer) or checksum (-v).
        snapped = (cap < orig) & (l3 + iplen <= orig) & (self.opts.verbose == 0)
        snapped &= ~(np.isin(rec["sport"], _APP_PORTS) | np.isin(rec["dport"], _APP_PORTS))
        fast = (
            (rec["kind"] == _KIND_TCP)
            & (rec["stop_reason"] == 0)
            & (l3 == expect)
            & (raw | (lt == 0) | (lt == 108) | (et == ip_et))
            & (((lt != 113) & (lt != 276)) | (rec["vlan_depth"] == 0))
            & (whole | snapped)
            & (rec["ip_proto"] == 6)
            & (rec["l4_off"].astype(np.int64) == l3 + hl)
            & (((ver == 4) & (hl == 20)) | ((ver == 6) & (hl == 40)))
            & (rec["ip_frag_off"] == 0)
            & ((rec["ip_flags"] & 1) == 0)
            & (th >= 20)
            & (th <= iplen - hl)
            & ((rec["warnings"] & _WARN_LEN_FROM_FRAME) == 0)
        )
        if self.opts.verbose:
            fast &= rec["tcp_csum_status"] != 0
            fast &= (ver == 6) | (rec["ip_csum_status"] != 0)
        loop = (lt == 0) | (lt == 108)
        if loop.any():
            # tcpdump knows AF_INET (2) and the BSD AF_INET6 values (24, 28, 30) only.
            buf = np.frombuffer(batch.data, np.uint8)
            idx = np.flatnonzero(loop & fast)
            if idx.size:
                off = batch.offset[idx]
                b = buf[off[:, None] + np.arange(4)].astype(np.uint32)
                le = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16) | (b[:, 3] << 24)
                be = b[:, 3] | (b[:, 2] << 8) | (b[:, 1] << 16) | (b[:, 0] << 24)
                fam = np.where(lt[idx] == 108, be, le)
                swapped = np.where(lt[idx] == 108, le, be)
                fam = np.where(fam & 0xFFFF0000, swapped, fam)
                ok = np.where(ver[idx] == 4, fam == 2, (fam == 24) | (fam == 28) | (fam == 30))
                fast[idx[~ok]] = False
        return fast

    def _payload_mask(self, rec: np.ndarray) -> np.ndarray:
        """Rows whose payload tcpdump prints: by port, or as RST text with -v."""
        app = np.isin(rec["sport"], _APP_PORTS) | np.isin(rec["dport"], _APP_PORTS)
        if self.opts.verbose:
            app |= (rec["tcp_flags"] & 0x04) != 0
        return app & (rec["payload_len"] > 0)

    def _flow_keys(self, batch, rec: np.ndarray, n: int) -> list[bytes]:
        """Per row, the bytes that identify its direction of flow (and SLL2 interface)."""
        key = np.zeros(n, dtype=[("v", "u1"), ("pkt", "u1"), ("sp", ">u2"), ("dp", ">u2"),
                                 ("ifx", "u4"), ("src", "V16"), ("dst", "V16")])
        key["v"] = rec["ip_version"]
        key["sp"] = rec["sport"]
        key["dp"] = rec["dport"]
        key["src"] = rec["src"].view("V16").reshape(n)
        key["dst"] = rec["dst"].view("V16").reshape(n)
        sll2 = batch.linktype[:n] == 276
        if sll2.any():
            key["ifx"] = np.where(sll2, rec["ifindex"], 0)
            key["pkt"] = np.where(sll2, (rec["sll_pkttype"] & 0xFF) + 1, 0)
        return key.view(f"V{key.dtype.itemsize}").reshape(n)

    def _flow_info(self, b: bytes) -> tuple:
        """(link and IP prefix, addresses and ports, seq-table cell, rev) of one flow direction."""
        ver, pkt = b[0], b[1]
        sport = int.from_bytes(b[2:4], "big")
        dport = int.from_bytes(b[4:6], "big")
        ifx = int.from_bytes(b[6:10], "little")
        if ver == 4:
            src, dst = b[10:14], b[26:30]
            s, d = ip4_str(src), ip4_str(dst)
            ip = "IP "
        else:
            src, dst = b[10:26], b[26:42]
            s, d = ip6_str(src), ip6_str(dst)
            ip = "IP6 "
        link = ""
        if pkt:
            link = f"{self.printer.interface_name(ifx):<5} {_SLL_DIRS.get(pkt - 1, '?  ')} "
        rev, cell = self.seqs.cell(src, dst, sport, dport)
        info = (link + ip, f"{s}.{sport} > {d}.{dport}: ", cell, rev)
        self._flows[b] = info
        return info

    # ------------------------------------------------------------ lines

    def _lines(self, batch, rec: np.ndarray, n: int, fast: np.ndarray) -> list[str]:
        opts = self.opts
        keyarr = self._flow_keys(batch, rec, n)
        keys = keyarr.tolist()
        # Option layouts: 0 none, 1 exactly nop,nop,TS, 2 anything else;
        # +4 when a payload printer runs; -1 = not an ordinary segment (slow path).
        optlen = rec["opt_len"]
        optcls = np.where(optlen == 0, 0, 2).astype(np.int8)
        cand = np.flatnonzero(fast & (optlen == 12))
        if cand.size:
            buf = np.frombuffer(batch.data, np.uint8)
            pos = batch.offset[cand] + rec["opt_off"][cand].astype(np.int64)
            word = ((buf[pos].astype(np.uint32) << 24) | (buf[pos + 1].astype(np.uint32) << 16)
                    | (buf[pos + 2].astype(np.uint32) << 8) | buf[pos + 3])
            optcls[cand[word == _NOP_NOP_TS]] = 1
        app = self._payload_mask(rec) & fast
        optcls[app] |= 4
        optcls[~fast] = -1
        rows = _Rows(self, batch, rec, n, keys, optcls, app)
        if _native is None or opts.verbose or opts.tstyle not in (0, 1, 2, 4):
            return rows.format(range(n))
        return self._lines_native(batch, rec, n, keyarr, keys, optcls, rows)

    def _lines_native(self, batch, rec: np.ndarray, n: int, keyarr: np.ndarray,
                      keys: list[bytes], optcls: np.ndarray, rows: _Rows) -> list[str]:
        """Runs of ordinary rows formatted natively, the others by `rows`, in order.

        Both paths use tcpdump's relative-sequence bases: for the batch they live in
        `bases` (one pair per seq-table cell), copied into a cell before Python
        formats a row of its flow and back afterwards.
        """
        uniq, inverse = np.unique(keyarr, return_inverse=True)
        flow_rows = np.asarray(inverse.reshape(-1), np.int32)
        nflows = len(uniq)
        wanted = np.zeros(nflows, bool)
        wanted[flow_rows[optcls >= 0]] = True
        flows = self._flows
        prefixes = [""] * nflows
        rev = np.zeros(nflows, np.int8)
        cell_arr = np.full(nflows, -1, np.int32)  # -1: no ordinary row, never formatted natively
        cells: list[list] = []
        cell_index: dict[int, int] = {}
        for f, kb in zip(np.flatnonzero(wanted).tolist(), uniq[wanted].tolist()):
            info = flows.get(kb) or self._flow_info(kb)
            prefixes[f] = info[0] + info[1]
            rev[f] = info[3]
            ci = cell_index.setdefault(id(info[2]), len(cells))
            if ci == len(cells):
                cells.append(info[2])
            cell_arr[f] = ci
        bases = np.array([-1 if c[0] is None else v for c in cells for v in (c[0], c[1])],
                         np.int64)

        def store(ci: int) -> None:  # bases -> the shared cell
            if bases[2 * ci] >= 0:
                cells[ci][0], cells[ci][1] = int(bases[2 * ci]), int(bases[2 * ci + 1])

        def load(ci: int) -> None:  # the shared cell -> bases
            c = cells[ci]
            if c[0] is not None:
                bases[2 * ci], bases[2 * ci + 1] = c[0], c[1]

        records = np.ascontiguousarray(rec)
        ts_us = np.ascontiguousarray(batch.ts_ns[:n] // 1000)
        frames = np.arange(batch.first_frame, batch.first_frame + n, dtype=np.int64)
        oc = np.ascontiguousarray(optcls)
        out: list[str] = []
        i = 0
        while i < n:
            text, stop = _native.format_lines(records, ts_us, frames, flow_rows, oc, i, prefixes,
                                              cell_arr, bases, rev, _FLAGS_LIST, self.opts.tstyle,
                                              self.opts.absolute, self.opts.number)
            out.append(text)
            if stop >= n:
                break
            # A row for Python: it sees (and may change) its connection's bases.
            ci = int(cell_arr[flow_rows[stop]])
            # (-1: a key with no ordinary row, e.g. another SLL2 interface of a connection
            # whose cell it may share: synchronise every cell, which is rare.)
            touched = (ci,) if ci >= 0 else range(len(cells))
            for c in touched:
                store(c)
            out.extend(rows.format((stop,)))
            for c in touched:
                load(c)
            i = stop + 1
        for ci in range(len(cells)):
            store(ci)
        return out

    def _stamps(self, batch, n: int) -> list[str]:
        """The timestamp column of `n` frames (with its trailing space)."""
        style = self.opts.tstyle
        us = batch.ts_ns[:n] // 1000
        if style == 1:
            return [""] * n
        if style in (3, 5):
            stamp = self.clock.stamp
            return [stamp(u) for u in us.tolist()]
        sec = us // 1_000_000
        frac = us % 1_000_000
        # The fraction, ".ffffff ", for every row in one go.
        cells = np.empty((n, 8), np.uint8)
        cells[:, 0] = 0x2E
        cells[:, 7] = 0x20
        for k, div in enumerate((100000, 10000, 1000, 100, 10, 1)):
            cells[:, k + 1] = (frac // div) % 10 + 0x30
        fr = cells.tobytes().decode("ascii")
        heads = {}
        head_of = self.clock.head
        for u in np.unique(sec).tolist():
            heads[u] = head_of(u)
        if None in heads.values():
            return [f"{heads[s]}{fr[8 * i : 8 * i + 8]}" if heads[s] is not None
                    else "[Error converting time] " for i, s in enumerate(sec.tolist())]
        return [heads[s] + fr[j : j + 8] for s, j in zip(sec.tolist(), range(0, 8 * n, 8))]

    def _options(self, batch, rec: np.ndarray, i: int, fl: int, rev: int, thseq: int,
                 thack: int, pl: int) -> tuple[str, bool]:
        """Options other than nop,nop,TS: tcpdump's walk over the bytes."""
        off = int(batch.offset[i])
        r = rec[i]
        # The datagram's end, or the capture's if snaplen cut the segment after its header.
        end = off + min(int(r["l3_off"]) + int(r["ip_len"]), int(batch.caplen[i]))
        cur = Cursor(batch.data, end)
        cur.proto = "tcp"
        hoff = off + int(r["opt_off"])
        olen = int(r["opt_len"])
        try:
            ok = print_tcp_options(cur, hoff, olen, fl, rev, thseq, thack, hoff + olen, pl)
        except Truncated:  # not expected: the fast path has the whole datagram
            cur.out.append(f" [|{cur.proto}]")
            ok = False
        return "".join(cur.out), ok

    def _payload(self, batch, cols: dict[int, tuple], i: int, fl: int) -> str:
        """What tcpdump prints after ``length N`` for this segment's payload."""
        off = int(batch.offset[i])
        l3, iplen, l4, hlen, sport, dport, pl = cols[i]
        cur = Cursor(batch.data, off + l3 + iplen)
        cur.proto = "tcp"
        bp = off + l4 + hlen
        try:
            if fl & 0x04 and self.opts.verbose:
                print_rst_data(cur, bp, pl)
            else:
                print_tcp_payload(cur, bp, pl, sport, dport, self.opts.verbose)
        except Truncated:
            cur.out.append(f" [|{cur.proto}]")
        return "".join(cur.out)

    def _slow(self, batch, i: int) -> str:
        off = int(batch.offset[i])
        frame = bytes(batch.data[off : off + int(batch.caplen[i])])
        return self.printer.frame(frame, int(batch.linktype[i]), int(batch.origlen[i]))

    # ------------------------------------------------------------ -v

    @staticmethod
    def _verbose_parts_all(rec: np.ndarray, fast: np.ndarray) -> tuple[list[str], list[str]]:
        """Per row: the -v IP header text after ``IP ``/``IP6 ``, and the TCP checksum text."""
        n = len(rec)
        heads = [""] * n
        cks = [""] * n
        idx = np.flatnonzero(fast)
        if not idx.size:
            return heads, cks
        sub = rec[idx]
        cols = sub[["ip_version", "ip_tos", "ip_ttl", "ip_id", "ip_flags", "ip_len", "ip_csum",
                    "ip_csum_calc", "ip_csum_status", "ip6_flow", "tcp_csum", "tcp_csum_calc",
                    "tcp_csum_status"]].tolist()
        tos_t, ttl_t, flags_t = _TOS_TEXT, _TTL_TEXT, _IPFLAGS_TEXT
        for i, (ver, tos, ttl, ipid, ipfl, iplen, ipc, ipcc, ipcs, flow, tc, tcc, tcs) in zip(
                idx.tolist(), cols):
            if ver == 4:
                bad = f", bad cksum {ipc:x} (->{ipcc:x})!" if ipcs != _CSUM_OK else ""
                heads[i] = (f"{tos_t[tos]}{ttl_t[ttl]}, id {ipid}, offset 0, flags "
                            f"[{flags_t[ipfl & 7]}], proto TCP (6), length {iplen}{bad})\n    ")
            else:
                cls = f"class 0x{tos:02x}, " if tos else ""
                fls = f"flowlabel 0x{flow:05x}, " if flow else ""
                heads[i] = (f"({cls}{fls}hlim {ttl}, next-header TCP (6) "
                            f"payload length: {iplen - 40}) ")
            if tcs == _CSUM_OK:
                cks[i] = f", cksum 0x{tc:04x} (correct)"
            else:
                cks[i] = f", cksum 0x{tc:04x} (incorrect -> 0x{tcc:04x})"
        return heads, cks


_TOS_TEXT = tuple(f"(tos 0x{t:x}{('', ',ECT(1)', ',ECT(0)', ',CE')[t & 3]}" for t in range(256))
_TTL_TEXT = ("",) + tuple(f", ttl {t}" for t in range(1, 256))
_IPFLAGS_TEXT = tuple(", ".join(n for bit, n in ((1, "+"), (2, "DF"), (4, "rsvd")) if f & bit)
                      or "none" for f in range(8))


def write_listing(source, opts: TcpdumpOptions, out: IO[str], err: IO[str] | None = None) -> int:
    """Print the listing of capture `source` (a path or ``-``) to `out`; return frames printed.

    Damage that stops reading inside the file is reported on `err` (stderr) after
    the frames before it, as tcpdump does.
    """
    from tcpscope.capture import open_capture

    listing = Listing(opts)
    with open_capture(source) as reader:
        for batch in reader:
            text = listing.format_batch(batch)
            if text:
                out.write(text)
            if listing.done:
                break
        damage = reader.damage
    out.flush()
    if damage is not None and not listing.done:
        name = "-" if source == "-" else str(source)
        print(f"tcpscope: {name}: {damage}", file=err or sys.stderr)
    return listing.printed
