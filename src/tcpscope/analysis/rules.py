"""The rules registry: every reason the analysis can give for a flag.

Each analysis verdict carries the rule that fired (``Rule.id``, a short stable
identifier such as ``retx.seq_below_next``) and the frames that are its
evidence. The native engine reports a rule by its number; the numbers, the
flag each rule sets and the identifiers are defined once, in
``_native/annotation.h`` (``TCPS_RULES``); this module adds the sentence that
explains each rule and checks, at import, that both lists agree.

Identifiers are a contract: docs/differences.md and users' scripts refer to
them. Never reuse one for a different meaning; add a new rule instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from . import _engine
from .annotation import FLAG_NAMES

__all__ = ["Rule", "RULES", "RULES_BY_CODE", "rule"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One way a flag can be set."""

    code: int  #: the number the engine reports (annotation.rule[flag bit])
    id: str  #: stable identifier, e.g. "dupack.same_ack_same_win"
    flag: str  #: the Wireshark flag it sets, e.g. "duplicate_ack"
    modes: tuple[str, ...]  #: the analysis modes that use it
    sentence: str  #: what it means, in one English sentence
    evidence: str  #: what the evidence frames are


_BOTH = ("wireshark", "improved")
_IMPROVED = ("improved",)

# id -> (modes, sentence, evidence)
_TEXT: dict[str, tuple[tuple[str, ...], str, str]] = {
    "retx.seq_below_next": (
        _BOTH,
        "The segment carries data (or SYN/FIN) below the highest sequence number this side had "
        "already sent, and it is neither out of order, a fast retransmission nor spurious.",
        "the first unacknowledged frame that carried some of these bytes (else the frame that "
        "last advanced the sequence number)",
    ),
    "retx.implied_by_fast": (
        _BOTH,
        "A fast retransmission is also a retransmission (Wireshark sets both).",
        "none (see fast_retransmission)",
    ),
    "retx.implied_by_spurious": (
        _BOTH,
        "A spurious retransmission is also a retransmission (Wireshark sets both).",
        "none (see spurious_retransmission)",
    ),
    "fast_retx.dupacks": (
        _BOTH,
        "The segment starts at the sequence number the peer has asked for with at least two "
        "duplicate ACKs, less than 20 ms after the last of them (RFC 5681 section 3.2).",
        "the ACK that the duplicates repeat, and the last duplicate ACK",
    ),
    "spurious.already_acked": (
        _BOTH,
        "Every byte of the segment had already been acknowledged by the peer.",
        "the peer's ACK that covered these bytes",
    ),
    "ooo.within_irtt": (
        _BOTH,
        "The segment is below the highest sequence number sent and arrived sooner after the "
        "segment that set it than the handshake round-trip time, so it was reordered rather "
        "than resent.",
        "the frame that advanced the sequence number past this segment",
    ),
    "ooo.within_3ms": (
        _BOTH,
        "The segment is below the highest sequence number sent and arrived within 3 ms of the "
        "segment that set it (no handshake RTT is known), so it was reordered rather than resent.",
        "the frame that advanced the sequence number past this segment",
    ),
    "lost.seq_above_next": (
        _BOTH,
        "The segment starts beyond the next expected sequence number of this side: the segment "
        "in between was not captured.",
        "this side's previous frame",
    ),
    "acklost.beyond_hole": (
        _BOTH,
        "The ACK covers data past a hole in what the peer was seen sending: the segment that "
        "fills the hole was not captured.",
        "the peer's frame that last advanced its sequence number",
    ),
    "acklost.beyond_seen": (
        _BOTH,
        "The ACK covers data the peer was never seen sending (reported once, until this side's "
        "ACK changes or the peer skips ahead again).",
        "the peer's frame that last advanced its sequence number",
    ),
    "dupack.same_ack_same_win": (
        _BOTH,
        "A segment without data repeats this side's previous ACK number, window and sequence "
        "number.",
        "the frame whose ACK this one duplicates",
    ),
    "zwin.window_zero": (
        _BOTH,
        "The advertised window is zero (and the segment is not SYN, FIN or RST): the receiver "
        "can take no more data.",
        "none",
    ),
    "zwp.one_byte_into_closed": (
        _BOTH,
        "One byte sent at the next expected sequence number while the peer's window is zero: a "
        "zero-window probe (RFC 9293 section 3.8.6.1).",
        "the peer's frame that advertised the zero window",
    ),
    "zwpack.repeat_after_probe": (
        _BOTH,
        "The reply to a zero-window probe: same ACK, window still zero.",
        "the probe",
    ),
    "wfull.reaches_window_edge": (
        _BOTH,
        "The segment ends exactly at the right edge of the window the peer last advertised.",
        "the peer's frame that advertised that window",
    ),
    "wupdate.window_changed": (
        _BOTH,
        "A segment without data repeats the previous sequence and ACK numbers with a new "
        "window: a window update.",
        "this side's previous frame",
    ),
    "keepalive.seq_next_minus_one": (
        _BOTH,
        "Zero or one byte at one less than the next expected sequence number: a keep-alive "
        "(RFC 1122 section 4.2.3.6).",
        "the frame that last advanced the sequence number",
    ),
    "keepalive_ack.repeat_after_keepalive": (
        _BOTH,
        "The reply to a keep-alive: same ACK and window as before.",
        "the keep-alive",
    ),
    "reuse.syn_new_isn": (
        _BOTH,
        "A SYN on a known address and port pair with a different initial sequence number: a new "
        "connection reusing the ports, so a new stream.",
        "the last frame of the previous stream on these ports",
    ),
    "reuse.synack_new_isn": (
        _BOTH,
        "A SYN-ACK with a different initial sequence number than this side used before on "
        "these ports; relative numbers restart from it.",
        "this side's first frame on these ports",
    ),
    "ooo.sack_hole_fill": (
        _IMPROVED,
        "The segment is the first copy seen of bytes in a hole, and the peer has not yet reported "
        "the hole (no duplicate ACK or SACK block for it): it arrived late, it was not resent.",
        "the frame that advanced the sequence number past this segment",
    ),
    "retx.capture_duplicate": (
        _IMPROVED,
        "The same segment (sequence and ACK numbers, flags, length, window and IP identification) "
        "was captured again within 2 ms or on another interface: a capture duplicate, not a "
        "retransmission or a duplicate ACK; it is left out of the analysis.",
        "the first copy",
    ),
    "retx.bytes_seen_before": (
        _IMPROVED,
        "Every byte of the segment had already been sent in this direction: a retransmission, "
        "however soon it follows the original.",
        "the first frame that carried some of these bytes",
    ),
    "zwp.keepalive_while_closed": (
        _IMPROVED,
        "Zero or one byte at one less than the next sequence number while the peer's window is "
        "zero: the way Linux probes a zero window (tcp_xmit_probe_skb), not a keep-alive.",
        "the peer's frame that advertised the zero window",
    ),
    "retx.hole_reported_by_peer": (
        _IMPROVED,
        "The segment is the first copy seen of bytes the peer had already reported missing "
        "(duplicate ACKs or SACK blocks above them): the original was lost before the capture "
        "point and this is its retransmission.",
        "the peer's ACK that reported the hole",
    ),
    "retx.ip_id_sent_after": (
        _IMPROVED,
        "The segment is the first copy seen of bytes in a hole, but its IPv4 identification "
        "(which this sender increments per packet) is newer than that of the data already seen "
        "past the hole: it was sent after it, so it is a retransmission of a copy lost before "
        "the capture point.",
        "the frame that advanced the sequence number past this segment",
    ),
    "ooo.ip_id_sent_before": (
        _IMPROVED,
        "The segment is the first copy seen of bytes in a hole and its IPv4 identification "
        "(which this sender increments per packet) is older than that of the data already seen "
        "past the hole: it was sent first and overtaken on the way, a late original.",
        "the frame that advanced the sequence number past this segment",
    ),
    "wupdate.probe_byte_acked": (
        _IMPROVED,
        "The ACK covers the zero-window probe's byte and opens the window: the receiver took the "
        "probe (not an ACK of unseen data).",
        "the probe",
    ),
}


def _build() -> tuple[MappingProxyType, MappingProxyType]:
    by_id: dict[str, Rule] = {}
    by_code: dict[int, Rule] = {}
    for code, bit, rid in _engine.enums()["rules"]:
        if rid not in _TEXT:
            raise ImportError(f"rule {rid!r} of annotation.h has no sentence in rules.py")
        modes, sentence, evidence = _TEXT[rid]
        r = Rule(code, rid, FLAG_NAMES[bit], modes, sentence, evidence)
        by_id[rid] = r
        by_code[code] = r
    extra = set(_TEXT) - set(by_id)
    if extra:
        raise ImportError(f"rules.py explains rules annotation.h does not define: {sorted(extra)}")
    return MappingProxyType(by_id), MappingProxyType(by_code)


#: Every rule by identifier.
RULES, RULES_BY_CODE = _build()


def rule(code_or_id: int | str) -> Rule:
    """A rule by its number or its identifier (KeyError if unknown)."""
    return RULES_BY_CODE[code_or_id] if isinstance(code_or_id, int) else RULES[code_or_id]
