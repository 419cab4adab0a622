from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def payload(provider: str, name: str) -> bytes:
    """The stored sample body, byte for byte."""
    return (HERE / provider / name).read_bytes().strip()
