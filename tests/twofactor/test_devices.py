"""TOTP devices and backup codes: secrets at rest, real codes, replay, tolerance, throttling."""

import base64

import pyotp
import pytest
from django.db import connection

from accounts.twofactor import services as twofactor
from accounts.twofactor.models import BackupCode, TOTPDevice
from audit.models import AuditEvent
from tests.builders import make_totp_device, make_user

pytestmark = pytest.mark.django_db


def actions(user):
    return list(
        AuditEvent.objects.filter(subject_user_id=user.pk)
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_totp_key_is_encrypted_at_rest(owner):
    user = make_user(owner)
    device, _ = make_totp_device(user)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TOTPDevice._meta.db_table} WHERE id = %s", [device.pk])
        row = " ".join(str(value) for value in cursor.fetchone())
    assert device.base32_secret not in row
    assert device.bin_key.hex() not in row
    assert base64.b64encode(device.bin_key).decode() not in row
    assert len(device.bin_key) == 20
    assert TOTPDevice.objects.get(pk=device.pk).base32_secret == device.base32_secret


def test_enrolment_needs_a_first_good_code(owner, clock):
    user = make_user(owner)
    device = twofactor.start_enrolment(user)
    assert twofactor.start_enrolment(user).pk == device.pk  # a reload keeps the scanned key
    assert not twofactor.has_confirmed_device(user)
    with pytest.raises(twofactor.TwoFactorRefused):
        twofactor.confirm_enrolment(user, "000000")
    assert actions(user) == ["totp_failed"]
    clock.advance(seconds=30)  # past the throttle delay of one failure
    code = pyotp.TOTP(device.base32_secret).at(clock.epoch)
    codes = twofactor.confirm_enrolment(user, code)
    assert twofactor.has_confirmed_device(user)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert actions(user)[-2:] == ["totp_enrolled", "security_notice_sent"]  # and emailed
    stored = list(BackupCode.objects.filter(device__user=user).values_list("digest", "salt"))
    assert len(stored) == 10
    flat = " ".join(d + s for d, s in stored)
    assert not any(c.replace("-", "") in flat for c in codes)
    with pytest.raises(twofactor.TwoFactorRefused):
        twofactor.start_enrolment(user)


def test_code_is_accepted_once_and_a_replay_is_refused(owner, clock):
    user = make_user(owner)
    _, totp = make_totp_device(user)
    code = totp.at(clock.epoch)
    assert twofactor.verify_second_factor(user, code).method == twofactor.METHOD_TOTP
    clock.advance(seconds=5)  # same 30-second window
    assert not twofactor.verify_second_factor(user, code).accepted
    assert actions(user)[-1] == "totp_failed"
    clock.advance(seconds=30)
    assert twofactor.verify_second_factor(user, totp.at(clock.epoch)).accepted


def test_one_step_of_drift_either_way_is_tolerated_not_two(owner, clock):
    user = make_user(owner)
    _, totp = make_totp_device(user)
    assert twofactor.verify_second_factor(user, totp.at(clock.epoch - 30)).accepted
    clock.advance(seconds=60)
    assert twofactor.verify_second_factor(user, totp.at(clock.epoch + 30)).accepted
    clock.advance(seconds=120)
    assert not twofactor.verify_second_factor(user, totp.at(clock.epoch - 60)).accepted


def test_wrong_codes_are_throttled_with_growing_delay(owner, clock):
    user = make_user(owner)
    _, totp = make_totp_device(user)
    assert not twofactor.verify_second_factor(user, "123456").accepted
    throttled = twofactor.verify_second_factor(user, "654321")  # within 1 s of a miss
    assert throttled.throttled
    # The message says the pause as it is (a second after one wrong code), not "a minute".
    assert throttled.wait == "Too many wrong codes in a row. Try again in 1 second."
    # Within the delay even the right code is refused.
    refused = twofactor.verify_second_factor(user, totp.at(clock.epoch))
    assert refused.throttled and not refused.accepted
    clock.advance(seconds=2)
    assert not twofactor.verify_second_factor(user, "111111").accepted  # failure 2: wait 2 s
    clock.advance(seconds=1)
    paused = twofactor.verify_second_factor(user, totp.at(clock.epoch))
    assert paused.throttled and paused.wait.endswith("Try again in 1 second.")
    clock.advance(seconds=2)
    assert twofactor.verify_second_factor(user, totp.at(clock.epoch)).accepted
    failed = AuditEvent.objects.filter(subject_user_id=user.pk, action="totp_failed")
    assert failed.filter(context__throttled=True).count() == 3


def test_backup_code_works_once(owner, clock):
    user = make_user(owner)
    make_totp_device(user)
    codes = twofactor.regenerate_backup_codes(user, actor=user)
    result = twofactor.verify_second_factor(user, codes[0].upper().replace("-", " "))
    assert result.method == twofactor.METHOD_BACKUP_CODE
    assert result.backup_codes_remaining == 9
    assert actions(user)[-1] == "backup_code_used"
    clock.advance(seconds=5)
    assert not twofactor.verify_second_factor(user, codes[0]).accepted
    assert twofactor.status(user).backup_codes_remaining == 9


def test_regenerate_kills_the_old_codes(owner, clock):
    user = make_user(owner)
    make_totp_device(user)
    old = twofactor.regenerate_backup_codes(user, actor=user)
    new = twofactor.regenerate_backup_codes(user, actor=user)
    assert not set(old) & set(new)
    assert not twofactor.verify_second_factor(user, old[1]).accepted
    clock.advance(seconds=5)
    assert twofactor.verify_second_factor(user, new[1]).accepted
    assert actions(user).count("backup_codes_regenerated") == 2


def test_regenerate_needs_a_device_and_the_person_themselves(owner, admin_user):
    user = make_user(owner)
    with pytest.raises(twofactor.TwoFactorRefused):
        twofactor.regenerate_backup_codes(user, actor=user)
    make_totp_device(user)
    with pytest.raises(twofactor.PermissionDenied):
        twofactor.regenerate_backup_codes(user, actor=admin_user)


def test_status_warns_when_few_backup_codes_remain(owner, clock):
    user = make_user(owner)
    assert twofactor.status(user).enrolled is False
    make_totp_device(user)
    codes = twofactor.regenerate_backup_codes(user, actor=user)
    for code in codes[:6]:
        assert twofactor.verify_second_factor(user, code).accepted
    assert not twofactor.status(user).backup_codes_low
    assert twofactor.verify_second_factor(user, codes[6]).accepted
    state = twofactor.status(user)
    assert state.backup_codes_remaining == 3 and state.backup_codes_low


def test_remove_own_device_needs_password_or_code(owner, clock):
    user = make_user(owner)
    _, totp = make_totp_device(user)
    with pytest.raises(twofactor.TwoFactorRefused):
        twofactor.remove_own_device(user, password="not it")
    assert twofactor.has_confirmed_device(user)
    clock.advance(seconds=5)
    twofactor.remove_own_device(user, token=totp.at(clock.epoch))
    assert not twofactor.has_confirmed_device(user)
    assert actions(user)[-3:] == ["totp_failed", "totp_removed", "security_notice_sent"]


def test_config_url_is_what_authenticator_apps_read(owner):
    user = make_user(owner, username="dana")
    device, _ = make_totp_device(user)
    parsed = pyotp.parse_uri(device.config_url())
    assert parsed.secret == device.base32_secret
    assert parsed.issuer == "Billing Access"
    assert parsed.name == "dana"
    assert parsed.interval == 30 and parsed.digits == 6
