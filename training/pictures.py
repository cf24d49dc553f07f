"""The pictures a run writes under RUN_DIR, from its served generator (drawing itself is plots.py's job).

Along the way `samples/<tag>.png`: an image grid, or for points a scatter over held-out data, always from the
same fixed latents so that pictures of one run compare; at the end `loss_curves.png` from the metrics records and,
for images, `samples/interpolation.png`, slerp paths between seeded latents. A class-conditional model's grid
shows one class per row (class r mod the class count in row r), and each interpolation row stays in one class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.config import TrainConfig
from training.evaluation import mixture_for, mode_coverage
from training.networks import eval_mode
from training.plots import save_image_grid, save_interpolation_strip, save_loss_curves, save_scatter


class RunPictures:
    def __init__(self, config: TrainConfig, run_dir: Path, heldout: torch.Tensor, device: torch.device) -> None:
        self.config = config
        self.run_dir = run_dir
        self.heldout = heldout  # [N, ...] real samples drawn beside generated points
        self.device = device
        grid = config.eval.grid_size
        n_fixed = grid * grid if config.model.kind == "image" else config.eval.point_samples
        seeded = torch.Generator("cpu").manual_seed(config.seed + 7)
        self.fixed_z = torch.randn(n_fixed, config.model.generator.z_dim, generator=seeded)  # [n_fixed, z_dim]
        n_classes = config.model.n_classes
        self.fixed_labels = (torch.arange(n_fixed) // grid) % n_classes if n_classes else None  # [n_fixed]
        self.mixture = mixture_for(config.data.dataset)

    def samples(self, generator: nn.Module, tag: str) -> dict[str, Any] | None:
        """Write samples/<tag>.png; for known mixtures return the mode coverage of those samples, else None."""
        fake = self._fixed_samples(generator)  # [n_fixed, ...]
        path = self.run_dir / "samples" / f"{tag}.png"
        if self.config.model.kind == "image":
            save_image_grid(fake, path, nrow=self.config.eval.grid_size)
            return None
        centres = self.mixture[0] if self.mixture is not None else None
        save_scatter(fake, path, real=self.heldout[: len(fake)], centres=centres)
        return mode_coverage(fake, *self.mixture) if self.mixture is not None else None

    def final(self, generator: nn.Module, records: list[dict[str, Any]]) -> None:
        """Loss curves from the metrics records and, for images, an interpolation strip of `generator`."""
        save_loss_curves([r for r in records if "wasserstein" in r], self.run_dir / "loss_curves.png")
        if self.config.model.kind == "image":
            rows, steps = 4, 10  # save_interpolation_strip's layout
            n_classes = self.config.model.n_classes
            strip: nn.Module = generator
            if n_classes:
                strip = WithLabels(generator, (torch.arange(rows) % n_classes).repeat_interleave(steps))
            with eval_mode(generator), torch.no_grad():
                save_interpolation_strip(
                    strip,
                    self.config.model.generator.z_dim,
                    self.run_dir / "samples" / "interpolation.png",
                    seed=self.config.seed + 19,
                    device=self.device,
                    rows=rows,
                    steps=steps,
                )

    def _fixed_samples(self, generator: nn.Module) -> torch.Tensor:
        with eval_mode(generator), torch.no_grad():
            if self.fixed_labels is None:
                return torch.cat([generator(z.to(self.device)).float().cpu() for z in self.fixed_z.split(500)])
            pairs = zip(self.fixed_z.split(500), self.fixed_labels.split(500), strict=True)
            return torch.cat([generator(z.to(self.device), y.to(self.device)).float().cpu() for z, y in pairs])


class WithLabels(nn.Module):
    """A conditional generator with its labels [N] fixed: z [N, z_dim] -> images, for code that passes z only."""

    def __init__(self, generator: nn.Module, labels: torch.Tensor) -> None:
        super().__init__()
        self.generator = generator
        self.labels = labels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.generator(z, self.labels.to(z.device))
        return out
