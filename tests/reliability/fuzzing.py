"""Schemathesis against a running server's own OpenAPI document: every operation, valid and invalid inputs.

Two ways of making cases, as the CLI's phases: `fuzz` draws them at random (Hypothesis, the fuzzing phase), and
`cover` walks schemathesis' coverage phase, its deterministic boundary and edge cases of every part of the
document (each limit and one past it, each required part left out, each type swapped, each enum's values and
one outside them, methods the path does not have). Each case is sent over HTTP and its response checked: no 5xx,
a status the document declares, the declared content type, headers and body schema, and invalid input refused
with a 4xx. Failures are collected (not raised), so one run reports every distinct problem with the request that
showed it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import CHECKS as CHECK_REGISTRY
from schemathesis.checks import CheckFunction, is_check_class, load_all_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.core.transport import Response
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override

load_all_checks()
# Every check schemathesis has, the CLI's `--checks all` (all of them plain functions in this version).
CHECKS: list[CheckFunction] = [c for c in CHECK_REGISTRY.get_all() if not is_check_class(c)]
assert len(CHECKS) == len(CHECK_REGISTRY.get_all())
POSITIVE_DATA_ACCEPTANCE = next(c for c in CHECKS if c.__name__ == "positive_data_acceptance")

# Refusals of schema-valid input that one document for every model cannot state, each (operation, error code,
# a pattern of the error's message; None: any message). For these the "schema-valid request rejected" check is
# skipped; every other check still runs, and any other refusal of schema-valid input fails the run.
# - What depends on the model a request reaches: a latent of another length than its z_dim, a point of another
#   length than its data_dim, images sent to a point model (or points to an image model), a format or a grid the
#   model's kind lacks, a label sent to an unconditional model, none sent to a conditional one, or a class it
#   does not have.
# - What depends on an image's bytes: strings that are not base64, bytes that are not an image, images of another
#   size or too many pixels.
# - Counts across fields, which JSON Schema cannot compare: `labels` not one per image, `seed + n - 1` past the
#   largest seed, an interpolation whose frame count (K-1)(steps-1)+1 exceeds the limit though K and steps each
#   do not (stated in the document in words).
_MODEL_KIND = r"generates points|format json is for point models|scores points|scores images"
_MODEL_SHAPE = r"this model's z_dim is|this model's points have"
_MODEL_CLASSES = r"is not class-conditional|is class-conditional|this model has no class"
_CROSS_FIELD_COUNTS = r"labels for \d+ images|seed \+ n - 1 must stay"
_IMAGE_CONTENT = ("invalid_base64", "unsupported_image", "corrupt_image", "image_too_large", "wrong_image_size")
MODEL_DEPENDENT: dict[tuple[str, str], str | None] = {
    ("POST /v1/sample", "invalid_request"): f"{_MODEL_KIND}|{_MODEL_CLASSES}|{_CROSS_FIELD_COUNTS}",
    ("POST /v1/interpolate", "invalid_request"): f"{_MODEL_KIND}|{_MODEL_SHAPE}|{_MODEL_CLASSES}",
    ("POST /v1/interpolate", "limit_exceeded"): None,
    ("POST /v1/score", "invalid_request"): f"{_MODEL_KIND}|{_MODEL_SHAPE}|{_MODEL_CLASSES}|{_CROSS_FIELD_COUNTS}",
    ("POST /v1/score", "unsupported_media_type"): None,
    **{("POST /v1/score", code): None for code in _IMAGE_CONTENT},
}


def _model_dependent(label: str, response: Response) -> bool:
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        return False
    if not 400 <= response.status_code < 500 or (label, code) not in MODEL_DEPENDENT:
        return False
    pattern = MODEL_DEPENDENT[(label, code)]
    return pattern is None or re.search(pattern, message) is not None


@dataclass
class FuzzReport:
    cases: Counter[str] = field(default_factory=Counter)  # "METHOD /path" -> cases sent
    answered: Counter[str] = field(default_factory=Counter)  # "METHOD /path" -> cases answered 2xx
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # first failure of each kind -> its report

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def summary(self) -> dict[str, Any]:
        return {
            "cases": self.total,
            "per_operation": dict(self.cases),
            "answered_2xx": dict(self.answered),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": len(self.failures),
            "server_errors": sum(v for k, v in self.statuses.items() if k >= 500),
        }


def fuzz(base_url: str, examples: int, headers: dict[str, str] | None = None) -> FuzzReport:
    """Up to `examples` positive and `examples` negative cases per operation of the document at base_url."""
    report = FuzzReport()
    with requests.Session() as session:
        for operation in _operations(base_url):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz_operation(operation, mode, base_url, session, headers, examples, report)
    return report


def cover(base_url: str, headers: dict[str, str] | None = None) -> FuzzReport:
    """Every case of schemathesis' coverage phase, positive and negative, for each operation of the document.

    The cases come from the generator behind `st run --phases coverage` (driven here without the CLI's engine,
    and without its stop at an operation's first failure); `headers` are added to each as `--header` adds them.
    """
    report = FuzzReport()
    override = Override(headers=dict(headers or {}))
    with requests.Session() as session:
        for operation in _operations(base_url):
            label = f"{operation.method.upper()} {operation.path}"
            generator = CoverageGenerator(
                operation=operation,
                generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                generation_config=operation.schema.config.generation_for(operation=operation, phase="coverage"),
                auth_storage=None,
                override=override,
                feedback=FeedbackSources(),
            )
            for case in generator:
                _send(case, label, base_url, session, None, report)
    return report


def _operations(base_url: str) -> Iterator[APIOperation]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation the document describes in a way schemathesis cannot read
        yield result.ok()


def _send(
    case: schemathesis.Case,
    label: str,
    base_url: str,
    session: requests.Session,
    headers: dict[str, str] | None,
    report: FuzzReport,
) -> None:
    """Send one case and check its answer with every check, recording the first failure of each kind."""
    response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
    report.cases[label] += 1
    report.statuses[response.status_code] += 1
    if 200 <= response.status_code < 300:
        report.answered[label] += 1
    try:
        excluded = [POSITIVE_DATA_ACCEPTANCE] if _model_dependent(label, response) else []
        case.validate_response(response, checks=CHECKS, excluded_checks=excluded, headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            key = f"{label}: {failure.title}"
            report.failures.setdefault(
                key, f"{failure.message}\n{case.as_curl_command()}\n-> {response.status_code} {response.text[:300]}"
            )


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
        _send(case, label, base_url, session, headers, report)

    try:
        send()
    except Unsatisfiable:
        pass  # nothing in this operation can be made invalid (no parameters, no body)
