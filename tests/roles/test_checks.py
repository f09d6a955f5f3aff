"""The start-up check refuses a view or menu entry naming an area or level the catalog lacks."""

from django.http import HttpResponse
from django.urls import clear_url_caches, path

from portal import navigation
from portal.access import requires
from roles import catalog
from roles.checks import check_declared_access


@requires("no-such-area", catalog.READ)
def _misspelt_area(request):  # pragma: no cover - never called
    return HttpResponse()


@requires(catalog.USERS, "superpowers")
def _unknown_level(request):  # pragma: no cover - never called
    return HttpResponse()


@requires(catalog.USERS, catalog.READ, write=catalog.FULL)
def _fine(request):  # pragma: no cover - never called
    return HttpResponse()


urlpatterns = [
    path("misspelt/", _misspelt_area),
    path("unknown-level/", _unknown_level),
    path("fine/", _fine),
]


def test_the_project_declares_only_catalog_areas_and_levels():
    assert check_declared_access() == []


def test_misspelt_areas_and_levels_are_refused_with_where_they_are(settings, monkeypatch):
    settings.ROOT_URLCONF = __name__
    clear_url_caches()
    monkeypatch.setattr(
        navigation, "SCREENS", [navigation.Screen("x", "Widgets", "Settings", "widgets")]
    )
    try:
        errors = check_declared_access()
    finally:
        clear_url_caches()
    messages = sorted(error.msg for error in errors)
    assert {error.id for error in errors} == {"roles.E001"}
    assert len(messages) == 3
    assert "The menu entry 'Widgets': Unknown permission area 'widgets'." in messages
    assert "The view at /misspelt/: Unknown permission area 'no-such-area'." in messages
    assert any(
        m.startswith("The view at /unknown-level/: ") and "'superpowers'" in m for m in messages
    )
