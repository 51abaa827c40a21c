"""Packets and connections as Arrow tables and pandas DataFrames (``tcpscope[arrow]``).

The columns are those of ``tcpscope packets --format csv`` and ``tcpscope conns``,
with their types: the packets' text is made by the one native formatter
(_packets.c) and read by Arrow's CSV reader with a fixed schema, so a table
holds exactly what the command prints. Lists (``options``, ``analysis``,
``events``) are list<string> columns. `wireshark_names` (filter/fields.py)
maps a column to its Wireshark field, for ``packets_df(names="wireshark")``:
``tcp.seq`` is the relative ``rel_seq``, ``tcp.seq_raw`` the raw ``seq``.

pyarrow (and pandas for DataFrames) are optional: `require` says which extra
to install when one is missing.
"""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np

__all__ = ["PACKET_COLUMNS", "packets_schema", "packets_table", "ParquetPackets", "require",
           "rename_wireshark"]

#: (column, Arrow type name) of a packets table, in the CSV's order; "file" and
#: "file_frame" follow when the input had several files.
PACKET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("frame", "int64"), ("ts", "float64"), ("stream", "int64"), ("src", "string"),
    ("sport", "int32"), ("dst", "string"), ("dport", "int32"), ("flags", "string"),
    ("seq", "int64"), ("ack", "int64"), ("rel_seq", "int64"), ("rel_ack", "int64"),
    ("len", "int64"), ("win", "int32"), ("win_scaled", "int64"), ("options", "list"),
    ("checksum", "string"), ("analysis", "list"), ("dup_ack_num", "int64"),
    ("bytes_in_flight", "int64"), ("ack_rtt", "float64"), ("acks_frame", "int64"),
    ("irtt", "float64"), ("client_state", "string"), ("server_state", "string"),
    ("events", "list"), ("rules", "string"), ("cwnd_est", "int64"), ("ssthresh_est", "int64"),
    ("in_flight", "int64"), ("cc_phase", "string"), ("limited_by", "string"),
    ("cc_events", "list"),
)
FILE_COLUMNS: tuple[tuple[str, str], ...] = (("file", "string"), ("file_frame", "int64"))
_LISTS = ("options", "analysis", "events", "cc_events")


def require(module: str) -> Any:
    """Import pyarrow or pandas, or say in one line which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = "pandas" if module.startswith("pandas") else "arrow"
        raise ImportError(f"this needs {module.split('.')[0]}: pip install 'tcpscope[{extra}]'")


def packets_schema(files: bool = False) -> Any:
    pa = require("pyarrow")
    types = {"int64": pa.int64(), "int32": pa.int32(), "float64": pa.float64(),
             "string": pa.string(), "list": pa.list_(pa.string())}
    cols = PACKET_COLUMNS + (FILE_COLUMNS if files else ())
    return pa.schema([(name, types[t]) for name, t in cols])


def packets_table(csv_text: bytes, files: bool = False) -> Any:
    """The Arrow table of CSV text from the packets formatter (with its header line)."""
    pa = require("pyarrow")
    pcsv = require("pyarrow.csv")
    pc = require("pyarrow.compute")
    schema = packets_schema(files)
    read_types = {f.name: (pa.string() if f.name in _LISTS else f.type) for f in schema}
    table = pcsv.read_csv(
        pa.py_buffer(csv_text),
        convert_options=pcsv.ConvertOptions(column_types=read_types, strings_can_be_null=True,
                                            quoted_strings_can_be_null=False),
        read_options=pcsv.ReadOptions(use_threads=True))
    for name in _LISTS:
        i = table.schema.get_field_index(name)
        col = pc.fill_null(table.column(name), "")
        split = pc.split_pattern(col, ";")
        # an empty cell is an empty list, not [""]
        empty = pc.equal(col, "")
        split = pc.if_else(empty, pa.scalar([], pa.list_(pa.string())), split)
        table = table.set_column(i, name, split)
    return table.cast(schema)


def rename_wireshark(table: Any) -> Any:
    """The table with each column that is exactly a Wireshark field named after it."""
    from ..filter.fields import wireshark_names

    names = wireshark_names()
    return table.rename_columns([names.get(c, c) for c in table.column_names])


class ParquetPackets:
    """A pipeline consumer writing one Parquet row per TCP packet to `path`, batch by
    batch (memory: one batch), atomically."""

    def __init__(self, path: str, files: bool = False) -> None:
        from ..capture.writer import AtomicOutput

        pq = require("pyarrow.parquet")
        self.files = files
        self._out = AtomicOutput(path)
        self._writer = pq.ParquetWriter(self._out.file, packets_schema(files))

    def write_csv(self, text: bytes) -> None:
        if text:
            self._writer.write_table(packets_table(text, self.files))

    def close(self) -> None:
        self._writer.close()
        self._out.commit()

    def abort(self) -> None:
        self._writer.close()
        self._out.abort()


def file_columns(names: list[str], source: np.ndarray, source_frame: np.ndarray) -> list[str]:
    """The file and file-frame cells of rows (CSV text), for inputs of several files."""
    return [f"{names[s]},{f}" for s, f in zip(source.tolist(), source_frame.tolist())]
