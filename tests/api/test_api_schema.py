"""A property-based run of the whole API from its own OpenAPI document (schemathesis).

Every operation gets generated requests, valid and invalid, with a token that holds every API
area at write: no answer is a 500, and every answer matches the document (status code, content
type, headers, body schema). Kept small so that it runs in seconds.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from roles import catalog
from tests.builders import make_api_user, make_role_group, make_token, make_user

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# The document is read once, at collection, through the WSGI application itself.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": True}}})
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", get_wsgi_application(), config=CONFIG
)


@pytest.fixture(autouse=True)
def _keep_the_test_connection(db):
    """As Django's test client does: keep the test's connection (and its transaction) open
    across the WSGI requests."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(owner, settings):
    """A token holding every API area at write, in an organisation with a little data."""
    settings.API_RATE_LIMIT = "100000/minute"
    make_role_group(owner, "Clerks", grants={"customers": "read"})
    make_user(owner, username="clerk")
    user = make_api_user(
        owner,
        api_grants={a.code: catalog.WRITE for a in catalog.areas_for(catalog.Channel.API)},
        username="robot",
        privilege_level=10,
    )
    _, text = make_token(user)
    return {"Authorization": f"Bearer {text}"}


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_match_its_document(case, bearer):
    case.call_and_validate(headers=bearer, checks=CHECKS)
