"""A small renderer for the subset of kustomize that deploy/k8s uses, so the tests need no kustomize binary.

Supported in a kustomization.yaml: `resources` (files, or folders holding a kustomization.yaml), `patches` given
by `path` (strategic-merge patches, matched to a resource by kind and name) and `images` (`newName`, `newTag`).
Any other key is refused, so an overlay cannot quietly use something the tests do not render.

Strategic merge, as the API server's patch strategy for the fields used here: maps merge key by key; the lists
Kubernetes merges (containers and env by name, volumes by name, volume mounts by mount path, container ports
by port) merge item by item on that key; every other list is replaced whole.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "patches", "images"}
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
Manifest = dict[str, Any]


class KustomizeError(ValueError):
    """A kustomization this renderer does not support, or a patch that matches nothing."""


def load_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(folder: Path) -> list[Manifest]:
    """The manifests `kustomize build folder` gives, for the supported subset."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise KustomizeError(f"{folder}: unsupported kustomization keys {sorted(unknown)}")
    manifests: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        target = folder / entry
        manifests += render(target) if target.is_dir() else load_documents(target)
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{folder}: only patches given by path are supported, got {patch}")
        for document in load_documents(folder / patch["path"]):
            _apply_patch(manifests, document, folder / patch["path"])
    for image in kustomization.get("images", []):
        for manifest in manifests:
            _set_image(manifest, image)
    return manifests


def _apply_patch(manifests: list[Manifest], patch: Manifest, source: Path) -> None:
    key = (patch["kind"], patch["metadata"]["name"])
    matches = [m for m in manifests if (m["kind"], m["metadata"]["name"]) == key]
    if len(matches) != 1:
        raise KustomizeError(f"{source}: the patch for {key} matches {len(matches)} resources")
    merged = merge(matches[0], patch)
    matches[0].clear()
    matches[0].update(merged)


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """`patch` merged into a copy of `base` (strategic merge for the fields in MERGE_KEYS)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value, key) if key in base else copy.deepcopy(value)
        return out
    merge_key = MERGE_KEYS.get(field)
    if merge_key and isinstance(base, list) and isinstance(patch, list):
        out_list = copy.deepcopy(base)
        for item in patch:
            index = next((i for i, old in enumerate(out_list) if old.get(merge_key) == item.get(merge_key)), None)
            if index is None:
                out_list.append(copy.deepcopy(item))
            else:
                out_list[index] = merge(out_list[index], item)
        return out_list
    return copy.deepcopy(patch)


def pod_specs(manifest: Manifest) -> list[Manifest]:
    """The pod specs inside a workload: a Deployment's or Job's template, each replica of a PyTorchJob."""
    spec = manifest.get("spec", {})
    if "template" in spec:
        return [spec["template"]["spec"]]
    replicas = spec.get("pytorchReplicaSpecs", {})
    return [replica["template"]["spec"] for replica in replicas.values()]


def _set_image(manifest: Manifest, image: dict[str, str]) -> None:
    for pod in pod_specs(manifest):
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"
