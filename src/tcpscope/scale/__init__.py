"""Beyond one core and one machine: the answers of one run from a process pool or a Dask
cluster (docs/scale.md).

    from tcpscope.scale.driver import Scale, scaled_conns
    collected = scaled_conns(Input(("rotated/",)), "wireshark", Scale(workers=4))

units.py cuts the input into work units (files, byte ranges of big pcap files);
partition.py (phase 1) puts each unit's frames into buckets by a symmetric flow
hash; stitch.py (phase 2) runs each bucket through the pipeline; driver.py plans,
numbers the frames as the merged input does, renumbers the streams and puts the
answers together; executor.py runs the tasks (a local pool, Dask), each retried
once.
"""
