"""Many pcapng interfaces: reading is linear in the Interface Description Blocks.

The native scanner returns to Python at every IDB; it must not redo work that
grows with the interfaces already seen (it once converted the whole interface
table at every call: 65,537 IDBs took 25 s).
"""
from __future__ import annotations

import io
import struct
import time

from tcpscope.capture import open_capture
from tcpscope.capture.pcapng import MAX_INTERFACES

SHB = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
LINKTYPES = (1, 101, 113)  # Ethernet, raw IP, Linux SLL: a wrong row would show


def idb(linktype: int) -> bytes:
    return struct.pack("<IIHHII", 1, 20, linktype, 0, 0, 20)


def epb(iface: int, seconds: int, data: bytes) -> bytes:
    padded = data + bytes(-len(data) % 4)
    total = 32 + len(padded)
    units = seconds * 1_000_000
    return struct.pack("<IIIIIII", 6, total, iface, units >> 32, units & 0xFFFFFFFF,
                       len(data), len(data)) + padded + struct.pack("<I", total)


def many_interfaces(n: int) -> tuple[bytes, list[int]]:
    """n IDBs, then packets on interfaces spread over the table (and back and forth)."""
    picks = [0, n - 1, 1, n // 2, n - 1, 0, 7 % n, n - 2]
    blocks = [SHB] + [idb(LINKTYPES[i % 3]) for i in range(n)]
    blocks += [epb(i, 1_700_000_000 + k, bytes([k]) * 20) for k, i in enumerate(picks)]
    return b"".join(blocks), picks


def test_65536_interfaces_are_read_in_linear_time():
    data, picks = many_interfaces(MAX_INTERFACES)
    start = time.process_time()  # CPU time: a hang bound that other jobs on the machine cannot trip
    with open_capture(io.BytesIO(data)) as cap:
        frames = list(cap.frames())
    elapsed = time.process_time() - start
    print(f"{MAX_INTERFACES} IDBs ({len(data)} bytes): {elapsed:.2f} s CPU")
    assert len(cap.interfaces) == MAX_INTERFACES and cap.damage is None
    assert [f.iface for f in frames] == picks
    assert [f.linktype for f in frames] == [LINKTYPES[i % 3] for i in picks]
    assert [f.data for f in frames] == [bytes([k]) * 20 for k in range(len(picks))]
    assert elapsed <= 2.0


def test_interface_65537_is_damage():
    data, _ = many_interfaces(MAX_INTERFACES)
    shb_and_idbs = 28 + 20 * MAX_INTERFACES
    data = data[:shb_and_idbs] + idb(1) + data[shb_and_idbs:]
    with open_capture(io.BytesIO(data)) as cap:
        frames = list(cap.frames())
    assert frames == [] and len(cap.interfaces) == MAX_INTERFACES
    assert cap.damage.reason == f"more than {MAX_INTERFACES} interface description blocks"
    assert cap.damage.byte_offset == shb_and_idbs


def test_interfaces_between_packets_and_sections():
    # IDBs after packets extend the table the scanner reads; a new section starts it again.
    blocks = [SHB, idb(1), epb(0, 1, b"a" * 20), idb(101), epb(1, 2, b"b" * 20), epb(0, 3, b"c" * 20),
              SHB, idb(113), epb(0, 4, b"d" * 20)]
    with open_capture(io.BytesIO(b"".join(blocks))) as cap:
        frames = list(cap.frames())
    assert [(f.iface, f.linktype) for f in frames] == [(0, 1), (1, 101), (0, 1), (2, 113)]
