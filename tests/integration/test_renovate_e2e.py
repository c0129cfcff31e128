"""Update detection with the real Renovate 44 on the full sandbox, through ``fluxup scan``.

The sandbox fleet's apps take their chart from the HTTP Helm repository or from an
OCIRepository in the OCI registry, and their image from that registry. The test releases
new ``demo-app`` versions there (:meth:`Fleet.publish`), runs ``fluxup scan`` as the
operator's ServiceAccount (the same scan path the operator's schedule takes: check out the
fleet through Flux's GitRepository, run Node 24 + Renovate 44 in lookup mode, map its
report, apply each versionPolicy, write the ManagedApps' status) and checks the exact
versions each app is offered; then it stops the registry, scans again, and checks that
what was known is kept and the condition names the registry. Renovate must never push.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fluxup.errors import SandboxError
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import stop_process, wait_until
from fluxup.sandbox.registry import DEMO_IMAGE_REPO, start_registry
from fluxup.sandbox.renovate import RenovateInstall, ensure_renovate, scan_env
from fluxup.sandbox.seed import DemoApp
from fluxup.sandbox.stack import Stack

pytestmark = [pytest.mark.sandbox, pytest.mark.full]

#: Released by the test before the apps are deployed; the up-to-date app runs it.
NEWEST = "3.1.0"
#: Released after the first scan and withdrawn again: a patch of the apps at 1.2.0.
PATCH = "1.2.1"


@pytest.fixture(scope="module")
def renovate() -> RenovateInstall:
    return ensure_renovate()


def _get(stack: Stack, app: DemoApp) -> dict[str, Any]:
    obj = stack.sandbox.get_json("managedapp", app.name, "-n", app.namespace)
    assert obj is not None, f"ManagedApp {app.namespace}/{app.name} is gone"
    return obj


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


@pytest.fixture(scope="module")
def apps(stack: Stack, fleet: Fleet) -> dict[str, DemoApp]:
    """Four apps, each with its ManagedApp Ready (Git file discovered):

    * ``helm``: chart 1.2.0 from the Helm repository, image 1.2.0 in its versionPolicy;
    * ``oci``: chart 1.2.0 from an OCIRepository, image not in its versionPolicy;
    * ``policy``: chart and image 1.0.0, constraints on both;
    * ``current``: chart and image at the newest version (nothing to offer).
    """
    fleet.publish(NEWEST)
    tag = secrets.token_hex(3)
    image = f"{fleet.registry_host}/{DEMO_IMAGE_REPO}"
    found = {
        "helm": (DemoApp(f"rh-{tag}", f"rh-{tag}", chart_version="1.2.0", image_tag="1.2.0"),
                 {"images": [{"name": image, "valuesPath": "image.tag"}]}),
        "oci": (DemoApp(f"ro-{tag}", f"ro-{tag}", source="oci", chart_version="1.2.0",
                        image_tag="1.2.0"), {}),
        "policy": (DemoApp(f"rp-{tag}", f"rp-{tag}"),
                   {"chart": {"constraint": "<2.0.0"},
                    "images": [{"name": image, "valuesPath": "image.tag",
                                "constraint": "~1.1"}]}),
        "current": (DemoApp(f"rc-{tag}", f"rc-{tag}", chart_version=NEWEST, image_tag=NEWEST),
                    {"images": [{"name": image, "valuesPath": "image.tag"}]}),
    }
    for app, _ in found.values():
        fleet.add_app(app)
    for app, policy in found.values():
        fleet.wait_released(app, app.chart_version)
        stack.enrol(app.namespace)
        body = {"apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
                "metadata": {"name": app.name, "namespace": app.namespace},
                "spec": {"helmReleaseRef": {"name": app.name}, "versionPolicy": policy}}
        stack.sandbox.kubectl("apply", "-f", "-", input=json.dumps(body))
    for app, _ in found.values():
        def discovered(app: DemoApp = app) -> dict[str, Any] | None:
            obj = _get(stack, app)
            ready = _conditions(obj).get("Ready", {}).get("status") == "True"
            git = (obj.get("status") or {}).get("git") or {}
            return obj if ready and git.get("file") else None

        try:
            wait_until(f"ManagedApp {app.name} Ready with its Git file", discovered, 120)
        except SandboxError:
            raise AssertionError(f"{json.dumps(_get(stack, app).get('status'), indent=1)}\n"
                                 f"{stack.operator_log_tail()}") from None
    return {key: app for key, (app, _) in found.items()}


def _scan(stack: Stack, fleet: Fleet, renovate: RenovateInstall,
          work: Path) -> subprocess.CompletedProcess[str]:
    """``fluxup scan`` as the operator's ServiceAccount (its shipped RBAC)."""
    env = scan_env(renovate, stack.work / "operator.kubeconfig", work, fleet.registry_host)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "fluxup", "scan"], env=env, text=True,
                          capture_output=True, timeout=240)
    print(f"fluxup scan: {time.monotonic() - started:.1f} s wall, exit {proc.returncode}: "
          f"{proc.stdout.strip()}")
    return proc


def _scanned(proc: subprocess.CompletedProcess[str], *apps: DemoApp) -> None:
    """The fleet's run worked and checked ``apps`` completely (other tests' apps in the
    session may have their own problems, which make the exit code 1)."""
    assert "Renovate scanned" in proc.stdout, proc.stdout + proc.stderr
    for app in apps:
        assert f"{app.namespace}/{app.name}:" not in proc.stdout, proc.stdout


def _updates(obj: dict[str, Any]) -> set[tuple[str, str, str | None, str, str]]:
    """``(source, name, valuesPath, version, type)`` of every candidate."""
    return {(c["source"], c["name"], c.get("valuesPath"), c["version"], c["type"])
            for c in (obj.get("status") or {}).get("availableUpdates") or []}


def _available(obj: dict[str, Any]) -> tuple[str | None, tuple[tuple[str, str], ...]] | None:
    found = (obj.get("status") or {}).get("availableUpdate")
    if not found:
        return None
    return found.get("version"), tuple((i["valuesPath"], i["tag"])
                                       for i in found.get("images") or [])


@pytest.fixture
def registry_down(stack: Stack) -> Iterator[None]:
    """Stop the OCI registry for the test's duration; start it again on its port."""
    sb = stack.sandbox
    pid = sb.pids.pop("oci-registry")
    assert stop_process(pid, sb.token)
    sb.save()
    try:
        yield
    finally:
        sb.pids["oci-registry"], _ = start_registry(sb.dir / "registry", sb.token, sb.logs,
                                                    port=sb.ports["registry"])
        sb.save()


Candidate = tuple[str, str, str | None, str, str]


def _chart(*versions: tuple[str, str]) -> set[Candidate]:
    return {("chart", "demo-app", None, v, t) for v, t in versions}


def _image(name: str, path: str | None, *versions: tuple[str, str]) -> set[Candidate]:
    return {("image", name, path, v, t) for v, t in versions}


def _checked(obj: dict[str, Any]) -> dict[str, Any]:
    return _conditions(obj)["UpdatesChecked"]


def _detected(obj: dict[str, Any], version: str) -> str:
    (found,) = [c["detectedAt"] for c in obj["status"]["availableUpdates"]
                if c["source"] == "chart" and c["version"] == version]
    return str(found)


def test_scan_offers_exactly_what_the_registries_have(
    stack: Stack, fleet: Fleet, apps: dict[str, DemoApp], renovate: RenovateInstall,
    tmp_path: Path,
) -> None:
    image = f"{fleet.registry_host}/{DEMO_IMAGE_REPO}".lower()
    majors = (("2.0.0", "major"), (NEWEST, "major"))
    refs = fleet.refs()

    scan = _scan(stack, fleet, renovate, tmp_path)
    _scanned(scan, *apps.values())
    helm, oci, policy, current = (_get(stack, apps[k]) for k in
                                  ("helm", "oci", "policy", "current"))
    # every major line's newest version, with Renovate's update type; the image of the
    # versionPolicy at its value path, other images listed without one
    assert _updates(helm) == _chart(*majors) | _image(image, "image.tag", *majors)
    assert _available(helm) == (NEWEST, (("image.tag", NEWEST),))
    assert _updates(oci) == _chart(*majors) | _image(image, None, *majors)
    assert _available(oci) == (NEWEST, ())  # an image without value path is never applied
    minors = (("1.1.0", "minor"), ("1.2.0", "minor"))
    assert _updates(policy) == _chart(*minors, *majors) | _image(image, "image.tag", *minors,
                                                                   *majors)
    # chart "<2.0.0", image "~1.1": every candidate is listed, the policy picks
    assert _available(policy) == ("1.2.0", (("image.tag", "1.1.0"),))
    assert _updates(current) == set()
    assert _available(current) is None
    assert _conditions(current)["UpdateAvailable"]["reason"] == "UpToDate"
    for obj in (helm, oci, policy, current):
        assert _checked(obj)["status"] == "True", _checked(obj)
        assert obj["status"]["git"]["file"] in _checked(obj)["message"]
    assert _conditions(helm)["UpdateAvailable"]["reason"] == "NewVersionDetected"
    listing = stack.sandbox.kubectl("get", "managedapp", "-n", apps["policy"].namespace).stdout
    assert "1.2.0" in listing.splitlines()[1], listing  # kubectl shows the Available column
    first_seen = _detected(helm, "2.0.0")

    fleet.publish(PATCH)
    try:
        scan = _scan(stack, fleet, renovate, tmp_path)
        _scanned(scan, *apps.values())
        helm, oci, policy = (_get(stack, apps[k]) for k in ("helm", "oci", "policy"))
        patch = ((PATCH, "patch"),)
        assert _updates(helm) == _chart(*patch, *majors) | _image(image, "image.tag", *patch,
                                                                   *majors)
        assert _updates(oci) == _chart(*patch, *majors) | _image(image, None, *patch, *majors)
        # the 1.2 line's newest is now 1.2.1: 1.2.0 is no longer offered, and is cleared
        newer = (("1.1.0", "minor"), (PATCH, "minor"))
        assert _updates(policy) == _chart(*newer, *majors) | _image(image, "image.tag", *newer,
                                                                     *majors)
        assert _available(policy) == (PATCH, (("image.tag", "1.1.0"),))
        assert _detected(helm, "2.0.0") == first_seen  # kept across scans
        assert _updates(_get(stack, apps["current"])) == set()
    finally:
        fleet.withdraw(PATCH)

    scan = _scan(stack, fleet, renovate, tmp_path)
    _scanned(scan, *apps.values())
    helm, policy = _get(stack, apps["helm"]), _get(stack, apps["policy"])
    assert _updates(helm) == _chart(*majors) | _image(image, "image.tag", *majors)
    assert _available(policy) == ("1.2.0", (("image.tag", "1.1.0"),))
    assert fleet.refs() == refs  # Renovate made no branch, commit or tag


def test_unreachable_registry_keeps_updates_and_names_it(
    stack: Stack, fleet: Fleet, apps: dict[str, DemoApp], renovate: RenovateInstall,
    tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    image = f"{fleet.registry_host}/{DEMO_IMAGE_REPO}".lower()
    majors = (("2.0.0", "major"), (NEWEST, "major"))
    refs = fleet.refs()
    scan = _scan(stack, fleet, renovate, tmp_path)
    _scanned(scan, *apps.values())
    before = {k: _get(stack, apps[k])["status"] for k in ("helm", "oci")}
    assert _updates({"status": before["oci"]}) == (_chart(*majors)
                                                   | _image(image, None, *majors))

    request.getfixturevalue("registry_down")
    scan = _scan(stack, fleet, renovate, tmp_path)
    assert scan.returncode == 1, scan.stdout + scan.stderr  # the run worked, the lookups not
    assert "Renovate scanned" in scan.stdout, scan.stdout
    for app in (apps["helm"], apps["oci"]):
        assert f"not fully checked: {app.namespace}/{app.name}: " in scan.stdout, scan.stdout
    helm, oci = _get(stack, apps["helm"]), _get(stack, apps["oci"])
    for obj, old in ((helm, before["helm"]), (oci, before["oci"])):
        # what the registry served is kept (the Helm repository's chart is checked anew)
        assert obj["status"]["availableUpdates"] == old["availableUpdates"]
        assert obj["status"]["availableUpdate"] == old["availableUpdate"]
        checked = _checked(obj)
        assert (checked["status"], checked["reason"]) == ("False", "RenovateFailed"), checked
        assert fleet.registry_host in checked["message"], checked
        assert "kept" in checked["message"], checked
    assert fleet.refs() == refs


def _restart_operator(stack: Stack, env: dict[str, str | None]) -> None:
    for key, value in env.items():
        if value is None:
            stack.operator_env.pop(key, None)
        else:
            stack.operator_env[key] = value
    pid = stack.sandbox.pids.pop("fluxup-operator", None)
    if pid:
        stop_process(pid, stack.sandbox.token)
    stack.start_operator()


def test_operator_schedule_scans_when_it_starts(
    stack: Stack, fleet: Fleet, apps: dict[str, DemoApp], renovate: RenovateInstall,
) -> None:
    app = apps["helm"]
    image = f"{fleet.registry_host}/{DEMO_IMAGE_REPO}".lower()
    majors = (("2.0.0", "major"), (NEWEST, "major"))
    # forget what earlier scans found: only the operator's own scan can bring it back
    stack.sandbox.kubectl("patch", "managedapp", app.name, "-n", app.namespace,
                          "--subresource=status", "--type=merge", "-p", json.dumps(
                              {"status": {"availableUpdates": None, "availableUpdate": None}}))
    assert _updates(_get(stack, app)) == set()
    settings: dict[str, str | None] = {
        "FLUXUP_RENOVATE_INTERVAL_SECONDS": "3600",  # the first scan runs at start
        "FLUXUP_RENOVATE_NODE": str(renovate.node),
        "FLUXUP_RENOVATE_JS": str(renovate.renovate_js),
        "FLUXUP_RENOVATE_INSECURE_REGISTRIES": fleet.registry_host,
        "FLUXUP_RENOVATE_INTERNAL_HOSTS": "127.0.0.1",
    }
    _restart_operator(stack, settings)
    try:
        def scanned() -> dict[str, Any] | None:
            obj = _get(stack, app)
            return obj if _updates(obj) else None

        try:
            obj = wait_until("the operator's scheduled scan", scanned, 240, interval=2)
        except SandboxError:
            raise AssertionError(stack.operator_log_tail()) from None
        assert _updates(obj) == _chart(*majors) | _image(image, "image.tag", *majors)
        assert _available(obj) == (NEWEST, (("image.tag", NEWEST),))
        assert _checked(obj)["status"] == "True"
    finally:
        _restart_operator(stack, dict.fromkeys(settings))


#: Released by the autoUpdate test (and withdrawn after it): a patch of the 1.0 line.
AUTO_PATCH = "1.0.1"


def _upgrade_requests(stack: Stack, app: DemoApp) -> list[dict[str, Any]]:
    found = stack.sandbox.get_json("upgraderequest", "-n", app.namespace) or {}
    return list(found.get("items") or [])


def test_auto_update_patch_upgrades_without_a_human_and_a_minor_waits(
    stack: Stack, fleet: Fleet, renovate: RenovateInstall, tmp_path: Path,
) -> None:
    """``autoUpdate: patch``: the scan that finds a patch starts the upgrade itself (gate,
    snapshots, Git commit, release: Succeeded); an app whose only candidates are minor or
    major gets none, they wait in the inbox for a person."""
    tag = secrets.token_hex(3)
    patchy = DemoApp(f"ap-{tag}", f"ap-{tag}")  # chart 1.0.0: 1.0.1 is a patch
    minor = DemoApp(f"am-{tag}", f"am-{tag}", chart_version="1.1.0")  # 1.2.0 is a minor
    policy = {"chart": {"autoUpdate": "patch"}}
    for app in (patchy, minor):
        fleet.add_app(app)
    for app in (patchy, minor):
        fleet.wait_released(app, app.chart_version)
        stack.enrol(app.namespace)
        stack.sandbox.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
            "metadata": {"name": app.name, "namespace": app.namespace},
            "spec": {"helmReleaseRef": {"name": app.name}, "versionPolicy": policy}}))

        def discovered(app: DemoApp = app) -> bool:
            obj = _get(stack, app)
            ready = _conditions(obj).get("Ready", {}).get("status") == "True"
            return ready and bool(((obj.get("status") or {}).get("git") or {}).get("file"))

        wait_until(f"ManagedApp {app.name} Ready with its Git file", discovered, 120)
    fleet.publish(AUTO_PATCH)
    try:
        scan = _scan(stack, fleet, renovate, tmp_path)
        _scanned(scan, patchy, minor)
        # availableUpdate is the newest the policy allows; autoUpdate picks within its level
        assert _chart((AUTO_PATCH, "patch")) <= _updates(_get(stack, patchy))
        assert _chart(("1.2.0", "minor")) <= _updates(_get(stack, minor))
        assert not any(src == "chart" and t == "patch"
                       for src, *_, t in _updates(_get(stack, minor)))
        # the scan decided: one automatic request for the patch, none for the minor
        (auto,) = _upgrade_requests(stack, patchy)
        assert auto["spec"]["origin"] == "renovate", auto["spec"]
        assert auto["spec"]["targetVersion"] == AUTO_PATCH, auto["spec"]
        assert _upgrade_requests(stack, minor) == []

        def finished() -> dict[str, Any] | None:
            obj = stack.sandbox.get_json("upgraderequest", auto["metadata"]["name"], "-n",
                                         patchy.namespace) or {}
            done = (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            return obj if done else None

        try:
            done = wait_until("the automatic upgrade to finish", finished, 360, interval=2)
        except SandboxError:
            raise AssertionError(stack.operator_log_tail()) from None
        assert done["status"]["phase"] == "Succeeded", json.dumps(done["status"], indent=1)
        snapshots = stack.sandbox.get_json("volumesnapshot", "-n", patchy.namespace) or {}
        assert snapshots.get("items"), "the automatic upgrade took no snapshots"
        assert all(s["status"]["readyToUse"] for s in snapshots["items"])
        hr = stack.sandbox.get_json("helmrelease", patchy.name, "-n", patchy.namespace) or {}
        assert hr["status"]["history"][0]["chartVersion"] == AUTO_PATCH
        assert any(AUTO_PATCH in m for m in fleet.log(20))  # committed to Git
        # a later scan starts nothing new: the minor still waits for a person
        scan = _scan(stack, fleet, renovate, tmp_path)
        _scanned(scan, patchy, minor)
        assert _upgrade_requests(stack, minor) == []
        assert len(_upgrade_requests(stack, patchy)) == 1
    finally:
        fleet.withdraw(AUTO_PATCH)
