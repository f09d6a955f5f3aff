"""Text filters: `{{ value|clip }}` keeps a value to one line; `{{ text|code_spans }}` renders
Markdown's `code` spans of a description written for both the OpenAPI document and the screens.

`clip`: a value people typed, kept to one line of a table cell.

Names, labels and addresses can be as long as their fields allow (a department of 120 letters
without a space, a user agent of 400), and one of them would otherwise widen its column until
the table pushes the rest off the screen. The value is shown in full up to `.truncate`'s width
(static/css/portal.css), cut with an ellipsis beyond it, and carried whole in a title, so a
pointer resting on it reads all of it. Free text (details, reasons, changes) wraps instead:
`.wrap-anywhere`.
"""

from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# Shorter values always fit the column, so they get no tooltip repeating them.
TITLE_FROM = 24


@register.filter
def clip(value) -> str:
    """Return `value` escaped in a one-line span cut with an ellipsis, whole in its title."""
    text = "" if value is None else str(value)
    if len(text) < TITLE_FROM:
        return format_html('<span class="truncate">{}</span>', text)
    return format_html('<span class="truncate" title="{}">{}</span>', text, text)


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


@register.filter
def code_spans(value) -> SafeString:
    """Return `value` escaped, with each `backticked` part as <code> (nothing else of Markdown)."""
    escaped = str(conditional_escape("" if value is None else value))
    return mark_safe(_CODE_SPAN.sub(r"<code>\1</code>", escaped))  # noqa: S308 - escaped above
