"""The kept user search (User.objects.ids_matching): asked again it searches nothing, and it
never misses a person who was added or renamed since."""

import pytest
from django.core.cache import cache

from accounts import users
from accounts.choices import AccessSource
from accounts.models import Owner, User
from tests.builders import make_owner, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


def fresh(owner) -> Owner:
    """The owner as a request would load it (with the signed-in user)."""
    return Owner.objects.get(pk=owner.pk)


@pytest.fixture
def admin(owner):
    return make_user(owner, username="adm", grants={"users": "full"}, privilege_level=10)


def test_a_search_asked_again_is_answered_without_a_query(owner, admin, django_assert_num_queries):
    sam = make_user(owner, username="sam.support", first_name="Sam")
    make_user(make_owner("Elsewhere"), username="sam.other")  # another owner's Sam
    found = User.objects.ids_matching(fresh(owner), "sam")
    assert found == [sam.pk]
    owner = fresh(owner)
    with django_assert_num_queries(0):
        assert User.objects.ids_matching(owner, "sam") == [sam.pk]
    with django_assert_num_queries(1):  # another text is another search
        assert User.objects.ids_matching(owner, "SAM SUPPORT") == [sam.pk]


def test_a_new_person_is_found_at_once(owner, admin):
    assert User.objects.ids_matching(fresh(owner), "robin") == []
    robin = users.create_user(
        actor=admin,
        data={"username": "robin", "email": "robin@example.test", "first_name": "Robin"},
        reason="New starter",
        source=AccessSource.SCREEN,
    )
    assert User.objects.ids_matching(fresh(owner), "robin") == [robin.pk]
    other = make_user(owner, username="robin.two")  # the model manager's door moves it too
    assert set(User.objects.ids_matching(fresh(owner), "robin")) == {robin.pk, other.pk}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "kit.renamed"),
        ("email", "kit.renamed@example.test"),
        ("first_name", "Renamed"),
        ("last_name", "Renamed"),
        ("display_name", "Renamed"),
    ],
)
def test_a_renamed_person_is_found_by_the_new_name_and_not_the_old(owner, admin, field, value):
    kit = make_user(owner, username="kit", first_name="Kit", email="kit@example.test")
    assert User.objects.ids_matching(fresh(owner), "renamed") == []
    users.update_user(
        kit, actor=admin, data={field: value}, reason="Name change", source=AccessSource.SCREEN
    )
    assert User.objects.ids_matching(fresh(owner), "renamed") == [kit.pk]
    if field == "username":
        assert User.objects.ids_matching(fresh(owner), "kit@") == [kit.pk]  # still by email


def test_changes_the_search_does_not_read_keep_what_was_found(owner, admin):
    kit = make_user(owner, username="kit")
    before = fresh(owner).people_version
    users.update_user(
        kit,
        actor=admin,
        data={"privilege_level": 3},
        reason="Promotion",
        source=AccessSource.SCREEN,
    )
    assert fresh(owner).people_version == before


def test_one_login_is_kept_with_its_name_until_the_person_changes(
    owner, admin, django_assert_num_queries
):
    kit = make_user(owner, username="Kit", first_name="Kit", last_name="Marlowe")
    assert User.objects.named(fresh(owner), "kit") == (kit.pk, "Kit", "Kit Marlowe")
    assert User.objects.named(fresh(owner), "nobody") is None
    owner_now = fresh(owner)
    with django_assert_num_queries(0):
        assert User.objects.named(owner_now, "kit") == (kit.pk, "Kit", "Kit Marlowe")
        assert User.objects.named(owner_now, "nobody") is None  # an unknown login is kept too
    users.update_user(
        kit,
        actor=admin,
        data={"display_name": "Kit M."},
        reason="Prefers",
        source=AccessSource.SCREEN,
    )
    assert User.objects.named(fresh(owner), "KIT") == (kit.pk, "Kit", "Kit M.")
    nobody = make_user(owner, username="nobody")
    assert User.objects.named(fresh(owner), "nobody") == (nobody.pk, "nobody", "nobody")
    assert User.objects.named(make_owner("Elsewhere"), "kit") is None
