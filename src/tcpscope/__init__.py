"""tcpscope: see what TCP does.

The Python API mirrors the command line:

    >>> import tcpscope
    >>> a = tcpscope.analyze("trace.pcap")       # every row: records, annotations, states
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

__all__ = ["__version__", "analyze"]

if TYPE_CHECKING:
    from tcpscope.analysis.engine import Analysis


def analyze(source, mode: str = "wireshark") -> Analysis:
    """Read, dissect and analyse a whole capture (a path, "-" or a binary file) into one
    `Analysis`: see tcpscope.pipeline.analyze."""
    from tcpscope.pipeline import analyze  # imported here: the CLI starts faster

    return analyze(source, mode)
