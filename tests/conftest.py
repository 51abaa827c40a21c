"""Shared test fixtures: paths to the project's fixtures and the shared corpus."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "captures" / "files"


def corpus_files() -> list[Path]:
    """Every capture of ../shared/captures/files (empty if the folder is absent)."""
    return sorted(CORPUS.iterdir()) if CORPUS.is_dir() else []


def fixture_files() -> list[Path]:
    """The project's own captures, made with the real kernel (see fixtures/README.md)."""
    return sorted(p for p in FIXTURES.glob("*") if p.suffix in {".pcap", ".pcapng", ".gz", ".zst", ".xz"})


@pytest.fixture(scope="session")
def corpus() -> list[Path]:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (clone ../shared beside the project)")
    return corpus_files()


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (scripts/setup --test installs it)")
    return path


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (tests/chromium.py), one per test module; skips without it."""
    from chromium import Browser

    require_tool("chromium")
    with Browser(width=1280, height=900) as b:
        yield b
