"""Schemathesis against a running server's own OpenAPI document: every operation, valid and invalid inputs.

Each generated case is sent over HTTP and its response checked: no 5xx, a status the document declares, the
declared content type, headers and body schema, and invalid input refused with a 4xx. Failures are collected
(not raised), so one run reports every distinct problem with the request that showed it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

# positive_data_acceptance is left out: input the schema allows may still exceed a runtime limit (n above
# max_images_per_sample, a seed for a model that does not exist) and is then rightly refused with a 4xx.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
]


@dataclass
class FuzzReport:
    cases: Counter[str] = field(default_factory=Counter)  # "METHOD /path" -> cases sent
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # first failure of each kind -> its report

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def summary(self) -> dict[str, Any]:
        return {
            "cases": self.total,
            "per_operation": dict(self.cases),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": len(self.failures),
            "server_errors": sum(v for k, v in self.statuses.items() if k >= 500),
        }


def fuzz(base_url: str, examples: int, headers: dict[str, str] | None = None) -> FuzzReport:
    """Up to `examples` positive and `examples` negative cases per operation of the document at base_url."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    report = FuzzReport()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # an operation the document describes in a way schemathesis cannot read
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz_operation(operation, mode, base_url, session, headers, examples, report)
    return report


def _fuzz_operation(
    operation: APIOperation,
    mode: GenerationMode,
    base_url: str,
    session: requests.Session,
    headers: dict[str, str] | None,
    examples: int,
    report: FuzzReport,
) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        report.cases[label] += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{label}: {failure.title}"
                report.failures.setdefault(key, f"{failure.message}\n{case.as_curl_command()}")

    try:
        send()
    except Unsatisfiable:
        pass  # nothing in this operation can be made invalid (no parameters, no body)
