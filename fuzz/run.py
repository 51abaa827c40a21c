"""Run one fuzz target under atheris (libFuzzer): ``python fuzz/run.py TARGET [libFuzzer args]``.

`scripts/fuzz` is the usual way in: it builds the native modules with ASan,
UBSan and coverage, preloads the sanitizer runtime and passes the corpus and
the time limit. The tcpscope Python code is instrumented too, so coverage
counts Python branches (decompress.py, pcapng.py, ...) as well as C edges.
"""
from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["tcpscope"]):
    import targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: run.py {{{','.join(targets.TARGETS)}}} [libFuzzer arguments]")
    target = targets.TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0]] + sys.argv[2:], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
