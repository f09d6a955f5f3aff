"""Print the table of which catalog area and level opens which screen (Markdown, for the README)."""

from django.core.management.base import BaseCommand

from portal.access import requirement_of, walk_patterns
from roles import catalog

BEGIN = "<!-- access-table:begin -->"
END = "<!-- access-table:end -->"


def _describe(requirement) -> str:
    if requirement is None:
        return "refused (undeclared)"
    if requirement.public:
        return "nobody (public)"
    if requirement.area is None:
        return "a signed-in session"
    text = f"{catalog.get(requirement.area).label} ({requirement.area}) {requirement.level}"
    if requirement.write_area:
        text += f"; changes need {requirement.write_level}"
    return text


def access_table() -> str:
    """Return the Markdown table of every screen and the area and level it needs."""
    rows = ["| Path | Needs |", "|---|---|"]
    seen = set()
    for route, pattern in walk_patterns():
        if route.startswith("/api/") or route in seen:
            continue
        seen.add(route)
        needs = _describe(requirement_of(pattern.callback))
        rows.append(f"| `{route.replace('|', '/')}` | {needs} |")
    return "\n".join(rows)


class Command(BaseCommand):
    help = "Print which catalog area and level opens each screen, as a Markdown table."

    def handle(self, *args, **options):
        self.stdout.write(access_table())
