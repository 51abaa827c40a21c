"""analysis/: Wireshark-compatible TCP analysis, per packet and per connection.

    >>> from tcpscope.analysis import Analyzer
    >>> an = Analyzer(mode="wireshark")         # fed dissected batches (tcpscope.pipeline)
    >>> a = tcpscope.analyze("trace.pcap")      # a whole file: records, annotations, connections

See analysis/engine.py and docs/analysis.md.
"""
from __future__ import annotations

from .annotation import ANNOTATION_DTYPE, CONN_DTYPE, FLAG, FLAG_BIT, FLAG_NAMES, flag_names
from .engine import MODES, Analysis, Analyzer
from .rules import RULES, Rule, rule

__all__ = [
    "ANNOTATION_DTYPE", "CONN_DTYPE", "FLAG", "FLAG_BIT", "FLAG_NAMES", "flag_names",
    "MODES", "Analysis", "Analyzer", "RULES", "Rule", "rule",
]
