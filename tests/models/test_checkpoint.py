import json
import os
import pickle
import struct
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from models import (
    FORMAT_VERSION,
    CheckpointError,
    ImageCriticConfig,
    ImageGeneratorConfig,
    PointCriticConfig,
    PointGeneratorConfig,
    build_critic,
    build_generator,
    build_reference,
    load_checkpoint,
    make_metadata,
    read_metadata,
    save_checkpoint,
)

GEN = ImageGeneratorConfig(z_dim=8, channels=1, resolution=16, width=8)
CRIT = ImageCriticConfig(channels=1, resolution=16, width=8, norm="spectral")


def _write(path: Path, gen_cfg=GEN, crit_cfg=CRIT) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    gen, critic = build_generator(gen_cfg), build_critic(crit_cfg)
    # give batch-norm running stats non-default values so they must round-trip too
    gen.train()
    with torch.no_grad():
        gen(torch.randn(8, gen_cfg.z_dim))
        critic(gen(torch.randn(8, gen_cfg.z_dim)))  # one power iteration moves spectral-norm u/v
    meta = make_metadata(gen_cfg, crit_cfg, build_reference(torch.randn(100)), {"dataset": "test", "iterations": 1})
    save_checkpoint(path, gen, critic, meta)
    return gen.eval(), critic.eval()


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    gen, critic = _write(path)
    ckpt = load_checkpoint(path)
    assert ckpt.name == "m" and len(ckpt.version) == 12
    assert not ckpt.generator.training and not ckpt.critic.training
    assert ckpt.metadata.kind == "image" and ckpt.metadata.z_dim == 8
    assert (ckpt.metadata.channels, ckpt.metadata.height, ckpt.metadata.width) == (1, 16, 16)
    assert ckpt.metadata.training["dataset"] == "test"
    z = torch.randn(4, 8)
    with torch.inference_mode():
        assert torch.equal(ckpt.generator(z), gen(z))
        x = gen(z)
        assert torch.equal(ckpt.critic(x), critic(x))
    assert read_metadata(path) == ckpt.metadata


def test_round_trip_points(tmp_path: Path) -> None:
    path = tmp_path / "p.safetensors"
    _write(path, PointGeneratorConfig(z_dim=2, hidden=8, depth=2), PointCriticConfig(hidden=8, depth=2))
    ckpt = load_checkpoint(path)
    assert ckpt.metadata.kind == "points" and ckpt.metadata.data_dim == 2
    assert ckpt.generator(torch.randn(3, 2)).shape == (3, 2)


def test_header_carries_the_wgan_document(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8 : 8 + n])
    doc = json.loads(header["__metadata__"]["wgan"])
    assert doc["format_version"] == FORMAT_VERSION
    assert doc["value_range"] == [-1.0, 1.0]
    assert set(doc["critic_reference"]) >= {"probs", "real"}
    assert all(k.startswith(("generator.", "critic.")) for k in header if k != "__metadata__")


def _expect_refused(path: Path, reason: str) -> None:
    with pytest.raises(CheckpointError, match=reason) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_pickle_renamed_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"generator.w": torch.zeros(2)}))
    _expect_refused(path, "not a safetensors file|exceeds the file")


def test_torch_save_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "torch.safetensors"
    torch.save({"generator.w": torch.zeros(2)}, path)
    _expect_refused(path, "not a safetensors file|exceeds the file")


@pytest.mark.parametrize("keep", [0, 5, 100, -10])
def test_truncated_refused(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    data = path.read_bytes()
    path.write_bytes(data[:keep])  # a negative keep cuts that many bytes off the end
    _expect_refused(path, "too short|truncated|exceeds|not JSON")


def test_missing_metadata_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"generator.w": torch.zeros(2)}, path)
    _expect_refused(path, "no 'wgan' key")


def _rewrite_doc(path: Path, edit) -> None:
    from safetensors.torch import load_file

    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8 : 8 + n])
    doc = json.loads(header["__metadata__"]["wgan"])
    new = edit(doc)
    save_file(load_file(path), path, metadata={"wgan": new if isinstance(new, str) else json.dumps(new)})


def test_malformed_metadata_json_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    _rewrite_doc(path, lambda doc: "{not json")
    _expect_refused(path, "not valid JSON")


def test_unknown_format_version_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    _rewrite_doc(path, lambda doc: {**doc, "format_version": 99})
    _expect_refused(path, "unsupported format_version 99")


def test_missing_field_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    _rewrite_doc(path, lambda doc: {k: v for k, v in doc.items() if k != "critic_reference"})
    _expect_refused(path, "critic_reference")


def test_inconsistent_geometry_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    _rewrite_doc(path, lambda doc: {**doc, "height": 32})
    _expect_refused(path, "geometry")


def test_tensors_that_do_not_fit_config_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    # claim a wider generator than the stored tensors
    _rewrite_doc(path, lambda doc: {**doc, "generator": {**doc["generator"], "width": 16}})
    _expect_refused(path, "generator tensors do not fit its config")


def _rewrite_tensors(path: Path, edit) -> None:
    from safetensors.torch import load_file

    meta = read_metadata(path)
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"wgan": meta.model_dump_json()})


def test_extra_tensor_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    _rewrite_tensors(path, lambda t: t.update({"critic.extra": torch.zeros(1)}))
    _expect_refused(path, "do not fit its config")


def _poison(tensors: dict[str, torch.Tensor]) -> None:
    key = next(k for k in tensors if k.startswith("generator.") and tensors[k].is_floating_point())
    tensors[key][...] = float("nan")


def test_nan_weights_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    _rewrite_tensors(path, _poison)
    _expect_refused(path, "NaN")


def test_missing_file_refused(tmp_path: Path) -> None:
    _expect_refused(tmp_path / "absent.safetensors", "cannot read")


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash mid-write leaves the previous file intact and no temporary file behind."""
    path = tmp_path / "m.safetensors"
    _write(path)
    before = path.read_bytes()

    import models.checkpoint as ckpt_mod

    def failing_save(tensors, filename, metadata=None):  # a write that dies half-way
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        _write(path, GEN, ImageCriticConfig(channels=1, resolution=16, width=8, norm="none"))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_concurrent_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    errors: list[Exception] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                load_checkpoint(path)
            except CheckpointError as exc:
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(10):
            _write(path)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_saved_file_is_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    _write(path)
    assert path.stat().st_mode & 0o044 == 0o044
