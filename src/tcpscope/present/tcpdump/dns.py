"""DNS over TCP (port 53) as tcpdump 4.99 prints it after ``length N``.

The message follows its two-byte length prefix. A query prints as
`` 17177+ [1au] A? www.tcpdump.org. (56)``, a response as
`` 17177*- 2/2/5 A 192.139.46.66, A 198.199.88.104 (224)``; ``-v`` adds the
owner names of answers, ``-vv`` the question of a response and the authority
and additional sections (``ns:``, ``ar:``) including EDNS options.
"""
from __future__ import annotations

from ipaddress import IPv6Address

from .cursor import Cursor, Truncated, fn_print_char

__all__ = ["domain_print"]

_NS_OPS = ("", " inv_q", " stat", " op3", " notify", " update", " op6", " op7", " op8",
           " updateA", " updateD", " updateDA", " updateM", " updateMA", " zoneInit", " zoneRef")
_NS_RCODES = ("", " FormErr", " ServFail", " NXDomain", " NotImp", " Refused", " YXDomain",
              " YXRRSet", " NXRRSet", " NotAuth", " NotZone", " Resp11", " Resp12", " Resp13",
              " Resp14", " NoChange", " BadVers")
_TYPES = {
    1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR",
    10: "NULL", 11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP",
    18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAP_PTR", 24: "SIG",
    25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC",
    33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6", 39: "DNAME", 40: "SINK",
    41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC",
    48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA",
    55: "HIP", 56: "NINFO", 57: "RKEY", 58: "TALINK", 59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY",
    62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF", 100: "UINFO", 101: "UID",
    102: "GID", 103: "UNSPEC", 104: "NID", 105: "L32", 106: "L64", 107: "LP", 108: "EUI48",
    109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 253: "MAILB",
    254: "MAILA", 255: "ANY", 256: "URI", 257: "CAA", 258: "AVC", 259: "DOA", 260: "AMTRELAY",
    32768: "TA", 32769: "DLV",
}
_CLASSES = {1: "IN", 3: "CHAOS", 4: "HS", 255: "ANY"}
_EDNS_OPTS = {1: "LLQ", 2: "UL", 3: "NSID", 5: "DAU", 6: "DHU", 7: "N3U", 8: "ECS",
              9: "EXPIRE", 10: "COOKIE", 11: "KEEPALIVE", 12: "PADDING", 13: "CHAIN",
              14: "KEY-TAG", 16: "CLIENT-TAG", 17: "SERVER-TAG"}
_MAXCDNAME = 255


class _Stop(Exception):
    """tcpdump's `goto trunc` inside the DNS printer: `` [|domain]``."""


def domain_print(cur: Cursor, bp: int, length: int, verbose: int, over_tcp: bool) -> None:
    cur.proto = "domain"
    out = cur.out
    if over_tcp:
        if length < 2:
            out.append(f" [DNS over TCP: length {length} < 2] (invalid)")
            return
        length -= 2
        prefix = cur.be16(bp)
        if prefix != length:
            out.append(f" [prefix length({prefix}) != length({length})] (invalid)")
            return
        bp += 2
        out.append(" ")
    if length < 12:
        out.append(f"domain [length {length} < 12] (invalid)")
        return
    try:
        _message(cur, bp, length, verbose)
    except _Stop:
        cur.trunc()


def _message(cur: Cursor, np_: int, length: int, v: int) -> None:
    out = cur.out
    if not cur.ttest(np_, 12):
        raise Truncated
    msg_id = cur.be16(np_)
    flags = cur.be16(np_ + 2)
    qd, an, ns, ar = (cur.be16(np_ + 4), cur.be16(np_ + 6), cur.be16(np_ + 8),
                      cur.be16(np_ + 10))
    opcode = (flags >> 11) & 0xF
    rcode = flags & 0xF
    # The extended rcode lives in the OPT record's TTL; find it.
    cp = np_ + 12
    for _ in range(qd):
        cp = _skip(cur, cp)
        if cp is None:
            break
        cp += 4
    if cp is not None:
        for _ in range(an + ns + ar):
            cp = _skip(cur, cp)
            if cp is None or not cur.ttest(cp, 10):
                break
            if cur.be16(cp) == 41:
                rcode |= cur.u8(cp + 4) << 4
                break
            cp += 10 + cur.be16(cp + 8)
    cp = np_ + 12
    if flags & 0x8000:  # response
        rc = _NS_RCODES[rcode] if rcode < len(_NS_RCODES) else f" Resp{rcode}"
        out.append(f"{msg_id}{_NS_OPS[opcode]}{rc}{'*' if flags & 0x0400 else ''}"
                   f"{'' if flags & 0x0080 else '-'}{'|' if flags & 0x0200 else ''}"
                   f"{'$' if flags & 0x0020 else ''}")
        if qd != 1:
            out.append(f" [{qd}q]")
        for i in range(qd):
            if i == 0 and v > 1:
                out.append(" q:")
            if v > 1:
                cp = _qprint(cur, cp, np_)
                if cp is None:
                    raise _Stop
            else:
                cp = _skip(cur, cp)
                if cp is None:
                    raise _Stop
                cp += 4
        out.append(f" {an}/{ns}/{ar}")
        cp = _section(cur, cp, np_, an, v, "", first_anyway=True)
        if v > 1:
            cp = _section(cur, cp, np_, ns, v, " ns:")
            cp = _section(cur, cp, np_, ar, v, " ar:")
    else:  # query
        out.append(f"{msg_id}{_NS_OPS[opcode]}{'+' if flags & 0x0100 else ''}"
                   f"{'%' if flags & 0x0010 else ''}")
        if flags & 0x6CF:
            out.append(f" [b2&3=0x{flags:x}]")
        if opcode == 1:
            if qd:
                out.append(f" [{qd}q]")
            if an != 1:
                out.append(f" [{an}a]")
        else:
            if an:
                out.append(f" [{an}a]")
            if qd != 1:
                out.append(f" [{qd}q]")
        if ns:
            out.append(f" [{ns}n]")
        if ar:
            out.append(f" [{ar}au]")
        left = qd
        if left:
            cp = _qprint(cur, cp, np_)
            if cp is None:
                raise _Stop
            left -= 1
            while cp < cur.end and left:
                cp = _qprint(cur, cp, np_)
                if cp is None:
                    raise _Stop
                left -= 1
        if left:
            raise _Stop
        if v > 1:
            cp = _section(cur, cp, np_, an, v, "", first_anyway=True)
            cp = _section(cur, cp, np_, ns, v, " ns:")
            cp = _section(cur, cp, np_, ar, v, " ar:")
    out.append(f" ({length})")


def _section(cur: Cursor, cp: int, bp: int, count: int, v: int, title: str,
             first_anyway: bool = False) -> int:
    if count and (first_anyway or cp < cur.end):
        cur.out.append(title)
        cp = _rprint(cur, cp, bp, v)
        if cp is None:
            raise _Stop
        count -= 1
        while cp < cur.end and count:
            cur.out.append(",")
            cp = _rprint(cur, cp, bp, v)
            if cp is None:
                raise _Stop
            count -= 1
    if count:
        raise _Stop
    return cp


def _labellen(cur: Cursor, cp: int) -> int:
    if not cur.ttest(cp, 1):
        return -1
    i = cur.u8(cp)
    if i & 0xC0 == 0x40:
        if (i & 0x3F) != 1:  # only bit labels are known
            return -1
        if not cur.ttest(cp + 1, 1):
            return -1
        bitlen = cur.u8(cp + 1) or 256
        return (bitlen + 7) // 8 + 1
    return i


def _label_at(cur: Cursor, cp: int) -> tuple[int, int] | None:
    """The label byte at `cp` and its length (`_labellen`), or None if the byte is not
    captured or the label is bad."""
    if not cur.ttest(cp, 1):
        return None
    i = cur.u8(cp)
    l = _labellen(cur, cp)
    if l < 0:
        return None
    return i, l


def _skip(cur: Cursor, cp: int) -> int | None:
    """tcpdump's fqdn_skip: the offset after a domain name (compression not followed)."""
    if not cur.ttest(cp, 1):
        return None
    i = cur.u8(cp)
    cp += 1
    if i & 0xC0 == 0xC0:
        return cp + 1
    while i and cp < cur.end:
        if i & 0xC0 == 0x40:
            if (i & 0x3F) != 1:
                return None
            if not cur.ttest(cp, 1):
                return None
            bitlen = cur.u8(cp) or 256
            cp += 1 + (bitlen + 7) // 8
        else:
            cp += i
        if not cur.ttest(cp, 1):
            return None
        i = cur.u8(cp)
        cp += 1
        if i & 0xC0 == 0xC0:
            return cp + 1
    return cp


def _blabel(cur: Cursor, cp: int) -> int | None:
    out = cur.out
    if not cur.ttest(cp, 1):
        return None
    bitlen = cur.u8(cp) or 256
    slen = (bitlen + 7) // 8
    lim = cp + 1 + slen
    out.append("\\[x")
    b = bitlen
    bitp = cp + 1
    while b > 7:
        out.append(f"{cur.u8(bitp):02x}")
        b -= 8
        bitp += 1
    if b > 4:
        tc = cur.u8(bitp)
        out.append(f"{tc & (0xFF << (8 - b)) & 0xFF:02x}")
    elif b > 0:
        tc = cur.u8(bitp)
        out.append(f"{((tc >> 4) & 0x0F) & (0x0F << (4 - b)):1x}")
    out.append(f"/{bitlen}]")
    return lim


def _nprint(cur: Cursor, cp: int, bp: int) -> int | None:
    """tcpdump's fqdn_print: the name at `cp` (``www.example.`` or ``.``); offset after it."""
    out = cur.out
    l = _labellen(cur, cp)
    if l < 0 or not cur.ttest(cp, 1):
        return None
    max_offset = cp - bp
    i = cur.u8(cp)
    cp += 1
    rp = None
    compress = False
    if i & 0xC0 != 0xC0:
        rp = cp + l
    if i == 0:
        out.append(".")
        return rp
    name_chars = 0
    while i and cp < cur.end:
        if i & 0xC0 == 0xC0:
            if not compress:
                rp = cp + 1
                compress = True
            if not cur.ttest(cp, 1):
                return None
            offset = ((i << 8) | cur.u8(cp)) & 0x3FFF
            if offset >= max_offset:
                out.append("<BAD PTR>")
                return None
            max_offset = offset
            cp = bp + offset
            if (head := _label_at(cur, cp)) is None:
                return None
            i, l = head
            cp += 1
            continue
        if i & 0xC0 == 0x40:
            if (i & 0x3F) != 1:
                out.append(f"<ELT {i & 0x3F}>")
                return None
            if _blabel(cur, cp) is None:
                return None
        else:
            n = l if name_chars + l <= _MAXCDNAME else max(_MAXCDNAME - name_chars, 0)
            k = 0
            while k < n and cp + k < cur.end:
                out.append(fn_print_char(cur.buf[cp + k]))
                k += 1
            if k < n:
                return None
            name_chars += l
        cp += l
        if name_chars <= _MAXCDNAME:
            out.append(".")
        name_chars += 1
        if (head := _label_at(cur, cp)) is None:
            return None
        i, l = head
        cp += 1
        if not compress:
            rp += l + 1
    if name_chars > _MAXCDNAME:
        out.append("<DOMAIN NAME TOO LONG>")
    return rp


def _qprint(cur: Cursor, cp: int, bp: int) -> int | None:
    np_ = cp
    cp = _skip(cur, cp)
    if cp is None or not cur.ttest(cp, 4):
        return None
    qtype = cur.be16(cp)
    qclass = cur.be16(cp + 2)
    cur.out.append(" " + _TYPES.get(qtype, f"Type{qtype}"))
    if qclass != 1:
        cur.out.append(" " + _CLASSES.get(qclass, f"(Class {qclass})"))
    cur.out.append("? ")
    cp = _nprint(cur, np_, bp)
    return cp + 4 if cp is not None else None


def _cprint(cur: Cursor, cp: int) -> int | None:
    if not cur.ttest(cp, 1):
        return None
    n = cur.u8(cp)
    cp += 1
    for k in range(n):
        cur.out.append(fn_print_char(cur.u8(cp + k)))
    return cp + n


def _rprint(cur: Cursor, cp: int, bp: int, v: int) -> int | None:
    out = cur.out
    if v:
        out.append(" ")
        cp = _nprint(cur, cp, bp)
        if cp is None:
            return None
    else:
        cp = _skip(cur, cp)
    if cp is None or not cur.ttest(cp, 10):
        return cur.end
    typ = cur.be16(cp)
    cls = cur.be16(cp + 2)
    if cls != 1 and typ != 41:
        out.append(" " + _CLASSES.get(cls, f"(Class {cls})"))
    opt_flags = cur.be16(cp + 6) if typ == 41 else 0
    if typ != 41 and v > 2:
        out.append(" [" + _relts(cur.be32(cp + 4)) + "]")
    ln = cur.be16(cp + 8)
    cp += 10
    rp = cp + ln
    out.append(" " + _TYPES.get(typ, f"Type{typ}"))
    if rp > cur.end:
        return None
    if typ == 1:
        if not cur.ttest(cp, 4):
            return None
        b = cur.take(cp, 4)
        out.append(f" {b[0]}.{b[1]}.{b[2]}.{b[3]}")
    elif typ in (2, 5, 12, 39):
        out.append(" ")
        if _nprint(cur, cp, bp) is None:
            return None
    elif typ == 6:
        if v:
            out.append(" ")
            cp = _nprint(cur, cp, bp)
            if cp is None:
                return None
            out.append(" ")
            cp = _nprint(cur, cp, bp)
            if cp is None or not cur.ttest(cp, 20):
                return None
            for k in range(5):
                out.append(f" {cur.be32(cp + 4 * k)}")
    elif typ == 15:
        out.append(" ")
        if not cur.ttest(cp, 2):
            return None
        if _nprint(cur, cp + 2, bp) is None:
            return None
        out.append(f" {cur.be16(cp)}")
    elif typ == 16:
        while cp < rp:
            out.append(' "')
            cp = _cprint(cur, cp)
            if cp is None:
                return None
            out.append('"')
    elif typ == 33:
        out.append(" ")
        if not cur.ttest(cp, 6):
            return None
        if _nprint(cur, cp + 6, bp) is None:
            return None
        out.append(f":{cur.be16(cp + 4)} {cur.be16(cp)} {cur.be16(cp + 2)}")
    elif typ == 28:
        if not cur.ttest(cp, 16):
            return None
        out.append(" " + str(IPv6Address(cur.take(cp, 16))))
    elif typ == 41:
        out.append(f" UDPsize={cls}")
        if opt_flags & 0x8000:
            out.append(" DO")
        if cp < rp:
            out.append(" [")
            while cp < rp:
                cp = _eopt(cur, cp)
                if cp is None:
                    return None
                if cp < rp:
                    out.append(",")
            out.append("]")
    return rp


def _relts(secs: int) -> str:
    if secs == 0:
        return "0s"
    parts = []
    for unit, n in (("y", 31536000), ("w", 604800), ("d", 86400), ("h", 3600), ("m", 60),
                    ("s", 1)):
        if secs >= n:
            parts.append(f"{secs // n}{unit}")
            secs %= n
    return "".join(parts)


def _eopt(cur: Cursor, cp: int) -> int | None:
    out = cur.out
    if not cur.ttest(cp, 2):
        return None
    opt = cur.be16(cp)
    cp += 2
    out.append(_EDNS_OPTS.get(opt, f"Opt{opt}"))
    if not cur.ttest(cp, 2):
        return None
    dlen = cur.be16(cp)
    cp += 2
    if not cur.ttest(cp, dlen):
        raise _Stop
    if dlen > 0:
        out.append(" ")
        data = cur.take(cp, dlen)
        if opt == 10:  # COOKIE: client cookie, then the server cookie after a space
            if dlen < 8 or 8 < dlen < 16 or dlen > 40:
                out.append("(invalid)")
            else:
                out.append(data[:8].hex() + (" " + data[8:].hex() if dlen > 8 else ""))
        elif opt == 11:  # KEEPALIVE, in units of 100 ms
            if dlen != 2:
                out.append("(invalid)")
            else:
                out.append(_relts(int.from_bytes(data, "big") // 10))
        elif opt == 9:  # EXPIRE
            if dlen != 4:
                out.append("(invalid)")
            else:
                out.append(_relts(int.from_bytes(data, "big")))
        elif opt == 12:  # PADDING: the bytes are not shown
            pass
        elif opt in (5, 6, 7):  # algorithm lists
            out.append(" ".join(str(b) for b in data))
        else:
            out.append(data.hex())
    return cp + dlen
