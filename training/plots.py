"""PNG pictures of a run with Pillow only: image sample grids and 2-D scatter plots."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from models import to_uint8


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2, scale: int = 1) -> Image.Image:
    """[N, C, H, W] in [-1, 1] -> one PIL image tiling them row by row, `padding` px of black between tiles."""
    pixels = to_uint8(images.detach().cpu())  # [N, H, W, C]
    n, h, w, c = pixels.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    canvas = Image.new("L" if c == 1 else "RGB", (nrow * (w + padding) + padding, rows * (h + padding) + padding))
    for i in range(n):
        tile = pixels[i, ..., 0] if c == 1 else pixels[i]
        r, col = divmod(i, nrow)
        canvas.paste(Image.fromarray(tile.numpy()), (padding + col * (w + padding), padding + r * (h + padding)))
    if scale > 1:
        canvas = canvas.resize((canvas.width * scale, canvas.height * scale), Image.Resampling.NEAREST)
    return canvas


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scale = max(1, 256 // max(1, images.shape[-1] * (nrow or math.ceil(math.sqrt(images.shape[0])))))
    image_grid(images, nrow=nrow, scale=min(scale, 4)).save(path)
    return path


def scatter_plot(
    fake: torch.Tensor,
    real: torch.Tensor | None = None,
    centres: torch.Tensor | None = None,
    size: int = 512,
    extent: float | None = None,
) -> Image.Image:
    """2-D points on a white square: real in grey, generated in blue, mixture centres as red crosses."""
    pts = [t.detach().float().cpu() for t in (fake, real, centres) if t is not None]
    if extent is None:
        finite = torch.cat([p[torch.isfinite(p).all(dim=1)] for p in pts])
        extent = float(finite.abs().max()) * 1.1 if finite.numel() else 1.0
        extent = max(extent, 1e-3)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)

    def to_px(p: torch.Tensor) -> list[tuple[float, float]]:
        xy = (p[:, :2] / extent + 1) * (size - 1) / 2
        return [(float(x), float(size - 1 - y)) for x, y in xy if math.isfinite(x) and math.isfinite(y)]

    mid = (size - 1) / 2
    draw.line([(0, mid), (size - 1, mid)], fill=(230, 230, 230))
    draw.line([(mid, 0), (mid, size - 1)], fill=(230, 230, 230))
    if real is not None:
        for x, y in to_px(real.float()):
            draw.point((x, y), fill=(160, 160, 160))
    for x, y in to_px(fake.float()):
        draw.ellipse((x - 1, y - 1, x + 1, y + 1), fill=(30, 90, 200))
    if centres is not None:
        for x, y in to_px(centres.float()):
            draw.line([(x - 4, y), (x + 4, y)], fill=(220, 30, 30))
            draw.line([(x, y - 4), (x, y + 4)], fill=(220, 30, 30))
    draw.text((4, 4), f"extent +/-{extent:.2f}  grey: real  blue: generated", fill=(0, 0, 0))
    return image


def save_scatter(
    fake: torch.Tensor, path: str | Path, real: torch.Tensor | None = None, centres: torch.Tensor | None = None
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scatter_plot(fake, real, centres).save(path)
    return path


def save_loss_curves(records: list[dict[str, float]], path: str | Path) -> Path:
    """Three panels over generator iterations: the Wasserstein estimate, the penalty, the generator loss."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), constrained_layout=True)
    its = [r["iteration"] for r in records]
    for ax, key, title in zip(
        axes,
        ("wasserstein", "gp", "generator_loss"),
        ("Wasserstein estimate", "gradient penalty", "generator loss"),
        strict=True,
    ):
        ax.plot(its, [r.get(key, float("nan")) for r in records], linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel("generator iteration")
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@torch.no_grad()
def save_interpolation_strip(
    generator: torch.nn.Module,
    z_dim: int,
    path: str | Path,
    seed: int = 0,
    rows: int = 4,
    steps: int = 10,
    device: torch.device | str = "cpu",
) -> Path:
    """`rows` slerp paths between pairs of latents from `seed`, `steps` images each, one path per row."""
    from models import latents_for_seeds, slerp

    ends = latents_for_seeds(range(seed, seed + 2 * rows), z_dim).view(rows, 2, z_dim)  # [rows, 2, z_dim]
    t = torch.linspace(0, 1, steps)[None, :]  # [1, steps]
    z = slerp(ends[:, :1].expand(rows, steps, z_dim), ends[:, 1:].expand(rows, steps, z_dim), t)  # [rows, steps, z]
    images = generator(z.reshape(-1, z_dim).to(device)).float().cpu()  # [rows * steps, C, H, W]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, nrow=steps, scale=2).save(path)
    return path
