"""The README's Python examples run (placeholder capture names replaced by a fixture)."""
from __future__ import annotations

import re

import pytest

from conftest import FIXTURES, ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
PLACEHOLDERS = ("trace.pcapng.gz", "big.pcap", "trace.pcap")


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str, capsys):
    for name in PLACEHOLDERS:
        code = code.replace(name, str(FIXTURES / "lossy_transfer.pcap"))
    exec(compile(code, "README.md", "exec"), {})


def test_readme_has_examples():
    assert len(BLOCKS) >= 2
