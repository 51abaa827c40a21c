"""Zeek's own conn.log baselines (shared/captures/baselines/zeek) and how to reproduce them.

Each `Case` names one baseline file, the capture (MANIFEST's ``files/`` name) Zeek read
for it, and the options of that run as the btest's TEST_SCRIPT gives them: ``-C``
(ignore checksums), ``-b`` with the scripts it loads (which decide Zeek's
``likely_server_ports``), redefs, and BPF filters. Tests that run several traces
have one case per trace. Baselines that a script alters beyond what tcpscope
models are listed in `EXCLUDED` with the reason.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tcpscope.analysis.zeek import LIKELY_SERVER_PORTS

SHARED = Path(os.environ.get("TCPSCOPE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
CAPTURES = SHARED / "captures"
FILES = CAPTURES / "files"
ZEEK = CAPTURES / "baselines" / "zeek"

# likely_server_ports registered by the scripts a `zeek -b` run loads (each protocol's
# main.zeek adds its analyzer's TCP ports); a run without -b loads them all.
PORTS = {
    "http": {80, 81, 631, 1080, 3128, 8000, 8080, 8888},
    "ftp": {21, 2811},
    "ssl": {443, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223},
    "irc": {6666, 6667, 6668, 6669},
    "pop3": {110},
    "ssh": {22},
    "syslog": set(),
    "conn": set(),
}


def ports(*scripts: str) -> frozenset[int]:
    out: set[int] = set()
    for s in scripts:
        out |= PORTS[s]
    return frozenset(out)


FULL = LIKELY_SERVER_PORTS
NONE: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Case:
    baseline: str  #: path under baselines/zeek
    capture: str  #: file under captures/files
    ignore_checksums: bool
    likely: frozenset[int]
    kind: str = "log"  #: "log" (conn.log, full or zeek-cut) or "out" (a script's prints)
    report_gaps_for_partial: bool = False
    port_filter: int | None = None  #: a BPF "port N" filter of the run
    options: dict = field(default_factory=dict)


CASES: list[Case] = [
    Case("core.conn-size-flip/conn.log.one-sided", "zeek__tcp_one-sided-2745.pcap", True, NONE),
    Case("core.conn-size-flip/conn.log.ctu", "zeek__tcp_ctu-64702-888.pcap", True, NONE),
    Case("core.expire-all-timers/conn-all.log", "zeek__tcp_retransmit-timeout.pcapng", True, NONE),
    Case("core.history-flip/conn.log", "zeek__tcp_missing-syn.pcap", True, ports("http")),
    Case("core.pcap.read-trace-with-filter/conn.log", "zeek__wikipedia.pcap", False, FULL,
         port_filter=50000),
    Case("core.pppoe-over-qinq/conn.log", "zeek__pppoe-over-qinq.pcap", False, FULL),
    Case("core.reporter-limit-reached-weird/conn.log", "zeek__http_get.pcap", False, FULL),
    Case("core.tcp-padding/conn.log", "zeek__tcp-http-with-padding.pcap", True, FULL),
    Case("core.tcp.bad-checksum-syn/conn.log", "zeek__tcp_syn-bad.pcap", False, NONE),
    Case("core.tcp.flip-without-syn/conn.log", "zeek__tcp_http-on-irc-port-missing-syn.pcapng",
         False, FULL),
    Case("core.tcp.large-file-reassembly/conn.log", "zeek__ftp_bigtransfer.pcap", False, FULL,
         options={"excessive_data": 0}),
    Case("core.tcp.miss-end-data/conn.log", "zeek__tcp_miss_end_data.pcap", False,
         ports("http"), report_gaps_for_partial=True),
    Case("core.tcp.missing-syn/conn.log", "zeek__tcp_missing-syn.pcap", True, ports("http")),
    Case("core.tcp.reassembly-known-ports/conn.log", "zeek__http_get.pcap", False, ports("http")),
    Case("core.tcp.rxmit-history/conn-1.log", "zeek__tcp_retransmit-fast009.pcap", True, FULL),
    Case("core.tcp.rxmit-history/conn-2.log", "zeek__wikipedia.pcap", True, FULL),
    Case("core.vlan-mpls/conn.log", "zeek__mixed-vlan-mpls.pcap", True, ports("http")),
    Case("opt.basic/conn.log", "zeek__wikipedia.pcap", False, FULL),
    Case("scripts.base.frameworks.logging.field-extension-invalid/conn.log", "zeek__http_get.pcap",
         False, NONE),
    Case("scripts.base.protocols.ftp.ftp-ipv6/conn.log", "zeek__ftp_ipv6.pcap", False,
         ports("ftp")),
    Case("scripts.base.protocols.http.http-connect-with-header/conn.log",
         "zeek__http_connect-with-header.pcap", True, ports("http", "ssl")),
    Case("scripts.base.protocols.irc.starttls/conn.log", "zeek__tls_irc-starttls.pcap", True,
         ports("ssl", "irc")),
    Case("scripts.base.protocols.ldap.gap/conn.log", "zeek__ldap_gap-data-missing.pcapng", False,
         FULL),
    Case("scripts.base.protocols.login.nvt-contentline-length/conn-long.log",
         "zeek__contentline_telnet-long-line-no-eol.pcapng.gz", False, ports("ftp")),
    Case("scripts.base.protocols.pop3.starttls/conn.log", "zeek__tls_pop3-starttls.pcap", True,
         ports("ssl", "pop3")),
    Case("scripts.base.protocols.ssh.half-duplex-client/conn.log",
         "zeek__ssh_ssh.client-side-half-duplex.pcap", False, FULL),
    Case("scripts.base.protocols.syslog.tcp-framing/conn.log", "zeek__tcp-syslog.pcap", True,
         ports("syslog")),
    Case("scripts.policy.frameworks.analyzer.detect-protocols-violation/conn.log",
         "zeek__http_get-to-ssh-server.pcap", True, FULL),
    Case("scripts.policy.protocols.conn.community-id-logging-flipped/conn.log.cut",
         "zeek__tcp_handshake-reorder.pcap", False, NONE),
    Case("scripts.policy.protocols.conn.pppoe-session-id-logging/conn.log.cut",
         "zeek__pppoe-over-qinq.pcap", False, NONE),
    # A script's prints: `print c$history, c$conn$conn_state` at connection_state_remove,
    # one trace after another.
    Case("scripts.base.protocols.conn.conn_state-RST-behavior/out#1", "zeek__tcp_single-rst.pcap",
         True, NONE, kind="out"),
    Case("scripts.base.protocols.conn.conn_state-RST-behavior/out#2", "zeek__tcp_syn-then-rst.pcap",
         True, NONE, kind="out"),
    Case("scripts.base.protocols.conn.conn_state-RST-behavior/out#3",
         "zeek__tcp_syn-then-ack-then-rst.pcap", True, NONE, kind="out"),
    Case("scripts.base.protocols.conn.conn_state-RST-behavior/out#4",
         "zeek__tcp_syn-then-stuff-then-rst.pcap", True, NONE, kind="out"),
    Case("core.tcp.tcp-dups/out", "zeek__tcp_ssh-dups.pcap", True, NONE, kind="out"),
    Case("core.connection_flipped/out", "zeek__tcp_handshake-reorder.pcap", False, NONE,
         kind="out"),
    # `print c$orig; print c$resp` at connection_state_remove (endpoint records).
    Case("core.tcp.fin-retransmit/out", "zeek__tcp_fin_retransmission.pcap", False, NONE,
         kind="out"),
    Case("core.tcp.rst-after-syn/.stdout", "zeek__tcp_rst-inject-rae.pcap", False, NONE,
         kind="out"),
]

#: Baselines with TCP connections that are deliberately not compared, and why.
EXCLUDED = {
    "core.expire-all-timers/conn-limited.log":
        "the test schedules max_timer_expires dummy timers so that Zeek's inactivity timer "
        "cannot fire; conn-all.log is the same trace with Zeek's timers working (compared)",
    "core.pcap.dynamic-filter/conn.log":
        "the script installs BPF filters while the trace is read, so Zeek never sees most "
        "packets of the TCP connection",
    "core.print-bpf-filters/conn.log":
        "written by the last run, with PacketFilter::restricted_filter=\"vlan\": only the "
        "VLAN-tagged packets reach Zeek",
    "core.tunnels.vxlan-inner-tcp-bad-checksum/conn.log":
        "the TCP connection is inside VXLAN; tcpscope does not decapsulate tunnels",
    "scripts.base.protocols.login.nvt-contentline-length/conn-buffer-overflow.log":
        "its trace (nvt-line-limit-crlf-heap-buffer-overflow) is not in the capture corpus",
    "scripts.base.protocols.vlan.vlan-0/conn.log.cut": "VLAN columns only",
    "scripts.base.protocols.vlan.vlan-0-qinq/conn.log.cut": "VLAN columns only",
}

INT_FIELDS = ("orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "orig_bytes",
              "resp_bytes", "missed_bytes", "id.orig_p", "id.resp_p")


def read_log(path: Path) -> list[dict]:
    """A conn.log as Zeek writes it (#fields header) or as zeek-cut -m leaves it."""
    fields: list[str] | None = None
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("###"):
            continue
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
            continue
        if line.startswith("#"):
            continue
        parts = line.split("\t")
        if fields is None:
            fields = parts  # zeek-cut -m: the first line names the columns
            continue
        row = dict(zip(fields, parts))
        rows.append(row)
    return rows


def read_cut_nohead(path: Path, names: list[str]) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        rows.append(dict(zip(names, line.split("\t"))))
    return rows


def baseline_rows(case: Case) -> list[dict]:
    """The TCP rows of one baseline, as dicts of conn.log column -> text."""
    if case.kind == "out":
        return _out_rows(case)
    path = ZEEK / case.baseline
    if case.baseline.endswith("conn.log.cut") and "community-id" in case.baseline:
        rows = read_cut_nohead(path, ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p",
                                      "proto", "service", "community_id"])
    else:
        rows = read_log(path)
    return [r for r in rows if r.get("proto", "tcp") == "tcp"]


def _out_rows(case: Case) -> list[dict]:
    name, _, nth = case.baseline.partition("#")
    lines = [ln for ln in (ZEEK / name).read_text().splitlines() if not ln.startswith("###")]
    if "conn_state-RST-behavior" in name:
        history, state = lines[int(nth) - 1].split(", ")
        return [{"history": history, "conn_state": state}]
    if "tcp-dups" in name:
        last = [ln for ln in lines if ln.startswith("REMOVE:")][-1]
        return [{"history": last.rsplit(", ", 1)[1]}]
    if "connection_flipped" in name:
        last = [ln for ln in lines if "connection_state_remove" in ln][-1]
        return [{"history": last.rsplit(", ", 2)[1]}]
    if "fin-retransmit" in name or "rst-after-syn" in name:
        recs = [ln[ln.index("[") + 1:ln.rindex("]")] for ln in lines if "size=" in ln]
        row: dict = {}
        for side, rec in zip(("orig", "resp"), recs):
            kv = dict(item.split("=", 1) for item in rec.split(", "))
            row[f"{side}_size"] = kv["size"]
            row[f"{side}_state"] = STATES[int(kv["state"])]
            row[f"{side}_pkts"] = kv["num_pkts"]
            row[f"{side}_ip_bytes"] = kv["num_bytes_ip"]
        return [row]
    raise ValueError(name)


STATES = ("INACTIVE", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL", "ESTABLISHED", "CLOSED", "RESET")
