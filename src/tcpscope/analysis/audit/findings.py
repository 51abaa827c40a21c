"""What the audit reports: `Finding`, and every threshold it uses, with where it comes from.

A finding is a fact with its evidence, not a sentence: ``kind``, the ``source``
and ``target`` addresses (None where they do not apply), the time span, a
``count``, kind-specific ``fields``, a bounded sample of ``evidence_frames`` with
their total, a ``confidence`` (``high``, ``medium``, ``low``), and the message ids
and parameters present/audit.py renders in English or Chinese: what it is, its
numbers, and the rule with its threshold (``rule`` names the rule;
``thresholds`` gives its numbers). docs/audit.md explains every rule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Finding", "KINDS", "CONFIDENCES", "EVIDENCE_SAMPLE", "Evidence",
    "PORT_SCAN_PORTS", "HOST_SCAN_HOSTS", "SCAN_WINDOW_S", "TRW_THETA0", "TRW_THETA1",
    "TRW_ETA1", "trw_log_ratio", "SYN_FLOOD_RATE", "SYN_COOKIE_MIN", "SYN_COOKIE_TS_SHARE",
    "SYN_COOKIE_STATELESS_MIN", "FAILED_MIN", "FAILED_WINDOW_S", "RETX_STORM_MIN",
    "RETX_STORM_SHARE", "RETX_STORM_WINDOW_S", "RST_STORM_MIN", "RST_STORM_WINDOW_S",
    "TIME_WAIT_MIN", "EPHEMERAL_PORTS", "PORT_REUSE_MIN", "ISN_MIN_SAMPLES",
]

#: The kinds of finding, in the order the audit lists them.
KINDS = ("syn_flood", "syn_cookies", "port_scan", "host_scan", "failed_connections",
         "retransmission_storm", "rst_storm", "time_wait_pileup", "port_reuse", "isn")
CONFIDENCES = ("high", "medium", "low")
#: Evidence frames kept per finding (the total is counted apart).
EVIDENCE_SAMPLE = 8

# -- scans: Zeek's policy/misc/scan.zeek, and TRW for the confidence -----------------
#: Scan::port_scan_threshold: unique ports of one victim with failed attempts.
PORT_SCAN_PORTS = 15
#: Scan::addr_scan_threshold: unique hosts on one port with failed attempts.
HOST_SCAN_HOSTS = 25
#: Scan::port_scan_interval / addr_scan_interval: 5 min (SumStats epochs).
SCAN_WINDOW_S = 300
#: Threshold Random Walk (Jung, Paxson, Berger, Balakrishnan, IEEE S&P 2004): a benign
#: host's first contacts succeed with probability θ0 = 0.8, a scanner's with θ1 = 0.2;
#: with P_D = 0.99 and P_F = 0.01 a source is a scanner once the likelihood ratio
#: reaches η1 = P_D / P_F = 99.
TRW_THETA0, TRW_THETA1 = 0.8, 0.2
TRW_ETA1 = 0.99 / 0.01


def trw_log_ratio(failures: int, successes: int) -> float:
    """ln of TRW's likelihood ratio after these first-contact outcomes."""
    return (failures * math.log((1 - TRW_THETA1) / (1 - TRW_THETA0))
            + successes * math.log(TRW_THETA1 / TRW_THETA0))


# -- SYN flood and SYN cookies ---------------------------------------------------------
#: SYNs per second to one address:port that never completed a handshake: Snort's documented
#: rate_filter for new TCP sessions (gen_id 135, sig_id 1) is "count 100, seconds 1".
SYN_FLOOD_RATE = 100
#: SYN-ACKs that show a cookie's mark on the wire (options dropped, or the options encoded
#: in the timestamp's low bits) before the listener is said to send SYN cookies.
SYN_COOKIE_MIN = 3
#: ... and for the timestamp mark, the share of the listener's timestamped SYN-ACKs that
#: carry it: by chance 1 in 64 would (6 random bits); 1 in 4 is 16 times chance.
SYN_COOKIE_TS_SHARE = 0.25
#: Half-open SYN-ACKs never retransmitted (while the same listener retransmits others)
#: before that alone is taken as stateless answers.
SYN_COOKIE_STATELESS_MIN = 5

# -- failed connections --------------------------------------------------------------
#: Refused, unreachable or unanswered attempts to one address:port within the window.
FAILED_MIN = 5
FAILED_WINDOW_S = 300

# -- storms --------------------------------------------------------------------------
#: Retransmitted data segments from one host to another in a 5 s window, and their share
#: of that direction's data segments in the window.
RETX_STORM_MIN = 50
RETX_STORM_SHARE = 0.2
RETX_STORM_WINDOW_S = 5
#: RSTs one host sends to abort connections that carried data, in a 10 s window.
RST_STORM_MIN = 20
RST_STORM_WINDOW_S = 10

# -- closing -------------------------------------------------------------------------
#: Connections one host holds in TIME_WAIT at the same moment (60 s each, Linux).
TIME_WAIT_MIN = 500
#: Linux's default net.ipv4.ip_local_port_range, 32768-60999: the client ports toward one
#: server address:port that TIME_WAIT can use up.
EPHEMERAL_PORTS = 60999 - 32768 + 1
#: 4-tuples reused while the earlier connection was in TIME_WAIT (RFC 6191).
PORT_REUSE_MIN = 1

# -- ISN -----------------------------------------------------------------------------
#: ISNs (on distinct 4-tuples) a host must have chosen before they are judged: nmap sends
#: six SEQ probes.
ISN_MIN_SAMPLES = 6


@dataclass
class Evidence:
    """A bounded sample of frames and the count of all of them."""

    frames: list[int] = field(default_factory=list)
    total: int = 0

    def add(self, frames: Any, n: int | None = None) -> None:
        """Count `frames` (or `n` of them) and keep the first few."""
        room = EVIDENCE_SAMPLE - len(self.frames)
        if room > 0:
            self.frames.extend(int(f) for f in frames[:room])
        self.total += len(frames) if n is None else n

    def as_dict(self) -> dict[str, Any]:
        return {"sample": sorted(self.frames), "total": self.total}


@dataclass
class Finding:
    """One finding of the audit (see the module docstring)."""

    kind: str
    source: str | None
    target: str | None
    first_ts: float
    last_ts: float
    count: int
    fields: dict[str, Any]
    evidence: Evidence
    confidence: str
    #: message id of the sentence (present/i18n catalogues) and its parameters
    message: str
    params: dict[str, Any]
    #: the rule's id (docs/audit.md) and its thresholds
    rule: str
    thresholds: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON: the common keys, then the kind's own fields."""
        out: dict[str, Any] = {
            "kind": self.kind, "source": self.source, "target": self.target,
            "first_ts": self.first_ts, "last_ts": self.last_ts, "count": self.count,
        }
        out.update(self.fields)
        out["evidence_frames"] = self.evidence.as_dict()
        out["confidence"] = self.confidence
        out["rule"] = self.rule
        out["thresholds"] = dict(self.thresholds)
        return out
