"""The native hot loop of `read` prints exactly what the Python path prints.

`present/_tcpdump.c` formats runs of ordinary TCP rows; every other row goes
through Python with the same relative-sequence state. Whatever mix a capture
produces, the text must not depend on which path printed a row.
"""
from __future__ import annotations

import io

import pytest

from conftest import corpus_files, fixture_files
from tcpscope.capture.errors import CaptureError
from tcpscope.present import tcpdump
from tcpscope.present.demo import demo_capture
from tcpscope.present.tcpdump import TcpdumpOptions, write_listing

pytestmark = pytest.mark.skipif(tcpdump._native is None, reason="native module not built")


def listing(path, opts: TcpdumpOptions) -> str:
    out = io.StringIO()
    write_listing(str(path), opts, out, err=io.StringIO())
    return out.getvalue()


def captures():
    with demo_capture() as demo:
        return [demo, *fixture_files(), *corpus_files()]


@pytest.mark.parametrize("opts", [TcpdumpOptions(), TcpdumpOptions(absolute=True, tstyle=2),
                                  TcpdumpOptions(tstyle=4, number=True), TcpdumpOptions(tstyle=1)],
                         ids=["default", "S-tt", "tttt-#", "t"])
def test_native_and_python_paths_print_the_same(opts, monkeypatch):
    native = {}
    for path in captures():
        try:
            native[path] = listing(path, opts)
        except CaptureError:
            continue
    monkeypatch.setattr(tcpdump, "_native", None)
    for path, text in native.items():
        assert listing(path, opts) == text, path.name
