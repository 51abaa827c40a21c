"""Every real capture of the shared corpus (and the project's fixtures) reads as the world says.

MANIFEST.tsv gives each file's format, link types and packet count (counted by
tshark over packet blocks only). None of the corpus files is cut short: tcpdump
reports no "truncated dump file" for any of them (checked by an oracle test
below), so every one must read to its end with no Damage. The files that are
"broken on purpose" are broken inside packets (bad TCP headers, checksums, giant
segments): that is the dissector's business, not the reader's.
"""
from __future__ import annotations

import csv
import hashlib
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import CORPUS, corpus_files, fixture_files, require_tool
from tcpscope.capture import CaptureError, open_capture

MANIFEST = CORPUS.parent / "MANIFEST.tsv"


def manifest() -> dict[str, dict[str, str]]:
    if not MANIFEST.is_file():
        return {}
    with open(MANIFEST, newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


ROWS = manifest()
FILES = corpus_files()


def expected_format(row: dict[str, str]) -> str | None:
    fmt = row["format"]
    if fmt.startswith("pcap-modified"):
        return "pcap-modified"
    if fmt.startswith("pcapng"):
        return "pcapng"
    if fmt.startswith("pcap"):
        return "pcap"
    return None  # snoop


def expected_compression(row: dict[str, str]) -> str | None:
    match = re.search(r"\((\w+)-compressed\)", row["format"])
    return match.group(1) if match else None


def read_frames(path: Path, **kwargs):
    with open_capture(path, **kwargs) as cap:
        frames = list(cap.frames())
    return cap, frames


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_corpus_file_reads_like_the_manifest_says(corpus, path):
    row = ROWS[path.name]
    fmt = expected_format(row)
    if fmt is None:
        with pytest.raises(CaptureError, match="Solaris snoop format is not supported"):
            open_capture(path)
        return
    cap, frames = read_frames(path)
    assert cap.format == fmt
    assert cap.compression == expected_compression(row)
    assert cap.damage is None, str(cap.damage)
    assert len(frames) == int(row["packet_count"])
    assert cap.counters["frames"] == len(frames)
    linktypes = {int(v) for v in re.findall(r"\((\d+)\)", row["link_type"])}
    assert {i.linktype for i in cap.interfaces} == linktypes
    assert all(f.caplen == len(f.data) for f in frames)
    assert [f.number for f in frames] == list(range(1, len(frames) + 1))


SMALL_CHUNKS = [p for p in FILES if p.stat().st_size < 200_000 and not p.name.endswith(".snoop")]


@pytest.mark.parametrize("path", SMALL_CHUNKS, ids=[p.name for p in SMALL_CHUNKS])
def test_corpus_file_reads_the_same_in_tiny_chunks(corpus, path):
    _, expected = read_frames(path)
    cap, frames = read_frames(path, chunk_size=64, batch_frames=3)
    assert frames == expected and cap.damage is None


def test_corpus_files_with_special_features(corpus):
    def cap_of(name):
        return read_frames(CORPUS / name)

    cap, frames = cap_of("hadrielk__output_be_difficult_test202.pcapng")
    assert [s.byteorder for s in cap.sections] == [">", "<", ">"]
    assert len(frames) == 8 and cap.counters["simple_packet_blocks"] == 2
    assert cap.counters["sections"] == 3
    cap, frames = cap_of("hadrielk__output_le_advanced_test102.pcapng")
    c = cap.counters  # the generator's "CB" and "DCB" are custom blocks, copyable or not
    assert (c["enhanced_packet_blocks"], c["simple_packet_blocks"], c["name_resolution_blocks"],
            c["interface_statistics_blocks"], c["custom_blocks"]) == (4, 1, 3, 6, 3)
    assert c["decryption_secrets_blocks"] == c["unknown_blocks_skipped"] == 0
    cap, frames = cap_of("zeek__http_get-to-ssh-server.pcap")
    assert cap.nanosecond and cap.interfaces[0].tsresol_exp == 9
    cap, frames = cap_of("the-tcpdump-group__time_2106_overflow.pcapng")
    assert frames[0].ts_ns == 2**32 * 10**9
    cap, frames = cap_of("rusticata__modified-format.pcap")
    assert cap.format == "pcap-modified"
    cap, frames = cap_of("seladb__many_interfaces-1.pcapng")
    assert len(cap.interfaces) > 1 and {f.iface for f in frames} <= {i.index for i in cap.interfaces}
    cap, frames = cap_of("the-tcpdump-group__timestamp_invalid_nano.pcap")
    assert cap.counters["timestamp_fraction_out_of_range"] == 2


@pytest.mark.parametrize("path", fixture_files(), ids=[p.name for p in fixture_files()])
def test_project_fixture_reads_cleanly(path):
    cap, frames = read_frames(path)
    assert cap.damage is None and frames
    if cap.compression:  # fixtures/x.pcap.gz is a compressed copy of fixtures/x.pcap
        plain = path.with_suffix("")
        if plain.exists():
            assert frames == read_frames(plain)[1]


# ---------------------------------------------------------------------------
# Oracles: tshark and tcpdump on the same files
# ---------------------------------------------------------------------------

TSHARK_FILES = [
    "zeek__http_get-to-ssh-server.pcap",  # pcap, ns
    "seladb__nanosecs_big_endian.pcap",  # big-endian ns
    "the-tcpdump-group__pptp.pcap",  # big-endian us
    "zeek__tcp_truncated-header.pcap",  # snaplen truncation
    "hadrielk__output_be_basic_test006.pcapng",  # two link types
    "hadrielk__output_be_basic_test010.pcapng",  # simple packet blocks
    "zeek__pcapng-multi-interface.pcapng",
    "zeek__ldap_gap-data-missing.pcapng",  # three link types, different snaplens
    "seladb__many_interfaces-1.pcapng",
    "rusticata__modified-format.pcap",
    "the-tcpdump-group__time_2106_overflow.pcapng",
    "zeek__http_1000-requests-one-dropped-response.pcap.gz",
    "zeek__contentline_telnet-long-line-no-eol.pcapng.gz",
    "rusticata__wireshark_samples-test.pcapng",
]


@pytest.mark.oracle
@pytest.mark.parametrize("name", TSHARK_FILES)
def test_timestamps_lengths_and_bytes_match_tshark(corpus, name):
    tshark = require_tool("tshark")
    out = subprocess.run(
        [tshark, "-r", str(CORPUS / name), "-o", "frame.generate_md5_hash:TRUE", "-T", "fields",
         "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.md5_hash"],
        capture_output=True, text=True, check=True).stdout.splitlines()
    _, frames = read_frames(CORPUS / name)
    assert len(out) == len(frames)
    for frame, line in zip(frames, out):
        epoch, length, caplen, md5 = line.split("\t")
        ts = 0 if epoch == "" else int(Decimal(epoch) * 10**9)  # "" for SPBs: no timestamp
        assert (frame.ts_ns, frame.origlen, frame.caplen) == (ts, int(length), int(caplen)), frame.number
        assert hashlib.md5(frame.data).hexdigest() == md5, frame.number


PCAP_FILES = [p for p in FILES if ROWS.get(p.name, {}).get("format", "").startswith("pcap v")]


@pytest.mark.oracle
def test_tcpdump_sees_no_truncated_corpus_file_either(corpus, tmp_path):
    tcpdump = require_tool("tcpdump")
    for path in PCAP_FILES:
        if path.suffix != ".pcap":
            continue
        result = subprocess.run([tcpdump, "-nn", "-r", str(path)], capture_output=True, text=True)
        assert "truncated dump file" not in result.stderr, path.name
        assert read_frames(path)[0].damage is None


@pytest.mark.oracle
@pytest.mark.parametrize("cut", [1, 17, 100])
def test_truncated_copy_is_damage_where_tcpdump_says_truncated(corpus, tmp_path, cut):
    tcpdump = require_tool("tcpdump")
    source = CORPUS / "zeek__tcp_reassembly.pcap"
    data = source.read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:len(data) - cut])
    result = subprocess.run([tcpdump, "-nn", "-r", str(path)], capture_output=True, text=True)
    assert "truncated dump file" in result.stderr
    cap, frames = read_frames(path)
    assert cap.damage is not None and cap.damage.reason.startswith("file ends inside a record")
    assert len(frames) == len(result.stdout.splitlines())
