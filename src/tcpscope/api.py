"""`tcpscope.analyze`: a whole capture in memory, with pandas and Arrow views of it.

    a = tcpscope.analyze("trace.pcap")                  # or several files, a filter...
    a.packets_df()                                     # pandas: the columns of `packets`
    a.packets_df(names="wireshark")                    # tcp.stream, tcp.seq (relative)...
    a.conns_df()                                       # the columns of `conns`
    a.to_arrow(), a.to_arrow("conns")                  # pyarrow Tables
    tcpscope.analyze("trace.pcap", mode="improved").rounds_df(0)   # `timeline`'s rows

Column names are those of ``tcpscope packets --format csv`` and ``tcpscope
conns --format csv``; ``names="wireshark"`` renames the packet columns that
are exactly a Wireshark field (filter/fields.py: ``rel_seq`` is ``tcp.seq``,
``seq`` is ``tcp.seq_raw``). pyarrow and pandas are the ``tcpscope[arrow]`` /
``tcpscope[pandas]`` extras.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .analysis.engine import DEFAULT_MODE, Analysis
from .capture.errors import CaptureDamageWarning, Damage
from .pipeline import Input, Source, collect, warn_damage

__all__ = ["CaptureAnalysis", "CaptureDamageWarning", "analyze"]


@dataclass
class CaptureAnalysis(Analysis):
    """An `Analysis` that remembers its source, with table views of its rows, and the
    damage met reading it: ``damages`` is ``[(file, Damage)]``, one per damaged file
    (the frames before ``damage.frame`` were read)."""

    source: Any = None
    damages: list[tuple[str, Damage]] = dataclasses.field(default_factory=list)

    def to_arrow(self, kind: str = "packets", *, names: str = "tcpscope") -> Any:
        """A pyarrow Table: ``packets`` (one row per TCP packet) or ``conns``."""
        if kind == "conns":
            return self._conns_table()
        if kind != "packets":
            raise ValueError("kind is 'packets' or 'conns'")
        from .present.packets import format_batch
        from .present.tables import packets_table, rename_wireshark

        text = format_batch(self.records, self.annotations, self.ts_ns, "csv", header=True,
                            client_state=self.client_state, server_state=self.server_state,
                            events=self.events)
        table = packets_table(text)
        return rename_wireshark(table) if names == "wireshark" else table

    def packets_df(self, *, names: str = "tcpscope") -> Any:
        """The packets as a pandas DataFrame (`to_arrow`'s columns)."""
        return _pandas(self.to_arrow("packets", names=names))

    def conns_df(self) -> Any:
        """The connections as a pandas DataFrame (the columns of ``conns --format csv``)."""
        return _pandas(self._conns_table())

    def rounds_df(self, stream: int, sender: str | None = None) -> Any:
        """One row per round trip of `stream`'s data sender (`sender`: "client" or
        "server", default the side that sent more): the columns of ``tcpscope timeline
        --format csv``, ``events`` a list. Needs an analysis in improved mode."""
        from .present.tables import require
        from .present.timeline import COLUMNS, timeline_of

        if self.mode != "improved":
            raise ValueError("round trips come from the sender model: analyze(..., mode='improved')")
        rows = timeline_of(self.records, self.annotations, self.ts_ns, stream, sender).rows()
        return require("pandas").DataFrame(rows, columns=list(COLUMNS)).astype(
            {"ssthresh": "Int64", "rwnd": "Int64"})

    def _conns_table(self) -> Any:
        from .present.conns import collect, format_csv
        from .present.tables import require

        pa, pcsv = require("pyarrow"), require("pyarrow.csv")
        src = self.source
        if src is None or (not isinstance(src, Input) and hasattr(src, "read")) or src == "-":
            raise ValueError("the connections need the capture read again: analyze a path")
        text = format_csv(collect(src, self.mode)).encode()
        return pcsv.read_csv(pa.py_buffer(text))


def _pandas(table: Any) -> Any:
    """A DataFrame whose integer columns stay integers where values are absent (Int64)."""
    from .present.tables import require

    pd, pa = require("pandas"), require("pyarrow")
    ints = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype()}
    return table.to_pandas(types_mapper=ints.get)


def analyze(source: Source, mode: str = DEFAULT_MODE) -> CaptureAnalysis:
    """Read, dissect and analyse a whole capture (a path, ``-``, a binary file, or a
    `pipeline.Input`: several files, a capture filter, a selection) into memory. Damage
    inside a file is in ``.damages`` and warned about (`CaptureDamageWarning`)."""
    a, result = collect(source, mode)
    warn_damage(result)
    fields = {f.name: getattr(a, f.name) for f in dataclasses.fields(Analysis)}
    return CaptureAnalysis(**fields, source=source, damages=list(result.damages))
