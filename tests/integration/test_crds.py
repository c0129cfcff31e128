"""FluxUp's CRDs against the real sandbox kube-apiserver.

The CRDs install and are Established; every sample is accepted (server-side apply and
server dry-run) and the server applies the same defaults as the models; the status
examples the operator would write are accepted on the status subresource and shown in
the printer columns; invalid objects are rejected with the message each rule promises;
short names and the ``fluxup`` category work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxup.api import constants
from fluxup.api.managedapp import ManagedApp
from fluxup.api.rollbackrequest import RollbackRequest
from fluxup.api.upgraderequest import UpgradeRequest, UpgradeRequestStatus
from fluxup.sandbox.controlplane import Sandbox
from tests.api.examples import STATUS_EXAMPLES

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
SAMPLE_FILES = sorted((REPO / "manifests" / "samples").glob("*.yaml"))
KINDS = (constants.MANAGED_APP, constants.UPGRADE_REQUEST, constants.ROLLBACK_REQUEST)
MODELS: dict[str, Any] = {
    "ManagedApp": ManagedApp,
    "UpgradeRequest": UpgradeRequest,
    "RollbackRequest": RollbackRequest,
}


def apply(sandbox: Sandbox, namespace: str, obj: dict[str, Any], *extra: str) -> Any:
    """Server-side apply ``obj``; return the proc (check=False) so tests can look at errors."""
    return sandbox.kubectl(
        "apply",
        "--server-side",
        "--field-manager=fluxup-tests",
        "-n",
        namespace,
        "-o",
        "json",
        *extra,
        "-f",
        "-",
        input=json.dumps(obj),
        check=False,
    )


def apply_ok(sandbox: Sandbox, namespace: str, obj: dict[str, Any], *extra: str) -> Any:
    proc = apply(sandbox, namespace, obj, *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def sample(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "manifests" / "samples" / name).read_text())
    return doc


def test_crds_are_established_with_their_names(sandbox: Sandbox, fluxup_crds: list[Path]) -> None:
    assert {p.name for p in fluxup_crds} >= {
        "fluxup.dev_managedapps.yaml",
        "fluxup.dev_upgraderequests.yaml",
        "fluxup.dev_rollbackrequests.yaml",
    }
    for kind in KINDS:
        crd = json.loads(sandbox.kubectl("get", "crd", kind.crd_name, "-o", "json").stdout)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True"
        assert conditions["NamesAccepted"] == "True"
        accepted = crd["status"]["acceptedNames"]
        assert accepted["shortNames"] == [kind.short_name]
        assert accepted["categories"] == [constants.CATEGORY]
    resources = sandbox.kubectl("api-resources", f"--api-group={constants.GROUP}", "-o", "wide")
    for kind in KINDS:
        assert kind.plural in resources.stdout
        assert kind.short_name in resources.stdout


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.stem)
def test_sample_is_accepted_and_defaulted_like_the_model(
    sandbox: Sandbox, fluxup_crds: list[Path], namespace: str, path: Path
) -> None:
    for doc in (d for d in yaml.safe_load_all(path.read_text()) if d):
        dry = apply_ok(sandbox, namespace, doc, "--dry-run=server")
        stored = apply_ok(sandbox, namespace, doc)
        assert dry["spec"] == stored["spec"]
        model = MODELS[doc["kind"]].from_dict(stored)
        # the apiserver's structural defaults are exactly the model's defaults
        assert model.to_dict()["spec"] == stored["spec"]
        assert MODELS[doc["kind"]].from_dict(doc).to_dict()["spec"] == stored["spec"]
        assert model.metadata.namespace == namespace
        assert model.metadata.uid


@pytest.mark.parametrize(
    ("kind", "sample_file"),
    [
        ("ManagedApp", "managedapp-images.yaml"),
        ("UpgradeRequest", "upgraderequest.yaml"),
        ("RollbackRequest", "rollbackrequest.yaml"),
    ],
)
def test_status_written_by_the_operator_is_accepted(
    sandbox: Sandbox, fluxup_crds: list[Path], namespace: str, kind: str, sample_file: str
) -> None:
    obj = apply_ok(sandbox, namespace, sample(sample_file))
    model = MODELS[kind].from_dict(obj)
    status_cls = type(model.status)
    status = status_cls.from_dict(STATUS_EXAMPLES[kind])
    patch = {"status": status.to_dict(nulls=True)}
    plural = next(k.plural for k in KINDS if k.kind == kind)
    name = obj["metadata"]["name"]
    proc = sandbox.kubectl(
        "patch",
        plural,
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(patch),
        "-o",
        "json",
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    stored = json.loads(proc.stdout)
    assert stored["status"] == STATUS_EXAMPLES[kind]  # nothing pruned, nothing changed
    assert MODELS[kind].from_dict(stored).status == status


def test_merge_patch_with_nulls_removes_what_the_model_leaves_unset(
    sandbox: Sandbox, fluxup_crds: list[Path], namespace: str
) -> None:
    obj = apply_ok(sandbox, namespace, sample("upgraderequest.yaml"))
    name = obj["metadata"]["name"]

    def patch_status(status: UpgradeRequestStatus) -> dict[str, Any]:
        proc = sandbox.kubectl(
            "patch",
            "upgraderequests",
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status.to_dict(nulls=True)}),
            "-o",
            "json",
        )
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    full = UpgradeRequestStatus.from_dict(STATUS_EXAMPLES["UpgradeRequest"])
    patch_status(full)
    smaller = UpgradeRequestStatus.from_dict({"phase": "Snapshotting", "message": "2 of 2"})
    stored = patch_status(smaller)
    assert stored["status"] == {"phase": "Snapshotting", "message": "2 of 2"}


def table_headers(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if line.startswith("NAME")]


def test_printer_columns_and_category(
    sandbox: Sandbox, fluxup_crds: list[Path], namespace: str
) -> None:
    names = set()
    for path in SAMPLE_FILES:
        for doc in (d for d in yaml.safe_load_all(path.read_text()) if d):
            obj = apply_ok(sandbox, namespace, doc)
            names.add(f"{obj['kind'].lower()}.{constants.GROUP}/{obj['metadata']['name']}")

    out = sandbox.kubectl("get", "managedapps,upgraderequests,rollbackrequests", "-n", namespace)
    headers = table_headers(out.stdout)
    assert ["NAME", "CURRENT", "AVAILABLE", "READY", "AGE"] in headers
    assert ["NAME", "APP", "TARGET", "PHASE", "AGE"] in headers
    assert ["NAME", "APP", "FROM", "TO", "PHASE", "AGE"] in headers
    wide = sandbox.kubectl("get", "managedapps", "-n", namespace, "-o", "wide")
    assert table_headers(wide.stdout) == [
        ["NAME", "HELMRELEASE", "CURRENT", "AVAILABLE", "READY", "STATUS", "AGE"]
    ]

    # the category and the short names list every FluxUp object
    category = sandbox.kubectl("get", constants.CATEGORY, "-n", namespace, "-o", "name")
    assert set(category.stdout.split()) == names
    short = ",".join(k.short_name for k in KINDS)
    assert set(sandbox.kubectl("get", short, "-n", namespace, "-o", "name").stdout.split()) == names

    # the columns read the fields the operator writes
    status = json.dumps({"status": STATUS_EXAMPLES["ManagedApp"]})
    sandbox.kubectl(
        "patch",
        "managedapp",
        "podinfo",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    )
    row = sandbox.kubectl("get", "fma", "podinfo", "-n", namespace, "--no-headers").stdout.split()
    assert row[:4] == ["podinfo", "6.5.3", "6.5.4", "True"]
    status = json.dumps({"status": {"phase": "Upgrading"}})
    sandbox.kubectl(
        "patch",
        "upgraderequest",
        "paperless-0-24-1",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    )
    row = sandbox.kubectl(
        "get", "fur", "paperless-0-24-1", "-n", namespace, "--no-headers"
    ).stdout.split()
    assert row[:4] == ["paperless-0-24-1", "paperless", "0.24.1", "Upgrading"]
    status = json.dumps({"status": {"phase": "RestoringVolumes", "managedApp": "paperless",
                                    "fromVersion": "0.24.1", "toVersion": "0.24.0"}})
    sandbox.kubectl("patch", "rollbackrequest", "paperless-0-24-1-rollback", "-n", namespace,
                    "--subresource=status", "--type=merge", "-p", status)
    row = sandbox.kubectl(
        "get", "frr", "paperless-0-24-1-rollback", "-n", namespace, "--no-headers", "-o", "wide"
    ).stdout.split()
    assert row[:5] == ["paperless-0-24-1-rollback", "paperless", "0.24.1", "0.24.0",
                       "RestoringVolumes"]
    assert row[6] == "paperless-0-24-1"  # wide: the UpgradeRequest it undoes


# --- rejected objects -----------------------------------------------------------------


def managed_app(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fluxup.dev/v1alpha1",
        "kind": "ManagedApp",
        "metadata": {"name": "podinfo"},
        "spec": {"helmReleaseRef": {"name": "podinfo"}, **spec},
    }


def upgrade_request(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fluxup.dev/v1alpha1",
        "kind": "UpgradeRequest",
        "metadata": {"name": "podinfo-6-5-4"},
        "spec": {"managedAppRef": {"name": "podinfo"}, **spec},
    }


def rollback_request(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fluxup.dev/v1alpha1",
        "kind": "RollbackRequest",
        "metadata": {"name": "undo"},
        "spec": spec,
    }


def without(doc: dict[str, Any], *path: str) -> dict[str, Any]:
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return doc


INVALID = [
    # --- types, required fields, enums, formats
    ("missing-spec", without(managed_app(), "spec"), "spec: Required value"),
    (
        "missing-helmReleaseRef",
        without(managed_app(), "spec", "helmReleaseRef"),
        "spec.helmReleaseRef: Required value",
    ),
    (
        "bool-wrong-type",
        managed_app(suspend="yes"),
        'spec.suspend: Invalid value: "string": spec.suspend in body must be of type boolean',
    ),
    (
        "int-wrong-type",
        managed_app(volumeSnapshots={"retentionPolicy": {"keepLast": "3"}}),
        "spec.volumeSnapshots.retentionPolicy.keepLast in body must be of type integer",
    ),
    (
        "list-wrong-type",
        managed_app(volumeSnapshots={"pvcs": "data-0"}),
        "spec.volumeSnapshots.pvcs in body must be of type array",
    ),
    (
        "bad-autoUpdate",
        managed_app(versionPolicy={"chart": {"autoUpdate": "always"}}),
        'spec.versionPolicy.chart.autoUpdate: Unsupported value: "always": supported values: '
        '"none", "patch", "minor", "major"',
    ),
    (
        "bad-workload-kind",
        managed_app(quiesce={"workloads": [{"kind": "DaemonSet", "name": "x"}]}),
        'spec.quiesce.workloads[0].kind: Unsupported value: "DaemonSet"',
    ),
    (
        "bad-pvc-name",
        managed_app(volumeSnapshots={"pvcs": [{"name": "Data_0"}]}),
        "spec.volumeSnapshots.pvcs[0].name in body should match",
    ),
    (
        "bad-namespace",
        managed_app(helmReleaseRef={"name": "x", "namespace": "a.b"}),
        "spec.helmReleaseRef.namespace in body should match",
    ),
    (
        "bad-values-path",
        managed_app(versionPolicy={"images": [{"name": "ghcr.io/x/y", "valuesPath": "image/tag"}]}),
        "spec.versionPolicy.images[0].valuesPath in body should match",
    ),
    (
        "duplicate-values-path",
        managed_app(
            versionPolicy={
                "images": [
                    {"name": "ghcr.io/x/y", "valuesPath": "image.tag"},
                    {"name": "ghcr.io/x/z", "valuesPath": "image.tag"},
                ]
            }
        ),
        "spec.versionPolicy.images[1]: Duplicate value",
    ),
    (
        "bad-expected-status",
        managed_app(healthCheck={"http": {"url": "http://x", "expectedStatus": 99}}),
        "spec.healthCheck.http.expectedStatus in body should be greater than or equal to 100",
    ),
    (
        "too-many-pvcs",
        managed_app(volumeSnapshots={"pvcs": [{"name": f"p{i}"} for i in range(65)]}),
        "spec.volumeSnapshots.pvcs: Too many: 65: must have at most 64 items",
    ),
    (
        "duration-pattern",
        managed_app(timeouts={"apply": "1d"}),
        "spec.timeouts.apply in body should match '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$'",
    ),
    (
        "maxAge-pattern",
        managed_app(volumeSnapshots={"retentionPolicy": {"maxAge": "7 days"}}),
        "spec.volumeSnapshots.retentionPolicy.maxAge in body should match",
    ),
    (
        "bad-origin",
        upgrade_request(origin="github"),
        'spec.origin: Unsupported value: "github": supported values: "ui", "kubectl", "git", '
        '"renovate"',
    ),
    (
        "missing-managedAppRef",
        without(upgrade_request(), "spec", "managedAppRef"),
        "spec.managedAppRef: Required value",
    ),
    (
        "version-range",
        upgrade_request(targetVersion="12.x"),
        "spec.targetVersion in body should match",
    ),
    (
        "bad-tag",
        upgrade_request(targetImages=[{"valuesPath": "image.tag", "tag": "1.0 beta"}]),
        "spec.targetImages[0].tag in body should match",
    ),
    (
        "missing-tag",
        upgrade_request(targetImages=[{"valuesPath": "image.tag"}]),
        "spec.targetImages[0].tag: Required value",
    ),
    (
        "bad-rollback-origin",
        rollback_request(snapshotRef={"name": "s"}, origin="renovate"),
        'spec.origin: Unsupported value: "renovate"',
    ),
    # --- CEL rules, one case each
    (
        "cel-keepLast",
        managed_app(volumeSnapshots={"retentionPolicy": {"keepLast": 0}}),
        "spec.volumeSnapshots.retentionPolicy.keepLast: Invalid value: 0: keepLast must be at "
        "least 1",
    ),
    (
        "cel-maxAge",
        managed_app(volumeSnapshots={"retentionPolicy": {"maxAge": "30s"}}),
        'spec.volumeSnapshots.retentionPolicy.maxAge: Invalid value: "30s": maxAge must be at '
        "least 1m",
    ),
    (
        "cel-timeout-zero",
        managed_app(timeouts={"snapshot": "0s"}),
        'spec.timeouts.snapshot: Invalid value: "0s": timeouts must be between 1s and 168h',
    ),
    (
        "cel-timeout-huge",
        managed_app(timeouts={"restore": "200h"}),
        'spec.timeouts.restore: Invalid value: "200h": timeouts must be between 1s and 168h',
    ),
    (
        "cel-health-timeout",
        managed_app(healthCheck={"timeout": "500ms"}),
        'spec.healthCheck.timeout: Invalid value: "500ms": timeout must be between 1s and 168h',
    ),
    (
        "cel-duplicate-pvc",
        managed_app(volumeSnapshots={"pvcs": [{"name": "data"}, {"name": "data"}]}),
        "spec.volumeSnapshots.pvcs: Invalid value: pvcs must not list the same PVC twice",
    ),
    (
        "cel-autoRollback-needs-snapshots",
        managed_app(autoRollback=True, volumeSnapshots={"enabled": False}),
        "spec: Invalid value: autoRollback requires volumeSnapshots.enabled",
    ),
    (
        "cel-quiesce-needs-snapshots",
        managed_app(quiesce={"enabled": True}, volumeSnapshots={"enabled": False}),
        "spec: Invalid value: quiesce.enabled requires volumeSnapshots.enabled",
    ),
    (
        "cel-http-url",
        managed_app(healthCheck={"http": {"url": "/healthz"}}),
        'spec.healthCheck.http.url: Invalid value: "/healthz": url must be an absolute http:// '
        "or https:// URL",
    ),
    (
        "cel-http-scheme",
        managed_app(healthCheck={"http": {"url": "ftp://files/x"}}),
        "url must be an absolute http:// or https:// URL",
    ),
    (
        "cel-gitPath",
        managed_app(gitPath="apps/../../secrets.yaml"),
        'spec.gitPath: Invalid value: "apps/../../secrets.yaml": gitPath must stay inside the '
        "repository",
    ),
    (
        "cel-managedapp-name",
        {**managed_app(), "metadata": {"name": "a" * 64}},
        "ManagedApp names are at most 63 characters",
    ),
    (
        "cel-upgraderequest-name",
        {**upgrade_request(), "metadata": {"name": "u" * 64}},
        "UpgradeRequest names are at most 63 characters",
    ),
    (
        "cel-git-origin-needs-target",
        upgrade_request(origin="git"),
        "spec: Invalid value: origin git requires targetVersion or targetImages",
    ),
    (
        "cel-git-origin-no-dry-run",
        upgrade_request(origin="git", targetVersion="1.2.3", dryRun=True),
        "spec: Invalid value: dryRun cannot be combined with origin git",
    ),
    (
        "cel-rollback-both-refs",
        rollback_request(upgradeRequestRef={"name": "u"}, snapshotRef={"name": "s"}),
        "spec: Invalid value: set exactly one of upgradeRequestRef or snapshotRef",
    ),
    (
        "window-empty",
        managed_app(versionPolicy={"maintenanceWindow": {"start": "02:00", "end": "02:00"}}),
        "maintenanceWindow start and end must differ",
    ),
    (
        "window-bad-time",
        managed_app(versionPolicy={"maintenanceWindow": {"start": "24:00", "end": "02:00"}}),
        "spec.versionPolicy.maintenanceWindow.start in body should match",
    ),
    (
        "window-bad-day",
        managed_app(versionPolicy={"maintenanceWindow": {"start": "01:00", "end": "02:00",
                                                         "days": ["Sat", "Caturday"]}}),
        'spec.versionPolicy.maintenanceWindow.days[1]: Unsupported value: "Caturday"',
    ),
    (
        "window-day-twice",
        managed_app(versionPolicy={"maintenanceWindow": {"start": "01:00", "end": "02:00",
                                                         "days": ["Sat", "Sat"]}}),
        'spec.versionPolicy.maintenanceWindow.days[1]: Duplicate value: "Sat"',
    ),
    (
        "window-bad-zone",
        managed_app(versionPolicy={"maintenanceWindow": {"start": "01:00", "end": "02:00",
                                                         "timeZone": "../etc/passwd"}}),
        "spec.versionPolicy.maintenanceWindow.timeZone in body should match",
    ),
    (
        "cel-rollback-no-ref",
        rollback_request(),
        "spec: Invalid value: set exactly one of upgradeRequestRef or snapshotRef",
    ),
]


@pytest.mark.parametrize(
    ("obj", "message"), [pytest.param(obj, msg, id=case) for case, obj, msg in INVALID]
)
def test_invalid_object_is_rejected(
    sandbox: Sandbox, fluxup_crds: list[Path], namespace: str, obj: dict[str, Any], message: str
) -> None:
    # POST (kubectl create) reports the schema's own messages, for a dry run and for real
    for extra in (("--dry-run=server",), ()):
        proc = sandbox.kubectl(
            "create", "-n", namespace, *extra, "-f", "-", input=json.dumps(obj), check=False
        )
        assert proc.returncode != 0, f"accepted: {json.dumps(obj)}"
        assert f'{obj["kind"]} "{obj["metadata"]["name"]}" is invalid' in proc.stderr
        assert message in proc.stderr
    # server-side apply is refused too (type errors already when building the typed patch)
    proc = apply(sandbox, namespace, obj)
    assert proc.returncode != 0, f"accepted: {json.dumps(obj)}"
    assert sandbox.kubectl("get", "fluxup", "-n", namespace, "-o", "name").stdout == ""


@pytest.mark.parametrize(
    ("sample_file", "change"),
    [
        ("upgraderequest.yaml", {"targetVersion": "0.25.0"}),
        ("upgraderequest.yaml", {"skipSnapshot": True}),
        ("rollbackrequest.yaml", {"upgradeRequestRef": {"name": "another"}}),
        ("rollbackrequest-snapshot.yaml", {"origin": "kubectl"}),
    ],
)
def test_request_specs_are_immutable(
    sandbox: Sandbox,
    fluxup_crds: list[Path],
    namespace: str,
    sample_file: str,
    change: dict[str, Any],
) -> None:
    doc = sample(sample_file)
    created = apply_ok(sandbox, namespace, doc)
    changed = {**doc, "spec": {**doc["spec"], **change}}
    proc = apply(sandbox, namespace, changed)
    assert proc.returncode != 0
    assert f'{doc["kind"]} "{doc["metadata"]["name"]}" is invalid' in proc.stderr
    assert "spec: Invalid value: spec is immutable" in proc.stderr
    # what the operator does to a request stays possible: metadata and status writes
    name, plural = created["metadata"]["name"], f"{doc['kind'].lower()}s"
    sandbox.kubectl("label", plural, name, "-n", namespace, "fluxup.dev/managed-app=paperless")
    sandbox.kubectl(
        "patch",
        plural,
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata": {"finalizers": ["fluxup.dev/cleanup"]}}',
    )
    sandbox.kubectl(
        "patch",
        plural,
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"phase": "Pending"}}',
    )
    sandbox.kubectl(
        "patch",
        plural,
        name,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata": {"finalizers": null}}',
    )
    # re-applying the unchanged spec is fine too (server-side apply is idempotent)
    apply_ok(sandbox, namespace, doc)


def test_managedapp_spec_can_change(
    sandbox: Sandbox, fluxup_crds: list[Path], namespace: str
) -> None:
    doc = sample("managedapp.yaml")
    apply_ok(sandbox, namespace, doc)
    doc["spec"]["volumeSnapshots"]["retentionPolicy"]["keepLast"] = 5
    stored = apply_ok(sandbox, namespace, doc)
    assert stored["spec"]["volumeSnapshots"]["retentionPolicy"]["keepLast"] == 5
    assert stored["metadata"]["generation"] == 2
