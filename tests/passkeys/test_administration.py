"""Authenticators on the user record: listed, revoked with a reason (the last one ends the
person's sessions), removed by the person, reset by the recovery console; all audited."""

import pytest
from django.test import Client

from accounts import recovery
from accounts.passkeys import services
from audit.models import AuditEvent
from delivery.models import OutboundEmail
from roles import catalog
from tests.access_helpers import assert_screen_access
from tests.builders import make_totp_device, make_user
from tests.passkeys.conftest import enrol
from tests.twofactor.conftest import proved_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def support(owner):
    return make_user(
        owner,
        username="sam",
        grants={catalog.DP_ACCESS: catalog.FULL, catalog.USERS: catalog.READ},
        privilege_level=8,
    )


@pytest.fixture
def reader(owner):
    return make_user(owner, username="rita", grants={catalog.USERS: catalog.READ})


@pytest.fixture
def alice(owner):
    user = make_user(owner, username="alice", email="alice@example.test", privilege_level=3)
    make_totp_device(user)
    enrol(user, name="Office laptop")
    return user


def revoke_url(user, kind, pk):
    return f"/users/{user.pk}/authenticators/{kind}/{pk}/revoke/"


def test_the_security_tab_lists_every_authenticator(alice, reader, support):
    page = proved_client(reader).get(f"/users/{alice.pk}/security/").content.decode()
    assert "Authenticators" in page
    assert "Authenticator app" in page and "Office laptop" in page and "Passkey" in page
    assert "Revoke" not in page  # reading users is not enough to revoke
    page = proved_client(support).get(f"/users/{alice.pk}/security/").content.decode()
    passkey = alice.webauthncredential_set.get()
    assert revoke_url(alice, "passkey", passkey.pk) in page


def test_revoking_needs_full_data_protection_access(alice, reader, support):
    passkey = alice.webauthncredential_set.get()
    assert_screen_access(
        proved_client,
        [revoke_url(alice, "passkey", passkey.pk)],
        allowed=[support],
        denied=[reader],
    )


def test_revoking_one_of_several_keeps_the_sessions(alice, support):
    theirs = Client()
    theirs.force_login(alice, backend="accounts.backends.PortalBackend")
    assert theirs.get("/").status_code == 200
    passkey = alice.webauthncredential_set.get()
    staff = proved_client(support)
    response = staff.post(revoke_url(alice, "passkey", passkey.pk), {"reason": ""})
    assert response.status_code == 400  # a reason is required
    assert alice.webauthncredential_set.count() == 1

    emails = OutboundEmail.objects.count()
    response = staff.post(revoke_url(alice, "passkey", passkey.pk), {"reason": "ticket 12: lost"})
    assert response.status_code == 302
    assert alice.webauthncredential_set.count() == 0
    event = AuditEvent.objects.get(action="authenticator_revoked")
    assert event.reason == "ticket 12: lost" and event.actor_id == support.pk
    assert event.context["name"] == "Office laptop" and event.context["last"] is False
    assert event.context["sessions_ended"] == 0
    assert theirs.get("/").status_code == 200  # the app remains: their session goes on
    notice = OutboundEmail.objects.order_by("pk")[emails]
    assert notice.to == "alice@example.test" and "sign-in methods" in notice.subject
    assert "/me/sessions/" in notice.body and "revoked" in notice.body
    assert AuditEvent.objects.filter(
        action="security_notice_sent", subject_user_id=alice.pk
    ).exists()


def test_revoking_the_last_authenticator_ends_every_session(alice, support):
    theirs = Client()
    theirs.force_login(alice, backend="accounts.backends.PortalBackend")
    assert theirs.get("/").status_code == 200
    staff = proved_client(support)
    app = services.authenticators_of(alice)[0]
    assert app.kind == services.APP
    staff.post(revoke_url(alice, "app", app.pk), {"reason": "ticket 12"})
    assert theirs.get("/").status_code == 200  # a passkey remains
    passkey = alice.webauthncredential_set.get()
    response = staff.post(revoke_url(alice, "passkey", passkey.pk), {"reason": "ticket 12"})
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="authenticator_revoked").latest("seq")
    assert event.context["last"] is True
    response = theirs.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/sign-in/")
    assert services.authenticators_of(alice) == []


def test_revoking_someone_of_higher_privilege_is_refused(owner, support):
    boss = make_user(owner, username="boss", privilege_level=10)
    enrol(boss)
    passkey = boss.webauthncredential_set.get()
    response = proved_client(support).post(
        revoke_url(boss, "passkey", passkey.pk), {"reason": "why not"}
    )
    assert response.status_code == 400
    assert boss.webauthncredential_set.count() == 1


def test_another_owners_user_is_not_found(support):
    from tests.builders import make_owner

    stranger = make_user(make_owner("Other"), username="stranger")
    enrol(stranger)
    passkey = stranger.webauthncredential_set.get()
    response = proved_client(support).get(revoke_url(stranger, "passkey", passkey.pk))
    assert response.status_code == 404


def test_a_person_removes_their_own_passkey(alice):
    client = proved_client(alice)
    page = client.get("/me/two-factor/").content.decode()
    assert "Office laptop" in page and "Add a passkey" in page
    passkey = alice.webauthncredential_set.get()
    assert client.get(f"/me/two-factor/passkeys/{passkey.pk}/remove/").status_code == 200
    response = client.post(f"/me/two-factor/passkeys/{passkey.pk}/remove/")
    assert response.status_code == 302
    assert alice.webauthncredential_set.count() == 0
    event = AuditEvent.objects.get(action="passkey_removed")
    assert event.actor_id == alice.pk and event.context["name"] == "Office laptop"


def test_the_recovery_console_reset_covers_passkeys(owner, support):
    bea = make_user(owner, username="bea", email="bea@example.test", privilege_level=3)
    enrol(bea)  # a passkey only, no app
    why_not = {code: why for code, _, why in recovery.console_actions(bea)}
    assert why_not[recovery.CONSOLE_RESET_2FA] == ""
    before = OutboundEmail.objects.filter(to="bea@example.test").count()
    recovery.run_console_actions(
        bea,
        actor=support,
        actions=[recovery.CONSOLE_RESET_2FA],
        reason="ticket 9: new phone",
        identity_checks=recovery.IDENTITY_CHECKS,
    )
    assert bea.webauthncredential_set.count() == 0
    reset = AuditEvent.objects.get(action="totp_reset", subject_user_id=bea.pk)
    assert reset.context["webauthn_removed"] == 1
    # The console's own email tells her, once.
    sent = OutboundEmail.objects.filter(to="bea@example.test").order_by("pk")[before:]
    assert [email.subject for email in sent] == ["Billing Access: support acted on your account"]
