"""Fixtures shared by several test files."""
from __future__ import annotations

import logging

import pytest


class _WarningLines(logging.Handler):
    """Keeps the message of every WARNING-or-worse record."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def mmdet_warnings():
    """The warning lines the ``mmdet`` logger emits during the test (a live list)."""
    handler = _WarningLines()
    logger = logging.getLogger("mmdet")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)
