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

from .tcpdump_frame import FLAGS_TEXT, IPPROTO_NAMES, FramePrinter, SeqTable, ip4_str, ip6_str
from .tcpdump_options import Cursor, Truncated, print_tcp_options

__all__ = ["TcpdumpOptions", "Listing", "write_listing", "format_timestamp"]

M32 = 0xFFFFFFFF

#: Ports whose payload tcpdump hands to an application printer (either side).
APP_PORTS = frozenset({21, 22, 23, 25, 43, 53, 80, 179, 323, 554, 639, 646, 1723, 2049,
                       6379, 6633, 6653, 8080, 8554, 10288})

_KIND_TCP = KIND["TCP"]
_CSUM_OK, _CSUM_BAD, _CSUM_OFFLOAD = CSUM["OK"], CSUM["BAD"], CSUM["OFFLOAD"]
_WARN_LEN_FROM_FRAME = WARNING.get("IP_LENGTH_FROM_FRAME", 0)
_SLL_DIRS = {0: "In ", 1: "B  ", 2: "M  ", 3: "P  ", 4: "Out"}
_NOP_NOP_TS = 0x0101080A


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


class Listing:
    """Formats batches of frames; keeps tcpdump's cross-packet state (seq table, -ttt)."""

    def __init__(self, opts: TcpdumpOptions) -> None:
        self.opts = opts
        self.seqs = SeqTable()
        self.printer = FramePrinter(opts.verbose, opts.absolute, self.seqs)
        self.clock = _Clock(opts.tstyle)
        self.printed = 0
        self._flows: dict[bytes, tuple] = {}
        self._ifnames: dict[int, str] = {}

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
        fast = (
            (rec["kind"] == _KIND_TCP)
            & (rec["stop_reason"] == 0)
            & (l3 == expect)
            & (raw | (lt == 0) | (lt == 108) | (et == ip_et))
            & (((lt != 113) & (lt != 276)) | (rec["vlan_depth"] == 0))
            & (cap == orig)
            & (l3 + iplen <= cap)
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
                fam = np.where(lt[idx] == 108, be, np.where(le & 0xFFFF0000, be, le))
                ok = np.where(ver[idx] == 4, fam == 2, (fam == 24) | (fam == 28) | (fam == 30))
                fast[idx[~ok]] = False
        # Payload that tcpdump decodes by port (or prints as RST text with -v).
        has_payload = rec["payload_len"] > 0
        app = np.isin(rec["sport"], list(APP_PORTS)) | np.isin(rec["dport"], list(APP_PORTS))
        if self.opts.verbose:
            app |= (rec["tcp_flags"] & 0x04) != 0
        fast &= ~(has_payload & app)
        return fast

    def _flow_ids(self, batch, rec: np.ndarray, idx: np.ndarray) -> tuple[list[int], list[tuple]]:
        """Per fast row, an index into a list of per-flow tuples (prefix, addrs, key, rev)."""
        m = idx.size
        key = np.zeros(m, dtype=[("v", "u1"), ("pkt", "u1"), ("sp", ">u2"), ("dp", ">u2"),
                                 ("ifx", "u4"), ("src", "V16"), ("dst", "V16")])
        sub = rec[idx]
        key["v"] = sub["ip_version"]
        key["sp"] = sub["sport"]
        key["dp"] = sub["dport"]
        key["src"] = sub["src"].view("V16").reshape(m)
        key["dst"] = sub["dst"].view("V16").reshape(m)
        lt = batch.linktype[idx]
        sll2 = lt == 276
        if sll2.any():
            key["ifx"] = np.where(sll2, sub["ifindex"], 0)
            key["pkt"] = np.where(sll2, sub["sll_pkttype"] & 0xFF, 0) + sll2
        flat = key.view(f"V{key.dtype.itemsize}")
        uniq, inv = np.unique(flat, return_inverse=True)
        infos = []
        cache = self._flows
        for u in uniq:
            b = u.tobytes()
            info = cache.get(b)
            if info is None:
                info = self._flow_info(b)
                cache[b] = info
            infos.append(info)
        return inv.reshape(-1).tolist(), infos

    def _flow_info(self, b: bytes) -> tuple:
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
            link = f"{self.printer._ifname(ifx):<5} {_SLL_DIRS.get(pkt - 1, '?  ')} "
        rev = 1 if sport > dport or (sport == dport and src > dst) else 0
        key = (dst, src, (dport << 16) | sport) if rev else (src, dst, (sport << 16) | dport)
        return (link + ip, f"{s}.{sport} > {d}.{dport}: ", key, rev)

    # ------------------------------------------------------------ lines

    def _lines(self, batch, rec: np.ndarray, n: int, fast: np.ndarray) -> list[str]:
        opts = self.opts
        v = opts.verbose
        absolute = opts.absolute
        number = opts.number
        first = batch.first_frame
        us_list = (batch.ts_ns[:n] // 1000).tolist()
        stamp = self.clock.stamp
        printer = self.printer
        data = batch.data
        offs = batch.offset[:n].tolist()
        caps = batch.caplen[:n].tolist()
        origs = batch.origlen[:n].tolist()
        lts = batch.linktype[:n].tolist()
        fast_l = fast.tolist()

        idx = np.flatnonzero(fast)
        fid_l = [0] * n
        infos: list[tuple] = []
        if idx.size:
            fids, infos = self._flow_ids(batch, rec, idx)
            for i, f in zip(idx.tolist(), fids):
                fid_l[i] = f
        # Option layouts: 0 none, 1 exactly nop,nop,TS, 2 anything else.
        optlen = rec["opt_len"]
        optcls = np.where(optlen == 0, 0, 2).astype(np.int8)
        cand = np.flatnonzero(fast & (optlen == 12))
        if cand.size:
            buf = np.frombuffer(data, np.uint8)
            pos = batch.offset[cand] + rec["opt_off"][cand].astype(np.int64)
            word = ((buf[pos].astype(np.uint32) << 24) | (buf[pos + 1].astype(np.uint32) << 16)
                    | (buf[pos + 2].astype(np.uint32) << 8) | buf[pos + 3])
            optcls[cand[word == _NOP_NOP_TS]] = 1
        cols = rec[["tcp_flags", "seq", "ack", "win", "urg", "payload_len", "ts_val", "ts_ecr",
                    "opt_off", "opt_len", "l3_off", "ip_len"]]
        flags_l = cols["tcp_flags"].tolist()
        seq_l = cols["seq"].tolist()
        ack_l = cols["ack"].tolist()
        win_l = cols["win"].tolist()
        urg_l = cols["urg"].tolist()
        plen_l = cols["payload_len"].tolist()
        tsv_l = cols["ts_val"].tolist()
        tse_l = cols["ts_ecr"].tolist()
        ooff_l = cols["opt_off"].tolist()
        olen_l = cols["opt_len"].tolist()
        l3_l = cols["l3_off"].tolist()
        iplen_l = cols["ip_len"].tolist()
        optcls_l = optcls.tolist()
        if v:
            vcols = self._verbose_columns(rec)

        table = self.seqs.table
        out: list[str] = []
        append = out.append
        for i in range(n):
            head = stamp(us_list[i])
            if number:
                head = f"{first + i:5d}  {head}"
            if not fast_l[i]:
                off = offs[i]
                frame = bytes(data[off : off + caps[i]])
                append(head + printer.frame(frame, lts[i], origs[i]) + "\n")
                continue
            pfx, addrs, key, rev = infos[fid_l[i]]
            fl = flags_l[i]
            s = seq_l[i]
            a = ack_l[i]
            thseq = thack = 0
            if fl & 0x10 and not absolute:
                th = table.get(key)
                if th is None or fl & 0x02:
                    th = [a - 1 & M32, s] if rev else [s, a - 1 & M32]
                    table[key] = th
                elif rev:
                    s = (s - th[1]) & M32
                    a = (a - th[0]) & M32
                else:
                    s = (s - th[0]) & M32
                    a = (a - th[1]) & M32
                thseq, thack = th
            pl = plen_l[i]
            if pl:
                sq = f", seq {s}:{(s + pl) & M32}"
            elif fl & 0x07 or v > 1:
                sq = f", seq {s}"
            else:
                sq = ""
            if v:
                pfx, cks = self._verbose_parts(vcols, i, pfx)
            else:
                cks = ""
            oc = optcls_l[i]
            if oc == 0:
                opt = ""
            elif oc == 1:
                opt = f", options [nop,nop,TS val {tsv_l[i]} ecr {tse_l[i]}]"
            else:
                off = offs[i]
                cur = Cursor(data, off + l3_l[i] + iplen_l[i])
                cur.proto = "tcp"
                hoff = off + ooff_l[i]
                try:
                    ok = print_tcp_options(cur, hoff, olen_l[i], fl, rev, thseq, thack,
                                           hoff + olen_l[i], pl)
                except Truncated:  # cannot happen: the whole datagram is captured
                    ok = False
                    cur.out.append(f" [|{cur.proto}]")
                opt = "".join(cur.out)
                if not ok:
                    ack_s = f", ack {a}" if fl & 0x10 else ""
                    urg_s = f", urg {urg_l[i]}" if fl & 0x20 else ""
                    append(f"{head}{pfx}{addrs}Flags [{FLAGS_TEXT[fl & 0xFF]}]{cks}{sq}{ack_s}"
                           f", win {win_l[i]}{urg_s}{opt}\n")
                    continue
            if fl & 0x30:
                ack_s = f", ack {a}" if fl & 0x10 else ""
                urg_s = f", urg {urg_l[i]}" if fl & 0x20 else ""
                append(f"{head}{pfx}{addrs}Flags [{FLAGS_TEXT[fl & 0xFF]}]{cks}{sq}{ack_s}"
                       f", win {win_l[i]}{urg_s}{opt}, length {pl}\n")
            else:
                append(f"{head}{pfx}{addrs}Flags [{FLAGS_TEXT[fl & 0xFF]}]{cks}{sq}"
                       f", win {win_l[i]}{opt}, length {pl}\n")
        return out

    # ------------------------------------------------------------ -v

    @staticmethod
    def _verbose_columns(rec: np.ndarray) -> dict[str, list]:
        names = ["ip_version", "ip_tos", "ip_ttl", "ip_id", "ip_flags", "ip_len", "ip_csum",
                 "ip_csum_calc", "ip_csum_status", "ip6_flow", "tcp_csum", "tcp_csum_calc",
                 "tcp_csum_status"]
        return {k: rec[k].tolist() for k in names}

    @staticmethod
    def _verbose_parts(c: dict[str, list], i: int, pfx: str) -> tuple[str, str]:
        """(prefix with the IP header details, TCP checksum text) for fast row i."""
        if c["ip_version"][i] == 4:
            tos = c["ip_tos"][i]
            ecn = ("", ",ECT(1)", ",ECT(0)", ",CE")[tos & 3]
            ttl = c["ip_ttl"][i]
            ttl_s = f", ttl {ttl}" if ttl else ""
            fl = c["ip_flags"][i]
            fls = ", ".join(n for bit, n in ((1, "+"), (2, "DF"), (4, "rsvd")) if fl & bit) or "none"
            bad = ""
            if c["ip_csum_status"][i] != _CSUM_OK:
                bad = f", bad cksum {c['ip_csum'][i]:x} (->{c['ip_csum_calc'][i]:x})!"
            pfx = (f"{pfx}(tos 0x{tos:x}{ecn}{ttl_s}, id {c['ip_id'][i]}, offset 0, flags [{fls}], "
                   f"proto TCP (6), length {c['ip_len'][i]}{bad})\n    ")
        else:
            flow = c["ip6_flow"][i]
            tclass = c["ip_tos"][i]
            cls = f"class 0x{tclass:02x}, " if tclass else ""
            fls = f"flowlabel 0x{flow:05x}, " if flow else ""
            pfx = (f"{pfx}({cls}{fls}hlim {c['ip_ttl'][i]}, next-header TCP (6) "
                   f"payload length: {c['ip_len'][i] - 40}) ")
        st = c["tcp_csum_status"][i]
        if st == _CSUM_OK:
            cks = f", cksum 0x{c['tcp_csum'][i]:04x} (correct)"
        else:
            cks = f", cksum 0x{c['tcp_csum'][i]:04x} (incorrect -> 0x{c['tcp_csum_calc'][i]:04x})"
        return pfx, cks


def write_listing(source, opts: TcpdumpOptions, out: IO[str], err: IO[str] | None = None) -> int:
    """Print the listing of capture `source` (a path or ``-``) to `out`; return frames printed.

    Damage that stops reading inside the file is reported on `err` (stderr) after
    the frames before it, as tcpdump does.
    """
    from tcpscope.capture.reader import open_capture

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
