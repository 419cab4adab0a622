"""The demo's terminal: one line per record, never a traceback.

A handler's traceback is kept on the event (its admin page and the live page's
detail panel show it); in the terminal it would bury the one line that says what
happened.
"""

from __future__ import annotations

import logging


class OneLineFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(self._prepared(record))
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f" ({type(error).__name__}: {error})"
        return " ".join(text.split())

    def _prepared(self, record: logging.LogRecord) -> logging.LogRecord:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        return record
