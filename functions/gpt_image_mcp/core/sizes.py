"""Sizes as a person reads them: bytes, KB or MB, never "0.0 MB" for a small file."""

from __future__ import annotations

KIB = 1024
MIB = 1024 * 1024


def human_size(size: int) -> str:
    """`100 bytes`, `12 KB`, `1.5 MB`, `50 MB`: the unit that keeps the number readable."""
    if size < KIB:
        return f"{size} byte{'s' if size != 1 else ''}"
    value, unit = (size / MIB, "MB") if size >= MIB else (size / KIB, "KB")
    return f"{value:.0f} {unit}" if value.is_integer() or value >= 100 else f"{value:.1f} {unit}"
