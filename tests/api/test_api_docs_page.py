"""The API reference page renders the `code` spans of the descriptions it shows."""

import pytest
from django.template import Context, Template

pytestmark = pytest.mark.django_db


def test_code_spans_become_code_and_the_rest_stays_escaped():
    render = Template("{% load text %}{{ text|code_spans }}").render
    assert render(Context({"text": "Send `Authorization: Bearer <token>`."})) == (
        "Send <code>Authorization: Bearer &lt;token&gt;</code>."
    )
    assert render(Context({"text": "<b>`a`</b> and ` lone"})) == (
        "&lt;b&gt;<code>a</code>&lt;/b&gt; and ` lone"
    )


def test_the_reference_shows_no_markdown_backticks(client):
    page = client.get("/api/v1/docs").content.decode()
    assert "<code>Authorization: Bearer &lt;token&gt;</code>" in page
    main = page.split('<main id="main"', 1)[1]
    assert "`" not in main.replace("<code>", "").replace("</code>", "")
