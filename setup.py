"""Build the native extension modules (the bulk paths of capture/ and wire/).

Everything else is declared in pyproject.toml; setuptools needs this file only
because C extensions cannot be declared there yet.
"""
import os

from setuptools import Extension, setup

CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"]

# The analysis engine's units (src/tcpscope/analysis/_engine/engine.h maps them).
ENGINE_UNITS = ("module", "packet", "table", "seglist", "sequence", "improved", "summary", "ipid",
                "sender", "senderack", "ccfamily")

EXTENSIONS = [
    Extension(
        "tcpscope.capture._scan",
        sources=["src/tcpscope/capture/_scan.c"],
        extra_compile_args=CFLAGS,
    ),
    # Runs libpcap's bpf_filter, found at run time (capture/bpf.py): nothing to link.
    Extension(
        "tcpscope.capture._bpf",
        sources=["src/tcpscope/capture/_bpf.c"],
        extra_compile_args=CFLAGS,
    ),
    Extension(
        "tcpscope.wire._dissect",
        sources=["src/tcpscope/wire/_dissect.c"],
        include_dirs=["src/tcpscope/_native"],
        depends=["src/tcpscope/_native/record.h", "src/tcpscope/_native/cksum.h"],
        extra_compile_args=CFLAGS,
    ),
    Extension(
        "tcpscope.analysis._engine",
        sources=[f"src/tcpscope/analysis/_engine/{unit}.c" for unit in ENGINE_UNITS],
        include_dirs=["src/tcpscope/_native"],
        depends=["src/tcpscope/analysis/_engine/engine.h", "src/tcpscope/analysis/_engine/sender.h",
                 "src/tcpscope/_native/record.h", "src/tcpscope/_native/annotation.h",
                 "src/tcpscope/_native/seq.h"],
        libraries=["m"],
        extra_compile_args=CFLAGS + ["-fvisibility=hidden", "-flto"],
        extra_link_args=["-O2", "-flto"],
    ),
    Extension(
        "tcpscope.present._packets",
        sources=["src/tcpscope/present/_packets.c"],
        include_dirs=["src/tcpscope/_native"],
        depends=["src/tcpscope/_native/record.h", "src/tcpscope/_native/annotation.h",
                 "src/tcpscope/_native/tcpflags.h"],
        extra_compile_args=CFLAGS,
    ),
    Extension(
        "tcpscope.present.tcpdump._listing",
        sources=[f"src/tcpscope/present/tcpdump/{unit}.c" for unit in ("_listing", "_link", "_ip", "_tcp")],
        include_dirs=["src/tcpscope/_native"],
        depends=["src/tcpscope/present/tcpdump/_listing.h", "src/tcpscope/_native/cksum.h",
                 "src/tcpscope/_native/record.h", "src/tcpscope/_native/seq.h",
                 "src/tcpscope/_native/tcpflags.h"],
        extra_compile_args=CFLAGS + ["-fvisibility=hidden", "-flto"],
        extra_link_args=["-O2", "-flto"],
    ),
]

# scripts/build-native sets this to rebuild one module in place during development.
only = os.environ.get("TCPSCOPE_ONLY_EXT")
setup(ext_modules=[e for e in EXTENSIONS if not only or e.name == only])
