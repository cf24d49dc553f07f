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
    path = save_scatter(
        torch.randn(100, 2), tmp_path / "scatter.png", real=torch.randn(50, 2), centres=torch.zeros(1, 2)
    )
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (512, 512)
    save_scatter(torch.tensor([[float("nan"), 0.0], [1.0, 1.0]]), tmp_path / "nan.png")  # no crash on NaN


def test_loss_curves_and_interpolation_strip(tmp_path):
    from PIL import Image

    from models import ImageGeneratorConfig, build_generator
    from training.plots import save_interpolation_strip, save_loss_curves

    records = [{"iteration": i, "wasserstein": 1.0 / i, "gp": 0.1, "generator_loss": -float(i)} for i in range(1, 50)]
    curves = Image.open(save_loss_curves(records, tmp_path / "curves.png"))
    assert curves.size == (1200, 320)
    generator = build_generator(ImageGeneratorConfig(z_dim=8, channels=1, resolution=16, width=8)).eval()
    strip = Image.open(save_interpolation_strip(generator, 8, tmp_path / "strip.png", rows=3, steps=5))
    assert strip.size == (2 * (5 * 18 + 2), 2 * (3 * 18 + 2))  # 16 px tiles, 2 px padding, scale 2
