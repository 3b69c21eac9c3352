"""contrib/kubernetes/: the manifests validate against Kubernetes' OpenAPI schemas offline
(kubernetes-validate ships them), and what they hold works: the ConfigMap's units load as
the kubelet mounts them and serve on loopback, and the probes name a verb that never
starts a lazy service."""

from __future__ import annotations

import copy
import http.client
import os
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from harness import Activator, free_port, public_dir

MANIFEST = Path(__file__).resolve().parents[2] / "contrib" / "kubernetes" / "activator.yaml"


def _docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def _kind(docs, kind: str, name: str | None = None) -> dict:
    return next(d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"]))


def test_manifests_validate_offline_against_the_schemas():
    docs = _docs()
    assert [d["kind"] for d in docs] == ["ConfigMap", "ConfigMap", "Deployment", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    # the validator does fail: a misspelt field and a wrong type are refused
    bad = copy.deepcopy(_kind(docs, "Deployment"))
    bad["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)
    bad = copy.deepcopy(_kind(docs, "Service"))
    bad["spec"]["ports"][0]["port"] = "seven"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


def test_one_activator_per_pod_and_the_grace_period_covers_the_stop():
    docs = _docs()
    pod = _kind(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    units = _kind(docs, "ConfigMap", "activator-units")["data"]
    stops = [int(m) for text in units.values() for m in re.findall(r"TimeoutStopSec=(\d+)", text)]
    # every service's stop, then activator's own 5 s for what is left, inside the grace period
    assert stops and pod["terminationGracePeriodSeconds"] >= max(stops) + 5
    ports = {p["containerPort"] for p in container["ports"]}
    listens = {int(m) for t in units.values() for m in re.findall(r"Listen\w+=\S*:(\d+)", t)}
    assert ports == listens
    service_ports = {p["targetPort"] for p in _kind(docs, "Service")["spec"]["ports"]}
    assert service_ports == {p["name"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        command = " ".join(container[probe]["exec"]["command"])
        assert "activatorctl is-system-running" in command, probe  # never a service's port
        assert "tcpSocket" not in container[probe] and "httpGet" not in container[probe]


def _mount_like_the_kubelet(data: dict[str, str], d: Path) -> Path:
    """A configMap volume: files are symlinks through ..data to a timestamped directory."""
    real = d / "..2026_01_01_00_00_00.000000001"
    real.mkdir(parents=True)
    for name, text in data.items():
        (real / name).write_text(text)
        (real / name).chmod(0o644)
    (d / "..data").symlink_to(real.name)
    for name in data:
        (d / name).symlink_to(f"..data/{name}")
    return d


@pytest.mark.root
def test_the_configmaps_units_serve_as_mounted(loop_kind):
    """The units and program of the ConfigMaps, mounted as the kubelet mounts them, on
    loopback ports: the probe's verb answers `running` and leaves hello.service asleep;
    the first request starts it."""
    docs = _docs()
    port, hport = free_port(), free_port()
    units = dict(_kind(docs, "ConfigMap", "activator-units")["data"])
    programs = _mount_like_the_kubelet(
        _kind(docs, "ConfigMap", "activator-programs")["data"], public_dir() / "programs"
    )
    for name, text in units.items():
        text = text.replace("0.0.0.0:7007", f"127.0.0.1:{port}")
        text = text.replace("0.0.0.0:7080", f"127.0.0.1:{hport}")
        units[name] = text.replace("/opt/activator/programs", str(programs))
    mounted = _mount_like_the_kubelet(units, public_dir() / "units")
    with Activator({}, loop=loop_kind, extra_args=["--units", str(mounted)]) as a:
        assert a.ready["units"] == 3 and not a.count("unit-error"), a.log_text()
        for _ in range(3):  # what the readiness probe runs, every period
            r = a.ctl("is-system-running")
            assert (r.returncode, r.stdout) == (0, "running\n")
        assert a.status("hello.service")["active"] == "inactive"  # the probe woke nothing
        conn = http.client.HTTPConnection("127.0.0.1", hport, timeout=10)
        conn.request("GET", "/")
        body = conn.getresponse().read()
        assert body.startswith(b"hello from pid "), body
        pid = int(body.split()[-1])
        assert a.status("hello.service")["main_pid"] == pid
        a.wait_for("start", unit="hello.service")
        r = a.ctl("is-system-running")
        assert r.returncode == 0
    assert os.path.isdir(programs)
