"""The dissector on real third-party captures (../shared/captures), against tcpdump and tshark."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import CORPUS, corpus_files, require_tool
from tcpscope.wire.dissect import damage_counters, dissect_batch
from tcpscope.wire.record import CSUM, KIND, OPTION, RECORD_DTYPE, WARNING

capture = pytest.importorskip("tcpscope.capture")

OFF_NONE = 0xFFFF


def dissect_file(path: Path) -> np.ndarray:
    parts = []
    with capture.open_capture(path) as cap:
        for batch in cap:
            recs = dissect_batch(batch)
            caplen = batch.caplen
            for key in ("l3_off", "l4_off", "stop_off"):
                ok = (recs[key] == OFF_NONE) | (recs[key] <= caplen)
                assert ok.all(), (path.name, key)
            parts.append(recs)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=RECORD_DTYPE)


def _corpus_records(corpus):
    """(path, records) of every corpus capture the reader takes (the others' own tests
    say why they are refused)."""
    for path in corpus:
        if path.suffix in (".tsv", ".md", ".snoop"):
            continue
        try:
            recs = dissect_file(path)
        except capture.CaptureError:
            continue
        yield path, recs


def test_every_corpus_file_dissects(corpus):
    total = 0
    for path, recs in _corpus_records(corpus):
        total += len(recs)
        damage_counters(recs)
    assert total > 90_000


def _tcpdump_verdicts(tcpdump: str, path: Path) -> dict[int, tuple[str, str, str | None]]:
    out = subprocess.run([tcpdump, "-nn", "-v", "-#", "-r", str(path)], capture_output=True, text=True).stdout
    packets: dict[int, str] = {}
    number = None
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s\s", line)
        if m and not line.startswith("\t"):
            number = int(m.group(1))
            packets[number] = line
        elif number is not None:
            packets[number] += line
    verdicts = {}
    for number, text in packets.items():
        m = re.search(r"Flags \[[^\]]*\], cksum 0x([0-9a-f]{4}) \((correct|incorrect -> 0x([0-9a-f]{4}))\)", text)
        if "Flags [" in text:
            verdicts[number] = (m.group(1), m.group(2), m.group(3)) if m else None
    return verdicts


@pytest.mark.oracle
def test_checksum_verdicts_match_tcpdump(corpus):
    """tcpdump -v prints a TCP checksum verdict exactly where we verify one, and the same one.

    One deliberate difference: IPv6 atomic fragments (RFC 6946) are verified here; tcpdump
    prints no checksum for any packet with a fragment header.
    """
    tcpdump = require_tool("tcpdump")
    compared = 0
    for path in corpus:
        if not path.name.endswith(".pcap") or path.stat().st_size > 2_000_000:
            continue
        recs = dissect_file(path)
        verdicts = _tcpdump_verdicts(tcpdump, path)
        for i, r in enumerate(recs):
            if r["kind"] != KIND["TCP"] or (i + 1) not in verdicts:
                continue
            v = verdicts[i + 1]
            status = int(r["tcp_csum_status"])
            if v is None:
                atomic = r["ip6_ext"] & 4 and r["ip_frag_off"] == 0 and not r["ip_flags"] & 1
                assert status == CSUM["UNVERIFIED"] or atomic, (path.name, i + 1)
                continue
            carried, word, should = v
            assert int(carried, 16) == r["tcp_csum"], (path.name, i + 1)
            if word == "correct":
                assert status == CSUM["OK"], (path.name, i + 1)
            else:
                assert status in (CSUM["BAD"], CSUM["OFFLOAD"]), (path.name, i + 1)
                assert int(should, 16) == r["tcp_csum_calc"], (path.name, i + 1)
            compared += 1
    assert compared > 4000


# Files of every link type and encapsulation, compared field by field with tshark.
# (Not pppoe-over-qinq: tshark cuts IP to the PPPoE length field where tcpdump and we
# follow the IP total length.)
TSHARK_FILES = [
    "OISF__decode-sll2-01__input.pcap", "zeek__nflog-http.pcap", "zeek__http_connect-with-header.pcap",
    "zeek__mixed-vlan-mpls.pcap", "zeek__http-qinq-0.pcap", "the-tcpdump-group__ipoib.pcap",
    "zeek__ftp_ipv6.pcap", "zeek__ipv6-http-atomic-frag.pcap", "the-tcpdump-group__mptcp-v1.pcap",
    "the-tcpdump-group__tfo-5c1fa7f9ae91.pcap", "seladb__many_interfaces-1.pcapng", "seladb__four_ipv6_http_streams.pcap",
    "the-tcpdump-group__accecn_handshake.pcap", "zeek__tcp_truncated-header.pcap", "zeek__tcp-syslog.pcap",
    "zeek__tcp_timestamp.pcap", "OISF__tcp-empty-sack__tcp-opt.pcap", "the-tcpdump-group__bigtcp-ipv4.pcap",
]
TSHARK_FIELDS = ["frame.number", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.len",
                 "tcp.window_size_value", "tcp.flags", "tcp.hdr_len", "tcp.options.mss_val",
                 "tcp.options.wscale.shift", "tcp.options.timestamp.tsval", "tcp.options.timestamp.tsecr"]


@pytest.mark.oracle
@pytest.mark.parametrize("name", TSHARK_FILES)
def test_fields_match_tshark(name):
    tshark = require_tool("tshark")
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{name} not in the shared corpus")
    recs = dissect_file(path)
    args = [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=f"]
    for f in TSHARK_FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    compared = 0
    for line in out.splitlines():
        v = line.split("\t")
        if not v[1]:
            continue
        r = recs[int(v[0]) - 1]
        if r["kind"] != KIND["TCP"] or r["stop_reason"] != 0 or r["warnings"] & WARNING["IP_LENGTH_EXCEEDS_FRAME"]:
            continue  # damage: the two dissectors may legitimately stop in different places
        present = int(r["opt_present"])
        mine = [r["sport"], r["dport"], r["seq"], r["ack"], r["payload_len"], r["win"], r["tcp_flags"],
                r["tcp_hlen"],
                r["mss"] if present & OPTION["MSS"] else None,
                r["wscale"] if present & OPTION["WSCALE"] else None,
                r["ts_val"] if present & OPTION["TIMESTAMP"] else None,
                r["ts_ecr"] if present & OPTION["TIMESTAMP"] else None]
        theirs = list(v[1:])
        theirs[6] = str(int(theirs[6], 16) & 0x1FF)  # tshark's tcp.flags includes the reserved bits
        assert ["" if m is None else str(int(m)) for m in mine] == theirs, (name, v[0])
        compared += 1
    assert compared > 0


def test_linktypes_of_the_corpus_are_all_understood(corpus):
    """No corpus frame meets an unsupported link type (mPackets, PKTAP, IPoIB included)."""
    for path, recs in _corpus_records(corpus):
        assert damage_counters(recs)["unsupported_linktype"] == 0, path.name
