"""`{% extends %}` of billing_access.template_builtins draws pages exactly as Django's own tag."""

import pytest
from django.template import Context, Engine, TemplateSyntaxError, engines

from billing_access import template_builtins

TEMPLATES = {
    "root.html": (
        "{% load static %}<title>{% block title %}Root{% endblock %}</title>"
        "{% if show %}<nav>{% block nav %}menu{% endblock %}</nav>{% endif %}"
        "<main>{% block content %}root content{% endblock %}</main>"
    ),
    "middle.html": (
        '{% extends "root.html" %}{% block title %}Middle · {{ block.super }}{% endblock %}'
        "{% block content %}<section>{% block inner %}middle inner{% endblock %}</section>"
        "{% endblock %}"
    ),
    "page.html": (
        '{% extends "middle.html" %}{% block title %}Page · {{ block.super }}{% endblock %}'
        "{% block inner %}{{ block.super }} and page{% endblock %}"
    ),
    "direct.html": '{% extends "root.html" %}{% block nav %}{{ name }}{% endblock %}',
    "by_variable.html": "{% extends parent %}{% block content %}from a variable{% endblock %}",
    "twice.html": '{% extends "root.html" %}{% extends "root.html" %}',
}


def engine(*builtins) -> Engine:
    return Engine(
        loaders=[("django.template.loaders.locmem.Loader", TEMPLATES)],
        libraries={"static": "django.templatetags.static"},
        builtins=list(builtins),
    )


@pytest.mark.parametrize("name", ["root.html", "middle.html", "page.html", "direct.html"])
@pytest.mark.parametrize("show", [True, False])
def test_pages_render_as_with_djangos_tag(name, show):
    portal = engine("billing_access.template_builtins").get_template(name)
    django = engine().get_template(name)
    context = {"show": show, "name": "Ada"}
    expected = django.render(Context(context))
    # Twice: the second render uses the blocks found by the first.
    assert portal.render(Context(context)) == expected
    assert portal.render(Context(context)) == expected


def test_the_page_draws_every_level():
    html = engine("billing_access.template_builtins").get_template("page.html").render(Context())
    assert "<title>Page · Middle · Root</title>" in html
    assert "<section>middle inner and page</section>" in html


def test_a_parent_given_as_a_template_object():
    portal = engine("billing_access.template_builtins")
    parent = portal.get_template("root.html")
    html = portal.get_template("by_variable.html").render(Context({"parent": parent}))
    assert "<main>from a variable</main>" in html


def test_extends_twice_is_refused_as_by_django():
    with pytest.raises(TemplateSyntaxError, match="cannot appear more than once"):
        engine("billing_access.template_builtins").get_template("twice.html")


def test_the_portal_templates_use_it():
    home = engines["django"].get_template("home.html").template
    assert isinstance(home.nodelist[0], template_builtins.ExtendsNode)
