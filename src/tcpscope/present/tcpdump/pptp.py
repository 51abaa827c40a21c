"""PPTP control messages (TCP port 1723) as tcpdump 4.99 prints them (RFC 2637).

``: pptp CTRL_MSGTYPE=SCCRQ PROTO_VER(1.0) FRAME_CAP(A) ...``; ``-v`` adds the
length, message type and magic cookie, and names result and error codes.
"""
from __future__ import annotations

from .cursor import Cursor

__all__ = ["pptp_print"]

_MSG_TYPES = ("NOT_DEFINED", "SCCRQ", "SCCRP", "StopCCRQ", "StopCCRP", "ECHORQ", "ECHORP",
              "OCRQ", "OCRP", "ICRQ", "ICRP", "ICCN", "CCRQ", "CDN", "WEN", "SLI")
_ERR_CODES = {0: "None", 1: "Not-Connected", 2: "Bad-Format", 3: "Bad-Value", 4: "No-Resource",
              5: "Bad-Call-ID", 6: "PAC-Error"}
_RESULTS = {
    2: {1: "Successful channel establishment", 2: "General error",
        3: "Command channel already exists",
        4: "Requester is not authorized to establish a command channel",
        5: "The protocol version of the requester is not supported"},
    4: {1: "OK", 2: "General Error"},
    6: {1: "OK", 2: "General Error"},
    8: {1: "Connected", 2: "General Error", 3: "No Carrier", 4: "Busy", 5: "No Dial Tone",
        6: "Time-out", 7: "Do Not Accept"},
    10: {1: "Connect", 2: "General Error", 3: "Do Not Accept"},
    13: {1: "Lost Carrier", 2: "General Error", 3: "Admin Shutdown", 4: "Request"},
}
_BTYPES = {1: "A", 2: "D", 3: "Any"}
_FTYPES = {1: "A", 2: "S", 3: "E"}
_MAGIC = 0x1A2B3C4D


class _Msg:
    """Field printers over one control message body at `p`."""

    def __init__(self, cur: Cursor, p: int, verbose: int) -> None:
        self.cur, self.p, self.v = cur, p, verbose
        self.out = cur.out

    def u8(self, off: int) -> int:
        return self.cur.u8(self.p + off)

    def u16(self, off: int) -> int:
        return self.cur.be16(self.p + off)

    def u32(self, off: int) -> int:
        return self.cur.be32(self.p + off)

    def reserved1(self, off: int) -> None:
        if self.u8(off):
            self.out.append(f" [ERROR: reserved={self.u8(off)} must be zero]")

    def reserved2(self, off: int) -> None:
        if self.u16(off):
            self.out.append(f" [ERROR: reserved={self.u16(off)} must be zero]")

    def text(self, label: str, off: int, size: int) -> bool:
        """`` LABEL(text)``: a NUL-terminated field of `size` bytes; False if not captured."""
        if not self.cur.ttest(self.p + off, size):
            self.cur.trunc()
            return False
        raw = bytes(self.cur.buf[self.p + off : self.p + off + size]).split(b"\0", 1)[0]
        self.out.append(f" {label}({raw.decode('latin-1')})")
        return True

    def result(self, off: int, msg_type: int) -> None:
        code = self.u8(off)
        self.out.append(f" RESULT_CODE({code}")
        if self.v:
            names = _RESULTS.get(msg_type)
            if names is not None:
                self.out.append(":" + names.get(code, "?"))
        self.out.append(")")

    def error(self, off: int) -> None:
        code = self.u8(off)
        self.out.append(f" ERR_CODE({code}")
        if self.v:
            self.out.append(":" + _ERR_CODES.get(code, "?"))
        self.out.append(")")

    def framing_cap(self, off: int) -> None:
        cap = self.u32(off)
        self.out.append(f" FRAME_CAP({'A' if cap & 1 else ''}{'S' if cap & 2 else ''})")

    def bearer_cap(self, off: int) -> None:
        cap = self.u32(off)
        self.out.append(f" BEARER_CAP({'D' if cap & 2 else ''}{'A' if cap & 1 else ''})")

    def num(self, label: str, off: int, size: int = 2) -> None:
        value = self.u16(off) if size == 2 else self.u32(off)
        self.out.append(f" {label}({value})")


def pptp_print(cur: Cursor, bp: int, verbose: int = 0) -> None:
    cur.proto = "pptp"
    out = cur.out
    out.append(": pptp")
    if verbose:
        out.append(f" Length={cur.be16(bp)}")
        mtype = cur.be16(bp + 2)
        out.append(" CTRL-MSG" if mtype == 1 else " MGMT-MSG" if mtype == 2
                   else " UNKNOWN-MSG-TYPE")
    mc = cur.be32(bp + 4)
    if mc != _MAGIC:
        out.append(f" UNEXPECTED Magic-Cookie!!({mc:08x})")
    if verbose or mc != _MAGIC:
        out.append(f" Magic-Cookie={mc:08x}")
    ctype = cur.be16(bp + 8)
    if ctype < len(_MSG_TYPES):
        out.append(f" CTRL_MSGTYPE={_MSG_TYPES[ctype]}")
    else:
        out.append(f" UNKNOWN_CTRL_MSGTYPE({ctype})")
    if cur.be16(bp + 10):
        out.append(f" [ERROR: reserved={cur.be16(bp + 10)} must be zero]")
    m = _Msg(cur, bp + 12, verbose)
    if ctype in (1, 2):  # SCCRQ, SCCRP
        ver = m.u16(0)
        out.append(f" PROTO_VER({ver >> 8}.{ver & 0xFF})")
        if ctype == 1:
            m.reserved2(2)
        else:
            m.result(2, 2)
            m.error(3)
        m.framing_cap(4)
        m.bearer_cap(8)
        m.num("MAX_CHAN", 12)
        m.num("FIRM_REV", 14)
        if m.text("HOSTNAME", 16, 64):
            m.text("VENDOR", 80, 64)
    elif ctype == 3:  # StopCCRQ
        reason = m.u8(0)
        out.append(f" REASON({reason}")
        if verbose:
            out.append(":" + {1: "None", 2: "Stop-Protocol", 3: "Stop-Local-Shutdown"}
                       .get(reason, "?"))
        out.append(")")
        m.reserved1(1)
        m.reserved2(2)
    elif ctype == 4:  # StopCCRP
        m.result(0, 4)
        m.error(1)
        m.reserved2(2)
    elif ctype == 5:  # ECHORQ
        m.num("ID", 0, 4)
    elif ctype == 6:  # ECHORP
        m.num("ID", 0, 4)
        m.result(4, 6)
        m.error(5)
        m.reserved2(6)
    elif ctype == 7:  # OCRQ
        m.num("CALL_ID", 0)
        m.num("CALL_SER_NUM", 2)
        m.num("MIN_BPS", 4, 4)
        m.num("MAX_BPS", 8, 4)
        out.append(f" BEARER_TYPE({_BTYPES.get(m.u32(12), '?')})")
        out.append(f" FRAME_TYPE({_FTYPES.get(m.u32(16), '?')})")
        m.num("RECV_WIN", 20)
        m.num("PROC_DELAY", 22)
        m.num("PHONE_NO_LEN", 24)
        m.reserved2(26)
        if m.text("PHONE_NO", 28, 64):
            m.text("SUB_ADDR", 92, 64)
    elif ctype == 8:  # OCRP
        m.num("CALL_ID", 0)
        m.num("PEER_CALL_ID", 2)
        m.result(4, 8)
        m.error(5)
        m.num("CAUSE_CODE", 6)
        m.num("CONN_SPEED", 8, 4)
        m.num("RECV_WIN", 12)
        m.num("PROC_DELAY", 14)
        m.num("PHY_CHAN_ID", 16, 4)
    elif ctype == 9:  # ICRQ
        m.num("CALL_ID", 0)
        m.num("CALL_SER_NUM", 2)
        out.append(f" BEARER_TYPE({_BTYPES.get(m.u32(4), '?')})")
        m.num("PHY_CHAN_ID", 8, 4)
        m.num("DIALED_NO_LEN", 12)
        m.num("DIALING_NO_LEN", 14)
        if m.text("DIALED_NO", 16, 64) and m.text("DIALING_NO", 80, 64):
            m.text("SUB_ADDR", 144, 64)
    elif ctype == 10:  # ICRP
        m.num("CALL_ID", 0)
        m.num("PEER_CALL_ID", 2)
        m.result(4, 10)
        m.error(5)
        m.num("RECV_WIN", 6)
        m.num("PROC_DELAY", 8)
        m.reserved2(10)
    elif ctype == 11:  # ICCN
        m.num("PEER_CALL_ID", 0)
        m.reserved2(2)
        m.num("CONN_SPEED", 4, 4)
        m.num("RECV_WIN", 8)
        m.num("PROC_DELAY", 10)
        out.append(f" FRAME_TYPE({_FTYPES.get(m.u32(12), '?')})")
    elif ctype == 12:  # CCRQ
        m.num("CALL_ID", 0)
        m.reserved2(2)
    elif ctype == 13:  # CDN
        m.num("CALL_ID", 0)
        m.result(2, 13)
        m.error(3)
        m.num("CAUSE_CODE", 4)
        m.reserved2(6)
        m.text("CALL_STATS", 8, 128)
    elif ctype == 14:  # WEN
        m.num("PEER_CALL_ID", 0)
        m.reserved2(2)
        for k, label in enumerate(("CRC_ERR", "FRAMING_ERR", "HARDWARE_OVERRUN",
                                   "BUFFER_OVERRUN", "TIMEOUT_ERR", "ALIGN_ERR")):
            m.num(label, 4 + 4 * k, 4)
    elif ctype == 15:  # SLI
        m.num("PEER_CALL_ID", 0)
        m.reserved2(2)
        out.append(f" SEND_ACCM(0x{m.u32(4):08x}) RECV_ACCM(0x{m.u32(8):08x})")
