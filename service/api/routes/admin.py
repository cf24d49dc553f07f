"""POST /v1/admin/reload: rescan the models folder now and swap in every new or changed checkpoint.

In a server of several worker processes the rescan reaches every worker (through the supervisor), and the answer
merges what each did: a model counts as loaded when any worker loaded it (another may have had it from its own
watcher already), and `workers` says how many processes rescanned.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.api.error_responses import error_responses
from service.api.json_responses import json_response
from service.api.request_state import reloader_of, runtime_of
from service.api.schemas import RefusedCheckpoint, ReloadedModel, ReloadResponse
from service.api.service_route import ServiceRoute
from service.catalog.folder_sync import ReloadReport
from service.workers.messages import WorkerScan

router = APIRouter(tags=["admin"], route_class=ServiceRoute)


def scan_of(report: ReloadReport, worker: int) -> WorkerScan:
    """One process's rescan, in the form worker processes exchange."""
    return WorkerScan(
        worker=worker,
        loaded=[(m.name, m.version) for m in report.loaded],
        unchanged=list(report.unchanged),
        removed=list(report.removed),
        failed=list(report.failed),
    )


def merged(scans: list[WorkerScan], workers: int) -> ReloadResponse:
    loaded = sorted({pair for scan in scans for pair in scan.loaded})
    loaded_names = {name for name, _ in loaded}
    failed = sorted({pair for scan in scans for pair in scan.failed})
    removed = sorted({name for scan in scans for name in scan.removed})
    changed = loaded_names | {name for name, _ in failed} | set(removed)
    unchanged = sorted({name for scan in scans for name in scan.unchanged} - changed)
    return ReloadResponse(
        loaded=[ReloadedModel(name=name, version=version) for name, version in loaded],
        unchanged=unchanged,
        removed=removed,
        failed=[RefusedCheckpoint(name=name, reason=reason) for name, reason in failed],
        workers=len(scans),
        workers_total=workers,
    )


@router.post(
    "/v1/admin/reload",
    response_model=ReloadResponse,
    responses=error_responses(400, 401, 403, 408, 413, 503),
    summary="Load new or changed checkpoints from the models folder now, in every worker process (admin key)",
)
async def reload_models(request: Request) -> Response:
    worker = runtime_of(request).worker
    if worker is None:
        body = merged([scan_of(await reloader_of(request).scan(settle=False), 0)], 1)
    else:
        result = await worker.reload_everywhere()
        body = merged(result.scans, result.workers)
    return json_response(body.model_dump())
