"""tcpscope: see what TCP does.

The Python API mirrors the command line:

    >>> import tcpscope
    >>> a = tcpscope.analyze("trace.pcap")       # every row: records, annotations, states
    >>> a.packets_df(), a.conns_df()             # pandas (tcpscope[pandas]); a.to_arrow()
    >>> r = tcpscope.audit("trace.pcap")         # findings across all connections
    >>> tcpscope.report("trace.pcap", "r.html")  # one self-contained HTML page
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

__all__ = ["__version__", "analyze", "audit", "report"]

if TYPE_CHECKING:
    from tcpscope.analysis.audit import AuditReport
    from tcpscope.api import CaptureAnalysis
    from tcpscope.present.report import ReportData


def analyze(source, mode: str = "wireshark") -> CaptureAnalysis:
    """Read, dissect and analyse a whole capture (a path, "-", a binary file, or a
    `tcpscope.pipeline.Input`: several files, filters) into one `CaptureAnalysis`, with
    ``.packets_df()``, ``.conns_df()`` and ``.to_arrow()``: see tcpscope/api.py."""
    from tcpscope.api import analyze  # imported here: the CLI starts faster

    return analyze(source, mode)


def audit(source, mode: str = "improved") -> AuditReport:
    """Audit a whole capture (a path, "-" or a binary file): SYN floods and cookies, scans,
    failed connections, storms, TIME_WAIT, ISNs, each finding with its evidence; see
    tcpscope.present.audit.audit_file and docs/audit.md."""
    from tcpscope.present.audit import audit_file

    return audit_file(source, mode)


def report(source, out, *, lang: str = "en", mode: str = "improved",
           details: int = 8) -> ReportData:
    """Write the HTML report of a capture to `out` (as ``tcpscope report``): the overview,
    the connection table, the `details` most interesting connections in detail; returns
    what it shows. See tcpscope.present.report and docs/report.md."""
    from tcpscope.present.report import write_report

    return write_report(source, out, lang=lang, mode=mode, details=details)
