"""The CSV export of the activity log: streamed row by row from a server-side cursor.

Memory stays flat whatever the size of the log: rows are fetched `CHUNK` at a time and each
line is handed to the response as soon as it is written. Cells that a spreadsheet would run as
a formula are defused (a typed login is attacker input).
"""

from __future__ import annotations

import csv
import datetime

from . import display, geo
from .choices import AuditAction, EventCategory

CHUNK = 2000


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a generator."""

    def write(self, value):
        return value


COLUMNS = [
    "Time",
    "Event",
    "Category",
    "By",
    "Record type",
    "Record",
    "Record id",
    "Changes",
    "Reason",
    "Details",
    "IP address",
    "Location",
    "Device",
    "User agent",
    "Method",
    "Second factor",
    "Request id",
    "Event id",
    "Chain",
    "Seq",
    "Hash",
]
_FIELDS = (
    "id",
    "occurred_at",
    "action",
    "category",
    "actor_label",
    "target_type",
    "target_label",
    "target_id",
    "changes",
    "reason",
    "details",
    "ip",
    "user_agent",
    "method",
    "context",
    "request_id",
    "chain",
    "seq",
    "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    """Return a CSV cell that a spreadsheet will not run as a formula (typed logins are input)."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def rows(events, tz: datetime.tzinfo):
    """Yield the CSV lines of `events`, streamed from a server-side cursor."""
    writer = csv.writer(_Echo())
    action_labels = dict(AuditAction.choices)
    category_labels = dict(EventCategory.choices)
    yield writer.writerow(COLUMNS)
    stream = events.order_by("-occurred_at", "-id").values_list(*_FIELDS).iterator(chunk_size=CHUNK)
    for values in stream:
        row = dict(zip(_FIELDS, values, strict=True))
        event = _Row(row)
        changes = "; ".join(f"{c.label}: {c.before} → {c.after}" for c in display.changes_of(event))
        yield writer.writerow(
            [
                _cell(value)
                for value in (
                    row["occurred_at"].astimezone(tz).isoformat(timespec="seconds"),
                    action_labels.get(row["action"], row["action"]),
                    category_labels.get(row["category"], row["category"]),
                    row["actor_label"],
                    row["target_type"],
                    row["target_label"],
                    row["target_id"],
                    changes,
                    event.reason or (row["context"] or {}).get("reason", ""),
                    row["details"],
                    row["ip"] or "",
                    geo.locate(row["ip"]) if row["ip"] else "",
                    display.summarise_user_agent(row["user_agent"] or "")
                    if row["user_agent"]
                    else "",
                    row["user_agent"],
                    display.method_of(event) if row["method"] else "",
                    display.second_factor_of(event).replace(display.EMPTY, ""),
                    row["request_id"],
                    row["id"],
                    row["chain"],
                    row["seq"],
                    row["hash"],
                )
            ]
        )


class _Row:
    def __init__(self, row: dict):
        self.__dict__.update(row)
