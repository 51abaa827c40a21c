"""Write the committed seed corpus from the fixtures and crafted cases.

    .venv/bin/python fuzz/make_corpus.py

Deterministic: the same fixtures give the same files. Seeds stay small (a few
KiB: libFuzzer's default maximum input length is the largest seed), a few
dozen in all. fuzz/corpus/scan/ holds capture files (the ``scan`` target's
input): small fixtures, their compressed copies, and crafted variants of every
format detail the reader handles. fuzz/corpus/frames/ holds the seeds of the
other targets, in the frames format of fuzz/targets.py, made from the
fixtures' frames and re-framed for the other link types. Files named
``finding-*`` are inputs a campaign found a bug with, kept as regression seeds;
this script leaves them alone.
"""
from __future__ import annotations

import gzip
import io
import lzma
import struct
import sys
from pathlib import Path

import zstandard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets import FLAG_IMPROVED, FLAG_TRUNCATED, LISTING_SHIFT, TIME_STEP_NS, format_frames  # noqa: E402

from tcpscope.capture import PcapngWriter, PcapWriter, open_capture  # noqa: E402

FIXTURES = ROOT / "fixtures"
CORPUS = ROOT / "fuzz" / "corpus"
T0 = 1_700_000_000 * 1_000_000_000
MAX_SEED = 4096

SCAN_FIXTURES = ["life_rejected.pcap", "refused.pcap", "lo_ipv4.pcap.gz", "lo_ipv4.pcap.xz",
                 "lo_ipv4.pcap.zst", "lo_ipv4_nano.pcap"]
FRAME_FIXTURES = ["lo_ipv4.pcap", "lo_ipv6.pcap", "tfo.pcap", "rst_abort.pcap",
                  "handshake_retries.pcap", "zero_window.pcap", "life_simopen.pcap",
                  "half_close.pcap", "vlan_8021q.pcap", "qinq_8021ad.pcap", "any_sll.pcap",
                  "any_sll2.pcap", "reorder.pcap", "lossy_transfer.pcap"]


def frames_of(path: Path) -> tuple[int, list[tuple[int, bytes]]]:
    """(link type, [(time step, frame bytes)]) of a capture, cut to fit a seed."""
    with open_capture(path) as cap:
        frames = list(cap.frames())
    linktype = frames[0].linktype
    out, previous, size = [], frames[0].ts_ns, 3
    for f in frames:
        if size + 4 + len(f.data) > MAX_SEED:
            break
        out.append(((f.ts_ns - previous) // TIME_STEP_NS, f.data))
        previous = f.ts_ns
        size += 4 + len(f.data)
    return linktype, out


def reframed(frames: list[tuple[int, bytes]]) -> dict[str, tuple[int, list[tuple[int, bytes]]]]:
    """Ethernet frames under the other link types the dissector reads."""
    ip = [(step, data[14:]) for step, data in frames if data[12:14] in (b"\x08\x00", b"\x86\xdd")]
    return {
        "raw": (101, ip),
        "ipv4": (228, ip),
        "null": (0, [(s, struct.pack("<I", 2) + d) for s, d in ip]),
        "loop": (108, [(s, struct.pack(">I", 2) + d) for s, d in ip]),
        "unknown_linktype": (147, ip),
    }


def crafted_captures() -> dict[str, bytes]:
    """Capture files that reach the corners of the reader."""
    frame = bytes(range(60))
    out: dict[str, bytes] = {}

    def pcap(name: str, **kwargs) -> None:
        buf = io.BytesIO()
        with PcapWriter(buf, 1, **kwargs) as w:
            for i in range(3):
                w.write(T0 + i * 1000, frame, 60 + i)
        out[name] = buf.getvalue()

    pcap("pcap_big_endian_ns.pcap", nanosecond=True, byteorder=">")
    pcap("pcap_modified.pcap", modified=True)
    pcap("pcap_v2_2_swapped.pcap", version=(2, 2))
    pcap("pcap_fcs.pcap", fcs_len=4, snaplen=40)
    out["pcap_zero_filled.pcap"] = out["pcap_big_endian_ns.pcap"][:24 + 76] + bytes(64)

    buf = io.BytesIO()
    with PcapngWriter(buf) as w:
        eth = w.add_interface(1, "eth0", tsresol_exp=9)
        w.write(T0, eth, frame)
        w.write_simple(frame)
        w.write_obsolete(T0 + 5, eth, frame, drops=1)
        w.write_block(0x00000BAD, b"\x00\x00\x7e\xd9custom")
        w.write_block(0x00000005, struct.pack("<IIQ", 0, 0, 0))
        w.new_section(">")
        bin_ = w.add_interface(276, "any", tsresol_exp=30, tsresol_base=2, tsoffset=-5,
                               snaplen=32)
        w.write(T0 + 9, bin_, frame, origlen=1500)
    out["pcapng_sections_and_blocks.pcapng"] = buf.getvalue()

    raw = out["pcap_big_endian_ns.pcap"]
    members = gzip.compress(raw[:50], mtime=0) + gzip.compress(raw[50:], mtime=0)
    out["gzip_two_members.pcap.gz"] = members + bytes(8)
    flagged = bytearray(gzip.compress(raw, mtime=0))
    flagged[3] = 0x1C  # FEXTRA | FNAME | FCOMMENT, with the fields inserted below
    out["gzip_header_fields.pcap.gz"] = (bytes(flagged[:10]) + b"\x02\x00ab" + b"name\x00"
                                         + b"comment\x00" + bytes(flagged[10:]))
    z = zstandard.ZstdCompressor(write_checksum=True)
    skippable = struct.pack("<II", 0x184D2A53, 3) + b"abc"
    out["zstd_frames_skippable.pcap.zst"] = z.compress(raw[:40]) + skippable + z.compress(raw[40:])
    out["xz_sha256.pcap.xz"] = lzma.compress(raw, check=lzma.CHECK_SHA256)
    out["xz_delta_filter.pcap.xz"] = lzma.compress(raw, filters=[
        {"id": lzma.FILTER_DELTA, "dist": 4}, {"id": lzma.FILTER_LZMA2, "preset": 1}])
    return out


def write(target: str, name: str, data: bytes) -> None:
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main() -> None:
    for name in SCAN_FIXTURES:
        write("scan", name, (FIXTURES / name).read_bytes())
    for name, data in crafted_captures().items():
        write("scan", name, data)

    seeds: dict[str, tuple[int, list[tuple[int, bytes]]]] = {}
    for name in FRAME_FIXTURES:
        seeds[Path(name).stem] = frames_of(FIXTURES / name)
    for name, seed in reframed(seeds["lo_ipv4"][1]).items():
        seeds[f"lo_ipv4_{name}"] = seed
    for i, (name, (linktype, frames)) in enumerate(sorted(seeds.items())):
        # Vary the flags over the seeds: both engine modes, truncation, each listing style.
        flags = (i & 1) * FLAG_IMPROVED | ((i >> 1) & 1) * FLAG_TRUNCATED | (i % 8) << LISTING_SHIFT
        write("frames", name, format_frames(flags, linktype, frames))
    total = sum(1 for _ in CORPUS.rglob("*") if _.is_file())
    print(f"wrote {total} seeds under {CORPUS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
