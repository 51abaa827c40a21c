"""The fields a display filter can name, each mapped to the column it is.

One table per kind of row: `PACKET_FIELDS` (a packet: dissection, analysis,
endpoint states) and `CONN_FIELDS` (a connection of `tcpscope conns`). A
`Field` says its Wireshark name (or a ``tcpscope.`` name where Wireshark has
none), its type, which layer computes it (the filter asks the pipeline for
that layer), the ``packets`` / ``conns`` column it is (the same table maps
the pandas and Arrow columns to Wireshark's names: `wireshark_names`) and how
to read it from a batch's columns, as whole arrays.

Relative and raw numbers follow Wireshark: ``tcp.seq`` / ``tcp.ack`` are the
relative numbers (columns ``rel_seq`` / ``rel_ack``), ``tcp.seq_raw`` /
``tcp.ack_raw`` the numbers on the wire (columns ``seq`` / ``ack``).

To add a field, add one `Field` row: e.g. a per-packet annotation of the
sender model, ``_ann_value("tcpscope.cwnd_est", "cwnd_est", "cwnd_est")``.
"""
from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis.annotation import ANN_KIND, FLAG, FLAG_NAMES
from ..analysis.congestion import EVENTS, LIMITS, PHASES
from ..analysis.rules import RULES_BY_CODE
from ..analysis.states import State
from ..wire.record import ACK, AE, CSUM, CWR, ECE, FIN, KIND, OPTION, PSH, REASON, RST, SYN, URG

__all__ = ["Columns", "Field", "FieldTable", "Occurrences", "PACKET_FIELDS", "CONN_FIELDS",
           "wireshark_names"]

#: (values, present) for each occurrence of a field in the rows
Occurrences = list[tuple[np.ndarray, np.ndarray]]

STATE_NAMES = tuple(s.name for s in State)
CSUM_TEXT = {CSUM["OK"]: "ok", CSUM["BAD"]: "bad", CSUM["OFFLOAD"]: "offload",
             CSUM["UNVERIFIED"]: "unverified"}


class Columns:
    """The rows a filter looks at, as columns, each computed once.

    From a pipeline chunk (`from_chunk`: records, annotations, states, events) or from
    connection records (`from_records`: one dict per connection).
    """

    def __init__(self, n: int, *, chunk: Any = None,
                 records: list[Mapping[str, Any]] | None = None) -> None:
        self.n = n
        self.chunk = chunk
        self.records = records
        self._cache: dict[str, Any] = {}

    @classmethod
    def from_chunk(cls, chunk: Any) -> Columns:
        return cls(len(chunk.records), chunk=chunk)

    @classmethod
    def from_records(cls, records: list[Mapping[str, Any]]) -> Columns:
        return cls(len(records), records=records)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = make()
        return got

    # packet rows
    @property
    def rec(self) -> np.ndarray:
        return self.chunk.records

    @property
    def ann(self) -> np.ndarray:
        return self.chunk.annotations

    @property
    def segment(self) -> np.ndarray:
        """Frames the dissector calls TCP (Wireshark's ``tcp``)."""
        return self.cached("segment", lambda: self.rec["kind"] == KIND["TCP"])

    @property
    def tcp(self) -> np.ndarray:
        """TCP frames whose fixed header was captured whole (Wireshark shows no TCP
        field of a header cut short)."""
        return self.cached("tcp", lambda: self.segment & (
            self.rec["stop_reason"] != REASON["TRUNCATED_TCP"]))

    @property
    def tracked(self) -> np.ndarray:
        """TCP rows the engine gave a stream."""
        return self.cached("tracked", lambda: self.tcp & (self.ann["stream"] >= 0))

    def key(self, name: str) -> np.ndarray:
        """A connection record's key as a column (None where absent)."""
        return self.cached("key:" + name, lambda: np.array(
            [r.get(name) for r in self.records], dtype=object))


@dataclass(frozen=True)
class Field:
    """One field: its name, type, layer, column, and how to read it."""

    name: str
    #: uint, int, float, bool (0/1), none (a flag: present or not), ipv4, ipv6, enum
    type: str
    get: Callable[[Columns], Occurrences]
    layer: str = "wire"          #: wire, analysis (the engine), states (the lifecycle)
    column: str | None = None    #: the packets / conns column it is
    doc: str = ""
    choices: tuple[str, ...] = ()  #: enum: the names (a row holds the index)
    always: str = ""             #: bool: the protocol in every packet of which it is present

    def occurrences(self, cols: Columns) -> Occurrences:
        return cols.cached("field:" + self.name, lambda: self.get(cols))

    def parse(self, text: str) -> Any:
        """The literal `text` as a value of this field (ValueError if it cannot be one)."""
        t = self.type
        if t in ("uint", "int"):
            try:
                return int(text, 0) if not text.lstrip("-").startswith("0") or text == "0" \
                    or text.lower().startswith(("0x", "-0x")) else int(text, 8)
            except ValueError:
                raise ValueError("an integer was expected") from None
        if t == "float":
            try:
                return float(text)
            except ValueError:
                raise ValueError("a number was expected") from None
        if t == "bool":
            v = {"1": 1, "0": 0, "true": 1, "false": 0}.get(text.lower())
            if v is None:
                raise ValueError("1, 0, true or false was expected")
            return v
        if t in ("ipv4", "ipv6"):
            net = ipaddress.ip_network(text, strict=False)
            want = 4 if t == "ipv4" else 6
            if net.version != want:
                raise ValueError(f"an IPv{want} address or network was expected")
            return net
        if t == "enum":
            for i, name in enumerate(self.choices):
                if name.lower() == text.lower():
                    return i
            raise ValueError("one of " + ", ".join(c for c in self.choices if c))
        raise ValueError("this field has no value")

    def compare(self, values: np.ndarray, op: str, literal: Any) -> np.ndarray:
        """Each value `op` the literal, as a bool array."""
        if self.type == "ipv4":
            net = literal
            mask = (0xFFFFFFFF << (32 - net.prefixlen)) & 0xFFFFFFFF
            inside = (values & np.uint32(mask)) == np.uint32(int(net.network_address))
            return _ordered(op, inside, values, int(net.network_address))
        if self.type == "ipv6":
            net = literal
            mask = ((1 << 128) - 1) ^ ((1 << (128 - net.prefixlen)) - 1)
            addr = int(net.network_address)
            hi_m, lo_m = np.uint64(mask >> 64), np.uint64(mask & (2**64 - 1))
            inside = ((values[:, 0] & hi_m) == np.uint64(addr >> 64)) & \
                ((values[:, 1] & lo_m) == np.uint64(addr & (2**64 - 1)))
            if op in ("==", "!="):
                return inside if op == "==" else ~inside
            raise ValueError("IPv6 addresses compare with == and != only")
        return _ordered(op, values == literal, values, literal)


def _ordered(op: str, equal: np.ndarray, values: np.ndarray, literal: Any) -> np.ndarray:
    if op == "==":
        return equal
    if op == "!=":
        return ~equal
    return {">": np.greater, "<": np.less, ">=": np.greater_equal,
            "<=": np.less_equal}[op](values, literal)


class FieldTable(Mapping[str, Field]):
    """Fields by name (aliases allowed); `suggest` finds a near name for an error."""

    def __init__(self, fields: Iterable[Field], aliases: Mapping[str, str] | None = None) -> None:
        self._fields = {f.name: f for f in fields}
        self._aliases = dict(aliases or {})

    def __getitem__(self, name: str) -> Field:
        return self._fields[self._aliases.get(name, name)]

    def __iter__(self):
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._aliases.get(name, name) in self._fields

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    def suggest(self, name: str) -> str | None:
        near = difflib.get_close_matches(name, list(self._fields) + list(self._aliases), n=1)
        return near[0] if near else None


# ---------------------------------------------------------------------------- packets

def _one(values: np.ndarray, present: np.ndarray) -> Occurrences:
    return [(values, present)]


def _tcp(name: str, col: str, column: str | None = None, doc: str = "", type_: str = "uint",
         when: Callable[[Columns], np.ndarray] | None = None) -> Field:
    def get(c: Columns) -> Occurrences:
        present = c.tcp if when is None else c.tcp & when(c)
        return _one(c.rec[col].astype(np.int64), present)
    return Field(name, type_, get, column=column, doc=doc)


def _port(name: str, col: str, column: str, doc: str) -> Field:
    """A port: shown by Wireshark also when the rest of the header was cut short."""
    return Field(name, "uint", lambda c: _one(c.rec[col].astype(np.int64), c.segment),
                 column=column, doc=doc)


def _relative(name: str, col: str, column: str | None, doc: str,
              when: Callable[[Columns], np.ndarray] | None = None) -> Field:
    """A relative number, 32 bits as Wireshark shows it (the engine's are 64-bit)."""
    def get(c: Columns) -> Occurrences:
        present = c.tracked if when is None else c.tracked & when(c)
        return _one(c.ann[col].astype(np.int64) & 0xFFFFFFFF, present)
    return Field(name, "uint", get, layer="analysis", column=column, doc=doc)


def _flag_bit(name: str, bit: int, doc: str) -> Field:
    return Field(name, "bool", lambda c: _one(((c.rec["tcp_flags"] & bit) != 0).astype(np.int64),
                                              c.tcp),
                 column="flags", doc=doc, always="TCP")


def _option(name: str, col: str, opt: str, doc: str, type_: str = "uint") -> Field:
    return Field(name, type_, lambda c: _one(c.rec[col].astype(np.int64),
                                             c.tcp & ((c.rec["opt_present"] & OPTION[opt]) != 0)),
                 column="options", doc=doc)


def _option_flag(name: str, opt: str, doc: str) -> Field:
    return Field(name, "none", lambda c: _one(
        np.zeros(c.n, np.int64), c.tcp & ((c.rec["opt_present"] & OPTION[opt]) != 0)),
        column="options", doc=doc)


def _ann_value(name: str, col: str, column: str | None, doc: str = "", *, absent: int = -1,
               scale: float | None = None, type_: str = "uint") -> Field:
    """An annotation value that is absent when it equals `absent` (or, for 0, is 0)."""
    def get(c: Columns) -> Occurrences:
        v = c.ann[col]
        present = c.tracked & ((v > 0) if absent == 0 else (v != absent))
        return _one(v / scale if scale else v.astype(np.int64), present)
    return Field(name, "float" if scale else type_, get, layer="analysis", column=column, doc=doc)


def _sender(name: str, col: str, doc: str, choices: tuple[str | None, ...] = ()) -> Field:
    """A value of the sender model (--mode improved): present on a data sender's segments
    (those with a congestion-window estimate), as the packets column of the same name."""
    def get(c: Columns) -> Occurrences:
        v = c.ann[col].astype(np.int64)
        present = c.tracked & (c.ann["cwnd_est"] > 0) & ((v > 0) if choices else (v >= 0))
        return _one(v, present)
    return Field(f"tcpscope.{name}", "enum" if choices else "uint", get, layer="analysis",
                 column=name, choices=tuple(x or "" for x in choices), doc=doc)


def _cc_events(c: Columns) -> Occurrences:
    a = c.ann
    have = c.tracked & (a["cwnd_est"] > 0)
    return [(a[k].astype(np.int64), have & (a[k] > 0)) for k in ("cc_episode_end", "cc_event")]


def _analysis_flag(flag: str) -> Field:
    bit = FLAG[flag]
    return Field(f"tcp.analysis.{flag}", "none",
                 lambda c: _one(np.zeros(c.n, np.int64), c.tracked & ((c.ann["flags"] & bit) != 0)),
                 layer="analysis", column="analysis",
                 doc=f"the {flag} verdict (Wireshark's expert flag)")


def _ip4(side: str) -> Callable[[Columns], np.ndarray]:
    def values(c: Columns) -> np.ndarray:
        a = np.ascontiguousarray(c.rec[side][:, :4])
        return a.view(">u4").ravel().astype(np.uint32)
    return values


def _ip6(side: str) -> Callable[[Columns], np.ndarray]:
    def values(c: Columns) -> np.ndarray:
        return np.ascontiguousarray(c.rec[side]).view(">u8").astype(np.uint64)
    return values


def _addr_fields(proto: str, version: int, type_: str,
                 read: Callable[[str], Callable[[Columns], np.ndarray]]) -> list[Field]:
    def present(c: Columns) -> np.ndarray:
        return c.rec["ip_version"] == version

    src, dst = read("src"), read("dst")
    return [
        Field(f"{proto}.src", type_, lambda c: _one(src(c), present(c)), column="src",
              doc="source address"),
        Field(f"{proto}.dst", type_, lambda c: _one(dst(c), present(c)), column="dst",
              doc="destination address"),
        Field(f"{proto}.addr", type_, lambda c: [(src(c), present(c)), (dst(c), present(c))],
              column="src/dst", doc="either address"),
    ]


def _ip_value(name: str, col: str, version: int, doc: str, column: str | None = None) -> Field:
    return Field(name, "uint", lambda c: _one(c.rec[col].astype(np.int64),
                                              c.rec["ip_version"] == version),
                 column=column, doc=doc)


def _scalefactor(c: Columns) -> Occurrences:
    ws = c.ann["win_scale"].astype(np.int64)
    factor = np.where(ws >= 0, np.left_shift(1, np.clip(ws, 0, 14)), ws)
    return _one(factor, c.tracked & ((c.rec["tcp_flags"] & SYN) == 0))  # SYNs are never scaled


def _state(side: str) -> Field:
    return Field(f"tcpscope.state.{side}", "enum",
                 lambda c: _one(getattr(c.chunk.life, side).astype(np.int64), c.tracked),
                 layer="states", column=f"{side}_state", choices=STATE_NAMES,
                 doc=f"the {side}'s RFC 9293 state after this packet")


def _events(c: Columns) -> Occurrences:
    names = {n: i for i, n in enumerate(_EVENT_NAMES)}
    events = c.chunk.life.events
    width = max((len(v) for v in events.values()), default=0)
    out = []
    for k in range(width):
        v = np.full(c.n, -1, np.int64)
        for row, evs in events.items():
            if k < len(evs):
                v[row] = names.get(evs[k], -1)
        out.append((v, v >= 0))
    return out or [(np.full(c.n, -1, np.int64), np.zeros(c.n, bool))]


def _lifecycle_events() -> tuple[str, ...]:
    from ..analysis.lifecycle import LIFECYCLE_EVENTS

    return tuple(LIFECYCLE_EVENTS)


_EVENT_NAMES = _lifecycle_events()
_RULE_IDS = ("",) + tuple(RULES_BY_CODE[k].id for k in sorted(RULES_BY_CODE))
_RULE_INDEX = np.zeros(max(RULES_BY_CODE) + 1, np.int64)
for _i, _code in enumerate(sorted(RULES_BY_CODE), 1):
    _RULE_INDEX[_code] = _i


def _rules(c: Columns) -> Occurrences:
    codes = c.ann["rule"].astype(np.int64)
    idx = _RULE_INDEX[np.clip(codes, 0, _RULE_INDEX.shape[0] - 1)]
    return [(idx[:, k], c.tracked & (idx[:, k] > 0)) for k in range(codes.shape[1])]


def _checksum(c: Columns) -> Occurrences:
    order = ("ok", "bad", "offload", "unverified")
    status = c.rec["tcp_csum_status"]
    v = np.zeros(c.n, np.int64)
    for code, text in CSUM_TEXT.items():
        v[status == code] = order.index(text)
    return _one(v, c.tcp)


PACKET_FIELDS = FieldTable([
    Field("frame", "none", lambda c: _one(np.zeros(c.n, np.int64), np.ones(c.n, bool)),
          doc="every frame"),
    Field("frame.number", "uint", lambda c: _one(c.chunk.batch.frame_numbers.astype(np.int64),
                                                 np.ones(c.n, bool)), column="frame",
          doc="the frame's number in the capture (the merged capture for several files)"),
    Field("frame.time_epoch", "float", lambda c: _one(c.chunk.ts_ns / 1e9, np.ones(c.n, bool)),
          column="ts", doc="capture time, seconds since 1970"),
    Field("frame.len", "uint", lambda c: _one(c.chunk.batch.origlen.astype(np.int64),
                                              np.ones(c.n, bool)), doc="bytes on the wire"),
    Field("frame.cap_len", "uint", lambda c: _one(c.chunk.batch.caplen.astype(np.int64),
                                                  np.ones(c.n, bool)), doc="bytes captured"),
    Field("frame.interface_id", "uint", lambda c: _one(c.chunk.batch.iface.astype(np.int64),
                                                       np.ones(c.n, bool)),
          doc="the capture interface (pcapng)"),
    *_addr_fields("ip", 4, "ipv4", _ip4),
    *_addr_fields("ipv6", 6, "ipv6", _ip6),
    _ip_value("ip.ttl", "ip_ttl", 4, "time to live"),
    _ip_value("ip.id", "ip_id", 4, "identification"),
    _ip_value("ip.len", "ip_len", 4, "total length"),
    _ip_value("ip.proto", "ip_proto", 4, "upper-layer protocol"),
    _ip_value("ip.dsfield", "ip_tos", 4, "DS field (TOS)"),
    _ip_value("ipv6.hlim", "ip_ttl", 6, "hop limit"),
    _ip_value("ipv6.flow", "ip6_flow", 6, "flow label"),
    _ip_value("ipv6.nxt", "ip_proto", 6, "upper-layer protocol (after extension headers)"),
    Field("tcp", "none", lambda c: _one(np.zeros(c.n, np.int64), c.segment),
          doc="a TCP segment"),
    Field("tcp.stream", "uint", lambda c: _one(c.ann["stream"].astype(np.int64), c.tracked),
          layer="analysis", column="stream", doc="the connection's index (Wireshark's rules)"),
    _port("tcp.srcport", "sport", "sport", "source port"),
    _port("tcp.dstport", "dport", "dport", "destination port"),
    Field("tcp.port", "uint", lambda c: [(c.rec["sport"].astype(np.int64), c.segment),
                                         (c.rec["dport"].astype(np.int64), c.segment)],
          column="sport/dport", doc="either port"),
    _tcp("tcp.len", "payload_len", "len", "payload bytes"),
    _tcp("tcp.hdr_len", "tcp_hlen", None, "header length"),
    _tcp("tcp.flags", "tcp_flags", "flags", "the flag bits"),
    _flag_bit("tcp.flags.fin", FIN, "FIN"),
    _flag_bit("tcp.flags.syn", SYN, "SYN"),
    _flag_bit("tcp.flags.reset", RST, "RST"),
    _flag_bit("tcp.flags.push", PSH, "PSH"),
    _flag_bit("tcp.flags.ack", ACK, "ACK"),
    _flag_bit("tcp.flags.urg", URG, "URG"),
    _flag_bit("tcp.flags.ece", ECE, "ECE"),
    _flag_bit("tcp.flags.cwr", CWR, "CWR"),
    _flag_bit("tcp.flags.ae", AE, "AE (Wireshark 4.0 calls it tcp.flags.ns)"),
    _relative("tcp.seq", "rel_seq", "rel_seq", "relative sequence number"),
    _tcp("tcp.seq_raw", "seq", "seq", "sequence number on the wire"),
    _relative("tcp.ack", "rel_ack", "rel_ack", "relative acknowledgment number",
              when=lambda c: (c.rec["tcp_flags"] & ACK) != 0),
    _tcp("tcp.ack_raw", "ack", "ack", "acknowledgment number on the wire (every segment)"),
    _relative("tcp.nxtseq", "next_rel_seq", None, "next relative sequence number",
              when=lambda c: c.ann["kind"] == ANN_KIND["analysed"]),
    _tcp("tcp.window_size_value", "win", "win", "window as carried (unscaled)"),
    Field("tcp.window_size", "int", lambda c: _one(c.ann["win_scaled"].astype(np.int64),
                                                   c.tracked),
          layer="analysis", column="win_scaled", doc="window, scaled as Wireshark scales it"),
    Field("tcp.window_size_scalefactor", "int", _scalefactor, layer="analysis",
          doc="window multiplier; -1 unknown, -2 no scaling"),
    _tcp("tcp.checksum", "tcp_csum", None, "checksum as carried"),
    _tcp("tcp.urgent_pointer", "urg", None, "urgent pointer"),
    _option("tcp.options.mss_val", "mss", "MSS", "MSS option value"),
    _option("tcp.options.wscale.shift", "wscale", "WSCALE", "window scale option shift"),
    _option_flag("tcp.options.sack_perm", "SACK_PERM", "SACK permitted option"),
    _option_flag("tcp.options.sack", "SACK", "SACK option"),
    _option("tcp.options.timestamp.tsval", "ts_val", "TIMESTAMP", "timestamp value"),
    _option("tcp.options.timestamp.tsecr", "ts_ecr", "TIMESTAMP", "timestamp echo reply"),
    _option_flag("tcp.options.tfo", "TFO", "TCP Fast Open option"),
    _option_flag("tcp.options.mptcp", "MPTCP", "an MPTCP option"),
    *[_analysis_flag(f) for f in FLAG_NAMES if f != "capture_duplicate"],
    Field("tcp.analysis.flags", "none",
          lambda c: _one(np.zeros(c.n, np.int64), c.tracked & (c.ann["flags"] != 0)),
          layer="analysis", column="analysis", doc="any analysis verdict"),
    _ann_value("tcp.analysis.ack_rtt", "ack_rtt_ns", "ack_rtt", "RTT to ACK this segment (s)",
               scale=1e9),
    _ann_value("tcp.analysis.initial_rtt", "irtt_ns", "irtt", "handshake RTT (s)", scale=1e9),
    _ann_value("tcp.analysis.bytes_in_flight", "bytes_in_flight", "bytes_in_flight",
               "bytes in flight"),
    _ann_value("tcp.analysis.push_bytes_sent", "push_bytes_sent", None, "bytes since last PSH"),
    _ann_value("tcp.analysis.acks_frame", "acked_frame", "acks_frame", "frame this ACKs",
               absent=0),
    _ann_value("tcp.analysis.duplicate_ack_num", "dup_ack_num", "dup_ack_num",
               "duplicate ACK number", absent=0),
    _ann_value("tcp.analysis.duplicate_ack_frame", "dup_ack_frame", None,
               "the frame this duplicates", absent=0),
    _ann_value("tcp.analysis.rto", "rto_ns", None, "time since the original (s)", scale=1e9),
    _ann_value("tcp.analysis.rto_frame", "rto_frame", None, "the original's frame", absent=0),
    Field("tcpscope.capture_duplicate", "none",
          lambda c: _one(np.zeros(c.n, np.int64),
                         c.tracked & ((c.ann["flags"] & FLAG["capture_duplicate"]) != 0)),
          layer="analysis", column="analysis",
          doc="the same packet captured twice (--mode improved)"),
    Field("tcpscope.rule", "enum", _rules, layer="analysis", column="rules", choices=_RULE_IDS,
          doc="a rule that fired on this packet (docs/analysis.md)"),
    Field("tcpscope.checksum", "enum", _checksum, column="checksum",
          choices=("ok", "bad", "offload", "unverified"), doc="the checksum verdict"),
    Field("tcpscope.from_server", "bool",
          lambda c: _one(c.ann["from_server"].astype(np.int64), c.tracked), layer="analysis",
          doc="1: sent by the server"),
    _ann_value("tcpscope.ip_id_gap", "ip_id_gap", None, "IPv4 IDs skipped just before",
               absent=0),
    _state("client"),
    _state("server"),
    Field("tcpscope.event", "enum", _events, layer="states", column="events",
          choices=_EVENT_NAMES, doc="a lifecycle event this packet caused"),
    _sender("cwnd_est", "cwnd_est", "the sender's congestion window estimate (segments)"),
    _sender("ssthresh_est", "ssthresh_est", "the sender's slow-start threshold estimate (segments)"),
    _sender("in_flight", "in_flight", "data in flight as the sender counts it (RFC 6675 pipe)"),
    _sender("cc_phase", "cc_phase", "the sender's phase: slow_start, congestion_avoidance, "
            "fast_recovery, rto_recovery, cwr", PHASES),
    _sender("limited_by", "limited_by", "what held the sender back: cwnd, rwnd, app, unknown",
            LIMITS),
    Field("tcpscope.cc_event", "enum", _cc_events, layer="analysis", column="cc_events",
          choices=tuple(x or "" for x in EVENTS),
          doc="a congestion episode this segment began or ended (fast_recovery, rto, tlp...)"),
], aliases={"tcp.flags.ns": "tcp.flags.ae", "tcpscope.state.client_state": "tcpscope.state.client"})


#: The fields that are exactly a packets column (same values, same absence): their
#: names are the Wireshark names of those columns.
EXACT_COLUMNS = (
    "frame.number", "frame.time_epoch", "tcp.stream", "tcp.srcport", "tcp.dstport",
    "tcp.seq_raw", "tcp.ack_raw", "tcp.seq", "tcp.ack", "tcp.len", "tcp.window_size_value",
    "tcp.window_size", "tcp.analysis.duplicate_ack_num", "tcp.analysis.bytes_in_flight",
    "tcp.analysis.ack_rtt", "tcp.analysis.acks_frame", "tcp.analysis.initial_rtt",
    "tcpscope.checksum", "tcpscope.state.client", "tcpscope.state.server",
)


def wireshark_names() -> dict[str, str]:
    """packets column -> the Wireshark (or tcpscope.) field it is exactly."""
    return {PACKET_FIELDS[name].column: name for name in EXACT_COLUMNS}


# ---------------------------------------------------------------------------- connections

def _key(name: str, type_: str, choices: tuple[str, ...] = ()) -> Callable[[Columns], Occurrences]:
    def get(c: Columns) -> Occurrences:
        raw = c.key(name)
        present = np.array([v is not None for v in raw], dtype=bool)
        if type_ == "enum":
            index = {n: i for i, n in enumerate(choices)}
            vals = np.array([index.get(v, -1) if v is not None else -1 for v in raw], np.int64)
            return _one(vals, present & (vals >= 0))
        if type_ in ("ipv4", "ipv6"):
            return _addr_values(raw, 4 if type_ == "ipv4" else 6)
        dtype = np.float64 if type_ == "float" else np.int64
        vals = np.array([(v if v is not None else 0) for v in raw], dtype=dtype)
        return _one(vals, present)
    return get


def _addr_values(raw: np.ndarray, version: int) -> Occurrences:
    n = raw.shape[0]
    present = np.zeros(n, bool)
    if version == 4:
        vals = np.zeros(n, np.uint32)
    else:
        vals = np.zeros((n, 2), np.uint64)
    for i, text in enumerate(raw.tolist()):
        if text is None:
            continue
        a = ipaddress.ip_address(text)
        if a.version != version:
            continue
        present[i] = True
        if version == 4:
            vals[i] = int(a)
        else:
            vals[i] = (int(a) >> 64, int(a) & (2**64 - 1))
    return _one(vals, present)


def _either(*getters: Callable[[Columns], Occurrences]) -> Callable[[Columns], Occurrences]:
    return lambda c: [occ for g in getters for occ in g(c)]


def conn_fields(keys: Mapping[str, str], enums: Mapping[str, tuple[str, ...]]) -> FieldTable:
    """Connection fields: every `conns` column by its own name (``handshake``,
    ``bytes_c2s``...; `keys` gives each one's type), the Wireshark names that mean
    something for a connection (``tcp.stream``, ``ip.addr``, ``tcp.port``, and
    ``tcp.analysis.FLAG``: the connection had such a packet), and the endpoints'
    final states as ``tcpscope.state.client/server``."""
    fields = [Field(k, t, _key(k, t, enums.get(k, ())), layer="states", column=k,
                    choices=enums.get(k, ()), doc=f"the conns column {k}")
              for k, t in keys.items()]
    fields += [
        Field("tcp.stream", "uint", _key("stream", "uint"), column="stream",
              doc="the connection's index"),
        Field("ip.addr", "ipv4", _either(_key("client", "ipv4"), _key("server", "ipv4")),
              column="client/server", doc="either endpoint's IPv4 address"),
        Field("ipv6.addr", "ipv6", _either(_key("client", "ipv6"), _key("server", "ipv6")),
              column="client/server", doc="either endpoint's IPv6 address"),
        Field("tcp.port", "uint", _either(_key("client_port", "uint"),
                                          _key("server_port", "uint")),
              column="client_port/server_port", doc="either endpoint's port"),
    ]
    for flag in FLAG_NAMES:
        col = f"anomaly_{flag}"
        if col in keys:
            fields.append(Field(f"tcp.analysis.{flag}", "none",
                                lambda c, col=col: _one(np.zeros(c.n, np.int64),
                                                        _key(col, "uint")(c)[0][0] > 0),
                                layer="states", column=col,
                                doc=f"the connection had a {flag} packet"))
    return FieldTable(fields, aliases={"tcpscope.state.client": "client_state",
                                       "tcpscope.state.server": "server_state"})


#: conns columns by type (the others are text and not filterable)
CONN_KEY_TYPES: dict[str, str] = {
    "stream": "uint", "client": "ipv4", "client_port": "uint", "server": "ipv4",
    "server_port": "uint", "role_guessed": "bool", "first_ts": "float", "duration": "float",
    "packets_c2s": "uint", "packets_s2c": "uint", "bytes_c2s": "uint", "bytes_s2c": "uint",
    "handshake": "enum", "syn_retries": "uint", "synack_retries": "uint", "irtt": "float",
    "mss_client": "uint", "mss_server": "uint", "wscale_client": "uint", "wscale_server": "uint",
    "sack": "bool", "timestamps": "bool", "ecn": "bool", "tfo": "bool", "teardown": "enum",
    "time_wait_side": "enum", "client_state": "enum", "server_state": "enum",
    "conn_state": "enum", "missed_bytes": "uint",
    **{f"anomaly_{f}": "uint" for f in FLAG_NAMES},
}


def _conn_enums() -> dict[str, tuple[str, ...]]:
    from ..analysis.lifecycle import HANDSHAKE_KINDS, TEARDOWN_KINDS

    return {
        "handshake": tuple(HANDSHAKE_KINDS), "teardown": tuple(TEARDOWN_KINDS),
        "time_wait_side": ("client", "server", "both", "none"),
        "client_state": STATE_NAMES, "server_state": STATE_NAMES,
        "conn_state": ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH",
                       "SH", "SHR", "OTH"),
    }


CONN_FIELDS = conn_fields(CONN_KEY_TYPES, _conn_enums())
