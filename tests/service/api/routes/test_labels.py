"""Class-conditional models over HTTP: labels in sample, interpolate and score, their errors, and /v1/models.

The app serves the trainer's tiny conditional checkpoint (`cond`, classes "0".."9") beside the unconditional
`digits` and `ring`, in-process with the lifespan running and the default backend (`auto`: ONNX Runtime here).
"""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from models import from_uint8, latents_for_seeds, load_checkpoint, make_metadata, save_checkpoint
from service.inference import ForwardOptions, ModelRunner
from service.inputs.labels import one_hot
from tests.service.app_client import make_settings, serve_in_process

pytestmark = pytest.mark.anyio

CPU = torch.device("cpu")
CLASSES = [str(d) for d in range(10)]


@pytest.fixture
def cond_dir(models_dir: Path, tiny_conditional_checkpoint: Path) -> Path:
    shutil.copy(tiny_conditional_checkpoint, models_dir / "cond.safetensors")
    return models_dir


@pytest.fixture
async def client(cond_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(make_settings(cond_dir, max_wait_ms=30.0)) as c:
        yield c


def pixels(data: str | bytes) -> np.ndarray:
    raw = base64.b64decode(data) if isinstance(data, str) else data
    array = np.asarray(Image.open(io.BytesIO(raw)))
    return array[:, :, None] if array.ndim == 2 else array  # [H, W, C]


def direct(cond_dir: Path, seeds: list[int], labels: list[int]) -> np.ndarray:
    """The served backend (auto) run directly on the seeds' latents and the labels' one-hot weights."""
    runner = ModelRunner(load_checkpoint(cond_dir / "cond.safetensors"), CPU, torch.float32, ForwardOptions("auto"))
    with torch.inference_mode():
        return runner.generate(latents_for_seeds(seeds, runner.z_dim), one_hot(labels, len(CLASSES)))


async def test_models_lists_the_classes_of_a_conditional_model(client: httpx.AsyncClient) -> None:
    listed = {m["name"]: m for m in (await client.get("/v1/models")).json()["models"]}
    assert listed["cond"]["conditional"] is True and listed["cond"]["classes"] == CLASSES
    assert listed["digits"]["conditional"] is False and listed["digits"]["classes"] is None
    assert (await client.get("/v1/models/cond")).json()["classes"] == CLASSES


async def test_a_label_for_every_image_and_labels_one_per_image(client: httpx.AsyncClient, cond_dir: Path) -> None:
    by_index = (await client.post("/v1/sample", json={"model": "cond", "seed": 40, "n": 3, "label": 7})).json()
    by_name = (await client.post("/v1/sample", json={"model": "cond", "seed": 40, "n": 3, "label": "7"})).json()
    assert [i["label"] for i in by_index["images"]] == ["7"] * 3 and by_index == by_name
    want = direct(cond_dir, [40, 41, 42], [7, 7, 7])
    for item, expected in zip(by_index["images"], want, strict=True):
        assert np.array_equal(pixels(item["data"]), expected)
    mixed = await client.post("/v1/sample", json={"model": "cond", "seeds": [5, 5, 9], "labels": [1, "2", 3]})
    assert mixed.status_code == 200, mixed.text
    images = mixed.json()["images"]
    assert [(i["seed"], i["label"]) for i in images] == [(5, "1"), (5, "2"), (9, "3")]
    for item, expected in zip(images, direct(cond_dir, [5, 5, 9], [1, 2, 3]), strict=True):
        assert np.array_equal(pixels(item["data"]), expected)
    assert not np.array_equal(pixels(images[0]["data"]), pixels(images[1]["data"]))  # the label matters
    # `labels` alone: one image per label, seeds counting up from `seed`.
    counted = (await client.post("/v1/sample", json={"model": "cond", "seed": 5, "labels": [1, 2]})).json()
    assert [(i["seed"], i["label"]) for i in counted["images"]] == [(5, "1"), (6, "2")]
    assert counted["images"][0]["data"] == images[0]["data"]


async def test_a_grid_of_sevens(client: httpx.AsyncClient, cond_dir: Path) -> None:
    grid = await client.post("/v1/sample", json={"model": "cond", "label": 7, "n": 16, "seed": 3, "grid": True})
    assert grid.status_code == 200 and grid.headers["content-type"] == "image/png"
    assert grid.headers["x-labels"] == ",".join(["7"] * 16) and grid.headers["x-seeds"].startswith("3,4,")
    tiles = pixels(grid.content)
    first = direct(cond_dir, [3], [7])[0]  # [16, 16, 1]
    assert np.array_equal(tiles[: first.shape[0], : first.shape[1]], first)  # grid(): no outer padding


async def test_a_seed_and_label_give_the_same_image_in_a_batch_that_mixes_classes(client: httpx.AsyncClient) -> None:
    alone = {}
    for seed, label in [(11, 0), (11, 9), (12, 4)]:
        answer = await client.post("/v1/sample", json={"model": "cond", "seed": seed, "label": label})
        alone[seed, label] = answer.json()["images"][0]["data"]
    # 30 concurrent requests of every class inside one 30 ms batching window: batches of up to 16 mixed items.
    asks = [(11 + i % 2, i % 10) for i in range(30)] + [(11, 0), (11, 9), (12, 4)]
    crowd = await asyncio.gather(
        *(client.post("/v1/sample", json={"model": "cond", "seed": s, "label": y}) for s, y in asks)
    )
    for (seed, label), answer in zip(asks, crowd, strict=True):
        assert answer.status_code == 200
        if (seed, label) in alone:
            assert pixels(answer.json()["images"][0]["data"]).tobytes() == pixels(alone[seed, label]).tobytes()
    metrics = (await client.get("/metrics")).text
    sizes = [line for line in metrics.splitlines() if line.startswith('wgan_batch_size_sum{model="cond"')]
    counts = [line for line in metrics.splitlines() if line.startswith('wgan_batch_size_count{model="cond"')]
    generate_sum = float(next(x for x in sizes if 'op="generate"' in x).split()[-1])
    generate_count = float(next(x for x in counts if 'op="generate"' in x).split()[-1])
    assert generate_sum / generate_count > 1.5, "the concurrent requests should have shared forward passes"


async def test_label_errors_use_the_envelope_and_say_what_to_send(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/sample", json={"model": "cond", "seed": 1})
    assert missing.status_code == 422
    error = missing.json()["error"]
    assert error["code"] == "invalid_request" and "class-conditional" in error["message"]
    assert "`label`" in error["message"] and "'7'" in error["message"] and error["details"]["n_classes"] == 10
    unknown = (await client.post("/v1/sample", json={"model": "cond", "label": 10})).json()["error"]
    assert unknown["code"] == "invalid_request" and "no class 10" in unknown["message"]
    assert unknown["details"]["classes"] == CLASSES
    long_name = "x" * 5000
    clipped = await client.post("/v1/sample", json={"model": "cond", "label": long_name})
    message = clipped.json()["error"]["message"]
    assert clipped.status_code == 422 and len(message) < 600 and "characters)" in message
    count = await client.post("/v1/sample", json={"model": "cond", "seeds": [1, 2], "labels": [1]})
    assert count.status_code == 422 and count.json()["error"]["details"]["field"] == "labels"
    both = await client.post("/v1/sample", json={"model": "cond", "label": 1, "labels": [1]})
    assert both.status_code == 422 and both.json()["error"]["code"] == "validation_error"
    for model in ("digits", "ring"):
        refused = await client.post("/v1/sample", json={"model": model, "label": 1})
        assert refused.status_code == 422 and "not class-conditional" in refused.json()["error"]["message"]
    for bad in (True, -1, 1.5, [1], None, ""):
        body = {"model": "cond", "labels": [bad]}
        assert (await client.post("/v1/sample", json=body)).status_code == 422, bad


async def test_walks_within_a_class_and_between_two_classes(client: httpx.AsyncClient) -> None:
    async def sample(seed: int, label: int) -> str:
        answer = await client.post("/v1/sample", json={"model": "cond", "seed": seed, "label": label})
        data: str = answer.json()["images"][0]["data"]
        return data

    one_class = {"model": "cond", "points": [{"seed": 1, "label": 7}, {"seed": 2, "label": 7}], "steps": 4}
    frames = (await client.post("/v1/interpolate", json=one_class)).json()["frames"]
    assert len(frames) == 4 and frames[0]["data"] == await sample(1, 7) and frames[-1]["data"] == await sample(2, 7)
    two_classes = {"model": "cond", "points": [{"seed": 5, "label": 1}, {"seed": 5, "label": "8"}], "steps": 5}
    response = await client.post("/v1/interpolate", json=two_classes)
    assert response.status_code == 200, response.text
    frames = response.json()["frames"]
    assert frames[0]["data"] == await sample(5, 1) and frames[-1]["data"] == await sample(5, 8)
    middle = [pixels(f["data"]) for f in frames[1:-1]]
    ends = [pixels(frames[0]["data"]), pixels(frames[-1]["data"])]
    assert all(not np.array_equal(m, e) for m in middle for e in ends), "the class embedding should move"
    gif = await client.post("/v1/interpolate", json={**two_classes, "format": "gif"})
    assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
    unlabelled = {"model": "cond", "points": [{"seed": 1, "label": 7}, {"seed": 2}]}
    refused = await client.post("/v1/interpolate", json=unlabelled)
    assert refused.status_code == 422 and "points.1" in refused.json()["error"]["message"]
    unknown = {"model": "cond", "points": [{"seed": 1, "label": "cat"}, {"seed": 2, "label": 1}]}
    answer = (await client.post("/v1/interpolate", json=unknown)).json()["error"]
    assert "no class 'cat'" in answer["message"] and answer["details"]["field"] == "points.0.label"
    for model in ("digits", "ring"):
        labelled = {"model": model, "points": [{"seed": 1}, {"seed": 2, "label": 1}]}
        refused = await client.post("/v1/interpolate", json=labelled)
        assert refused.status_code == 422 and "points.1.label" in refused.json()["error"]["message"]


async def test_scores_of_a_label_or_of_the_class_the_critic_rates_highest(
    client: httpx.AsyncClient, cond_dir: Path
) -> None:
    sevens = (await client.post("/v1/sample", json={"model": "cond", "seed": 20, "n": 3, "label": 7})).json()
    images = [item["data"] for item in sevens["images"]]
    checkpoint = load_checkpoint(cond_dir / "cond.safetensors")
    meta = checkpoint.metadata
    assert meta.class_references is not None and sorted(meta.class_references) == CLASSES
    batch = from_uint8(torch.from_numpy(np.stack([pixels(d) for d in images])))  # [3, 1, 16, 16]
    with torch.inference_mode():
        critic: Any = checkpoint.critic  # a conditional ImageCritic
        every_class = critic.class_scores(batch)  # [3, 10]
    labelled = await client.post("/v1/score", json={"model": "cond", "images": images, "labels": [7, "3", None]})
    assert labelled.status_code == 200, labelled.text
    scores = labelled.json()["scores"]
    best = int(every_class[2].argmax())
    assert [s["label"] for s in scores] == ["7", "3", CLASSES[best]]
    assert all(s["reference"] == "class" for s in scores)
    for s, (i, y) in zip(scores, [(0, 7), (1, 3), (2, best)], strict=True):
        assert s["critic"] == pytest.approx(float(every_class[i, y]), abs=1e-4)
        reference = meta.class_references[CLASSES[y]]
        assert s["percentile"] == pytest.approx(float(reference.percentile([s["critic"]])[0]), abs=1e-3)
    unlabelled = (await client.post("/v1/score", json={"model": "cond", "images": images})).json()["scores"]
    assert [s["label"] for s in unlabelled] == [CLASSES[int(row.argmax())] for row in every_class]
    form = await client.post(
        "/v1/score",
        data={"model": "cond", "label": ["7", "3", "9"]},
        files=[("file", base64.b64decode(d)) for d in images],
    )
    assert form.status_code == 200, form.text
    assert [s["label"] for s in form.json()["scores"]] == ["7", "3", "9"]
    assert form.json()["scores"][:2] == scores[:2]
    count = await client.post("/v1/score", json={"model": "cond", "images": images, "labels": [7]})
    assert count.status_code == 422 and count.json()["error"]["details"]["field"] == "labels"
    unknown = await client.post("/v1/score", json={"model": "cond", "images": images[:1], "labels": [12]})
    assert unknown.status_code == 422 and "no class 12" in unknown.json()["error"]["message"]
    refused = await client.post("/v1/score", json={"model": "digits", "images": images[:1], "labels": [1]})
    assert refused.status_code == 422 and "not class-conditional" in refused.json()["error"]["message"]
    plain = (await client.post("/v1/score", json={"model": "digits", "images": images[:1]})).json()["scores"][0]
    assert "label" not in plain and "reference" not in plain


async def test_a_checkpoint_without_per_class_references_places_scores_in_the_overall_one(
    cond_dir: Path, tmp_path: Path
) -> None:
    checkpoint = load_checkpoint(cond_dir / "cond.safetensors")
    meta = checkpoint.metadata
    older = make_metadata(meta.generator, meta.critic, meta.critic_reference, meta.training, meta.classes)
    save_checkpoint(cond_dir / "cond.safetensors", checkpoint.generator, checkpoint.critic, older)
    assert load_checkpoint(cond_dir / "cond.safetensors").metadata.class_references is None
    async with serve_in_process(make_settings(cond_dir)) as client:
        image = (await client.post("/v1/sample", json={"model": "cond", "seed": 1, "label": 2})).json()["images"][0]
        [score] = (await client.post("/v1/score", json={"model": "cond", "images": [image["data"]]})).json()["scores"]
        assert score["reference"] == "overall"
        assert score["percentile"] == pytest.approx(float(meta.critic_reference.percentile([score["critic"]])[0]))
