"""A schemathesis run against ``/openapi.json`` on a live server: no 5xx, and every response matches the schema.

Each operation gets property-based cases from its schema (hypothesis), sent over real HTTP with the admin's
key (so cases reach the routes' logic), invalid cases (negative mode) and with no key (so the 401 path is checked too).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.conftest import Served, key

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _fuzz(
    operation: Any, headers: dict[str, str] | None, examples: int, mode: GenerationMode = GenerationMode.POSITIVE
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        # a generous read timeout: POST /v1/admin/detox runs a DINM edit, which took over schemathesis' default
        # 10 s on a loaded 2-core CI machine (a conformance test, not a speed test)
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=120)

    run()


def test_api_conforms_to_its_schema(server: Served) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15
    admin = {"Authorization": f"Bearer {key('root')}"}
    for operation in operations:
        _fuzz(operation, admin, 8)
        with suppress(Unsatisfiable):  # an operation without parameters has no invalid input
            _fuzz(operation, admin, 4, GenerationMode.NEGATIVE)  # invalid input: a documented 4xx, never a 5xx
        _fuzz(operation, None, 2)
    counts = httpx.get(f"{server.url}/v1/metrics", params={"format": "json"}).json()["requests"]
    served = {(row["method"], row["route"]) for row in counts}
    assert len(served) >= 15 and sum(row["count"] for row in counts) >= 100
    assert not [row for row in counts if row["status"] >= 500]
