"""TCP options as tcpdump 4.99 prints them: ``options [mss 1460,sackOK,TS val 1 ecr 0,...]``.

The text follows tcpdump's own walk over the option bytes, including its
quirks, because `tcpscope read` promises tcpdump's text byte for byte:

- a bad length stops the list with ``[bad opt]`` and closes it with ``]``;
- an option whose declared data was not captured stops with `` [|tcp]>``
  (tcpdump closes the bracket it opened with ``>``: a long-standing quirk);
- an option list that runs past the captured bytes without a declared
  length in error stops with `` [|tcp]`` and ends the packet's line;
- ``[len N]`` follows an option whose length differs from the one its kind
  requires; ``eol`` ends the walk;
- SACK edges are relative to the peer's initial sequence number, as tcpdump
  computes it (see `tcpdump_frame.SeqTable`), unless ``-S``.

The walk is written against `Cursor`, which raises `Truncated` where tcpdump's
bounds-checked reads would abandon the packet.
"""
from __future__ import annotations

__all__ = ["Cursor", "Truncated", "print_tcp_options", "OPTION_NAMES"]


class Truncated(Exception):
    """A read past the captured bytes: tcpdump prints `` [|proto]`` and stops the packet."""


class Cursor:
    """The captured bytes of one frame, with tcpdump's notion of where they end.

    ``end`` is tcpdump's "snapend": the end of the captured bytes, lowered by
    the IP layer to the end of the datagram. ``proto`` is the name tcpdump
    would print in a truncation marker (``[|tcp]``, ``[|mptcp]``, ...).
    """

    __slots__ = ("buf", "end", "proto", "out")

    def __init__(self, buf: bytes, end: int | None = None) -> None:
        self.buf = buf
        self.end = len(buf) if end is None else end
        self.proto = ""
        self.out: list[str] = []

    def ttest(self, off: int, n: int) -> bool:
        return 0 <= off and off + n <= self.end

    def u8(self, off: int) -> int:
        if off < 0 or off >= self.end:
            raise Truncated
        return self.buf[off]

    def be16(self, off: int) -> int:
        if off < 0 or off + 2 > self.end:
            raise Truncated
        b = self.buf
        return (b[off] << 8) | b[off + 1]

    def be32(self, off: int) -> int:
        if off < 0 or off + 4 > self.end:
            raise Truncated
        return int.from_bytes(self.buf[off : off + 4], "big")

    def be64(self, off: int) -> int:
        if off < 0 or off + 8 > self.end:
            raise Truncated
        return int.from_bytes(self.buf[off : off + 8], "big")

    def take(self, off: int, n: int) -> bytes:
        if off < 0 or off + n > self.end:
            raise Truncated
        return bytes(self.buf[off : off + n])

    def trunc(self) -> None:
        """tcpdump's nd_print_trunc: a marker, the packet goes on."""
        self.out.append(f" [|{self.proto}]")


# tcpdump's tcp_option_values: the name printed before each option's data.
OPTION_NAMES = {
    0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 6: "echo",
    7: "echoreply", 8: "TS", 11: "cc", 12: "ccnew", 13: "", 19: "md5", 20: "scps",
    28: "uto", 29: "tcp-ao", 30: "mptcp", 34: "tfo", 254: "exp",
}

_MPTCP_SUBTYPES = (
    "capable", "join", "dss", "add-addr", "rem-addr", "prio", "fail", "fast-close", "unknown",
)
_MPTCP_ADDR_SUBECHO = {0x6: "v0-ip6", 0x4: "v0-ip4", 0x1: "v1-echo", 0x0: "v1"}

_SYN, _ACK = 0x02, 0x10


class _Bad(Exception):
    """tcpdump's `goto bad`: ``[bad opt]``, close the list, end the TCP line."""


class _LenTrunc(Exception):
    """tcpdump's LENCHECK on uncaptured bytes (`goto trunc`): `` [|proto]>``, end the line."""


def print_tcp_options(cur: Cursor, cp: int, hlen: int, flags: int, rev: int,
                      thseq: int, thack: int, data_off: int = 0, data_len: int = 0) -> bool:
    """Append ``, options [...]`` for the `hlen` option bytes at `cp`.

    Returns False when tcpdump stops printing the packet after the options
    (``[bad opt]`` or a truncated option); raises `Truncated` when tcpdump
    would abandon the packet with a bare `` [|proto]``.
    """
    out = cur.out
    out.append(", options [")
    ch = ""
    try:
        while hlen > 0:
            if ch:
                out.append(ch)
            opt = cur.u8(cp)
            cp += 1
            if opt == 0 or opt == 1:
                ln = 1
            else:
                ln = cur.u8(cp)
                cp += 1
                if ln < 2 or ln > hlen:
                    raise _Bad
                hlen -= 1
            hlen -= 1
            datalen = 0

            def lencheck(n: int) -> None:
                if n > hlen:
                    raise _Bad
                if not cur.ttest(cp, n):
                    raise _LenTrunc

            name = OPTION_NAMES.get(opt)
            out.append(name if name is not None else f"unknown-{opt}")
            if opt == 2:  # mss
                datalen = 2
                lencheck(2)
                out.append(f" {cur.be16(cp)}")
            elif opt == 3:  # wscale
                datalen = 1
                lencheck(1)
                out.append(f" {cur.u8(cp)}")
            elif opt == 5:  # sack
                datalen = ln - 2
                if datalen % 8 != 0:
                    out.append(" invalid sack")
                else:
                    out.append(f" {datalen // 8} ")
                    base = thseq if rev else thack
                    for i in range(0, datalen, 8):
                        lencheck(i + 4)
                        s = cur.be32(cp + i)
                        lencheck(i + 8)
                        e = cur.be32(cp + i + 4)
                        out.append(f"{{{(s - base) & 0xFFFFFFFF}:{(e - base) & 0xFFFFFFFF}}}")
            elif opt in (11, 12, 13, 6, 7):  # cc, ccnew, ccecho, echo, echoreply
                datalen = 4
                lencheck(4)
                out.append(f" {cur.be32(cp)}")
            elif opt == 8:  # timestamps
                datalen = 8
                lencheck(8)
                out.append(f" val {cur.be32(cp)} ecr {cur.be32(cp + 4)}")
            elif opt == 19:  # md5 signature (tcpdump built with libcrypto says it cannot check)
                datalen = 16
                lencheck(16)
                out.append(" ")
                out.append(_md5_text(cur, cp, data_off, data_len))
            elif opt == 20:  # scps
                datalen = 2
                lencheck(2)
                out.append(f" cap {cur.u8(cp):02x} id {cur.u8(cp + 1)}")
            elif opt == 29:  # tcp-ao
                datalen = ln - 2
                if datalen < 2:
                    out.append(" (invalid)")
                else:
                    lencheck(1)
                    out.append(f" keyid {cur.u8(cp)}")
                    lencheck(2)
                    out.append(f" rnextkeyid {cur.u8(cp + 1)}")
                    if datalen > 2:
                        out.append(" mac 0x")
                        for i in range(2, datalen):
                            lencheck(i + 1)
                            out.append(f"{cur.u8(cp + i):02x}")
            elif opt in (0, 1, 4):
                pass
            elif opt == 28:  # user timeout
                datalen = 2
                lencheck(2)
                uto = cur.be16(cp)
                out.append(f" 0x{uto:x}")
                uto = (uto >> 1) * 60 if uto & 1 else uto >> 1
                out.append(f" {uto}")
            elif opt == 30:  # mptcp
                datalen = ln - 2
                lencheck(datalen)
                saved_end = cur.end
                cur.end = min(cp - 2 + ln, cur.end)
                try:
                    ok = _mptcp_print(cur, cp - 2, ln, flags)
                finally:
                    cur.end = saved_end
                if not ok:
                    raise _Bad
            elif opt == 34:  # tfo
                datalen = ln - 2
                lencheck(datalen)
                out.append(" ")
                _fastopen(cur, cp, datalen, False)
            elif opt == 254:  # experimental (RFC 6994)
                datalen = ln - 2
                lencheck(datalen)
                if datalen < 2:
                    raise _Bad
                magic = cur.be16(cp)
                out.append("-")
                if magic == 0xF989:
                    _fastopen(cur, cp + 2, datalen - 2, True)
                else:
                    out.append(f"{magic:04x}")
            else:
                datalen = ln - 2
                if datalen:
                    out.append(" 0x")
                for i in range(datalen):
                    lencheck(i + 1)
                    out.append(f"{cur.u8(cp + i):02x}")

            cp += datalen
            hlen -= datalen
            datalen += 1
            if opt != 0 and opt != 1:
                datalen += 1
            if datalen != ln:
                out.append(f"[len {ln}]")
            ch = ","
            if opt == 0:
                break
        out.append("]")
        return True
    except _Bad:
        out.append("[bad opt]")
        if ch:
            out.append("]")
        return False
    except _LenTrunc:
        cur.trunc()
        if ch:
            out.append(">")
        return False


def _md5_text(cur: Cursor, cp: int, data_off: int, data_len: int) -> str:
    # tcpdump built with libcrypto (as Debian's is) and given no secret (-M)
    # cannot check the signature and says why; the 16 bytes follow in hex.
    why = "snaplen too short, " if data_off + data_len > cur.end else (
        "shared secret not supplied with -M, ")
    return why + "can't check - " + "".join(f"{cur.u8(cp + i):02x}" for i in range(16))


def _fastopen(cur: Cursor, cp: int, datalen: int, exp: bool) -> None:
    out = cur.out
    if exp:
        out.append("tfo")
    if datalen == 0:
        out.append(" cookiereq")
    elif datalen % 2 != 0 or datalen < 4 or datalen > 16:
        out.append(" (invalid)")
    else:
        out.append(" cookie ")
        out.append("".join(f"{cur.u8(cp + i):02x}" for i in range(datalen)))



def _dss_number(cur: Cursor, p: int, left: int, *, wide: bool) -> tuple[int, int] | None:
    """An MPTCP DSS data ack or sequence number at `p`: 8 bytes if `wide`, else 4.
    Printed; gives (p, left) past it, or None if fewer than that are left."""
    size = 8 if wide else 4
    if left < size:
        return None
    cur.out.append(str(cur.be64(p) if wide else cur.be32(p)))
    return p + size, left - size

def _mptcp_print(cur: Cursor, cp: int, ln: int, flags: int) -> bool:
    """tcpdump's mptcp_print: `` LEN subtype details``; False means ``[bad opt]``."""
    cur.proto = "mptcp"
    out = cur.out
    if ln < 3:
        return False
    subtype = min((cur.u8(cp + 2) >> 4) & 0xF, 8)
    out.append(f" {ln} {_MPTCP_SUBTYPES[subtype]}")
    if subtype == 0:  # capable
        if not (((ln == 12 or ln == 4) and flags & _SYN)
                or ((ln == 20 or ln == 22) and (flags & (_SYN | _ACK)) == _ACK)):
            return False
        version = cur.u8(cp + 2) & 0xF
        if version > 1:
            out.append(f" Unknown Version ({version})")
            return True
        out.append(f" v{version}")
        if cur.u8(cp + 3) & 0x80:
            out.append(" csum")
        if ln == 12 or ln >= 20:
            out.append(f" {{0x{cur.be64(cp + 4):x}")
            if ln >= 20:
                out.append(f",0x{cur.be64(cp + 12):x}")
            out.append("}")
        return True
    if subtype == 1:  # join
        if not ((ln == 12 and flags & _SYN)
                or (ln == 16 and (flags & (_SYN | _ACK)) == (_SYN | _ACK))
                or (ln == 24 and flags & _ACK)):
            return False
        if ln != 24:
            if cur.u8(cp + 2) & 1:
                out.append(" backup")
            out.append(f" id {cur.u8(cp + 3)}")
        if ln == 12:
            out.append(f" token 0x{cur.be32(cp + 4):x} nonce 0x{cur.be32(cp + 8):x}")
        elif ln == 16:
            out.append(f" hmac 0x{cur.be64(cp + 4):x} nonce 0x{cur.be32(cp + 12):x}")
        else:
            # tcpdump reads the 20 MAC bytes without a bounds check.
            out.append(" hmac 0x" + "".join(f"{b:02x}" for b in cur.buf[cp + 4 : cp + 24]))
        return True
    if subtype == 2:  # dss
        if ln < 4 or flags & _SYN:
            return False
        dflags = cur.u8(cp + 3)
        if dflags & 0x10:
            out.append(" fin")
        p, left = cp + 4, ln - 4
        if dflags & 0x01:
            out.append(" ack ")
            if not (step := _dss_number(cur, p, left, wide=bool(dflags & 0x02))):
                return False
            p, left = step
        if dflags & 0x04:
            out.append(" seq ")
            if not (step := _dss_number(cur, p, left, wide=bool(dflags & 0x08))):
                return False
            p, left = step
            if left < 4:
                return False
            out.append(f" subseq {cur.be32(p)}")
            p, left = p + 4, left - 4
            if left < 2:
                return False
            out.append(f" len {cur.be16(p)}")
            p, left = p + 2, left - 2
            if left >= 2:
                out.append(f" csum 0x{cur.be16(p):x}")
                left -= 2
        return left == 0
    if subtype == 3:  # add-addr
        if ln not in (8, 10, 16, 18, 20, 22, 28, 30):
            return False
        out.append(" " + _MPTCP_ADDR_SUBECHO.get(cur.u8(cp + 2) & 0xF, "[bad version/echo]"))
        out.append(f" id {cur.u8(cp + 3)}")
        if ln in (8, 10, 16, 18):
            out.append(" " + ".".join(str(b) for b in cur.take(cp + 4, 4)))
            if ln in (10, 18):
                out.append(f":{cur.be16(cp + 8)}")
            if ln == 16:
                out.append(f" hmac 0x{cur.be64(cp + 8):x}")
            if ln == 18:
                out.append(f" hmac 0x{cur.be64(cp + 10):x}")
        else:
            from ipaddress import IPv6Address

            out.append(" " + str(IPv6Address(cur.take(cp + 4, 16))))
            if ln in (22, 30):
                out.append(f":{cur.be16(cp + 20)}")
            if ln == 28:
                out.append(f" hmac 0x{cur.be64(cp + 20):x}")
            if ln == 30:
                out.append(f" hmac 0x{cur.be64(cp + 22):x}")
        return True
    if subtype == 4:  # rem-addr
        if ln < 4:
            return False
        out.append(" id")
        for i in range(ln - 3):
            out.append(f" {cur.u8(cp + 3 + i)}")
        return True
    if subtype == 5:  # prio
        if ln not in (3, 4):
            return False
        out.append(" backup" if cur.u8(cp + 2) & 1 else " non-backup")
        if ln == 4:
            out.append(f" id {cur.u8(cp + 3)}")
        return True
    if subtype == 6:  # fail
        if ln != 12:
            return False
        out.append(f" seq {cur.be64(cp + 4)}")
        return True
    if subtype == 7:  # fast-close
        if ln != 12:
            return False
        out.append(f" key 0x{cur.be64(cp + 4):x}")
        return True
    return True
