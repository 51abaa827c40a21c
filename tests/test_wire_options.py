"""TCP options: the typed parser (options.py) and the native summary agree, malformed lists are marked."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpscope.wire.builder import TCP, Ether, Frame, IPv4
from tcpscope.wire.dissect import dissect_frame
from tcpscope.wire.options import (
    EXID_TFO, Eol, Experimental, FastOpen, Malformed, Md5, Mptcp, Mss, Nop, Sack, SackPermitted, TcpAo,
    Timestamp, Unknown, UserTimeout, WindowScale, options_to_bytes, parse_options,
)
from tcpscope.wire.packet import Packet
from tcpscope.wire.record import OPTION, WARNING

BASE = Frame(Ether(), IPv4(), TCP(flags="S"))


def summary(options):
    raw = BASE.with_tcp(options=tuple(options)).build()
    return dissect_frame(raw, 1), raw


# Every option kind: typed value, its bytes, and the summary bit it sets.
CASES = [
    (Mss(1460), bytes.fromhex("020405b4"), "MSS"),
    (WindowScale(14), bytes.fromhex("03030e"), "WSCALE"),
    (SackPermitted(), bytes.fromhex("0402"), "SACK_PERM"),
    (Sack(((1, 2),)), bytes.fromhex("050a0000000100000002"), "SACK"),
    (Timestamp(0xDEADBEEF, 7), bytes.fromhex("080adeadbeef00000007"), "TIMESTAMP"),
    (FastOpen(), bytes.fromhex("2202"), "TFO"),
    (FastOpen(bytes.fromhex("0a0b0c0d")), bytes.fromhex("22060a0b0c0d"), "TFO"),
    (FastOpen(b"", experimental=True), bytes.fromhex("fe04f989"), "TFO"),
    (FastOpen(bytes.fromhex("0909090900000000"), True), bytes.fromhex("fe0cf9890909090900000000"), "TFO"),
    (Mptcp(bytes.fromhex("0181") + bytes(8)), bytes.fromhex("1e0c0181") + bytes(8), "MPTCP"),
    (Md5(bytes(range(16))), bytes.fromhex("1312") + bytes(range(16)), "MD5"),
    (UserTimeout(1, 5), bytes.fromhex("1c048005"), "UTO"),
    (TcpAo(1, 2, bytes.fromhex("aabbcc")), bytes.fromhex("1d070102aabbcc"), "AO"),
    (Experimental(253, 0x1234, b"x"), bytes.fromhex("fd051234") + b"x", "EXP"),
    (Experimental(254, 0xACC0), bytes.fromhex("fe04acc0"), "EXP"),
    (Unknown(27, bytes.fromhex("0102")), bytes.fromhex("1b040102"), "UNKNOWN"),
]


@pytest.mark.parametrize("opt,raw,bit", CASES, ids=[type(c[0]).__name__ + str(i) for i, c in enumerate(CASES)])
def test_each_option_round_trip_and_summary(opt, raw, bit):
    assert opt.to_bytes() == raw and opt.length == len(raw)
    assert parse_options(raw) == [opt]
    r, _ = summary([opt])
    assert r["opt_present"] & OPTION[bit]
    assert not r["warnings"] & WARNING["MALFORMED_TCP_OPTIONS"]


def test_summary_values():
    r, _ = summary([Mss(1400), Nop(), WindowScale(9), SackPermitted(), Timestamp(11, 22)])
    assert (r["mss"], r["wscale"], r["ts_val"], r["ts_ecr"]) == (1400, 9, 11, 22)
    assert r["opt_present"] == OPTION["MSS"] | OPTION["WSCALE"] | OPTION["SACK_PERM"] | OPTION["TIMESTAMP"]
    r, _ = summary([Nop(), Nop(), Sack(((1, 2), (3, 4), (5, 6), (7, 8)))])
    assert r["sack_count"] == 4 and r["sack"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    r, _ = summary([Sack(((1, 2), (3, 4))), Sack(((5, 6), (7, 8)))])  # two options: 4 blocks total
    assert r["sack_count"] == 4 and r["sack"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]


def test_eol_ends_the_list():
    raw = options_to_bytes([Mss(1), Eol(), b"\x02\x04\x00\x09"])
    assert parse_options(raw) == [Mss(1), Eol()]
    r, _ = summary([raw])
    assert r["opt_present"] == OPTION["MSS"] | OPTION["EOL"] and r["mss"] == 1


@pytest.mark.parametrize("raw,kind,offset,reason_start", [
    (b"\x02\x00\x00\x00", 2, 0, "length 0 < 2"),
    (b"\x01\x08\x01\x00", 8, 1, "length 1 < 2"),
    (b"\x01\x01\x01\x05", 5, 3, "no room for the length byte"),
    (b"\x08\x0a\x00\x00\x00\x00\x00\x00", 8, 0, "length 10 overruns"),
    (b"\x01\x02\x08\x05\xb4\x01\x01\x01", 2, 1, "length 8 overruns"),
])
def test_malformed_structure_stops_the_list(raw, kind, offset, reason_start):
    opts = parse_options(raw)
    last = opts[-1]
    assert isinstance(last, Malformed) and (last.kind, last.offset) == (kind, offset)
    assert last.reason.startswith(reason_start) and last.data == raw[offset:]
    r, _ = summary([raw])
    assert r["warnings"] & WARNING["MALFORMED_TCP_OPTIONS"]


@pytest.mark.parametrize("raw", [
    b"\x02\x03\x05", b"\x03\x04\x00\x00", b"\x04\x03\x00", b"\x08\x08" + bytes(6), b"\x05\x02",
    b"\x05\x0b" + bytes(9), b"\x13\x10" + bytes(14), b"\x1c\x03\x00", b"\x1d\x03\x00", b"\x1e\x02",
    b"\x22\x03\x00", b"\x22\x14" + bytes(18), b"\xfe\x03\xf9", b"\xfd\x02",
])
def test_wrong_length_for_the_kind_is_marked_and_the_list_goes_on(raw):
    data = raw + b"\x01" + b"\x02\x04\x01\x02"
    data += b"\x00" * ((-len(data)) % 4)
    opts = parse_options(data)
    assert isinstance(opts[0], Malformed) and opts[0].data == raw and opts[0].offset == 0
    assert opts[1:3] == [Nop(), Mss(0x0102)]
    r, _ = summary([data])
    assert r["warnings"] & WARNING["MALFORMED_TCP_OPTIONS"]
    assert r["opt_present"] & OPTION["MSS"] and r["mss"] == 0x0102  # the valid one after it is kept


def test_cut_by_the_capture_is_not_called_an_overrun():
    raw = Timestamp(1, 2).to_bytes()[:6]
    [m] = parse_options(raw, complete=False)
    assert isinstance(m, Malformed) and "captured bytes end" in m.reason


def test_typed_views():
    assert UserTimeout(1, 5).raw == 0x8005 and UserTimeout(1, 5).seconds == 300
    assert UserTimeout(0, 30).seconds == 30
    mp = Mptcp(bytes.fromhex("0181") + bytes(8))
    assert (mp.subtype, mp.name, mp.version, mp.length) == (0, "capable", 1, 12)
    assert [Mptcp(bytes([s << 4])).name for s in range(9)] == [
        "capable", "join", "dss", "add-addr", "rem-addr", "prio", "fail", "fast-close", "tcprst"]
    assert FastOpen().is_request and FastOpen(b"1234", True).kind == 254 and EXID_TFO == 0xF989


def test_packet_parses_options_lazily():
    raw = BASE.with_tcp(options=(Mss(1460), SackPermitted(), Timestamp(1, 0), Nop(), WindowScale(7))).build()
    p = Packet.from_record(dissect_frame(raw, 1), raw, frame=1)
    assert p.options == (Mss(1460), SackPermitted(), Timestamp(1, 0), Nop(), WindowScale(7))
    assert p.options is p.options  # parsed once


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

@given(st.binary(max_size=60))
@settings(max_examples=1500, deadline=None)
def test_parser_never_raises_and_accounts_for_every_byte(data):
    for complete in (True, False):
        opts = parse_options(data, complete=complete)
        consumed = b"".join(o.to_bytes() for o in opts)
        if opts and isinstance(opts[-1], Eol):
            assert data.startswith(consumed)
        else:
            assert consumed == data  # nothing dropped, nothing repaired


u32 = st.integers(0, 2**32 - 1)
typed_option = st.one_of(
    st.builds(Mss, st.integers(0, 0xFFFF)),
    st.builds(WindowScale, st.integers(0, 255)),
    st.just(SackPermitted()),
    st.just(Nop()),
    st.builds(Sack, st.lists(st.tuples(u32, u32), min_size=1, max_size=3).map(tuple)),
    st.builds(Timestamp, u32, u32),
    st.builds(FastOpen, st.one_of(st.just(b""), st.binary(min_size=4, max_size=16)), st.booleans()),
    st.builds(Mptcp, st.binary(min_size=1, max_size=20)),
    st.builds(Md5, st.binary(min_size=16, max_size=16)),
    st.builds(UserTimeout, st.integers(0, 1), st.integers(0, 0x7FFF)),
    st.builds(TcpAo, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=12)),
    st.builds(Experimental, st.sampled_from([253, 254]), st.integers(0, 0xFFFF).filter(lambda x: x != EXID_TFO),
              st.binary(max_size=6)),
    st.builds(Unknown, st.integers(9, 252).filter(lambda k: k not in (19, 28, 29, 30, 34)), st.binary(max_size=8)),
)


@given(st.lists(typed_option, max_size=8))
@settings(max_examples=500, deadline=None)
def test_typed_round_trip(opts):
    raw = options_to_bytes(opts)
    assert parse_options(raw) == opts
    if len(raw) <= 40:
        r, _ = summary(opts)
        assert not r["warnings"] & WARNING["MALFORMED_TCP_OPTIONS"]
        kinds = {type(o) for o in opts}
        assert bool(r["opt_present"] & OPTION["MSS"]) == (Mss in kinds)
        assert bool(r["opt_present"] & OPTION["TIMESTAMP"]) == (Timestamp in kinds)
        assert bool(r["opt_present"] & OPTION["MPTCP"]) == (Mptcp in kinds)
        for o in opts:
            if isinstance(o, Mss):
                last_mss = o.value
        if Mss in kinds:
            assert r["mss"] == last_mss


@given(st.binary(max_size=40))
@settings(max_examples=1000, deadline=None)
def test_native_summary_agrees_with_the_parser_on_malformation(data):
    data += b"\x00" * ((-len(data)) % 4)
    r, _ = summary([data])
    opts = parse_options(data)
    assert bool(r["warnings"] & WARNING["MALFORMED_TCP_OPTIONS"]) == any(isinstance(o, Malformed) for o in opts)
    assert bool(r["opt_present"] & OPTION["EOL"]) == any(isinstance(o, Eol) for o in opts)
