"""Discovery of what a ManagedApp covers: release name, chart source, Kustomization,
deployed version, PVCs, workloads and the VolumeSnapshotClass."""

from __future__ import annotations

from typing import Any

import pytest

from fluxup.logic.discovery import (
    DEFAULT_CLASS_ANNOTATION,
    HELM_NAME_LABEL,
    HELM_NAMESPACE_LABEL,
    INSTANCE_LABEL,
    KUSTOMIZE_NAME_LABEL,
    KUSTOMIZE_NAMESPACE_LABEL,
    ChartSource,
    Workload,
    choose_snapshot_class,
    determine_chart_source,
    determine_deployed_version,
    determine_kustomization,
    determine_pvcs,
    determine_release_name,
    determine_workloads,
    release_selectors,
)

Obj = dict[str, Any]


def helm_release(name: str = "podinfo", namespace: str = "apps", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def pvc(name: str) -> Obj:
    return {"metadata": {"name": name}}


def claim_volumes(*claims: str) -> list[Obj]:
    return [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
    ]


def statefulset(
    name: str,
    replicas: int | None,
    templates: tuple[str, ...] = (),
    volumes: tuple[str, ...] = (),
    ready: int | None = None,
) -> Obj:
    spec: Obj = {
        "volumeClaimTemplates": [{"metadata": {"name": t}} for t in templates],
        "template": {"spec": {"volumes": claim_volumes(*volumes)}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    obj: Obj = {"metadata": {"name": name}, "spec": spec}
    if ready is not None:
        obj["status"] = {"readyReplicas": ready}
    return obj


def deployment(
    name: str, replicas: int | None, volumes: tuple[str, ...] = (), ready: int | None = None
) -> Obj:
    spec: Obj = {
        "template": {
            "spec": {
                "volumes": [
                    {"name": "config", "configMap": {"name": "cfg"}},
                    {"name": "scratch", "emptyDir": {}},
                    *claim_volumes(*volumes),
                ]
            }
        }
    }
    if replicas is not None:
        spec["replicas"] = replicas
    obj: Obj = {"metadata": {"name": name}, "spec": spec}
    if ready is not None:
        obj["status"] = {"readyReplicas": ready}
    return obj


def pod(name: str, *claims: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {"volumes": claim_volumes(*claims)}}


def snapshot_class(name: str, driver: str, default: str | None = None) -> Obj:
    meta: Obj = {"name": name}
    if default is not None:
        meta["annotations"] = {DEFAULT_CLASS_ANNOTATION: default}
    return {"metadata": meta, "driver": driver, "deletionPolicy": "Delete"}


# --- release name ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(helm_release("podinfo"), "podinfo", id="metadata-name"),
        pytest.param(
            helm_release("podinfo", targetNamespace="web"),
            "web-podinfo",
            id="target-namespace-prefix",
        ),
        pytest.param(
            helm_release("podinfo", releaseName="custom"), "custom", id="explicit-release-name"
        ),
        pytest.param(
            helm_release("podinfo", releaseName="custom", targetNamespace="web"),
            "custom",
            id="explicit-wins-over-target-namespace",
        ),
        pytest.param(
            helm_release("podinfo", releaseName="", targetNamespace="web"),
            "web-podinfo",
            id="empty-release-name-ignored",
        ),
        pytest.param(
            helm_release("podinfo", targetNamespace=""),
            "podinfo",
            id="empty-target-namespace-ignored",
        ),
        pytest.param(helm_release("a" * 53), "a" * 53, id="exactly-53-kept"),
        pytest.param(
            helm_release("b" * 49, targetNamespace="web"),
            "web-" + "b" * 49,
            id="exactly-53-with-target-kept",
        ),
        # Known answers of helm-controller's ShortenName (first 40 characters, "-",
        # first 12 hex characters of the SHA-256 of the full name).
        pytest.param(
            helm_release("release-name-with-very-long-name-which-is-longer-than-53-characters"),
            "release-name-with-very-long-name-which-i-788ca0d0d7b0",
            id="long-name-shortened",
        ),
        pytest.param(
            helm_release(
                "another-release-name-with-very-long-name-which-is-longer-than-53-characters"
            ),
            "another-release-name-with-very-long-name-7e72150d5a36",
            id="other-long-name-shortened",
        ),
        pytest.param(
            helm_release(
                "podinfo-with-a-rather-long-helmrelease-name", targetNamespace="apps-production-eu"
            ),
            "apps-production-eu-podinfo-with-a-rather-d1bf102c777b",
            id="long-target-namespace-name-shortened",
        ),
    ],
)
def test_release_name(obj: Obj, expected: str) -> None:
    assert determine_release_name(obj) == expected
    assert len(determine_release_name(obj)) <= 53


@pytest.mark.parametrize("length", [54, 60, 120, 253])
def test_long_release_names_are_53_characters_and_distinct(length: int) -> None:
    one = determine_release_name(helm_release("x" * length))
    other = determine_release_name(helm_release("x" * (length - 1) + "y"))
    assert len(one) == len(other) == 53
    assert one[:41] == "x" * 40 + "-"
    assert one != other  # same 40-character prefix, different hash


def test_release_selectors_use_helm_labels_and_instance_label() -> None:
    obj = helm_release("podinfo", namespace="apps", targetNamespace="web")
    assert release_selectors(obj) == [
        {HELM_NAME_LABEL: "podinfo", HELM_NAMESPACE_LABEL: "apps"},
        {INSTANCE_LABEL: "web-podinfo"},
    ]


# --- chart source ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {
                "chart": {
                    "spec": {
                        "chart": "podinfo",
                        "version": "6.5.3",
                        "sourceRef": {
                            "kind": "HelmRepository",
                            "name": "podinfo",
                            "namespace": "flux-system",
                        },
                    }
                }
            },
            ChartSource("HelmRepository", "podinfo", "flux-system", "podinfo", "6.5.3"),
            id="chart-with-namespace",
        ),
        pytest.param(
            {
                "chart": {
                    "spec": {
                        "chart": "podinfo",
                        "version": "6.5.3",
                        "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                    }
                }
            },
            ChartSource("HelmRepository", "podinfo", "apps", "podinfo", "6.5.3"),
            id="chart-namespace-defaults-to-release",
        ),
        pytest.param(
            {
                "chart": {
                    "spec": {
                        "chart": "./charts/app",
                        "version": "1.0.0",
                        "sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": ""},
                    }
                }
            },
            ChartSource("GitRepository", "repo", "apps", "./charts/app", "1.0.0"),
            id="git-repository-empty-namespace-defaults",
        ),
        pytest.param(
            {"chart": {"spec": {"chart": "app", "sourceRef": {"kind": "Bucket", "name": "b"}}}},
            ChartSource("Bucket", "b", "apps", "app", ""),
            id="bucket-without-version",
        ),
        pytest.param(
            {"chart": {"spec": {"chart": "app", "version": None, "sourceRef": {"name": "repo"}}}},
            ChartSource("HelmRepository", "repo", "apps", "app", ""),
            id="kind-defaults-to-helm-repository-null-version",
        ),
        pytest.param(
            {"chartRef": {"kind": "OCIRepository", "name": "podinfo", "namespace": "sources"}},
            ChartSource("OCIRepository", "podinfo", "sources", via_chart_ref=True),
            id="chart-ref-with-namespace",
        ),
        pytest.param(
            {"chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
            ChartSource("OCIRepository", "podinfo", "apps", via_chart_ref=True),
            id="chart-ref-namespace-defaults-to-release",
        ),
        pytest.param(
            {"chartRef": {"kind": "HelmChart", "name": "apps-podinfo"}},
            ChartSource("HelmChart", "apps-podinfo", "apps", via_chart_ref=True),
            id="chart-ref-helm-chart",
        ),
        pytest.param(
            {"chartRef": {"name": "podinfo"}},
            ChartSource("OCIRepository", "podinfo", "apps", via_chart_ref=True),
            id="chart-ref-kind-defaults-to-oci",
        ),
        pytest.param(
            {
                "chartRef": {"kind": "OCIRepository", "name": "oci"},
                "chart": {"spec": {"chart": "app", "sourceRef": {"name": "repo"}}},
            },
            ChartSource("OCIRepository", "oci", "apps", via_chart_ref=True),
            id="chart-ref-wins-over-chart",
        ),
        pytest.param(
            {
                "chartRef": {"kind": "OCIRepository"},
                "chart": {
                    "spec": {"chart": "app", "version": "2.0.0", "sourceRef": {"name": "repo"}}
                },
            },
            ChartSource("HelmRepository", "repo", "apps", "app", "2.0.0"),
            id="chart-ref-without-name-falls-back-to-chart",
        ),
        pytest.param({}, None, id="neither"),
        pytest.param({"chart": {}}, None, id="chart-without-spec"),
        pytest.param({"chart": {"spec": "bogus"}}, None, id="chart-spec-not-a-mapping"),
        pytest.param({"chartRef": "bogus"}, None, id="chart-ref-not-a-mapping"),
    ],
)
def test_chart_source(spec: Obj, expected: ChartSource | None) -> None:
    assert determine_chart_source(helm_release(**spec)) == expected


def test_chart_source_of_release_without_spec() -> None:
    assert determine_chart_source({"metadata": {"name": "x"}}) is None


# --- Kustomization ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param(
            {KUSTOMIZE_NAME_LABEL: "apps", KUSTOMIZE_NAMESPACE_LABEL: "clusters"},
            ("clusters", "apps"),
            id="both-labels",
        ),
        pytest.param(
            {KUSTOMIZE_NAME_LABEL: "apps"},
            ("flux-system", "apps"),
            id="namespace-defaults-to-flux-system",
        ),
        pytest.param({KUSTOMIZE_NAMESPACE_LABEL: "clusters"}, None, id="namespace-only"),
        pytest.param({KUSTOMIZE_NAME_LABEL: ""}, None, id="empty-name"),
        pytest.param({HELM_NAME_LABEL: "podinfo"}, None, id="other-flux-labels"),
        pytest.param({}, None, id="no-labels"),
        pytest.param(None, None, id="labels-null"),
    ],
)
def test_kustomization_from_flux_labels(
    labels: dict[str, str] | None, expected: tuple[str, str] | None
) -> None:
    obj = {"metadata": {"name": "podinfo", "labels": labels}}
    assert determine_kustomization(obj) == expected


def test_kustomization_of_object_without_metadata() -> None:
    assert determine_kustomization({}) is None


# --- deployed version -------------------------------------------------------------------


def entry(version: str | None, status: str | None) -> Obj:
    out: Obj = {"name": "podinfo", "namespace": "apps", "version": 1}
    if version is not None:
        out["chartVersion"] = version
    if status is not None:
        out["status"] = status
    return out


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(
            {"history": [entry("6.5.4", "deployed"), entry("6.5.3", "superseded")]},
            "6.5.4",
            id="newest-deployed",
        ),
        pytest.param({"history": [entry("6.5.4", "superseded")]}, "6.5.4", id="newest-superseded"),
        pytest.param({"history": [entry("6.5.4", None)]}, "6.5.4", id="newest-without-status"),
        pytest.param(
            {"history": [entry("6.5.4", "failed"), entry("6.5.3", "deployed")]},
            "6.5.3",
            id="newest-failed-previous-deployed",
        ),
        pytest.param(
            {"history": [entry("6.5.4", "failed"), entry("6.5.3", "superseded")]},
            "6.5.3",
            id="newest-failed-previous-superseded",
        ),
        pytest.param(
            {
                "history": [
                    entry("6.5.5", "failed"),
                    entry("6.5.4", "failed"),
                    entry("6.5.3", "deployed"),
                ]
            },
            "6.5.3",
            id="several-failed-then-deployed",
        ),
        pytest.param(
            {"history": [entry("6.5.4", "pending-upgrade"), entry("6.5.3", "deployed")]},
            "6.5.3",
            id="newest-pending-previous-deployed",
        ),
        pytest.param({"history": [entry("6.5.4", "failed")]}, None, id="only-failed"),
        pytest.param(
            {"history": [entry("6.5.4", "failed"), entry("6.5.3", "failed")]}, None, id="all-failed"
        ),
        pytest.param(
            {"history": [entry("6.5.4", "failed"), entry(None, "deployed")]},
            None,
            id="previous-deployed-without-version",
        ),
        pytest.param(
            {"history": [entry("6.5.4", "failed"), "garbage", entry("6.5.2", "deployed")]},
            "6.5.2",
            id="non-mapping-entry-skipped",
        ),
        pytest.param({"lastAppliedRevision": "6.5.3"}, "6.5.3", id="v2beta1-revision"),
        pytest.param(
            {"history": [], "lastAppliedRevision": "6.5.3"},
            "6.5.3",
            id="empty-history-falls-back-to-revision",
        ),
        pytest.param(
            {"history": [entry(None, "deployed")], "lastAppliedRevision": "6.5.3"},
            "6.5.3",
            id="newest-without-version-falls-back-to-revision",
        ),
        pytest.param({"lastAppliedRevision": ""}, None, id="empty-revision"),
        pytest.param({}, None, id="empty-status"),
    ],
)
def test_deployed_version(status: Obj, expected: str | None) -> None:
    obj = helm_release(chart={"spec": {"chart": "podinfo", "version": "9.9.9"}})
    obj["status"] = status
    assert determine_deployed_version(obj) == expected


def test_deployed_version_never_read_from_spec() -> None:
    obj = helm_release(chart={"spec": {"chart": "podinfo", "version": "9.9.9"}})
    assert determine_deployed_version(obj) is None


# --- PVCs -------------------------------------------------------------------------------


EXISTING = [
    pvc(n)
    for n in (
        "data-web-0",
        "data-web-1",
        "data-web-2",  # StatefulSet "web", template "data"
        "logs-web-0",  # template "logs"
        "data-webapp-0",  # StatefulSet "webapp", not "web"
        "data-web-extra-0",  # StatefulSet "web-extra"
        "data-web-x",  # not an ordinal
        "uploads",
        "cache",
        "shared",
        "labelled",
        "unrelated",
    )
]


@pytest.mark.parametrize(
    ("statefulsets", "deployments", "pods", "labelled", "expected"),
    [
        pytest.param(
            [statefulset("web", 0, ("data",))],
            [],
            [],
            [],
            ["data-web-0", "data-web-1", "data-web-2"],
            id="sts-scaled-to-zero",
        ),
        pytest.param(
            [statefulset("web", None, ("data",))],
            [],
            [],
            [],
            ["data-web-0", "data-web-1", "data-web-2"],
            id="sts-replicas-unset",
        ),
        pytest.param(
            [statefulset("web", 1, ("data",))],
            [],
            [],
            [],
            ["data-web-0", "data-web-1", "data-web-2"],
            id="sts-scaled-down",
        ),
        pytest.param(
            [statefulset("web", 5, ("data",))],
            [],
            [],
            [],
            ["data-web-0", "data-web-1", "data-web-2"],
            id="sts-ordinals-without-pvc-excluded",
        ),
        pytest.param(
            [statefulset("web", 3, ("data", "logs"))],
            [],
            [],
            [],
            ["data-web-0", "data-web-1", "data-web-2", "logs-web-0"],
            id="sts-several-templates",
        ),
        pytest.param(
            [statefulset("web", 1, ("missing",))], [], [], [], [], id="sts-template-without-pvcs"
        ),
        pytest.param(
            [statefulset("webapp", 1, ("data",))],
            [],
            [],
            [],
            ["data-webapp-0"],
            id="sts-name-prefix-of-other-not-confused",
        ),
        pytest.param(
            [statefulset("web", 0, (), volumes=("shared",))],
            [],
            [],
            [],
            ["shared"],
            id="sts-pod-template-volume",
        ),
        pytest.param(
            [],
            [deployment("api", 1, ("uploads", "cache"))],
            [],
            [],
            ["cache", "uploads"],
            id="deployment-volumes",
        ),
        pytest.param(
            [],
            [deployment("api", 0, ("uploads", "gone"))],
            [],
            [],
            ["uploads"],
            id="deployment-claim-not-existing-excluded",
        ),
        pytest.param([], [deployment("api", 1)], [], [], [], id="deployment-without-claims"),
        pytest.param([], [], [pod("job-abc", "shared")], [], ["shared"], id="pod-volumes"),
        pytest.param([], [], [pod("job-abc", "nope")], [], [], id="pod-claim-not-existing"),
        pytest.param([], [], [], ["labelled"], ["labelled"], id="labelled"),
        pytest.param(
            [], [], [], ["labelled", "deleted"], ["labelled"], id="labelled-not-existing-excluded"
        ),
        pytest.param(
            [statefulset("web", 0, ("data",))],
            [deployment("api", 1, ("uploads",))],
            [pod("api-1", "uploads", "cache")],
            ["labelled"],
            ["cache", "data-web-0", "data-web-1", "data-web-2", "labelled", "uploads"],
            id="all-sources-merged-sorted-deduplicated",
        ),
        pytest.param([], [], [], [], [], id="nothing"),
    ],
)
def test_pvcs(
    statefulsets: list[Obj],
    deployments: list[Obj],
    pods: list[Obj],
    labelled: list[str],
    expected: list[str],
) -> None:
    found = determine_pvcs(EXISTING, statefulsets, deployments, pods, labelled)
    assert found == expected
    assert "unrelated" not in found


def test_pvcs_of_statefulset_scaled_to_zero_need_no_pods() -> None:
    """The PVCs of a StatefulSet at replicas 0 are found from its templates alone."""
    existing = [pvc("data-web-0"), pvc("data-web-1"), pvc("data-web-2")]
    sts = statefulset("web", 0, ("data",))
    assert determine_pvcs(existing, [sts], [], [], []) == ["data-web-0", "data-web-1", "data-web-2"]


def test_pvcs_that_do_not_exist_are_never_returned() -> None:
    sts = statefulset("web", 3, ("data",), volumes=("x",))
    assert determine_pvcs([], [sts], [deployment("d", 1, ("y",))], [pod("p", "z")], ["w"]) == []


# --- workloads --------------------------------------------------------------------------


def test_workloads_with_their_pvcs() -> None:
    selected = ["data-web-0", "data-web-1", "data-web-2", "uploads"]
    workloads = determine_workloads(
        [statefulset("web", 0, ("data",), ready=0)],
        [deployment("api", 2, ("uploads", "cache"), ready=1), deployment("worker", None)],
        selected,
    )
    assert workloads == [
        Workload("StatefulSet", "web", 0, 0, ("data-web-0", "data-web-1", "data-web-2")),
        Workload("Deployment", "api", 2, 1, ("uploads",)),  # cache is not selected
        Workload("Deployment", "worker", 1, 0, ()),  # replicas default to 1
    ]
    assert [w.ready for w in workloads] == [True, False, False]


def test_statefulset_mounts_template_and_pod_volumes() -> None:
    sts = statefulset("db", 2, ("data",), volumes=("shared",), ready=2)
    [workload] = determine_workloads([sts], [], ["data-db-0", "data-db-1", "shared", "other"])
    assert workload.pvcs == ("data-db-0", "data-db-1", "shared")
    assert workload.ready


def test_workloads_without_any_objects() -> None:
    assert determine_workloads([], [], ["a"]) == []


@pytest.mark.parametrize(
    ("replicas", "ready_replicas", "ready"),
    [(0, 0, True), (1, 1, True), (3, 2, False), (1, 0, False), (2, 3, True)],
)
def test_workload_ready(replicas: int, ready_replicas: int, ready: bool) -> None:
    assert Workload("Deployment", "x", replicas, ready_replicas).ready is ready


# --- snapshot class ---------------------------------------------------------------------


CSI = "hostpath.csi.k8s.io"
EBS = "ebs.csi.aws.com"


@pytest.mark.parametrize(
    ("explicit", "classes", "provisioners", "expected_name", "reason_part"),
    [
        pytest.param(
            "fast",
            [snapshot_class("fast", CSI), snapshot_class("slow", CSI)],
            {CSI},
            "fast",
            "explicit",
            id="explicit-existing",
        ),
        pytest.param(
            "fast",
            [snapshot_class("fast", CSI)],
            set(),
            "fast",
            "explicit",
            id="explicit-without-known-provisioner",
        ),
        pytest.param(
            "fast",
            [snapshot_class("slow", CSI, "true")],
            {CSI},
            None,
            "'fast' does not exist",
            id="explicit-missing",
        ),
        pytest.param(
            "fast",
            [snapshot_class("fast", EBS), snapshot_class("csi", CSI)],
            {CSI},
            None,
            f"uses driver {EBS!r}",
            id="explicit-wrong-driver",
        ),
        pytest.param(
            "fast",
            [snapshot_class("fast", CSI)],
            {CSI, EBS},
            None,
            "are provisioned by",
            id="explicit-with-several-provisioners",
        ),
        pytest.param(
            None,
            [snapshot_class("ebs", EBS), snapshot_class("csi", CSI)],
            {CSI},
            "csi",
            "matched by driver",
            id="by-driver",
        ),
        pytest.param(
            "",
            [snapshot_class("csi", CSI)],
            {CSI},
            "csi",
            "matched by driver",
            id="empty-explicit-means-by-driver",
        ),
        pytest.param(
            None,
            [snapshot_class("a-plain", CSI), snapshot_class("z-default", CSI, "true")],
            {CSI},
            "z-default",
            "matched by driver",
            id="default-annotated-preferred",
        ),
        pytest.param(
            None,
            [snapshot_class("b", CSI), snapshot_class("a", CSI)],
            {CSI},
            "a",
            "matched by driver",
            id="no-default-first-by-name",
        ),
        pytest.param(
            None,
            [snapshot_class("b", CSI), snapshot_class("a", CSI, "false")],
            {CSI},
            "a",
            "matched by driver",
            id="default-false-not-preferred",
        ),
        pytest.param(
            None,
            [snapshot_class("csi-b", CSI), snapshot_class("ebs", EBS, "true")],
            {CSI},
            "csi-b",
            "matched by driver",
            id="default-of-other-driver-ignored",
        ),
        pytest.param(
            None,
            [snapshot_class("csi", CSI), snapshot_class("ebs", EBS)],
            {CSI, EBS},
            None,
            "several provisioners",
            id="multiple-provisioners",
        ),
        pytest.param(
            None,
            [snapshot_class("ebs", EBS, "true")],
            {CSI},
            None,
            f"no VolumeSnapshotClass for driver(s) {[CSI]}",
            id="no-match",
        ),
        pytest.param(None, [], {CSI}, None, "no VolumeSnapshotClass", id="no-classes"),
        pytest.param(
            None,
            [snapshot_class("csi", CSI)],
            set(),
            None,
            "no VolumeSnapshotClass",
            id="no-provisioners",
        ),
    ],
)
def test_choose_snapshot_class(
    explicit: str | None,
    classes: list[Obj],
    provisioners: set[str],
    expected_name: str | None,
    reason_part: str,
) -> None:
    name, reason = choose_snapshot_class(explicit, classes, provisioners)
    assert name == expected_name
    assert reason_part in reason
    if expected_name is None and explicit:
        assert explicit in reason  # the user sees which class is wrong


def test_choose_snapshot_class_does_not_reorder_its_input() -> None:
    classes = [snapshot_class("b", CSI), snapshot_class("a", CSI, "true")]
    choose_snapshot_class(None, classes, [CSI])
    assert [c["metadata"]["name"] for c in classes] == ["b", "a"]
