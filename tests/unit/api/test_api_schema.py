"""schemathesis against the published OpenAPI schema of a running server (SQLite and PostgreSQL): generated
requests to every operation, with a valid key of all scopes, never get a 5xx, and every response matches the
schema (status code, content type, body). Bounded to a few examples per operation."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from testing.api_world import import_catalogue, world

EXAMPLES_PER_OPERATION = 20


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_api_conforms_to_its_schema(database_url):
    with world(database_url) as w:
        import_catalogue(w.engine)
        w.customer("A", "C1")
        w.passport("A", "C1")
        schema = schemathesis.openapi.from_url(f"{w.base_url}/openapi.json")
        headers = {"Authorization": f"Bearer {w.tenants['A'].keys['admin']}"}
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20
        for operation in operations:
            @given(case=operation.as_strategy())
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
            def conforms(case):
                case.call_and_validate(headers=headers, checks=CHECKS)

            conforms()


