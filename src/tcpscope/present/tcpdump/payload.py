"""What tcpdump 4.99 prints after ``length N`` for TCP payload on well-known ports.

tcpdump hands a segment's payload to an application printer chosen by port
(either side): HTTP (80, 8080), FTP (21), SMTP (25), WHOIS (43), RTSP (554,
8554) share its "text protocol" printer; SSH (22) prints the version banner;
Redis (6379) prints RESP; Telnet (23) prints option negotiation; DNS (53)
prints the message; PPTP (1723) prints control messages. Ports whose
printers tcpscope does not reproduce (BGP, OpenFlow, BEEP, MSDP, RPKI-RTR,
LDP, NFS) print nothing more: docs/differences.md lists them.

Each printer appends to the frame's `Cursor` and may raise `Truncated`
where tcpdump's bounds-checked reads would end the packet with `` [|proto]``.
"""
from __future__ import annotations

import re

from .cursor import Cursor, Truncated, fn_print_char
from .dns import domain_print
from .pptp import pptp_print

__all__ = ["PORTS", "payload_text", "print_tcp_payload"]

_HTTP_CMDS = frozenset(
    b"""GET PUT COPY HEAD LOCK MOVE POLL POST BCOPY BMOVE MKCOL TRACE LABEL MERGE DELETE
    SEARCH UNLOCK REPORT UPDATE NOTIFY BDELETE CONNECT OPTIONS CHECKIN PROPFIND CHECKOUT
    CCM_POST SUBSCRIBE PROPPATCH BPROPFIND BPROPPATCH UNCHECKOUT MKACTIVITY MKWORKSPACE
    UNSUBSCRIBE RPC_CONNECT VERSION-CONTROL BASELINE-CONTROL""".split()
)
_RTSP_CMDS = frozenset(
    b"""DESCRIBE ANNOUNCE GET_PARAMETER OPTIONS PAUSE PLAY RECORD REDIRECT SETUP
    SET_PARAMETER TEARDOWN""".split()
)


_PRINTABLE = frozenset(range(0x20, 0x7F))


def _pptp(cur: Cursor, bp: int, length: int, verbose: int) -> None:
    pptp_print(cur, bp, verbose)


def _domain(cur: Cursor, bp: int, length: int, verbose: int) -> None:
    domain_print(cur, bp, length, verbose, over_tcp=True)


def _not_reproduced(cur: Cursor, bp: int, length: int, verbose: int) -> None:
    """BGP, BEEP, OpenFlow, MSDP, RPKI-RTR, LDP, NFS: tcpscope prints nothing (see docs)."""


def _text(name: str, cmds: frozenset | None):
    def printer(cur: Cursor, bp: int, length: int, verbose: int) -> None:
        cur.out.append(": ")
        _txtproto(cur, bp, length, name, cmds, verbose)
    return printer


# tcp_print's port tests, in its order: the first test that either port passes wins.
_BY_RANK = (
    ((23,), lambda cur, bp, length, verbose: _telnet(cur, bp, length)),
    ((25,), _text("smtp", None)),
    ((43,), _text("whois", None)),
    ((179,), _not_reproduced),
    ((1723,), _pptp),
    ((6379,), lambda cur, bp, length, verbose: _resp(cur, bp, length)),
    ((22,), lambda cur, bp, length, verbose: _ssh(cur, bp, length)),
    ((10288, 6633, 6653), _not_reproduced),
    ((21,), _text("ftp", None)),
    ((80, 8080), _text("http", _HTTP_CMDS)),
    ((554, 8554), _text("rtsp", _RTSP_CMDS)),
    ((53,), _domain),
    ((639, 323, 646, 2049), _not_reproduced),
)
_RANK = {port: rank for rank, (ports, _) in enumerate(_BY_RANK) for port in ports}
_NONE = len(_BY_RANK)

#: Ports whose payload tcpdump hands to an application printer (either side).
PORTS: frozenset[int] = frozenset(_RANK)


def print_tcp_payload(cur: Cursor, bp: int, length: int, sport: int, dport: int,
                      verbose: int) -> None:
    """Dispatch the payload at `bp` (`length` bytes on the wire) by port, as tcp_print does."""
    rank = min(_RANK.get(sport, _NONE), _RANK.get(dport, _NONE))
    if rank < _NONE:
        _BY_RANK[rank][1](cur, bp, length, verbose)


def payload_text(frame: bytes, bp: int, end: int, length: int, sport: int, dport: int,
                 verbose: int, proto: str) -> str:
    """What tcpdump prints after ``length N`` for the payload at `bp` of `frame` (whose
    bytes end, for tcpdump, at `end`); `proto` names a truncation before a printer
    names its own. The C printer calls this and ends the line after it."""
    cur = Cursor(frame, end)
    cur.proto = proto
    try:
        print_tcp_payload(cur, bp, length, sport, dport, verbose)
    except Truncated:
        cur.trunc()
    return "".join(cur.out)


# ---------------------------------------------------------------- text protocols

# A token as tcpdump's fetch_token sees it: 1 to 128 printable, non-blank ASCII
# characters, ended by a blank or line end, or by the end of the payload when
# the payload was captured whole (a token cut by the capture is no token).
_TOKEN_WHOLE = re.compile(rb"([\x21-\x7e]{1,128})(?:(?=[ \t\r\n])|\Z)")
_TOKEN_CUT = re.compile(rb"([\x21-\x7e]{1,128})(?=[ \t\r\n])")
_BLANKS = re.compile(rb"[ \t]*")
_NOT_TEXT = re.compile(rb"[^\t\x20-\x7e]")
_UPPER: dict[str, str] = {}


def _print_txt_line(cur: Cursor, prefix: str, data: bytes, idx: int, ln: int) -> int:
    """tcpdump's print_txt_line over the captured payload `data` (`ln` bytes on the wire).

    Prints the line starting at `idx` and returns the offset after its end of
    line, or 0 when the rest is not a text line.
    """
    m = _NOT_TEXT.search(data, idx)
    if m is None:
        if len(data) < ln:
            raise Truncated  # tcpdump's read past the captured bytes
        cur.out.append(prefix + data[idx:].decode("ascii"))
        cur.trunc()  # text up to the end of the payload, but no end of line
        return 0
    q = m.start()
    c = data[q]
    if c == 0x0A:
        cur.out.append(prefix + data[idx:q].decode("ascii"))
        return q + 1
    if c == 0x0D:
        if q + 1 >= ln:
            return 0
        if q + 1 >= len(data):
            raise Truncated
        if data[q + 1] == 0x0A:
            cur.out.append(prefix + data[idx:q].decode("ascii"))
            return q + 2
    return 0


def _txtproto(cur: Cursor, p: int, ln: int, name: str, cmds: frozenset | None,
              verbose: int) -> None:
    """tcpdump's txtproto_print: ``HTTP: GET / HTTP/1.1`` (all lines with -v)."""
    cur.proto = name
    upper = _UPPER.get(name) or _UPPER.setdefault(name, name.upper())
    end = min(p + ln, cur.end)
    data = bytes(cur.buf[p:end]) if end > p else b""
    if cmds is not None:
        # Print only a request (first token a command) or a response (second
        # token three digits), not the middle of a body.
        print_this = False
        token = _TOKEN_WHOLE if len(data) >= ln else _TOKEN_CUT
        m = token.match(data)
        if m:
            if m.group(1).upper() in cmds:
                print_this = True
            m = token.match(data, _BLANKS.match(data, m.end(1)).end())
            if m and len(m.group(1)) == 3 and m.group(1).isdigit():
                print_this = True
    else:
        print_this = True
    if not print_this:
        cur.out.append(upper)
        return
    if not verbose:
        m = _NOT_TEXT.search(data)
        if m is not None and data[m.start()] == 0x0A:  # the usual case: one LF-ended line
            cur.out.append(f"{upper}: {data[:m.start()].decode('ascii')}")
            return
    cur.out.append(upper)
    if verbose:
        cur.out.append(f", length: {ln}")
        idx = 0
        while idx < ln:
            idx = _print_txt_line(cur, "\n\t", data, idx, ln)
            if idx == 0:
                break
    else:
        _print_txt_line(cur, ": ", data, 0, ln)


# ---------------------------------------------------------------- SSH

def _ssh(cur: Cursor, p: int, ln: int) -> None:
    cur.proto = "ssh"
    for i, want in enumerate(b"SSH-"):
        if cur.u8(p + i) != want:
            return
    idx = 4
    while idx < ln:
        c = cur.u8(p + idx)
        if c == 0x0A:
            break
        if c == 0x0D:
            if idx + 1 >= ln or cur.u8(p + idx + 1) != 0x0A:
                return
            break
        if c not in _PRINTABLE:
            return
        idx += 1
    else:
        return
    cur.out.append(": SSH: " + cur.buf[p : p + idx].decode("ascii"))


# ---------------------------------------------------------------- Telnet

_TELCMDS = ("EOF", "SUSP", "ABORT", "EOR", "SE", "NOP", "DMARK", "BRK", "IP", "AO", "AYT",
            "EC", "EL", "GA", "SB", "WILL", "WONT", "DO", "DONT", "IAC")
_TELOPTS = (
    "BINARY", "ECHO", "RCP", "SUPPRESS GO AHEAD", "NAME", "STATUS", "TIMING MARK", "RCTE",
    "NAOL", "NAOP", "NAOCRD", "NAOHTS", "NAOHTD", "NAOFFD", "NAOVTS", "NAOVTD", "NAOLFD",
    "EXTEND ASCII", "LOGOUT", "BYTE MACRO", "DATA ENTRY TERMINAL", "SUPDUP", "SUPDUP OUTPUT",
    "SEND LOCATION", "TERMINAL TYPE", "END OF RECORD", "TACACS UID", "OUTPUT MARKING",
    "TTYLOC", "3270 REGIME", "X.3 PAD", "NAWS", "TSPEED", "LFLOW", "LINEMODE", "XDISPLOC",
    "OLD-ENVIRON", "AUTHENTICATION", "ENCRYPT", "NEW-ENVIRON",
)
_TEL_SUBCMD = ("IS", "SEND", "INFO")
_TEL_AUTHCMD = ("IS", "SEND", "REPLY", "NAME")
_TEL_AUTHTYPE = ("NULL", "KERBEROS_V4", "KERBEROS_V5", "SPX", "MINK", "SRP", "RSA", "SSL",
                 None, None, "LOKI", "SSA", "KEA_SJ", "KEA_SJ_INTEG", "DSS", "NTLM")
_TEL_ENCCMD = ("IS", "SUPPORT", "REPLY", "START", "END", "REQUEST-START", "REQUEST-END",
               "END_KEYID", "DEC_KEYID")
_TEL_ENCTYPE = ("NULL", "DES_CFB64", "DES_OFB64", "DES3_CFB64", "DES3_OFB64", None,
                "CAST5_40_CFB64", "CAST5_40_OFB64", "CAST128_CFB64", "CAST128_OFB64")
_IAC, _SB, _SE = 255, 250, 240


def _hash_x(x: int) -> str:
    """C's ``%#x``: ``0`` for zero, ``0x..`` otherwise."""
    return "0" if x == 0 else f"0x{x:x}"


def _str_or_id(c: int, tab: tuple) -> str:
    if c < len(tab) and tab[c]:
        return tab[c]
    return _hash_x(c)


class _PktEnd(Exception):
    pass


def _telnet_parse(cur: Cursor, sp: int, length: int, out: list[str] | None) -> int:
    osp = sp

    def fetch() -> int:
        nonlocal sp, length
        if length < 1:
            raise _PktEnd
        c = cur.u8(sp)
        sp += 1
        length -= 1
        return c

    try:
        c = fetch()
        if c != _IAC:
            raise _PktEnd
        c = fetch()
        if c == _IAC:
            if out is not None:
                out.append("IAC IAC")
            return sp - osp
        i = c - 236
        if i < 0 or i > _IAC - 236:
            raise _PktEnd
        if c in (254, 253, 252, 251, _SB):  # DONT DO WONT WILL SB
            x = fetch()
            if out is not None:
                name = _TELOPTS[x] if x < 40 else _hash_x(x)
                out.append(f"{_TELCMDS[i]} {name}")
            if c != _SB:
                return sp - osp
            p = sp
            while length > p + 1 - sp:
                if cur.u8(p) == _IAC and cur.u8(p + 1) == _SE:
                    break
                p += 1
            if cur.u8(p) != _IAC:
                raise _PktEnd
            if x == 37:  # AUTHENTICATION
                tabs = (_TEL_AUTHCMD, _TEL_AUTHTYPE)
            elif x == 38:  # ENCRYPT
                tabs = (_TEL_ENCCMD, _TEL_ENCTYPE)
            else:
                tabs = (_TEL_SUBCMD,)
            for tab in tabs:
                if p <= sp:
                    break
                c = fetch()
                if out is not None:
                    out.append(" " + _str_or_id(c, tab))
            while p > sp:
                x = fetch()
                if out is not None:
                    out.append(" " + _hash_x(x))
            if out is not None:
                out.append(" SE")
            sp += 2
            return sp - osp
        if out is not None:
            out.append(_TELCMDS[i])
        return sp - osp
    except _PktEnd:
        return -1


def _telnet(cur: Cursor, sp: int, length: int) -> None:
    cur.proto = "telnet"
    first = True
    while length > 0 and cur.u8(sp) == _IAC:
        n = _telnet_parse(cur, sp, length, None)
        if n < 0:
            break
        cur.out.append(" [telnet " if first else ", ")
        _telnet_parse(cur, sp, length, cur.out)
        first = False
        sp += n
        length -= n
    if not first:
        cur.out.append("]")


# ---------------------------------------------------------------- Redis (RESP)

class _RespStop(Exception):
    """tcpdump's `goto trunc` in the RESP printer: `` [|resp]`` ends the payload."""


def _resp(cur: Cursor, bp: int, length: int) -> None:
    cur.proto = "resp"
    cur.out.append(": RESP")
    try:
        while length > 0:  # pipelined commands, one after another
            n = _resp_parse(cur, bp, length)
            bp += n
            length -= n
    except _RespStop:
        cur.trunc()


def _resp_segment(cur: Cursor, bp: int, n: int) -> None:
    out = cur.out
    out.append(' "')
    for i in range(n):
        if bp + i >= cur.end:
            raise _RespStop
        out.append(fn_print_char(cur.buf[bp + i]))
    out.append('"')


def _resp_find_crlf(cur: Cursor, p: int, n: int) -> tuple[int, int]:
    while True:
        if n < 2 or not cur.ttest(p, 2):
            raise _RespStop
        if cur.buf[p] == 0x0D and cur.buf[p + 1] == 0x0A:
            return p, n
        p += 1
        n -= 1


def _resp_length(cur: Cursor, p: int, n: int) -> tuple[int, int]:
    """(value or error code, offset after it): -2 truncated, -3 too large, -4 negative, -5 bad."""
    if n == 0 or not cur.ttest(p, 1):
        return -2, p
    neg = cur.buf[p] == 0x2D
    if neg:
        p += 1
        n -= 1
    result, digits = 0, False
    while True:
        if n == 0 or not cur.ttest(p, 1):
            return -2, p
        c = cur.buf[p]
        if not 0x30 <= c <= 0x39:
            if not digits:
                return -5, p + 1
            break
        result = result * 10 + c - 0x30
        p += 1
        n -= 1
        digits = True
    if cur.buf[p] != 0x0D:
        return -5, p + 1
    p += 1
    n -= 1
    if n == 0 or not cur.ttest(p, 1):
        return -2, p
    if cur.buf[p] != 0x0A:
        return -5, p + 1
    p += 1
    too_large = result > 0x7FFFFFFF
    if neg:
        return (-4 if too_large or result != 1 else -1), p
    return (-3 if too_large else result), p


_RESP_BAD = {-1: " null", -3: " length too large", -4: " length negative and not -1"}


def _resp_parse(cur: Cursor, bp: int, length: int) -> int:
    if length < 1 or not cur.ttest(bp, 1):
        raise _RespStop
    op = cur.buf[bp]
    if op in (0x2B, 0x2D, 0x3A):  # + - :  simple string, error, integer
        p, _ = _resp_find_crlf(cur, bp + 1, length - 1)
        n = p - bp - 1
        _resp_segment(cur, bp + 1, n)
        return n + 3
    if op == 0x24 or op == 0x2A:  # $ bulk string, * array
        size, p = _resp_length(cur, bp + 1, length - 1)
        left = length - (p - bp)
        if size == -2:
            raise _RespStop
        if op == 0x24 and size >= 0:
            if size == 0:
                cur.out.append(" empty")
            else:
                if left < size or not cur.ttest(p, size):
                    raise _RespStop
                _resp_segment(cur, p, size)
                p += size
                left -= size
            p, left = _resp_find_crlf(cur, p, left)
            return length - (left - 2)
        if op == 0x2A and size > 0:
            for _ in range(size):
                n = _resp_parse(cur, p, left)
                p += n
                left -= n
            return length - left
        cur.out.append(" empty" if size == 0 else _RESP_BAD.get(size, " invalid"))
        return length - left
    # An inline command: text up to CR or LF, surrounded by any CRs and LFs.
    p, n = _resp_skip_cr_lf(cur, bp, length)
    q, m = p, n
    while True:
        if m < 1 or not cur.ttest(q, 1):
            raise _RespStop
        if cur.buf[q] in (0x0D, 0x0A):
            break
        q += 1
        m -= 1
    _resp_segment(cur, p, q - p)
    _, m = _resp_skip_cr_lf(cur, q, m)
    return length - m


def _resp_skip_cr_lf(cur: Cursor, p: int, n: int) -> tuple[int, int]:
    found = False
    while True:
        if n == 0 or not cur.ttest(p, 1):
            if found:
                return p, n
            raise _RespStop
        if cur.buf[p] not in (0x0D, 0x0A):
            return p, n
        found = True
        p += 1
        n -= 1
