"""The mnist5k digit classifier whose features the image quality metrics use.

A small CNN trained on the mnist5k training split (4,500 digits) and tested on the fixed held-out split (500,
50 per class; the same split the GAN trainer holds out by default). Its weights ship with the package as
safetensors (`training/assets/mnist5k_classifier.safetensors`, about 0.5 MB in float16), written by
`python -m training.classifier` (deterministic on CPU for a given seed); its test accuracy is stored in the
file's metadata and reported next to every figure computed with it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from training.data.base import stratified_split

CLASSIFIER_PATH = Path(__file__).parent / "assets" / "mnist5k_classifier.safetensors"
FEATURE_DIM = 128
N_CLASSES = 10
DEFAULT_HELDOUT_SEED = 1234  # DataConfig.heldout_seed's default: the split the classifier never saw


class DigitClassifier(nn.Module):
    """[N, 1, 32, 32] in [-1, 1] -> logits [N, 10]; `features` gives the 128-d penultimate activations."""

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]

        self.body = nn.Sequential(*block(1, 24), *block(24, 48), *block(48, 64), nn.Flatten())  # [N, 64*4*4]
        self.embed = nn.Sequential(nn.Linear(64 * 4 * 4, FEATURE_DIM), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, N_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.embed(self.body(x))  # [N, 128]
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.dropout(self.features(x)))  # [N, 10]
        return logits


@dataclass(frozen=True)
class LoadedClassifier:
    model: DigitClassifier
    test_accuracy: float
    info: dict[str, str]


def load_classifier(path: Path = CLASSIFIER_PATH) -> LoadedClassifier:
    """The shipped classifier in eval mode (float32), with the test accuracy recorded when it was trained."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; write it with `python -m training.classifier`")
    model = DigitClassifier()
    model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    with safe_open(str(path), framework="pt") as fh:
        info = dict(fh.metadata() or {})
    return LoadedClassifier(model.eval().requires_grad_(False), float(info.get("test_accuracy", "nan")), info)


def _mnist5k_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    import numpy as np

    from training.data.images import uint8_to_tensor
    from training.data.mnist import DEFAULT_HELDOUT, read_mnist5k

    pixels, labels = read_mnist5k()
    images = uint8_to_tensor(np.pad(pixels, ((0, 0), (2, 2), (2, 2)))[..., None])  # [5000, 1, 32, 32]
    train_idx, held_idx = stratified_split(labels, DEFAULT_HELDOUT, DEFAULT_HELDOUT_SEED)
    y = torch.from_numpy(labels)
    return images[train_idx], y[train_idx], images[held_idx], y[held_idx]


def _shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translations of up to `max_shift` pixels (one per batch, background -1 fills the border)."""
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    h, w = x.shape[-2:]
    return padded[..., max_shift + dy : max_shift + dy + h, max_shift + dx : max_shift + dx + w]


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(chunk).argmax(1) for chunk in images.split(500)])
    return float((pred == labels).float().mean())


def train_classifier(epochs: int = 20, seed: int = 0, batch_size: int = 64) -> tuple[DigitClassifier, float]:
    """Train on the mnist5k training split; return (model, accuracy on the held-out split)."""
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = _mnist5k_split()
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * -(-len(x_train) // batch_size))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x_train), generator=gen).split(batch_size):
            loss = F.cross_entropy(model(_shift(x_train[idx], gen)), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval(), accuracy(model, x_test, y_test)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.classifier",
        description="Train the mnist5k classifier used by the image quality metrics.",
    )
    parser.add_argument("--out", type=Path, default=CLASSIFIER_PATH)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model, acc = train_classifier(args.epochs, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "test_accuracy": f"{acc:.4f}",
        "test_split": "mnist5k held-out 500 (50 per class, seed 1234)",
        "train_split": "mnist5k training 4500",
        "epochs": str(args.epochs),
        "seed": str(args.seed),
        "command": f"python -m training.classifier --epochs {args.epochs} --seed {args.seed}",
    }
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(args.out), metadata=meta)
    print(json.dumps({**meta, "seconds": round(time.perf_counter() - started, 1), "path": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
