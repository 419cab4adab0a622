"""The strict Content-Security-Policy the browser tests hold the live page to.

It is the demo project's own (project/csp.py), which every demo response carries,
so the browser tests exercise exactly what ``make run`` sends.
"""

from __future__ import annotations

from project.csp import POLICY

__all__ = ["POLICY"]
