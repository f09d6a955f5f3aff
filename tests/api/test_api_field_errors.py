"""Invalid input answers with the caller's field names and plain messages, never our types."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def caller(owner, token_for):
    grants = {"api_users": "write", "api_authorization": "read"}
    return token_for(owner, grants, username="integration", privilege_level=5)


def fields_of(response) -> dict:
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    return error["fields"]


def test_a_field_of_two_types_is_named_once_with_one_message(caller):
    fields = fields_of(caller.post("/authz/check", {"user": [1], "area": "users", "level": "read"}))
    assert fields == {"user": "Enter a whole number or text."}


def test_messages_say_what_to_enter(caller):
    body = {
        "username": "nina",
        "email": "nina@example.test",
        "role": "abc",
        "privilege_level": "high",
        "departments": [1, "x"],
        "allow_api_read": "perhaps",
    }
    fields = fields_of(caller.post("/users", body))
    assert fields == {
        "role": "Enter a whole number.",
        "privilege_level": "Enter a whole number.",
        "departments.1": "Enter a whole number.",
        "allow_api_read": "Enter true or false.",
    }
    assert not any("." in name and not name.split(".")[-1].isdigit() for name in fields)


def test_limits_keep_their_own_words(caller):
    fields = fields_of(caller.get("/users?limit=5000"))
    assert fields == {"limit": "Input should be less than or equal to 200"}
