"""The one text form of flags and addresses (wire/text.py)."""
from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpscope.wire.text import FLAGS_TEXT, format_address, format_endpoint, tcp_flags_text


@pytest.mark.parametrize("bits, text", [
    (0x002, "S"), (0x012, "S."), (0x018, "P."), (0x011, "F."), (0x004, "R"), (0x014, "R."),
    (0x010, "."), (0x0C2, "SEW"), (0, "none"), (0x1FF, "FSRP.UEWe"), (0x100, "e"),
])
def test_flag_letters_in_tcpdump_order(bits: int, text: str) -> None:
    assert tcp_flags_text(bits) == text == FLAGS_TEXT[bits]


def test_addresses_as_inet_ntop() -> None:
    assert format_address(bytes([10, 0, 0, 1]) + bytes(12), 4) == "10.0.0.1"
    v6 = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert format_address(v6, 6) == "2001:db8::1"
    assert format_address(bytes(16), 0) is None
    assert format_endpoint("2001:db8::1", 80) == "[2001:db8::1]:80"
    assert format_endpoint("10.0.0.1", 80) == "10.0.0.1:80"


def test_c_flag_letters_equal_python_ones() -> None:
    """_native/tcpflags.h (through the listing's C module) spells every flag value as
    wire/text.py does."""
    from tcpscope.present.tcpdump._listing import flags_text

    assert [flags_text(bits) for bits in range(512)] == list(FLAGS_TEXT)
    with pytest.raises(ValueError):
        flags_text(512)


@settings(max_examples=500)
@given(st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0x0A00, 0x1234]), min_size=8, max_size=8),
       st.binary(min_size=4, max_size=4))
def test_c_addresses_equal_python_ones(words: list[int], v4: bytes) -> None:
    """The listing's C address text is inet_ntop's (wire/text.py), zero runs and embedded
    IPv4 included."""
    from tcpscope.present.tcpdump._listing import address_text

    v6 = b"".join(w.to_bytes(2, "big") for w in words)
    assert address_text(v6) == format_address(v6, 6)
    assert address_text(v6[:12] + v4) == format_address(v6[:12] + v4, 6)
    assert address_text(v4) == format_address(v4, 4)
