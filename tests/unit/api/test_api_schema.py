"""schemathesis against the published OpenAPI schema of a running server (SQLite and PostgreSQL), with a valid key
of all scopes: generated requests to every operation, one by one and then in sequences chained by the links
schemathesis infers between operations (the id one answer gives is the next call's: POST /customers, then
GET or DELETE that customer; a passport listed, then its try-on), never get a 5xx, and every response matches the
schema (status code, content type, body). Bounded: a few examples per operation and a few dozen sequences."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from testing.api_world import import_catalogue, world

EXAMPLES_PER_OPERATION = 20
SEQUENCES = 60
STEPS_PER_SEQUENCE = 8
RESTARTS = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BOUNDED = dict(deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture
def api(database_url):
    """The published schema of a server with a catalogue and a customer's passport, and an all-scope key."""
    with world(database_url) as w:
        import_catalogue(w.engine)
        w.customer("A", "C1")
        w.passport("A", "C1")
        schema = schemathesis.openapi.from_url(f"{w.base_url}/openapi.json")
        yield schema, {"Authorization": f"Bearer {w.tenants['A'].keys['admin']}"}


@pytest.mark.slow
def test_every_operation_conforms_to_the_schema(api):
    schema, headers = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, **BOUNDED)
        def conforms(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        conforms()


@pytest.mark.slow
def test_linked_sequences_of_calls_conform_to_the_schema(api):
    schema, headers = api
    schema.config.generation.update(modes=["positive"])  # valid requests, as the one-by-one test sends
    called, failures, sequences = set(), [], 0

    class Calls(schema.as_state_machine()):
        def setup(self):
            nonlocal sequences
            sequences += 1

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def after_call(self, response, case):
            called.add(case.operation.label)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
            except FailureGroup as failed:  # kept, not raised: Hypothesis would replay the sequence to confirm it
                failures.append(f"{case.operation.label}: {failed}")

    for _ in range(RESTARTS):
        try:
            Calls.run(settings=settings(max_examples=SEQUENCES - sequences, stateful_step_count=STEPS_PER_SEQUENCE,
                                        phases=[Phase.generate], **BOUNDED))
        except FlakyStrategyDefinition:  # which calls Hypothesis may draw depends on the server's answers, and the
            pass  # server's state moves on: a drawing it cannot repeat ends a run; the next one goes on from there
        if sequences >= SEQUENCES:
            break
    assert not failures, "\n".join(failures)
    assert sequences >= SEQUENCES, f"{sequences} of {SEQUENCES} sequences ran"
    assert schema.statistic.transitions.total >= 20 and len(called) >= 5  # links inferred and followed
