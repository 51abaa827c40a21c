"""tcpscope: see what TCP does.

The Python API mirrors the command line:

    >>> import tcpscope
    >>> a = tcpscope.analyze("trace.pcap")       # every row: records, annotations, states
    >>> r = tcpscope.audit("trace.pcap")         # findings across all connections
    >>> from tcpscope.pipeline import Options, Pipeline
    >>> pipe = Pipeline([], Options(mode="improved"))
    >>> for chunk in pipe.read("big.pcap"):      # a batch at a time: bounded memory
    ...     chunk.records, chunk.annotations, chunk.life
    >>> pipe.result.analyzer.connection_dicts()

See README.md ("Python API") and tcpscope/pipeline.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["__version__", "analyze", "audit"]

if TYPE_CHECKING:
    from tcpscope.analysis.audit import AuditReport
    from tcpscope.analysis.engine import Analysis


def analyze(source, mode: str = "wireshark") -> Analysis:
    """Read, dissect and analyse a whole capture (a path, "-" or a binary file) into one
    `Analysis`: see tcpscope.pipeline.analyze."""
    from tcpscope.pipeline import analyze  # imported here: the CLI starts faster

    return analyze(source, mode)


def audit(source, mode: str = "improved") -> AuditReport:
    """Audit a whole capture (a path, "-" or a binary file): SYN floods and cookies, scans,
    failed connections, storms, TIME_WAIT, ISNs, each finding with its evidence; see
    tcpscope.present.audit.audit_file and docs/audit.md."""
    from tcpscope.present.audit import audit_file

    return audit_file(source, mode)
