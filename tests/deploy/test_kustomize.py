"""The kustomize subset renderer the manifest tests use: merges as the API server would, refuses the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.kustomize import KustomizeError, merge, render

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "template": {
            "spec": {
                "tolerations": [{"key": "a", "operator": "Exists"}],
                "containers": [
                    {
                        "name": "web",
                        "image": "web:1",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "volumeMounts": [{"name": "v", "mountPath": "/data"}],
                        "resources": {"limits": {"cpu": "1"}},
                    },
                    {"name": "side", "image": "side:1"},
                ],
            }
        }
    },
}


def _write(folder: Path, files: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(yaml.safe_dump(content))
    return folder


def test_overlay_patch_merges_containers_env_and_mounts_by_their_keys(tmp_path: Path) -> None:
    _write(tmp_path / "base", {"kustomization.yaml": {"resources": ["d.yaml"]}, "d.yaml": DEPLOYMENT})
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "tolerations": [{"key": "b", "operator": "Exists"}],
                    "containers": [
                        {
                            "name": "web",
                            "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                            "volumeMounts": [{"name": "w", "mountPath": "/data"}],
                            "resources": {"limits": {"memory": "1Gi"}},
                        }
                    ],
                }
            }
        },
    }
    overlay = _write(
        tmp_path / "overlay",
        {
            "kustomization.yaml": {
                "resources": ["../base"],
                "patches": [{"path": "p.yaml"}],
                "images": [{"name": "web", "newName": "reg/web", "newTag": "2"}],
            },
            "p.yaml": patch,
        },
    )
    (deployment,) = render(overlay)
    web, side = deployment["spec"]["template"]["spec"]["containers"]
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    assert web["volumeMounts"] == [{"name": "w", "mountPath": "/data"}]
    assert web["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert web["image"] == "reg/web:2" and side["image"] == "side:1"
    assert deployment["spec"]["template"]["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]
    assert DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1", "inputs stay unchanged"


def test_lists_without_a_merge_key_are_replaced() -> None:
    assert merge({"args": ["a", "b"]}, {"args": ["c"]}) == {"args": ["c"]}


@pytest.mark.parametrize(
    "kustomization",
    [
        {"resources": ["d.yaml"], "commonLabels": {"a": "b"}},
        {"resources": ["d.yaml"], "patches": [{"path": "d.yaml", "target": {"kind": "Deployment"}}]},
        {"resources": ["d.yaml"], "patches": [{"path": "other.yaml"}]},
    ],
)
def test_what_the_renderer_cannot_do_is_refused(tmp_path: Path, kustomization: dict) -> None:
    other = {**DEPLOYMENT, "metadata": {"name": "missing"}}
    folder = _write(tmp_path, {"kustomization.yaml": kustomization, "d.yaml": DEPLOYMENT, "other.yaml": other})
    with pytest.raises(KustomizeError):
        render(folder)
