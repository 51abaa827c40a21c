"""The audit: findings across all the connections of a capture, each with its evidence.

Sans-IO. `Audit` is a pipeline consumer: it reads each chunk's dissected records
and the engine's annotations (it needs no endpoint states) and, once the input
has ended, holds an `AuditReport`::

    from tcpscope.pipeline import Options, run
    audit = Audit()
    run("trace.pcap", [audit], Options(mode="improved", states=False))
    audit.report.findings          # [Finding, ...] in KINDS order, then by time

or in one call, present.audit.audit_file(source) (``tcpscope.audit``). What each
finding means, its rule and threshold, and what it can miss: docs/audit.md.

How it works: `attempts.AttemptTable` turns packets into one row per stream (what
its opening showed) and retires rows to the detectors, one per finding kind
(floods, scans, failures, storms, closing, isn); the storm and ISN detectors also
look at the rows of each chunk. Memory is bounded by what is tracked — the
attempt ring (16.5 MiB), and per detector at most a few hundred sources or targets
(keys.BoundedTable), each with bounded lists, behind one 8 MiB seen-filter and a
ring of recent events per detector — not by packets or connections
(docs/audit.md, "Memory").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .attempts import AttemptTable, outcomes
from .closing import PortReuseDetector, TimeWaitDetector
from .failures import FailedConnectionDetector
from .findings import KINDS, Finding
from .floods import SynCookieDetector, SynFloodDetector
from .isn import IsnDetector
from .keys import SeenFilter
from .scans import HostScanDetector, PortScanDetector
from .storms import RetransmissionStormDetector, RstStormDetector

__all__ = ["Audit", "AuditReport", "Finding", "KINDS"]


@dataclass
class AuditReport:
    """What the audit found in one input."""

    name: str
    findings: list[Finding]
    #: every host whose ISNs could be judged: nmap's figures and the verdict
    isn: list[dict[str, Any]] = field(default_factory=list)
    #: attempts judged, rows no longer followed, entries tracked per detector, bytes held
    stats: dict[str, Any] = field(default_factory=dict)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.findings]


class Audit:
    """The pipeline consumer (`feed` each chunk, `finish` once); then `report`."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.table = AttemptTable(capacity)
        self.seen = SeenFilter()          # one, for every detector's keys
        self.flood = SynFloodDetector(seen=self.seen)
        self.failed = FailedConnectionDetector(seen=self.seen)
        self.isn = IsnDetector(seen=self.seen)
        self.detectors = [
            self.flood, SynCookieDetector(seen=self.seen), PortScanDetector(seen=self.seen),
            HostScanDetector(seen=self.seen), self.failed, RetransmissionStormDetector(),
            RstStormDetector(), TimeWaitDetector(seen=self.seen), PortReuseDetector(), self.isn,
        ]
        self.attempts = 0
        self.report: AuditReport | None = None

    def feed(self, chunk: Any) -> None:
        if chunk.annotations is None:
            raise ValueError("the audit needs the engine's annotations: Options(analyse=True)")
        fed = self.table.feed(chunk)
        for d in self.detectors:
            d.rows(chunk, fed, self.table)
        self._retire(fed.retired)

    def _retire(self, att: Any) -> None:
        if not len(att):
            return
        self.attempts += len(att)
        out = outcomes(att)
        for d in self.detectors:
            d.attempts(att, out, self.table.now_ns)

    def finish(self, result: Any) -> None:
        self._retire(self.table.drain())
        floods = self.flood.findings()
        self.failed.flooded = {(f.target, f.fields["port"]) for f in floods}
        found = floods + [f for d in self.detectors if d is not self.flood for f in d.findings()]
        found.sort(key=lambda f: (KINDS.index(f.kind), f.first_ts, f.source or "",
                                  f.target or ""))
        stats = {"attempts": self.attempts, "untracked_rows": self.table.untracked_rows,
                 "capacity": self.table.capacity, "attempt_table_bytes": self.table.nbytes,
                 "seen_filter_bytes": self.seen.nbytes,
                 "detectors": {d.kind: d.memory() for d in self.detectors}}
        self.report = AuditReport(getattr(result, "name", "-"), found, list(self.isn.report),
                                  stats)
