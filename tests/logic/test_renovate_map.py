"""Mapping Renovate findings onto ManagedApps, and the versionPolicy's choice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxup.api.managedapp import ManagedApp, UpdateSource, UpdateType
from fluxup.api.meta import ImageTag
from fluxup.logic.renovate_map import (
    AppTarget,
    build_app_target,
    findings_for,
    map_report,
    normalize_image,
    repository_matches,
)
from fluxup.logic.renovate_report import Dep, RepositoryReport, Update, parse_report
from fluxup.logic.version_policy import ScanOutcome, decide_updates

DATA = Path(__file__).parent / "data" / "renovate"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
EARLIER = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def _app(name: str, file: str, *, chart: str | None = None, current: str | None = None,
         oci_url: str | None = None, images: list[dict[str, Any]] | None = None,
         current_images: list[dict[str, str]] | None = None,
         chart_policy: dict[str, str] | None = None,
         previous: list[dict[str, Any]] | None = None,
         available: dict[str, Any] | None = None) -> ManagedApp:
    status: dict[str, Any] = {
        "git": {"repositoryUrl": "http://git/fleet.git", "file": file},
        "helmRelease": {"apiVersion": "helm.toolkit.fluxcd.io/v2", "name": name,
                        "namespace": "apps", **({"chartName": chart} if chart else {})},
        "currentVersion": current,
        "currentImages": current_images or [],
        "availableUpdates": previous or [],
    }
    if oci_url:
        status["chartSource"] = {"kind": "OCIRepository", "name": name, "namespace": "apps",
                                 "url": oci_url}
    if available:
        status["availableUpdate"] = available
    return ManagedApp.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"helmReleaseRef": {"name": name},
                 "versionPolicy": {"chart": chart_policy or {}, "images": images or []}},
        "status": status,
    })


def _sample() -> RepositoryReport:
    (repo,) = parse_report((DATA / "report.json").read_text())
    return repo


SAMPLE_APPS = {
    "my-app": _app("my-app", "flux/apps/my-app/helmrelease.yaml", chart="my-app",
                   current="12.4.0",
                   images=[{"name": "127.0.0.1:5000/example/app", "valuesPath": "image.tag"}],
                   current_images=[{"valuesPath": "image.tag", "tag": "1.21.0"}]),
    "analytics-db": _app("analytics-db", "flux/apps/analytics-db/helmrelease.yaml", chart="db",
                         current="1.1.0"),
    "db": _app("db", "flux/apps/db/helmrelease.yaml", chart="db", current="1.0.0",
               images=[{"name": "127.0.0.1:5000/example/app", "valuesPath": "image.tag"}],
               current_images=[{"valuesPath": "image.tag", "tag": "1.21.5"}]),
    "podinfo": _app("podinfo", "flux/apps/podinfo/helmrelease.yaml", current="6.5.0",
                    oci_url="oci://127.0.0.1:5000/charts/podinfo"),
}


def _targets() -> list[AppTarget]:
    out = [build_app_target(a) for a in SAMPLE_APPS.values()]
    return [t for t in out if t is not None]


def _found(name: str) -> set[tuple[str, str, str | None, str, str]]:
    mapped = map_report(_sample(), _targets())
    return {(f.source.value, f.name, f.values_path, f.version, f.type.value)
            for f in mapped[("apps", name)].findings}


def test_sample_chart_from_helm_repository_and_values_image() -> None:
    assert _found("my-app") == {
        ("chart", "my-app", None, "12.5.0", "minor"),
        ("chart", "my-app", None, "13.0.0", "major"),
        ("image", "127.0.0.1:5000/example/app", "image.tag", "1.22.0", "minor"),
        ("image", "127.0.0.1:5000/example/app", "image.tag", "2.0.0", "major"),
    }


def test_sample_range_version_maps_to_concrete_version() -> None:
    assert _found("analytics-db") == {("chart", "db", None, "1.2.0", "minor")}


def test_sample_chart_from_oci_helm_repository_and_helm_values_file() -> None:
    assert _found("db") == {
        ("chart", "db", None, "1.2.0", "minor"),
        ("image", "127.0.0.1:5000/example/app", "image.tag", "1.22.0", "minor"),
        ("image", "127.0.0.1:5000/example/app", "image.tag", "2.0.0", "major"),
    }


def test_sample_ocirepository_tag_is_the_chart_and_api_bumps_are_ignored() -> None:
    assert _found("podinfo") == {("chart", "podinfo", None, "6.7.1", "minor")}


def test_plain_manifest_images_belong_to_the_app_of_their_directory() -> None:
    other = _app("other", "flux/apps/other/helmrelease.yaml", chart="other")
    mapped = map_report(_sample(), [build_app_target(other)])  # type: ignore[list-item]
    found = {(f.source, f.values_path, f.version) for f in mapped[("apps", "other")].findings}
    # the Deployment's two containers (1.21.0 and digest-pinned 1.21.5) dedupe per version
    assert found == {(UpdateSource.IMAGE, None, "1.22.0"), (UpdateSource.IMAGE, None, "2.0.0")}


def test_files_of_a_shared_directory_belong_to_no_app() -> None:
    a = _app("a", "apps/shared/a.yaml", chart="a")
    b = _app("b", "apps/shared/b.yaml", chart="b")
    dep = Dep("kubernetes", "apps/shared/deploy.yaml", "reg.io/x", "reg.io/x", "docker", "1.0.0",
              updates=(Update("1.1.0", "1.1.0", "minor"),))
    mapped = map_report(RepositoryReport("r", (dep,)),
                        [build_app_target(a), build_app_target(b)])  # type: ignore[list-item]
    assert mapped[("apps", "a")].findings == []
    assert mapped[("apps", "b")].findings == []


def test_nearest_directory_wins() -> None:
    top = _app("top", "apps/top/hr.yaml", chart="top")
    sub = _app("sub", "apps/top/sub/hr.yaml", chart="sub")
    dep = Dep("kubernetes", "apps/top/sub/deep/deploy.yaml", "reg.io/x", "reg.io/x", "docker",
              "1.0.0", updates=(Update("1.0.1", "1.0.1", "patch"),))
    mapped = map_report(RepositoryReport("r", (dep,)),
                        [build_app_target(top), build_app_target(sub)])  # type: ignore[list-item]
    assert len(mapped[("apps", "sub")].findings) == 1
    assert mapped[("apps", "top")].findings == []


def test_same_image_at_two_value_paths_maps_by_current_tag() -> None:
    app = _app("x", "apps/x/hr.yaml", chart="x",
               images=[{"name": "reg.io/img", "valuesPath": "a.tag"},
                       {"name": "reg.io/img", "valuesPath": "b.tag"}],
               current_images=[{"valuesPath": "a.tag", "tag": "1.0.0"},
                               {"valuesPath": "b.tag", "tag": "2.0.0"}])
    dep = Dep("flux", "apps/x/hr.yaml", "reg.io/img", "reg.io/img", "docker", "2.0.0",
              updates=(Update("2.1.0", "2.1.0", "minor"),))
    mapped = map_report(RepositoryReport("r", (dep,)), [build_app_target(app)])  # type: ignore[list-item]
    assert [(f.values_path, f.version) for f in mapped[("apps", "x")].findings] == [
        ("b.tag", "2.1.0")]


def test_app_without_discovered_file_is_not_a_target() -> None:
    app = ManagedApp.from_dict({"apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
                                "metadata": {"name": "n", "namespace": "x"},
                                "spec": {"helmReleaseRef": {"name": "n"}}})
    assert build_app_target(app) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [("docker.io/library/redis", "redis"), ("index.docker.io/library/redis", "library/redis"),
     ("oci://127.0.0.1:5000/charts/x", "127.0.0.1:5000/charts/x"), ("GHCR.io/a/b", "ghcr.io/a/b")],
)
def test_normalize_image(a: str, b: str) -> None:
    assert normalize_image(a) == normalize_image(b)


@pytest.mark.parametrize(
    ("url", "repo", "match"),
    [("http://git/org/fleet.git", "org/fleet", True), ("http://git/org/fleet", "org/fleet", True),
     ("http://git/org/fleet.git", "fleet", True), ("http://git/org/other.git", "org/fleet", False),
     ("http://git/org/fleet.git", "local", False),
     ("http://git/org/fleet.git", "http://git/org/fleet.git", True)],
)
def test_repository_matches(url: str, repo: str, match: bool) -> None:
    assert repository_matches(url, repo) is match


# --- version policy -----------------------------------------------------------------


def _decide(app: ManagedApp, report: RepositoryReport, outcome: ScanOutcome | None = None):  # type: ignore[no-untyped-def]
    target = build_app_target(app)
    assert target is not None
    findings = findings_for(map_report(report, [target]), target)
    return decide_updates(app, findings, outcome or ScanOutcome(ok=True), NOW)


def _chart_dep(file: str, current: str, *versions: tuple[str, str]) -> Dep:
    return Dep("flux", file, "demo", "demo", "helm", current, current,
               updates=tuple(Update(v, v, t) for v, t in versions))


def _report(*deps: Dep) -> RepositoryReport:
    return RepositoryReport("local", deps)


FILE = "apps/demo/hr.yaml"


def test_every_candidate_is_kept_with_its_type_and_highest_allowed_is_picked() -> None:
    app = _app("demo", FILE, chart="demo", current="1.0.0",
               chart_policy={"constraint": "<2.0.0"})
    d = _decide(app, _report(_chart_dep(FILE, "1.0.0", ("1.0.1", "patch"), ("1.1.0", "minor"),
                                        ("2.0.0", "major"))))
    assert [(c.version, c.type) for c in d.candidates] == [
        ("1.0.1", UpdateType.PATCH), ("1.1.0", UpdateType.MINOR), ("2.0.0", UpdateType.MAJOR)]
    assert d.available is not None
    assert d.available.version == "1.1.0"
    assert d.available.type is UpdateType.MINOR
    assert d.available.detected_at == NOW
    assert d.auto_target is None  # autoUpdate defaults to none
    checked, available = d.conditions
    assert (checked.type, checked.ok) == ("UpdatesChecked", True)
    assert (available.type, available.ok, available.reason) == (
        "UpdateAvailable", True, "NewVersionDetected")


@pytest.mark.parametrize(
    ("level", "expected"),
    [("none", None), ("patch", "1.0.1"), ("minor", "1.1.0"), ("major", "2.0.0")],
)
def test_auto_update_level(level: str, expected: str | None) -> None:
    app = _app("demo", FILE, chart="demo", current="1.0.0", chart_policy={"autoUpdate": level})
    d = _decide(app, _report(_chart_dep(FILE, "1.0.0", ("1.0.1", "patch"), ("1.1.0", "minor"),
                                        ("2.0.0", "major"))))
    assert (d.auto_target.version if d.auto_target else None) == expected


def test_minor_candidate_does_not_start_a_patch_policy() -> None:
    app = _app("demo", FILE, chart="demo", current="1.0.0", chart_policy={"autoUpdate": "patch"})
    d = _decide(app, _report(_chart_dep(FILE, "1.0.0", ("1.1.0", "minor"))))
    assert d.auto_target is None
    assert d.available is not None
    assert d.available.version == "1.1.0"


def test_auto_update_respects_constraint() -> None:
    app = _app("demo", FILE, chart="demo", current="1.0.0",
               chart_policy={"autoUpdate": "major", "constraint": "~1.0"})
    d = _decide(app, _report(_chart_dep(FILE, "1.0.0", ("1.0.3", "patch"), ("1.1.0", "minor"))))
    assert d.auto_target is not None
    assert d.auto_target.version == "1.0.3"


def test_images_with_their_own_policy() -> None:
    app = _app("demo", FILE, chart="demo", current="1.0.0",
               images=[{"name": "reg.io/app", "valuesPath": "image.tag", "autoUpdate": "patch"}],
               current_images=[{"valuesPath": "image.tag", "tag": "3.0.0"}])
    image = Dep("flux", FILE, "reg.io/app", "reg.io/app", "docker", "3.0.0",
                updates=(Update("3.0.2", "3.0.2", "patch"), Update("3.1.0", "3.1.0", "minor")))
    d = _decide(app, _report(image, _chart_dep(FILE, "1.0.0")))
    assert d.available is not None
    assert d.available.version is None
    assert d.available.images == (ImageTag("image.tag", "3.1.0", "reg.io/app"),)
    assert d.auto_target is not None
    assert d.auto_target.images == (ImageTag("image.tag", "3.0.2", "reg.io/app"),)


def test_no_update_clears_and_says_up_to_date() -> None:
    previous = [{"source": "chart", "name": "demo", "version": "1.1.0", "type": "minor"}]
    app = _app("demo", FILE, chart="demo", current="1.0.0", previous=previous,
               available={"version": "1.1.0", "type": "minor"})
    d = _decide(app, _report(_chart_dep(FILE, "1.0.0")))
    assert d.candidates == ()
    assert d.available is None
    assert d.conditions[1].reason == "UpToDate"


def test_failed_run_never_clears() -> None:
    previous = [{"source": "chart", "name": "demo", "version": "1.1.0", "type": "minor",
                 "detectedAt": "2026-11-30T12:00:00Z"}]
    app = _app("demo", FILE, chart="demo", current="1.0.0", previous=previous,
               available={"version": "1.1.0", "type": "minor"})
    d = _decide(app, _report(), ScanOutcome(False, "RenovateFailed", "renovate exited 7"))
    assert d.candidates == app.status.available_updates
    assert d.available == app.status.available_update
    assert d.auto_target is None
    assert d.conditions[0].ok is False
    assert d.conditions[0].message == "renovate exited 7"


def test_report_not_covering_the_app_never_clears() -> None:
    previous = [{"source": "chart", "name": "demo", "version": "1.1.0", "type": "minor"}]
    app = _app("demo", FILE, chart="demo", current="1.0.0", previous=previous)
    d = decide_updates(app, None, ScanOutcome(True), NOW)
    assert d.candidates == app.status.available_updates
    assert "does not cover apps/demo/hr.yaml" in d.conditions[0].message


def test_unreachable_registry_keeps_its_candidates_and_is_named() -> None:
    previous = [{"source": "image", "name": "reg.io/app", "valuesPath": "image.tag",
                 "version": "3.1.0", "type": "minor", "detectedAt": "2026-11-30T12:00:00Z"}]
    app = _app("demo", FILE, chart="demo", current="1.0.0", previous=previous,
               images=[{"name": "reg.io/app", "valuesPath": "image.tag"}],
               current_images=[{"valuesPath": "image.tag", "tag": "3.0.0"}])
    image = Dep("flux", FILE, "reg.io/app", "reg.io/app", "docker", "3.0.0",
                warnings=("Failed to look up docker package reg.io/app: no-result",))
    chart = _chart_dep(FILE, "1.0.0", ("1.0.1", "patch"))
    d = _decide(app, _report(image, chart))
    assert {(c.name, c.version) for c in d.candidates} == {("reg.io/app", "3.1.0"),
                                                          ("demo", "1.0.1")}
    kept = next(c for c in d.candidates if c.name == "reg.io/app")
    assert kept.detected_at == EARLIER
    checked = d.conditions[0]
    assert not checked.ok
    assert "reg.io" in checked.message


def test_detected_at_is_kept_for_a_known_candidate() -> None:
    previous = [{"source": "chart", "name": "demo", "version": "1.1.0", "type": "minor",
                 "detectedAt": "2026-11-30T12:00:00Z"}]
    app = _app("demo", FILE, chart="demo", current="1.0.0", previous=previous)
    d = _decide(app, _report(_chart_dep(FILE, "1.0.0", ("1.1.0", "minor"), ("1.2.0", "minor"))))
    assert {c.version: c.detected_at for c in d.candidates} == {"1.1.0": EARLIER, "1.2.0": NOW}


def test_invalid_constraint_allows_nothing_and_says_so() -> None:
    app = _app("demo", FILE, chart="demo", current="1.0.0", chart_policy={"constraint": "lol"})
    d = _decide(app, _report(_chart_dep(FILE, "1.0.0", ("1.1.0", "minor"))))
    assert d.available is None
    assert len(d.candidates) == 1
    assert not d.conditions[1].ok
    assert "versionPolicy.chart.constraint" in d.conditions[1].message


def test_candidates_are_capped() -> None:
    versions = [(f"1.{i}.0", "minor") for i in range(1, 100)]
    app = _app("demo", FILE, chart="demo", current="1.0.0")
    d = _decide(app, _report(_chart_dep(FILE, "1.0.0", *versions)))
    assert len(d.candidates) == 64
    assert d.available is not None
    assert d.available.version == "1.99.0"


versions_st = st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)).map(
    lambda t: f"{t[0]}.{t[1]}.{t[2]}")


@settings(max_examples=200, deadline=None)
@given(current=versions_st, offered=st.lists(versions_st, max_size=8),
       level=st.sampled_from(["none", "patch", "minor", "major"]))
def test_auto_target_is_within_level_and_never_above_available(
    current: str, offered: list[str], level: str
) -> None:
    from fluxup.logic.versions import classify_update, parse_version

    updates = [(v, t) for v in dict.fromkeys(offered) if (t := classify_update(current, v))]
    app = _app("demo", FILE, chart="demo", current=current, chart_policy={"autoUpdate": level})
    d = _decide(app, _report(_chart_dep(FILE, current, *updates)))
    assert len(d.candidates) == len(updates)
    rank = {"none": 0, "patch": 1, "minor": 2, "major": 3}
    if d.auto_target is not None:
        assert d.auto_target.version is not None
        assert d.available is not None
        kind = classify_update(current, d.auto_target.version)
        assert kind is not None
        assert rank[kind] <= rank[level]
        assert parse_version(d.auto_target.version) <= parse_version(d.available.version or "")  # type: ignore[operator]
    else:
        assert all(rank[t] > rank[level] for _, t in updates)


def test_many_apps_each_get_exactly_their_own_chart() -> None:
    """1,000 apps, 5,000 deps (five files' worth each): every app gets its chart only."""
    apps = [_app(f"a{i}", f"apps/a{i}/hr.yaml", chart=f"c{i}", current="1.0.0")
            for i in range(1000)]
    deps = [Dep("flux", f"apps/a{i % 1000}/hr.yaml", f"c{i % 1000}", f"c{i % 1000}", "helm",
                "1.0.0", "1.0.0", updates=(Update(f"1.0.{1 + i // 1000}", f"1.0.{1 + i // 1000}",
                                                  "patch"),))
            for i in range(5000)]
    targets = [t for t in (build_app_target(a) for a in apps) if t is not None]
    mapped = map_report(_report(*deps), targets)
    assert len(mapped) == 1000
    for i in (0, 517, 999):
        found = mapped[("apps", f"a{i}")].findings
        assert {(f.name, f.version) for f in found} == {(f"c{i}", f"1.0.{n}") for n in range(1, 6)}
