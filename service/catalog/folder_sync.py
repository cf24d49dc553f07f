"""Load the models folder at start-up, then keep it in sync: new, changed and removed checkpoints, swapped live.

A scan compares every `*.safetensors` file's size and mtime with what is being served. A changed file is
loaded and validated off the event loop; only a file that passes every check replaces the model of the same
name (the old version keeps serving until its last request is done). A file that fails is refused with a log
line, the old version keeps serving, and the file is tried again only once it changes. The watcher (every
`reload_poll_s`) waits for a file's size and mtime to hold still for one interval before loading it, so a
checkpoint that is still being copied in is not read half-written; `POST /v1/admin/reload` loads at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from models import CheckpointError, load_checkpoint
from service.catalog.loader import checkpoint_paths, serve_checkpoint
from service.catalog.registry import ModelRegistry, ServedModel
from service.metrics import ServiceMetrics
from service.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileStamp:
    size: int
    mtime_ns: int


def stamp_of(path: Path) -> FileStamp | None:
    """Size and mtime of a file, or None when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return FileStamp(st.st_size, st.st_mtime_ns)


@dataclass
class ReloadReport:
    loaded: list[ServedModel] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    waiting: list[str] = field(default_factory=list)  # still changing: looked at again next scan


@dataclass(frozen=True)
class _Served:
    stamp: FileStamp
    version: str


class ModelReloader:
    """Keeps the registry in step with the models folder. One scan at a time; scans run on the event loop."""

    def __init__(
        self,
        settings: ServiceSettings,
        metrics: ServiceMetrics,
        registry: ModelRegistry,
        codec_pool: Executor,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._registry = registry
        self._codec_pool = codec_pool
        self._device = device
        self._dtype = dtype
        self._closing = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._served: dict[str, _Served] = {}
        self._refused: dict[str, FileStamp] = {}
        self._pending: dict[str, FileStamp] = {}

    async def scan(self, *, settle: bool) -> ReloadReport:
        """Bring the served models in line with the folder.

        `settle`: load a new or changed file only once its stamp was already seen, unchanged, by the previous
        scan (the watcher), and do not retry a refused file that has not changed. Without it (start-up, the
        admin endpoint) every new, changed or refused file is loaded now.
        """
        async with self._lock:
            if self._closed:
                return ReloadReport()
            return await self._scan(settle)

    async def close(self) -> None:
        """No scan starts after this; a scan under way stops after the file it is loading, and is waited for."""
        self._closing = True
        async with self._lock:
            self._closed = True

    async def watch(self, interval_s: float, changed: Callable[[], Awaitable[None]] | None = None) -> None:
        """Scan every `interval_s` seconds until cancelled; after a scan that loaded or removed a model, await
        `changed` (a worker process has the other workers rescan now rather than at their own next scan)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                report = await self.scan(settle=True)
                if changed is not None and (report.loaded or report.removed):
                    await changed()
            except Exception:
                log.exception("scanning %s failed; trying again in %g s", self._settings.models_dir, interval_s)

    async def _scan(self, settle: bool) -> ReloadReport:
        report = ReloadReport()
        paths = checkpoint_paths(self._settings.models_dir)
        present = {p.stem for p in paths}
        for path in paths:
            if self._closing:
                return report
            name, stamp = path.stem, stamp_of(path)
            if stamp is None:
                continue
            served = self._served.get(name)
            if served is not None and served.stamp == stamp:
                self._pending.pop(name, None)
                report.unchanged.append(name)
                continue
            if settle and self._refused.get(name) == stamp:
                continue
            if settle and self._pending.get(name) != stamp:
                self._pending[name] = stamp  # look again next scan: it must hold still for one interval
                report.waiting.append(name)
                continue
            self._pending.pop(name, None)
            await self._load(path, stamp, report)
        for name in sorted(set(self._served) - present):
            self._remove(name, report)
        for name in set(self._refused) - present:
            del self._refused[name]
        return report

    async def _load(self, path: Path, stamp: FileStamp, report: ReloadReport) -> None:
        name = path.stem
        served = self._served.get(name)
        keeping = f"; still serving version {served.version}" if served is not None else ""
        try:
            checkpoint = await asyncio.to_thread(load_checkpoint, path, "cpu")
        except CheckpointError as exc:
            self._refuse(name, stamp, exc.reason, keeping, report)
            return
        except Exception as exc:  # anything else a hostile file can provoke is refused the same way
            self._refuse(name, stamp, f"{type(exc).__name__}: {exc}", keeping, report)
            return
        if served is not None and checkpoint.version == served.version:
            self._served[name] = _Served(stamp, served.version)  # touched or copied over with the same bytes
            self._refused.pop(name, None)
            report.unchanged.append(name)
            return
        try:
            model = await asyncio.to_thread(
                serve_checkpoint,
                checkpoint,
                self._settings,
                self._device,
                self._dtype,
                self._metrics,
                self._codec_pool,
            )
        except Exception as exc:  # it loaded but cannot run here (e.g. out of memory)
            reason = f"it loaded but failed to run on {self._device}: {type(exc).__name__}: {exc}"
            self._refuse(name, stamp, reason, keeping, report)
            return
        old = self._registry.replace(model)
        self._metrics.show_model(model.name, model.version, model.device, model.dtype)
        if old is not None:
            self._forget_info(old)
            log.info("reloaded %s: version %s -> %s", name, old.version, model.version)
        else:
            log.info(
                "serving %s (version %s, %s, z_dim %d) on %s/%s",
                model.name,
                model.version,
                model.kind,
                model.z_dim,
                model.device,
                model.dtype,
            )
        self._served[name] = _Served(stamp, model.version)
        self._refused.pop(name, None)
        report.loaded.append(model)

    def _refuse(self, name: str, stamp: FileStamp, reason: str, keeping: str, report: ReloadReport) -> None:
        # Never served under this name: skipped; otherwise refused while the old version keeps serving.
        log.error("%s %s.safetensors: %s%s", "refusing" if keeping else "skipping", name, reason, keeping)
        self._refused[name] = stamp
        report.failed.append((name, reason))

    def _remove(self, name: str, report: ReloadReport) -> None:
        del self._served[name]
        old = self._registry.remove(name)
        if old is not None:
            self._forget_info(old)
            log.info("stopped serving %s (version %s): its file is gone", name, old.version)
        report.removed.append(name)

    def _forget_info(self, old: ServedModel) -> None:
        try:
            self._metrics.hide_model(old.name, old.version, old.device, old.dtype)
        except KeyError:
            pass
