"""The Kubernetes manifests (deploy/k8s): valid against the API schemas, and in step with what the service does.

No cluster here. Each overlay is rendered with tests/deploy/kustomize.py (the subset of kustomize deploy/k8s
uses) and every object is checked with kubernetes-validate --strict against the schemas of KUBERNETES (unknown
fields are errors). The two custom resources, PyTorchJob and ServiceMonitor, have no schema there: their fields
are checked structurally against the published CRDs' (training-operator v1, prometheus-operator v1), and the pod
templates inside a PyTorchJob are validated as core PodTemplates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service import ServiceSettings, create_app
from service.metrics import ServiceMetrics
from service.process.uvicorn_server import _ABANDON_GRACE_S
from tests.deploy.kustomize import load_documents, pod_specs, render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.33"
OVERLAYS = ["cpu", "gpu"]
TRAINING = ["runs-pvc.yaml", "pytorchjob.yaml", "torchrun-job.yaml"]
Manifest = dict[str, Any]


def _rendered(overlay: str) -> list[Manifest]:
    return render(K8S / "overlays" / overlay)


def _one(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def _serving_container(manifests: list[Manifest]) -> Manifest:
    return _one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def _config_env(manifests: list[Manifest]) -> dict[str, str]:
    return dict(_one(manifests, "ConfigMap")["data"])


def _validate(manifest: Manifest) -> None:
    try:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        raise AssertionError(f"{manifest['kind']}/{manifest['metadata']['name']}: {where}: {exc.message}") from None


def _validate_pod_template(template: Manifest, owner: str) -> None:
    _validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": owner}, "template": template})


# ---- the published CRDs' fields (the subset a structural check needs) ----------------------------------------

SERVICE_MONITOR_SPEC = {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels", "podTargetLabels"}
SERVICE_MONITOR_ENDPOINT = {"port", "targetPort", "path", "scheme", "interval", "scrapeTimeout", "honorLabels"}
PYTORCHJOB_SPEC = {"elasticPolicy", "nprocPerNode", "pytorchReplicaSpecs", "runPolicy"}
PYTORCHJOB_RUN_POLICY = {
    "activeDeadlineSeconds",
    "backoffLimit",
    "cleanPodPolicy",
    "managedBy",
    "schedulingPolicy",
    "suspend",
    "ttlSecondsAfterFinished",
}
PYTORCHJOB_REPLICA = {"replicas", "restartPolicy", "template"}


def _check_service_monitor(monitor: Manifest) -> None:
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    assert set(spec) <= SERVICE_MONITOR_SPEC, set(spec) - SERVICE_MONITOR_SPEC
    assert set(spec["selector"]) <= {"matchLabels", "matchExpressions"}
    assert spec["endpoints"], "a ServiceMonitor with no endpoint scrapes nothing"
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= SERVICE_MONITOR_ENDPOINT, set(endpoint) - SERVICE_MONITOR_ENDPOINT
        for key in ("interval", "scrapeTimeout"):
            assert re.fullmatch(r"([0-9]+(ms|s|m|h))+", endpoint.get(key, "1s")), endpoint[key]


def _check_pytorchjob(job: Manifest) -> None:
    assert job["apiVersion"] == "kubeflow.org/v1"
    spec = job["spec"]
    assert set(spec) <= PYTORCHJOB_SPEC, set(spec) - PYTORCHJOB_SPEC
    assert isinstance(spec["nprocPerNode"], str), "nprocPerNode is a string in the v1 CRD ('auto', 'gpu' or a number)"
    assert set(spec["runPolicy"]) <= PYTORCHJOB_RUN_POLICY
    assert spec["runPolicy"].get("cleanPodPolicy", "None") in {"All", "Running", "None"}
    assert set(spec["pytorchReplicaSpecs"]) <= {"Master", "Worker"} and "Master" in spec["pytorchReplicaSpecs"]
    assert spec["pytorchReplicaSpecs"]["Master"]["replicas"] == 1
    for role, replica in spec["pytorchReplicaSpecs"].items():
        assert set(replica) <= PYTORCHJOB_REPLICA, set(replica) - PYTORCHJOB_REPLICA
        assert isinstance(replica["replicas"], int) and replica["replicas"] >= 1
        assert replica["restartPolicy"] in {"Always", "OnFailure", "Never", "ExitCode"}
        names = [c["name"] for c in replica["template"]["spec"]["containers"]]
        assert "pytorch" in names, "the operator configures the container named pytorch"
        _validate_pod_template(replica["template"], f"{job['metadata']['name']}-{role.lower()}")


CHECKS = {"ServiceMonitor": _check_service_monitor, "PyTorchJob": _check_pytorchjob}


def _check(manifest: Manifest) -> None:
    check = CHECKS.get(manifest["kind"])
    if check is not None:
        check(manifest)
    else:
        _validate(manifest)


# ---- validity --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates(overlay: str) -> None:
    manifests = _rendered(overlay)
    kinds = {m["kind"] for m in manifests}
    expected = {"ConfigMap", "PersistentVolumeClaim", "Deployment", "Service", "PodDisruptionBudget"}
    assert expected | {"HorizontalPodAutoscaler", "ServiceMonitor", "NetworkPolicy"} <= kinds
    for manifest in manifests:
        _check(manifest)


@pytest.mark.parametrize("name", TRAINING)
def test_every_training_object_validates(name: str) -> None:
    for manifest in load_documents(K8S / "training" / name):
        _check(manifest)


def test_the_strict_validation_catches_a_misspelt_field() -> None:
    deployment = _one(_rendered("cpu"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(AssertionError, match="readynessProbe"):
        _validate(deployment)
    job = load_documents(K8S / "training" / "pytorchjob.yaml")[0]
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["gpus"] = 2
    with pytest.raises(AssertionError, match="gpus"):
        _check(job)


def test_every_manifest_file_is_checked() -> None:
    """A manifest added under deploy/k8s is reached by an overlay, or listed as a training manifest here."""
    reached = set()

    def walk(folder: Path) -> None:
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        reached.add(folder / "kustomization.yaml")
        for entry in kustomization.get("resources", []):
            target = (folder / entry).resolve()
            walk(target) if target.is_dir() else reached.add(target)
        reached.update((folder / patch["path"]).resolve() for patch in kustomization.get("patches", []))

    for overlay in OVERLAYS:
        walk((K8S / "overlays" / overlay).resolve())
    reached.update((K8S / "training" / name).resolve() for name in TRAINING)
    reached.add((K8S / "prometheus-adapter" / "values.yaml").resolve())  # Helm values, checked below
    files = {p.resolve() for p in K8S.rglob("*.yaml")}
    assert files - reached == set()


# ---- agreement with the code -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_paths(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    app = create_app(ServiceSettings(models_dir=tmp_path_factory.mktemp("models")))
    return {route.path for route in app.routes if hasattr(route, "path")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_the_paths_and_port_the_service_answers(overlay: str, app_paths: set[str]) -> None:
    manifests = _rendered(overlay)
    container = _serving_container(manifests)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    settings = _config_env(manifests)
    assert ports["http"] == int(settings["WGAN_PORT"])
    assert settings["WGAN_HOST"] == "0.0.0.0", "the server must listen beyond the pod's loopback"
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["path"] in app_paths
        assert probe["port"] in ("http", ports["http"])
    service = _one(manifests, "Service")
    assert service["spec"]["ports"][0]["targetPort"] in ("http", ports["http"])
    monitor = _one(manifests, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["path"] in app_paths
    policy = _one(manifests, "NetworkPolicy")
    assert {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]} == {ports["http"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_wgan_variable_is_a_real_setting_and_the_whole_set_is_valid(overlay: str, tmp_path: Path) -> None:
    manifests = _rendered(overlay)
    container = _serving_container(manifests)
    names = set(_config_env(manifests)) | {e["name"] for e in container["env"] if e["name"].startswith("WGAN_")}
    fields = {f"WGAN_{name.upper()}" for name in ServiceSettings.model_fields}
    assert names - fields == set(), "variables that no setting reads"
    assert {"WGAN_API_KEYS", "WGAN_ADMIN_KEY"} <= names
    for env in container["env"]:
        if env["name"] in ("WGAN_API_KEYS", "WGAN_ADMIN_KEY"):
            assert "secretKeyRef" in env["valueFrom"], "keys come from a Secret, never from the ConfigMap"
    assert not {"WGAN_API_KEYS", "WGAN_ADMIN_KEY"} & set(_config_env(manifests))
    # The ConfigMap's values as the service would read them (the models folder swapped for one that exists here).
    values = {k: v for k, v in _config_env(manifests).items()} | {"WGAN_MODELS_DIR": str(tmp_path)}
    env_settings = {key.removeprefix("WGAN_").lower(): value for key, value in values.items()}
    ServiceSettings.model_validate(env_settings)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_grace_period_covers_the_pause_and_the_drain(overlay: str) -> None:
    manifests = _rendered(overlay)
    pod = _one(manifests, "Deployment")["spec"]["template"]["spec"]
    config = _config_env(manifests)
    defaults = ServiceSettings.model_fields
    delay = float(config.get("WGAN_SHUTDOWN_DELAY_S", defaults["shutdown_delay_s"].default))
    drain = float(config.get("WGAN_DRAIN_TIMEOUT_S", defaults["drain_timeout_s"].default))
    # The pause before the listener closes is the server's own: a preStop sleep on top would only delay SIGTERM.
    assert "preStop" not in _serving_container(manifests).get("lifecycle", {})
    assert delay >= 3, "kube-proxy and ingress controllers need a few seconds to stop sending requests here"
    assert pod["terminationGracePeriodSeconds"] > delay + drain + _ABANDON_GRACE_S


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_autoscaler_scales_on_a_metric_the_service_exports(overlay: str) -> None:
    manifests = _rendered(overlay)
    hpa = _one(manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == _one(manifests, "Deployment")["metadata"]["name"]
    custom = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"} == {"cpu"}
    exported = {metric.name for metric in ServiceMetrics().registry.collect()}
    assert custom == ["wgan_queue_depth"] and set(custom) <= exported
    # prometheus-adapter serves the metric under that name, from a series the service exports
    rules = yaml.safe_load((K8S / "prometheus-adapter" / "values.yaml").read_text())["rules"]["custom"]
    served = {rule["name"]["as"]: rule["seriesQuery"].split("{")[0] for rule in rules}
    assert served[custom[0]] in exported


def test_the_gpu_overlay_asks_for_one_gpu_and_runs_the_cuda_image() -> None:
    cpu, gpu = (_rendered(name) for name in OVERLAYS)
    container = _serving_container(gpu)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"].endswith(":cuda")
    assert _config_env(gpu)["WGAN_DEVICE"] == "cuda"
    assert "nvidia.com/gpu" not in _serving_container(cpu)["resources"]["limits"]
    assert _config_env(cpu)["WGAN_DEVICE"] == "cpu"
    # the patch merged the container instead of replacing it: probes, mounts and the security context are kept
    assert container["readinessProbe"] == _serving_container(cpu)["readinessProbe"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_locked_down(overlay: str) -> None:
    deployment = _one(_rendered(overlay), "Deployment")
    _check_locked_down(deployment)
    container = _serving_container([deployment])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


@pytest.mark.parametrize("name", ["pytorchjob.yaml", "torchrun-job.yaml"])
def test_training_jobs_run_torchrun_locked_down_with_auto_resume_on_the_runs_claim(name: str) -> None:
    from training.cli import build_parser

    workloads = [m for m in load_documents(K8S / "training" / name) if m["kind"] in ("PyTorchJob", "Job")]
    assert len(workloads) == 1
    _check_locked_down(workloads[0])
    claim = load_documents(K8S / "training" / "runs-pvc.yaml")[0]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "every node reads the run's resume state"
    for pod in pod_specs(workloads[0]):
        container = pod["containers"][0]
        assert container["command"] == ["torchrun"]
        args = container["args"]
        module = args.index("--module")
        assert args[module + 1] == "training"
        train_args = build_parser().parse_args(args[module + 2 :])  # wgan-train accepts the command line
        assert train_args.auto_resume and train_args.config.parts[:3] == ("/", "app", "configs")
        assert (ROOT / "configs" / train_args.config.name).is_file(), "the config ships in the train image"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        runs = next(path for path in mounts if train_args.out.is_relative_to(path))
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts[runs]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_the_torchrun_job_rendezvous_at_pod_0_of_its_headless_service() -> None:
    service, job = load_documents(K8S / "training" / "torchrun-job.yaml")
    assert service["spec"]["clusterIP"] == "None"
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"]
    assert pod["subdomain"] == service["metadata"]["name"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    args = dict(a.removeprefix("--").split("=", 1) for a in pod["containers"][0]["args"] if "=" in a)
    assert int(args["nnodes"]) == job["spec"]["completions"]
    host, port = args["rdzv-endpoint"].split(":")
    assert host == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    assert int(port) == service["spec"]["ports"][0]["port"] and args["rdzv-backend"] == "c10d"


def _check_locked_down(workload: Manifest) -> None:
    for pod in pod_specs(workload):
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001  # the images' user
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "limits" in container["resources"] and "requests" in container["resources"]
