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

from .tcpdump_options import Cursor, Truncated

__all__ = ["print_tcp_payload", "print_rst_data", "fn_print_char"]

_HTTP_CMDS = frozenset(
    """GET PUT COPY HEAD LOCK MOVE POLL POST BCOPY BMOVE MKCOL TRACE LABEL MERGE DELETE
    SEARCH UNLOCK REPORT UPDATE NOTIFY BDELETE CONNECT OPTIONS CHECKIN PROPFIND CHECKOUT
    CCM_POST SUBSCRIBE PROPPATCH BPROPFIND BPROPPATCH UNCHECKOUT MKACTIVITY MKWORKSPACE
    UNSUBSCRIBE RPC_CONNECT VERSION-CONTROL BASELINE-CONTROL""".split()
)
_RTSP_CMDS = frozenset(
    """DESCRIBE ANNOUNCE GET_PARAMETER OPTIONS PAUSE PLAY RECORD REDIRECT SETUP
    SET_PARAMETER TEARDOWN""".split()
)


def fn_print_char(c: int) -> str:
    """tcpdump's fn_print_char: printable ASCII as is, ``M-`` for the high bit, ``^`` for controls."""
    s = ""
    if c & 0x80:
        c &= 0x7F
        s = "M-"
    if c < 0x20 or c == 0x7F:
        return s + "^" + chr(c ^ 0x40)
    return s + chr(c)


_PRINTABLE = frozenset(range(0x20, 0x7F))


def print_rst_data(cur: Cursor, bp: int, length: int) -> None:
    """A RST segment's payload with -v: `` [RST text]`` (at most 30 bytes, ``+`` if more).

    ``!RST`` says the payload was not completely captured.
    """
    out = cur.out
    out.append(" [RST" if cur.ttest(bp, length) else " [!RST")
    n = length
    if n > 30:
        n = 30
        out.append("+")
    out.append(" ")
    i = bp
    while n and i < cur.end:
        out.append(fn_print_char(cur.buf[i]))
        i += 1
        n -= 1
    out.append("]")


def print_tcp_payload(cur: Cursor, bp: int, length: int, sport: int, dport: int,
                      verbose: int) -> None:
    """Dispatch the payload at `bp` (`length` bytes on the wire) by port, as tcp_print does."""
    ports = (sport, dport)
    if 23 in ports:
        _telnet(cur, bp, length)
    elif 25 in ports:
        cur.out.append(": ")
        _txtproto(cur, bp, length, "smtp", None, verbose)
    elif 43 in ports:
        cur.out.append(": ")
        _txtproto(cur, bp, length, "whois", None, verbose)
    elif 179 in ports:
        cur.proto = "bgp"  # not reproduced
    elif 1723 in ports:
        from .tcpdump_pptp import pptp_print

        pptp_print(cur, bp, verbose)
    elif 6379 in ports:
        _resp(cur, bp, length)
    elif 22 in ports:
        _ssh(cur, bp, length)
    elif 10288 in ports or 6633 in ports or 6653 in ports:
        pass  # BEEP, OpenFlow: not reproduced
    elif 21 in ports:
        cur.out.append(": ")
        _txtproto(cur, bp, length, "ftp", None, verbose)
    elif 80 in ports or 8080 in ports:
        cur.out.append(": ")
        _txtproto(cur, bp, length, "http", _HTTP_CMDS, verbose)
    elif 554 in ports or 8554 in ports:
        cur.out.append(": ")
        _txtproto(cur, bp, length, "rtsp", _RTSP_CMDS, verbose)
    elif 53 in ports:
        from .tcpdump_dns import domain_print

        domain_print(cur, bp, length, verbose, over_tcp=True)
    # MSDP (639), RPKI-RTR (323), LDP (646), NFS (2049): not reproduced.


# ---------------------------------------------------------------- text protocols

def _fetch_token(cur: Cursor, p: int, idx: int, ln: int) -> tuple[int, bytes]:
    tok = bytearray()
    while idx < ln:
        if not cur.ttest(p + idx, 1):
            return 0, b""
        c = cur.buf[p + idx]
        if c & 0x80:
            return 0, b""
        if c in (0x20, 0x09, 0x0D, 0x0A):
            break
        if c not in _PRINTABLE:
            return 0, b""
        if len(tok) + 2 > 129:
            return 0, b""
        tok.append(c)
        idx += 1
    if not tok:
        return 0, b""
    while idx < ln:
        if not cur.ttest(p + idx, 1):
            break
        c = cur.buf[p + idx]
        if c in (0x0D, 0x0A) or c not in _PRINTABLE or c not in (0x20, 0x09):
            break
        idx += 1
    return idx, bytes(tok)


def _print_txt_line(cur: Cursor, prefix: str, p: int, idx: int, ln: int) -> int:
    start = idx
    buf = cur.buf
    while idx < ln:
        c = cur.u8(p + idx)
        if c == 0x0A:
            cur.out.append(prefix + buf[p + start : p + idx].decode("ascii"))
            return idx + 1
        if c == 0x0D:
            if idx + 1 >= ln:
                return 0
            if cur.u8(p + idx + 1) == 0x0A:
                cur.out.append(prefix + buf[p + start : p + idx].decode("ascii"))
                return idx + 2
            return 0
        if c not in _PRINTABLE and c != 0x09:
            return 0
        idx += 1
    cur.out.append(prefix + buf[p + start : p + idx].decode("ascii"))
    cur.trunc()
    return 0


def _txtproto(cur: Cursor, p: int, ln: int, name: str, cmds: frozenset | None,
              verbose: int) -> None:
    cur.proto = name
    if cmds is not None:
        print_this = False
        idx, tok = _fetch_token(cur, p, 0, ln)
        if idx:
            if tok.decode("ascii").upper() in cmds:
                print_this = True
            idx, tok = _fetch_token(cur, p, idx, ln)  # the response code is the second token
            if idx and len(tok) == 3 and tok.isdigit():
                print_this = True
    else:
        print_this = True
    cur.out.append(name.upper())
    if not print_this:
        return
    if verbose:
        cur.out.append(f", length: {ln}")
        idx = 0
        while idx < ln:
            idx = _print_txt_line(cur, "\n\t", p, idx, ln)
            if idx == 0:
                break
    else:
        _print_txt_line(cur, ": ", p, 0, ln)


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
                out.append(f"{_TELCMDS[i]} {_TELOPTS[x]}" if x < 40 else f"{_TELCMDS[i]} {_hash_x(x)}")
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
