"""Step-up helpers (portal.stepup): the decorator and mixin send a stale proof to the
re-authentication page; security.stepup asks for a second factor only with a device."""

import datetime

import pytest
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpResponse
from django.utils import timezone
from django.views import View

from portal import stepup
from security import stepup as identity


def request_with_proof(rf, method, minutes_ago=None):
    request = getattr(rf, method)("/sensitive/")
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    if minutes_ago is not None:
        stepup.mark_proof(request, now=timezone.now() - datetime.timedelta(minutes=minutes_ago))
    return request


@stepup.recent_proof_required(minutes=5)
def sensitive(request):
    return HttpResponse("done")


class SensitiveView(stepup.RecentProofRequiredMixin, View):
    proof_minutes = 5
    proof_methods = frozenset({"GET", "POST"})

    def get(self, request):
        return HttpResponse("done")


@pytest.mark.django_db
class TestDecorator:
    def test_reading_needs_no_proof_by_default(self, rf):
        assert sensitive(request_with_proof(rf, "get")).status_code == 200

    def test_a_change_without_a_recent_proof_is_sent_to_confirm(self, rf):
        response = sensitive(request_with_proof(rf, "post", minutes_ago=6))
        assert response.status_code == 302
        assert response.headers["Location"] == "/me/confirm/?next=%2Fsensitive%2F"

    def test_a_recent_proof_lets_it_through(self, rf):
        assert sensitive(request_with_proof(rf, "post", minutes_ago=4)).status_code == 200


@pytest.mark.django_db
def test_mixin_checks_the_methods_it_names(rf, admin_user):
    request = request_with_proof(rf, "get")
    request.user = admin_user
    assert SensitiveView.as_view()(request).status_code == 302
    request = request_with_proof(rf, "get", minutes_ago=1)
    request.user = admin_user
    assert SensitiveView.as_view()(request).status_code == 200


def test_no_second_factor_without_a_device(admin_user):
    assert identity.second_factor_required(admin_user) is False
