# %% [markdown]
# # A capture in pandas
#
# This is a notebook in the percent format: VS Code, Spyder and Jupyter (with jupytext)
# open it as cells; `python docs/examples/pandas_notebook.py` runs it top to bottom, as
# the tests do (tests/test_tables.py). It needs `pip install 'tcpscope[pandas]'`.

# %%
from pathlib import Path

import tcpscope

here = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
capture = here.parent.parent / "fixtures" / "lossy_transfer.pcap"
a = tcpscope.analyze(capture)

# %% [markdown]
# One row per TCP packet, with the columns of `tcpscope packets --format csv`:
# `seq`/`ack` are the numbers on the wire, `rel_seq`/`rel_ack` Wireshark's relative ones.

# %%
packets = a.packets_df()
print(packets[["frame", "stream", "flags", "rel_seq", "len", "analysis"]].head(8))

# %% [markdown]
# The verdicts are lists: explode them to count each kind, per direction.

# %%
verdicts = packets.explode("analysis").dropna(subset=["analysis"])
print(verdicts.groupby(["src", "analysis"]).size())

# %% [markdown]
# The same table with Wireshark's field names, for people who think in them
# (`tcp.seq` is the relative number, `tcp.seq_raw` the raw one).

# %%
ws = a.packets_df(names="wireshark")
slow = ws[ws["tcp.analysis.ack_rtt"] > 0.001]
print(slow[["frame.number", "tcp.stream", "tcp.seq", "tcp.analysis.ack_rtt"]].head())

# %% [markdown]
# One row per connection, with the columns of `tcpscope conns --format csv`.

# %%
conns = a.conns_df()
print(conns[["stream", "client", "server_port", "handshake", "teardown", "conn_state",
             "anomaly_retransmission"]])

# %% [markdown]
# Arrow, for Parquet or polars: `a.to_arrow()` (packets) and `a.to_arrow("conns")`.

# %%
table = a.to_arrow()
print(table.schema.field("analysis"), table.num_rows)
assert table.num_rows == len(packets)
