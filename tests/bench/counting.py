"""Counting a benchmark's queries and their database time (a `connection.execute_wrapper`)."""

from __future__ import annotations

import time


class QueryTimer:
    """Count queries and add up their database time (connection.execute_wrapper)."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1
