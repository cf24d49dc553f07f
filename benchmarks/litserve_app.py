"""What a user of LitServe would write for this generator: its dynamic batching, one forward pass per batch.

    LITSERVE_CHECKPOINT=PATH LITSERVE_PORT=8000 [LITSERVE_WORKERS=1] python benchmarks/litserve_app.py

Runs in its own virtual environment (litserve and the CPU torch; `serve_bench.py --litserve` builds it under
build/), with the repository on PYTHONPATH for `models`. `POST /v1/sample` takes `{"seed", "n"}` and answers the
service's response shape (base64 PNGs in JSON), encoded with the service's PNG encoder (loaded from its file, so
that the service's own dependencies are not needed here). Batching: at most 64 requests per forward pass, waiting
at most 5 ms for more (LitServe batches requests, so n > 1 requests are concatenated into one forward pass).
Ready when `/health` answers 200.
"""

import base64
import importlib.util
import os
from pathlib import Path
from typing import Any

import litserve as ls
import torch

from models import latents_for_seeds, load_checkpoint, to_uint8

_PNG = Path(__file__).resolve().parents[1] / "service" / "codecs" / "png.py"


def _png_encoder() -> Any:
    spec = importlib.util.spec_from_file_location("service_png", _PNG)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.encode_png_batch


class GeneratorAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
        self.checkpoint = load_checkpoint(Path(os.environ["LITSERVE_CHECKPOINT"]))
        self.generator = self.checkpoint.generator.eval()
        self.z_dim = self.checkpoint.metadata.z_dim
        self.encode = _png_encoder()

    def decode_request(self, request: dict) -> list[int]:  # (a plain dict: LitServe reads the annotation)
        seed, n = int(request.get("seed", 0)), int(request.get("n", 1))
        return list(range(seed, seed + n))

    def batch(self, inputs: list[list[int]]) -> list[list[int]]:
        return inputs

    def predict(self, batch: list[list[int]]) -> list[list[tuple[int, bytes]]]:
        seeds = [s for request in batch for s in request]
        z = latents_for_seeds(seeds, self.z_dim)  # [sum n, z_dim]
        with torch.inference_mode():
            pngs = self.encode(to_uint8(self.generator(z)).numpy())  # [sum n] PNG files
        out, start = [], 0
        for request in batch:
            out.append(list(zip(request, pngs[start : start + len(request)], strict=True)))
            start += len(request)
        return out

    def unbatch(self, output: list[list[tuple[int, bytes]]]) -> list[list[tuple[int, bytes]]]:
        return output

    def encode_response(self, output: list[tuple[int, bytes]]) -> dict[str, Any]:
        images = [{"seed": seed, "data": base64.b64encode(png).decode()} for seed, png in output]
        return {"model": self.checkpoint.name, "version": self.checkpoint.version, "format": "png", "images": images}


if __name__ == "__main__":
    api = GeneratorAPI(max_batch_size=64, batch_timeout=0.005, api_path="/v1/sample")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=int(os.environ.get("LITSERVE_WORKERS", "1")))
    server.run(port=int(os.environ["LITSERVE_PORT"]), host="127.0.0.1", log_level="warning", generate_client_file=False)
