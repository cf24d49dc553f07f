"""Datasets: shapes, value ranges, held-out splits, and a folder with a corrupt file."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image

from training.config import DataConfig
from training.data import DataError, MixtureDataset, TensorDataset, load_dataset
from training.data.base import stratified_split
from training.data.mnist import read_mnist5k
from training.data.toy import grid25_centres, ring8_centres


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _in_memory(config: DataConfig, kind: str = "image") -> TensorDataset:
    """A dataset whose training split is held in memory (images, npz arrays), for the tests that read it."""
    ds = load_dataset(config, kind)
    assert isinstance(ds, TensorDataset)
    return ds


def test_ring8_centres_are_on_a_circle_without_the_endpoint():
    c = ring8_centres()
    assert c.shape == (8, 2)
    torch.testing.assert_close(c.norm(dim=1), torch.full((8,), 2.0))
    angles = torch.atan2(c[:, 1], c[:, 0]).remainder(2 * math.pi)
    torch.testing.assert_close(angles, torch.arange(8) * (2 * math.pi / 8), atol=1e-5, rtol=0)


def test_grid25_centres():
    c = grid25_centres()
    assert c.shape == (25, 2)
    assert sorted(set(c[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert len({tuple(p) for p in c.tolist()}) == 25


@pytest.mark.parametrize("name, std", [("ring8", 0.02), ("grid25", 0.05)])
def test_mixture_samples_sit_near_their_centres(name, std):
    ds = load_dataset(DataConfig(dataset=name))
    assert isinstance(ds, MixtureDataset) and ds.centres is not None
    x = ds.sample(4000, _gen())
    assert x.shape == (4000, 2) and ds.kind == "points"
    nearest = torch.cdist(x, ds.centres).min(dim=1).values
    assert nearest.max() < 6 * std
    assert nearest.pow(2).mean().div(2).sqrt().item() == pytest.approx(std, rel=0.1)  # per-axis std


def test_points_heldout_is_fixed_by_its_seed_and_fresh_batches_differ():
    a = load_dataset(DataConfig(dataset="grid25"))
    b = load_dataset(DataConfig(dataset="grid25"))
    assert a.heldout.shape == (2500, 2)
    torch.testing.assert_close(a.heldout, b.heldout)
    assert load_dataset(DataConfig(dataset="grid25", heldout=100, heldout_seed=9)).heldout.shape == (100, 2)
    g = _gen()
    assert not torch.equal(a.sample(8, g), a.sample(8, g))


def test_swissroll():
    ds = load_dataset(DataConfig(dataset="swissroll", heldout=300))
    x = ds.sample(1000, _gen())
    assert x.shape == (1000, 2) and ds.heldout.shape == (300, 2)
    assert x.abs().max() < 3


def test_mnist5k_file_and_split():
    pixels, labels = read_mnist5k()
    assert pixels.shape == (5000, 28, 28) and pixels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    _, held = stratified_split(labels, 500, 1234)
    assert np.bincount(labels[held]).tolist() == [50] * 10

    ds = _in_memory(DataConfig(dataset="mnist5k"))
    assert ds.train.shape == (4500, 1, 32, 32) and ds.heldout.shape == (500, 1, 32, 32)
    assert ds.train.dtype == torch.float32
    assert ds.train.min() == -1.0 and ds.train.max() == 1.0
    assert (ds.train[:, :, :2, :] == -1).all()  # the 2-pixel padding is background
    again = _in_memory(DataConfig(dataset="mnist5k"))
    assert torch.equal(ds.heldout, again.heldout)


def test_digits_resized_with_a_stratified_heldout():
    ds = _in_memory(DataConfig(dataset="digits", resolution=16, channels=3))
    assert ds.heldout.shape == (180, 3, 16, 16)
    assert ds.train.shape == (1797 - 180, 3, 16, 16)
    assert -1.0 <= ds.train.min() < 0 < ds.train.max() <= 1.0
    assert ds.sample(5, _gen()).shape == (5, 3, 16, 16)


def _write_images(folder, n=6):
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 256, size=(20 + i, 30, 3), dtype=np.uint8)
        fmt = ("png", "jpeg", "webp")[i % 3]
        Image.fromarray(arr).save(folder / f"img{i}.{'jpg' if fmt == 'jpeg' else fmt}", format=fmt.upper())


def test_folder_of_images_skips_a_corrupt_file_by_name(tmp_path, caplog):
    _write_images(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    with caplog.at_level(logging.WARNING):
        ds = _in_memory(DataConfig(dataset=f"folder:{tmp_path}", resolution=16, channels=1, heldout=2))
    assert "broken.png" in caplog.text
    assert ds.info["skipped"] == ["broken.png"] and ds.info["skipped_count"] == 1 and ds.info["files"] == 7
    assert ds.train.shape == (4, 1, 16, 16) and ds.heldout.shape == (2, 1, 16, 16)
    assert ds.train.min() >= -1 and ds.train.max() <= 1


def test_folder_rgb_and_errors(tmp_path):
    _write_images(tmp_path, n=3)
    ds = _in_memory(DataConfig(dataset=f"folder:{tmp_path}", resolution=8, channels=3))
    assert ds.train.shape[1:] == (3, 8, 8) and ds.heldout.shape[0] == 1
    with pytest.raises(DataError, match="not a directory"):
        load_dataset(DataConfig(dataset=f"folder:{tmp_path / 'nope'}"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no PNG/JPEG/WebP"):
        load_dataset(DataConfig(dataset=f"folder:{empty}"))


def test_npz_images_in_several_layouts(tmp_path):
    nhwc = np.random.default_rng(0).integers(0, 256, size=(20, 12, 12, 3), dtype=np.uint8)
    np.savez(tmp_path / "nhwc.npz", images=nhwc)
    ds = _in_memory(DataConfig(dataset=f"npz:{tmp_path / 'nhwc.npz'}", resolution=8, channels=1))
    assert ds.train.shape == (18, 1, 8, 8) and ds.heldout.shape == (2, 1, 8, 8)

    nchw = np.random.default_rng(1).uniform(-1, 1, size=(10, 1, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "split.npz", train=nchw, heldout=nchw[:3])
    ds = _in_memory(DataConfig(dataset=f"npz:{tmp_path / 'split.npz'}", resolution=16, channels=1))
    assert ds.train.shape == (10, 1, 16, 16) and ds.heldout.shape == (3, 1, 16, 16)
    torch.testing.assert_close(ds.train, torch.from_numpy(nchw), atol=1 / 127.5, rtol=0)


def test_npz_points_and_bad_files(tmp_path):
    np.savez(tmp_path / "pts.npz", points=np.random.default_rng(0).normal(size=(50, 2)))
    ds = _in_memory(DataConfig(dataset=f"npz:{tmp_path / 'pts.npz'}"), kind="points")
    assert ds.kind == "points" and ds.train.shape == (45, 2) and ds.heldout.shape == (5, 2)
    with pytest.raises(DataError, match="2-D arrays are points"):
        load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'pts.npz'}"), kind="image")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(DataConfig(dataset=f"npz:{tmp_path / 'junk.npz'}"))
