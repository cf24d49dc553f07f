"""Security: keys never reach the logs (even at debug level, even wrong ones), and nothing on the serving path
can unpickle (a scan of every module in service/ and models/)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import httpx
import pytest

from tests.deploy.processes import ROOT
from tests.e2e.serve_process import start_serve

API_KEY = "api-key-5b1d0c9e"
ADMIN_KEY = "admin-key-e2a94f17"
WRONG_KEY = "wrong-key-0d44b6aa"

# Modules and calls that can run code while reading data.
_UNSAFE_MODULES = frozenset({"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"})
_UNSAFE_CALLS = frozenset({"torch.load", "torch.jit.load", "torch.serialization.load", "np.load", "numpy.load"})


def test_keys_never_reach_the_logs(models_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder)
    log = tmp_path / "wgan-serve.log"
    flags = ["--torch-threads", "1", "--log-level", "debug", "--api-keys", API_KEY, "--admin-key", ADMIN_KEY]
    server = start_serve(folder, log, *flags)
    try:
        good, wrong = {"Authorization": f"Bearer {API_KEY}"}, {"Authorization": f"Bearer {WRONG_KEY}"}
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/v1/sample", json={"seed": 1}, headers=good).status_code == 200
            assert client.post("/v1/sample", json={"seed": 1}, headers=wrong).status_code == 401
            assert client.post("/v1/sample", json={"n": -1}, headers=good).status_code == 422
            broken = client.post("/v1/sample", content=b"{", headers={**good, "Content-Type": "application/json"})
            assert broken.status_code == 400
            assert client.get(f"/v1/models?key={WRONG_KEY}", headers=wrong).status_code == 401
            assert client.post("/v1/admin/reload", headers=admin).status_code == 200
            assert client.post("/v1/admin/reload", headers=good).status_code == 401
            (folder / "digits.safetensors").write_bytes(b"garbage")
            assert client.post("/v1/admin/reload", headers=admin).json()["failed"][0]["name"] == "digits"
    finally:
        assert server.stop() == 0
    text = log.read_text()
    assert "/v1/sample" in text, "the debug log should record the requests (access log)"
    for secret in (API_KEY, ADMIN_KEY):
        assert secret not in text, f"{secret} leaked into the log"
    # A wrong key is someone's secret too; only the query string may echo what the client put in its URL.
    assert text.count(WRONG_KEY) == text.count(f"key={WRONG_KEY}")


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_uses(source: str) -> list[str]:
    """Imports of unpickling modules, calls that unpickle, and `allow_pickle=True` / `weights_only=False`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in _UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _UNSAFE_MODULES:
            found.append(f"from {node.module}")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in _UNSAFE_CALLS:
                found.append(name)
            for kw in node.keywords:
                value = kw.value.value if isinstance(kw.value, ast.Constant) else None
                if (kw.arg, value) in (("allow_pickle", True), ("weights_only", False)):
                    found.append(f"{kw.arg}={value!r}")
    return found


def test_the_scan_would_catch_unpickling() -> None:
    assert unsafe_uses("import pickle\nfrom dill import loads\ntorch.load(f)\nnp.load(f, allow_pickle=True)") == [
        "pickle", "from dill", "torch.load", "np.load", "allow_pickle=True",
    ]  # fmt: skip


@pytest.mark.parametrize("package", ["service", "models"])
def test_nothing_on_the_serving_path_can_unpickle(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    offenders = {str(f.relative_to(ROOT)): uses for f in files if (uses := unsafe_uses(f.read_text()))}
    assert offenders == {}
