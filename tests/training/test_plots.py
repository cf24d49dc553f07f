"""Sample grids and scatter plots are real PNGs of the expected size."""

from __future__ import annotations

import torch
from PIL import Image

from training.plots import image_grid, save_image_grid, save_scatter


def test_image_grid_layout():
    grid = image_grid(torch.zeros(6, 1, 8, 8), nrow=3, padding=2)
    assert grid.size == (3 * 10 + 2, 2 * 10 + 2) and grid.mode == "L"
    assert image_grid(torch.zeros(4, 3, 8, 8)).mode == "RGB"


def test_saved_pngs_open(tmp_path):
    path = save_image_grid(torch.rand(16, 1, 16, 16) * 2 - 1, tmp_path / "s" / "grid.png", nrow=4)
    with Image.open(path) as im:
        assert im.format == "PNG"
    path = save_scatter(torch.randn(100, 2), tmp_path / "scatter.png", real=torch.randn(50, 2),
                        centres=torch.zeros(1, 2))
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (512, 512)
    save_scatter(torch.tensor([[float("nan"), 0.0], [1.0, 1.0]]), tmp_path / "nan.png")  # no crash on NaN
