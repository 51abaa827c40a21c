"""`tcpscope read`: the packet listing of ``tcpdump -nn -r FILE``, byte for byte.

One path prints every frame: the C printer (`_listing.Printer`, see
_listing.h) walks each frame's captured bytes the way tcpdump's printers do
(link layer, IPv4/IPv6, TCP with every option kind and malformed list, the RST
text) and keeps tcpdump's state across packets (the relative-sequence table,
the -ttt reference). It calls back into Python only for the payload of a
segment on a port tcpdump decodes (HTTP, DNS, PPTP, ...: payload.py).

`TcpdumpListing` is a pipeline consumer; `write_listing` runs it over a capture.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import IO

import numpy as np

from tcpscope import pipeline
from tcpscope.capture.batch import FrameBatch

from ._listing import Printer
from .payload import PORTS, payload_text

__all__ = ["TcpdumpOptions", "TcpdumpListing", "write_listing", "format_timestamp"]

_PAYLOAD_PORTS = np.array(sorted(PORTS), dtype=np.uint16).tobytes()


@dataclass(frozen=True)
class TcpdumpOptions:
    """tcpdump's flags that `read` honours.

    verbose: -v count; absolute: -S; tstyle: number of -t (0 = default local
    time, 1 = none, 2 = epoch, 3 = delta from the previous packet, 4 = date and
    time, 5 = delta from the first packet); count: -c; number: -# (frame numbers:
    each frame's number in the capture, also after a filter); link: -e; quick:
    -q; dump: the packet after each line (1 -x, 2 -xx, 3 -X, 4 -XX, 5 -A, 6 -AA);
    nano: --nano (nanosecond timestamps).
    """

    verbose: int = 0
    absolute: bool = False
    tstyle: int = 0
    count: int | None = None
    number: bool = False
    link: bool = False
    quick: bool = False
    dump: int = 0
    nano: bool = False


def _printer(opts: TcpdumpOptions) -> Printer:
    return Printer(opts.verbose, opts.absolute, opts.tstyle, opts.number, _PAYLOAD_PORTS,
                   payload_text, link=opts.link, quick=opts.quick, dump=opts.dump,
                   nano=opts.nano)


def format_timestamp(ts_ns: int, tstyle: int = 0) -> str:
    """One timestamp as tcpdump prints it (with the trailing space), for tests and tools."""
    return _printer(TcpdumpOptions(tstyle=tstyle)).timestamp(ts_ns)


class TcpdumpListing:
    """The pipeline consumer that writes tcpdump's listing of every frame to `out`.

    It needs no analysis (`pipeline.Options(analyse=False)`); with ``-c N`` it
    stops the run (`pipeline.StopRun`) once N frames are printed.
    """

    def __init__(self, opts: TcpdumpOptions, out: IO[str]) -> None:
        self.opts = opts
        self.out = out
        self.printed = 0
        self._printer = _printer(opts)

    @property
    def done(self) -> bool:
        return self.opts.count is not None and self.printed >= self.opts.count

    def format_batch(self, batch: FrameBatch) -> str:
        """The lines of the frames of `batch` (up to -c), in order."""
        n = len(batch)
        if self.opts.count is not None:
            n = max(0, min(n, self.opts.count - self.printed))
        if n == 0:
            return ""
        text = self._printer.format(
            batch.data, np.ascontiguousarray(batch.offset, np.int64),
            np.ascontiguousarray(batch.caplen, np.uint32),
            np.ascontiguousarray(batch.origlen, np.uint32),
            np.ascontiguousarray(batch.ts_ns, np.int64),
            np.ascontiguousarray(batch.linktype, np.uint16),
            np.ascontiguousarray(batch.frame_numbers, np.int64), 0, n)
        self.printed += n
        return text

    def feed(self, chunk: pipeline.Chunk) -> None:
        text = self.format_batch(chunk.batch)
        if text:
            self.out.write(text)
        if self.done:
            raise pipeline.StopRun

    def finish(self, result: pipeline.Result) -> None:
        self.out.flush()


def write_listing(source: pipeline.Source, opts: TcpdumpOptions, out: IO[str] | None,
                  *, also: list[pipeline.Consumer] = ()) -> int:
    """Print the listing of `source` (a capture, or a `pipeline.Input`: several files,
    filters) to `out` (None: no listing, for ``-w`` alone); `also` are more consumers of
    the same run (the ``-w`` writer). Return the frames printed. Damage is in the run's
    result; the CLI reports it after the frames before it, as tcpdump does.
    """
    listing = TcpdumpListing(opts, out) if out is not None else None
    consumers = ([listing] if listing else []) + list(also)
    pipeline.run(source, consumers, pipeline.Options(analyse=False, states=False))
    return listing.printed if listing else 0
