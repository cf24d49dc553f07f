"""The baseline a hand-written server would be: one forward pass per request, no batching, no queue.

    NAIVE_CHECKPOINT=PATH uvicorn --app-dir benchmarks --factory naive_app:create_app

`POST /v1/sample` takes `{"seed", "n"}` and answers the service's response shape (base64 PNGs in JSON). It uses
the service's PNG encoder and the same torch thread count, so that the comparison isolates batching and the
request path rather than the codec.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import torch
from fastapi import FastAPI
from pydantic import BaseModel

from models import latents_for_seeds, load_checkpoint, to_uint8
from service.codecs import encode_png_batch


class NaiveSampleRequest(BaseModel):
    seed: int = 0
    n: int = 1


class NaiveImage(BaseModel):
    seed: int
    data: str


class NaiveSampleResponse(BaseModel):
    model: str
    version: str
    format: str
    images: list[NaiveImage]


def create_app() -> FastAPI:
    checkpoint = load_checkpoint(Path(os.environ["NAIVE_CHECKPOINT"]))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
    generator, z_dim = checkpoint.generator, checkpoint.metadata.z_dim
    app = FastAPI()

    @app.post("/v1/sample")
    def sample(body: NaiveSampleRequest) -> NaiveSampleResponse:
        seeds = list(range(body.seed, body.seed + body.n))
        z = latents_for_seeds(seeds, z_dim)  # [n, z_dim]
        with torch.inference_mode():
            pixels = to_uint8(generator(z)).numpy()  # [n, H, W, C]
        images = [
            NaiveImage(seed=s, data=base64.b64encode(png).decode())
            for s, png in zip(seeds, encode_png_batch(pixels), strict=True)
        ]
        return NaiveSampleResponse(model=checkpoint.name, version=checkpoint.version, format="png", images=images)

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app
