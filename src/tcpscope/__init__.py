"""tcpscope: see what TCP does.

The Python API mirrors the command line:

    >>> import tcpscope
    >>> with tcpscope.open_capture("trace.pcap") as cap:
    ...     for batch in cap:                      # columnar FrameBatch objects
    ...         records = tcpscope.dissect_batch(batch)   # numpy structured array
    >>> a = tcpscope.analyze("trace.pcap")         # records + annotations + connections
    >>> r = tcpscope.audit("trace.pcap")           # findings across all connections
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["__version__", "analyze", "audit"]

if TYPE_CHECKING:
    from tcpscope.analysis.audit import AuditReport
    from tcpscope.analysis.engine import Analysis


def analyze(path, mode: str = "wireshark") -> Analysis:
    """Read, dissect and analyse a whole capture: see tcpscope.analysis.analyze_file."""
    from tcpscope.analysis.engine import analyze_file  # imported here: the CLI starts faster

    return analyze_file(path, mode)


def audit(source, mode: str = "improved") -> AuditReport:
    """Audit a whole capture (a path, "-" or a binary file): SYN floods and cookies, scans,
    failed connections, storms, TIME_WAIT, ISNs, each finding with its evidence; see
    tcpscope.present.audit.audit_file and docs/audit.md."""
    from tcpscope.present.audit import audit_file

    return audit_file(source, mode)
