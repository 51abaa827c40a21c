"""Errors of the capture layer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

_E = TypeVar("_E", bound="FileError")


class FileError(Exception):
    """One line about one file: ``str(exc)`` is ``"<name>: <reason>"``; ``name`` and
    ``reason`` hold the two parts when the error came from `for_file`."""

    name: str | None = None
    reason: str | None = None

    @classmethod
    def for_file(cls: type[_E], name: str, reason: str) -> _E:
        """``"<name>: <reason>"``, on one line whatever the reason contains."""
        reason = " ".join(reason.split())
        exc = cls(f"{name}: {reason}")
        exc.name = name
        exc.reason = reason
        return exc


class CaptureError(FileError):
    """The input is not a usable capture at all (wrong magic, unreadable, empty).

    The CLI prints ``tcpscope: <message>`` on one line and exits 1: the
    message already starts with the file's name (``str(exc)`` is
    ``"notes.txt: not a capture file (pcap or pcapng): starts with 23 20 74 63"``).
    """


class ExportError(FileError):
    """An output that cannot be written (a missing or read-only directory, a full disk):
    ``"<path>: cannot write: <reason>"``, one line, exit 1; nothing is left at the path."""


class CaptureDamageWarning(UserWarning):
    """The Python API read a damaged capture: what was before the damage is analysed."""


@dataclass(frozen=True, slots=True)
class Damage:
    """Where and why reading stopped inside an otherwise good capture.

    Every frame before ``byte_offset`` was delivered and is analysed; the
    reader records this instead of raising.
    """

    byte_offset: int  # offset in the (decompressed) capture stream
    frame: int  # 1-based number the next frame would have had
    reason: str  # one sentence, e.g. "record header claims 4294967295 captured bytes"

    def __str__(self) -> str:
        return f"capture damaged at byte {self.byte_offset} (frame {self.frame}): {self.reason}"
