"""Each rule of the owner's policy: refused with its own message, accepted at its boundary."""

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from security import services
from security.models import PasswordHistory
from tests.builders import make_owner, make_user

from .conftest import set_policy


def messages_for(password, user):
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return exc.messages
    return []


@pytest.fixture
def user(owner):
    return make_user(owner, username="fran", first_name="Fran", last_name="Finance")


@pytest.mark.django_db
class TestLength:
    def test_default_minimum_is_15(self, user):
        assert messages_for("x7#kq pl2 vvmr", user) == [
            "Use at least 15 characters (this one has 14)."
        ]
        assert messages_for("x7#kq pl2 vvmrz", user) == []

    def test_owner_minimum_applies(self, owner, user):
        set_policy(owner, min_length=20)
        assert messages_for("a" * 3 + "x7#kq pl2 vvmrzq", user) == [
            "Use at least 20 characters (this one has 19)."
        ]
        assert messages_for("ab" * 2 + "x7#kq pl2 vvmrzq", user) == []

    def test_eight_with_two_factor(self, owner, user):
        set_policy(owner, min_length=8, require_2fa=True)
        assert messages_for("zq7#kpl", user) == ["Use at least 8 characters (this one has 7)."]
        assert messages_for("zq7#kplw", user) == []

    def test_at_most_128_and_at_least_64_accepted(self, user):
        assert messages_for("horse battery " * 4 + "staple zebra xy", user) == []  # 71
        assert messages_for("q" * 64, user) == []
        assert "Use at most 128 characters." in messages_for("k" * 129, user)
        assert messages_for("k" * 128, user) == []

    def test_any_unicode_is_accepted_and_counted_as_characters(self, user):
        assert messages_for("🔑🌍🚲 ключ 鍵 clé über ñandú", user) == []
        # A decomposed accent (e + combining acute) counts as one character.
        assert messages_for("cafe\u0301" * 3, user) == [
            "Use at least 15 characters (this one has 12)."
        ]


@pytest.mark.django_db
class TestCompositionRules:
    @pytest.mark.parametrize(
        ("flag", "refused", "accepted", "message"),
        [
            (
                "require_upper",
                "all lower case words",
                "All lower case words",
                "Include an upper-case letter.",
            ),
            (
                "require_lower",
                "ALL UPPER CASE WORDS",
                "ALL UPPER CASE WORDs",
                "Include a lower-case letter.",
            ),
            ("require_digit", "no digits in this one", "no digits in this 1", "Include a digit."),
            (
                "require_symbol",
                "no symbols in this one",
                "no symbols in this one!",
                "Include a symbol such as ! or #.",
            ),
        ],
    )
    def test_rule_refused_then_accepted(self, owner, user, flag, refused, accepted, message):
        assert messages_for(refused, user) == []  # off by default
        set_policy(owner, **{flag: True})
        assert messages_for(refused, user) == [message]
        assert messages_for(accepted, user) == []

    def test_allowed_characters_names_the_refused_ones(self, owner, user):
        set_policy(owner, allowed_characters="!#-")
        assert messages_for("lantern rope! paddle", user) == [
            "These characters are not allowed: space. Besides letters and digits, use only: ! # -"
        ]
        assert messages_for("lantern#rope!paddle-xyz", user) == []
        assert messages_for("lantern#rope!paddle-x$z%", user) == [
            "These characters are not allowed: $, %. Besides letters and digits, use only: ! # -"
        ]


@pytest.mark.django_db
class TestGuidanceChecks:
    def test_common_password_refused(self, owner, user):
        set_policy(owner, min_length=8, require_2fa=True)
        assert messages_for("password", user) == ["This password is too common."]

    def test_password_like_the_login_refused(self, owner):
        person = make_user(owner, username="bartholomew.quince")
        result = messages_for("bartholomew.quince", person)
        assert any("too similar" in m for m in result)


@pytest.mark.django_db
class TestHistory:
    def test_reuse_blocked_within_depth_and_allowed_beyond(self, owner, user):
        set_policy(owner, history_depth=3)
        first, second, third, fourth = (
            "first lantern paddle",
            "second lantern paddle",
            "third lantern paddle",
            "fourth lantern paddle",
        )
        services.set_password(user, first, actor=user, via="self_service")
        services.set_password(user, second, actor=user, via="self_service")
        services.set_password(user, third, actor=user, via="self_service")
        message = "Choose a password you have not used for your last 3 passwords."
        for used in (first, second, third):
            assert messages_for(used, user) == [message]
        services.set_password(user, fourth, actor=user, via="self_service")
        assert messages_for(first, user) == []  # four changes ago: beyond a depth of 3
        assert messages_for(second, user) == [message]

    def test_no_history_check_by_default(self, user):
        services.set_password(user, "first lantern paddle", actor=user, via="self_service")
        assert messages_for("first lantern paddle", user) == []

    def test_history_is_kept_for_every_set(self, user):
        services.set_password(user, "first lantern paddle", actor=user, via="self_service")
        services.set_password(user, "second lantern paddle", actor=None, via="set_password_link")
        assert PasswordHistory.objects.filter(user=user).count() == 2


@pytest.mark.django_db
class TestSetPassword:
    def test_refuses_with_the_failed_rule(self, user):
        with pytest.raises(ValidationError) as exc:
            services.set_password(user, "short", actor=user, via="self_service")
        assert exc.value.messages == ["Use at least 15 characters (this one has 5)."]
        assert not AuditEvent.objects.filter(action="password_changed").exists()

    def test_sets_records_and_audits(self, owner, user, admin_user):
        user.must_change_password = True
        type(user).objects.filter(pk=user.pk).update(must_change_password=True)
        services.set_password(user, "a fresh long passphrase", actor=user, via="self_service")
        user.refresh_from_db()
        assert user.check_password("a fresh long passphrase")
        assert user.password_changed_at is not None
        assert user.must_change_password is False
        event = AuditEvent.objects.get(action="password_changed")
        assert event.actor_id == user.pk and event.context["via"] == "self_service"
        services.set_password(user, "another long passphrase", actor=admin_user, via="admin")
        assert AuditEvent.objects.filter(action="password_set", actor_id=admin_user.pk).exists()
        assert "passphrase" not in str(AuditEvent.objects.values_list("context", flat=True))


@pytest.mark.django_db
def test_policy_of_owner_a_never_applies_to_owner_b():
    owner_a, owner_b = make_owner(), make_owner()
    set_policy(owner_a, min_length=30, require_digit=True, history_depth=5)
    person_a, person_b = make_user(owner_a), make_user(owner_b)
    password = "plain words only here"  # 21 characters, no digit
    assert messages_for(password, person_b) == []
    assert messages_for(password, person_a) == [
        "Use at least 30 characters (this one has 21).",
        "Include a digit.",
    ]
