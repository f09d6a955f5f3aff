"""The README's table of screens and the levels they need is the one the code enforces."""

from pathlib import Path

from roles.management.commands.access_table import BEGIN, END, access_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_access_table_is_current():
    text = README.read_text()
    assert BEGIN in text and END in text, "README.md lost its access-table markers"
    current = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    expected = access_table()
    assert current == expected, (
        "README.md's access table is out of date: run `DEBUG=true python manage.py access_table` "
        "and paste its output between the access-table markers."
    )
