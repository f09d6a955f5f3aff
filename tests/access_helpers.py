"""Who may open a screen, in one assertion: anonymous -> sign-in, refused -> 403, allowed -> 200."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.test import Client
from django.urls import reverse

BACKEND = "accounts.backends.PortalBackend"


def assert_screen_access(
    client_or_signed_in: Client | Callable,
    urls: Iterable[str],
    *,
    allowed=(),
    denied=(),
    anonymous: bool = True,
) -> None:
    """Assert who may GET each of `urls`, and report every difference at once.

    An anonymous visitor is sent to the sign-in page (unless `anonymous=False`), each user of
    `denied` is answered 403 and each user of `allowed` 200; `allowed` and `denied` take one user
    or several. `client_or_signed_in` is the test client or the `signed_in` fixture: each user is
    signed in on it in turn (the anonymous visitor gets a client of its own).
    """
    __tracebackhide__ = True
    urls = list(urls)
    sign_in = reverse("accounts:sign_in")
    problems = []
    if anonymous:
        visitor = Client()
        for url in urls:
            response = visitor.get(url)
            location = response.get("Location", "")
            if response.status_code != 302 or not location.startswith(sign_in):
                got = f"{response.status_code} {location}".strip()
                problems.append(f"{url} anonymous: {got} (expected 302 to {sign_in})")
    for expected, people in ((403, denied), (200, allowed)):
        for user in _people(people):
            client = _sign_in(client_or_signed_in, user)
            for url in urls:
                status = client.get(url).status_code
                if status != expected:
                    problems.append(f"{url} as {user.username}: {status} (expected {expected})")
    assert not problems, "Screen access differs:\n" + "\n".join(problems)


def _people(people) -> list:
    if people is None:
        return []
    if hasattr(people, "pk"):
        return [people]
    return list(people)


def _sign_in(client_or_signed_in, user) -> Client:
    if isinstance(client_or_signed_in, Client):
        client_or_signed_in.force_login(user, backend=BACKEND)
        return client_or_signed_in
    return client_or_signed_in(user)
