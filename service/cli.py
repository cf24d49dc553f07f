"""`wgan-serve`: build `ServiceSettings` from flags (generated from its fields) over `WGAN_*` variables, run uvicorn."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo

from service.inference.cpu_cores import available_cores, torch_threads
from service.inference.devices import DeviceError, resolve
from service.process.supervisor import serve_workers
from service.process.uvicorn_server import serve
from service.process.worker_count import worker_count
from service.settings import ServiceSettings


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _add_flag(parser: argparse.ArgumentParser, name: str, field: FieldInfo) -> None:
    flag = "--" + name.replace("_", "-")
    annotation = _strip_optional(field.annotation)
    help_text = field.description or ""
    env = f"WGAN_{name.upper()}"
    if field.is_required():
        help_text += f" (required unless {env} is set)"
    elif name != "api_keys":
        default = field.get_default(call_default_factory=True)
        shown = "unset" if default is None else default
        help_text += f" (default: {shown}; env {env})"
    else:
        help_text += f" (env {env})"
    kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
    if annotation is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
    elif typing.get_origin(annotation) is Literal:
        parser.add_argument(flag, choices=[str(c) for c in typing.get_args(annotation)], **kwargs)
    elif annotation in (int, float):
        parser.add_argument(flag, type=annotation, metavar=annotation.__name__.upper(), **kwargs)
    elif annotation is Path:
        parser.add_argument(flag, type=Path, metavar="DIR", **kwargs)
    elif typing.get_origin(annotation) is list and typing.get_args(annotation) == (SecretStr,):
        parser.add_argument(flag, metavar="KEY[,KEY...]", **kwargs)
    else:
        parser.add_argument(flag, metavar="TEXT", **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wgan-serve",
        description="Serve every WGAN checkpoint (*.safetensors) in a folder over HTTP. "
        "Each flag can also be set with its WGAN_* environment variable; flags win.",
    )
    for name, field in ServiceSettings.model_fields.items():
        _add_flag(parser, name, field)
    return parser


def _settings_problems(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        flag = "--" + where.replace("_", "-") if error["loc"] else where
        lines.append(f"  {flag}: {error['msg']}")
    return "\n".join(lines)


def settings_from_args(argv: Sequence[str] | None = None) -> ServiceSettings:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    try:
        return ServiceSettings(**args)
    except ValidationError as exc:
        parser.exit(2, f"wgan-serve: invalid settings:\n{_settings_problems(exc)}\n")


def _exit_with(code: int) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(code)

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    settings = settings_from_args(argv)
    # Ask NVML, not the CUDA runtime, whether there is a GPU: the runtime, once touched, cannot be used in a
    # forked child, and worker processes are forked from this one.
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    try:
        device, _ = resolve(settings)
    except DeviceError as exc:
        print(f"wgan-serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # The heap is now mostly import-time objects (torch alone brings hundreds of thousands). Freezing them keeps
    # the cyclic garbage collector from walking them on every full collection, which otherwise takes a large
    # share of the event loop's time under load.
    gc.collect()
    gc.freeze()
    cores = available_cores()
    workers = worker_count(settings, device.type, cores)
    if workers > 1:
        threads = torch_threads(settings.torch_threads, device.type, workers, cores)
        return serve_workers(settings.model_copy(update={"torch_threads": threads}), workers)
    # The server drains on SIGTERM/SIGINT, then uvicorn re-raises the signal with these handlers in place: a
    # requested stop that drained cleanly exits 0 (SIGTERM) or 130 (Ctrl-C) instead of dying by the signal.
    signal.signal(signal.SIGTERM, _exit_with(0))
    signal.signal(signal.SIGINT, _exit_with(130))
    serve(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
