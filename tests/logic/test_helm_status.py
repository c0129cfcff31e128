"""Reading helm-controller's HelmRelease status: released, waiting (including while its
own remediation retries), or failed for good."""

from __future__ import annotations

from typing import Any

import pytest

from fluxup.logic.helm_status import HelmState, determine_helm_progress, remediation_retries

S = HelmState


def hr(
    *,
    generation: int = 2,
    observed: int = 2,
    ready: tuple[str, str] | None = ("True", "UpgradeSucceeded"),
    ready_gen: int | None = None,
    stalled: bool = False,
    chart: str = "1.1.0",
    release_status: str = "deployed",
    upgrade_retries: int | None = None,
    install_retries: int | None = None,
    upgrade_failures: int = 0,
    install_failures: int = 0,
    history: bool = True,
    reset: str | None = None,
    handled: str | None = None,
) -> dict[str, Any]:
    conditions = []
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready[0], "reason": ready[1],
                           "message": "details", "observedGeneration": ready_gen or observed})
    if stalled:
        conditions.append({"type": "Stalled", "status": "True", "reason": "RetriesExceeded"})
    spec: dict[str, Any] = {}
    if upgrade_retries is not None:
        spec["upgrade"] = {"remediation": {"retries": upgrade_retries}}
    if install_retries is not None:
        spec["install"] = {"remediation": {"retries": install_retries}}
    status: dict[str, Any] = {
        "observedGeneration": observed, "conditions": conditions,
        "upgradeFailures": upgrade_failures, "installFailures": install_failures,
        "history": [{"chartVersion": chart, "status": release_status}] if history else [],
    }
    if handled:
        status["lastHandledResetAt"] = handled
    meta: dict[str, Any] = {"generation": generation}
    if reset:
        meta["annotations"] = {"reconcile.fluxcd.io/resetAt": reset}
    return {"metadata": meta, "spec": spec, "status": status}


FAILED = ("False", "UpgradeFailed")


@pytest.mark.parametrize(("obj", "target", "state"), [
    pytest.param(hr(), "1.1.0", S.RELEASED, id="ready-at-target"),
    pytest.param(hr(chart="1.1.0+c90e84779b40"), "1.1.0", S.RELEASED, id="oci-digest"),
    pytest.param(hr(chart="v1.1.0"), "1.1.0", S.RELEASED, id="v-prefix"),
    pytest.param(hr(), None, S.RELEASED, id="image-only"),
    pytest.param(hr(chart="1.0.0"), "1.1.0", S.WAITING, id="old-version-still-runs"),
    pytest.param(hr(observed=1), "1.1.0", S.WAITING, id="generation-not-observed"),
    pytest.param(hr(release_status="pending-upgrade"), "1.1.0", S.WAITING, id="helm-pending"),
    pytest.param(hr(ready=("Unknown", "Progressing")), "1.1.0", S.WAITING, id="progressing"),
    pytest.param(hr(ready=None), "1.1.0", S.WAITING, id="no-conditions"),
    pytest.param(hr(reset="t2", handled="t1"), "1.1.0", S.WAITING, id="reset-not-taken-up"),
    pytest.param(hr(reset="t2", handled="t2"), "1.1.0", S.RELEASED, id="reset-taken-up"),
    pytest.param(hr(ready=FAILED, upgrade_failures=1), "1.1.0", S.FAILED, id="no-retries"),
    pytest.param(hr(ready=FAILED, upgrade_failures=0, upgrade_retries=2), "1.1.0", S.FAILED,
                 id="failure-its-remediation-does-not-count"),
    pytest.param(hr(ready=FAILED, upgrade_failures=1, upgrade_retries=2), "1.1.0", S.WAITING,
                 id="first-of-three-attempts"),
    pytest.param(hr(ready=FAILED, upgrade_failures=2, upgrade_retries=2), "1.1.0", S.WAITING,
                 id="second-of-three-attempts"),
    pytest.param(hr(ready=FAILED, upgrade_failures=3, upgrade_retries=2), "1.1.0", S.FAILED,
                 id="retries-used-up"),
    pytest.param(hr(ready=FAILED, upgrade_failures=9, upgrade_retries=-1), "1.1.0", S.WAITING,
                 id="unlimited-retries"),
    pytest.param(hr(ready=("False", "RetriesExceeded"), upgrade_retries=5), "1.1.0", S.FAILED,
                 id="retries-exceeded-reason"),
    pytest.param(hr(ready=FAILED, stalled=True, upgrade_retries=5), "1.1.0", S.FAILED,
                 id="stalled"),
    pytest.param(hr(ready=("False", "InstallFailed"), history=False, install_failures=1,
                    install_retries=1, upgrade_retries=0), "1.1.0", S.WAITING,
                 id="first-install-uses-install-retries"),
    pytest.param(hr(ready=("False", "InstallFailed"), history=False, install_failures=2,
                    install_retries=1), "1.1.0", S.FAILED, id="install-retries-used-up"),
    pytest.param(hr(ready=FAILED, observed=1, ready_gen=2, upgrade_failures=1), "1.1.0",
                 S.FAILED, id="failure-carries-its-generation"),
    pytest.param(hr(ready=FAILED, observed=1, ready_gen=1, upgrade_failures=1), "1.1.0",
                 S.WAITING, id="failure-of-an-older-generation"),
])
def test_progress(obj: dict[str, Any], target: str | None, state: HelmState) -> None:
    assert determine_helm_progress(obj, target).state is state


def test_messages_say_what_helm_controller_said() -> None:
    failed = determine_helm_progress(hr(ready=FAILED, upgrade_failures=1), "1.1.0")
    assert failed.message == "helm-controller: UpgradeFailed: details"
    retrying = determine_helm_progress(
        hr(ready=FAILED, upgrade_failures=1, upgrade_retries=2), "1.1.0")
    assert retrying.message.startswith("helm-controller retries (1 of 3 attempts failed)")


@pytest.mark.parametrize(("spec", "installed", "retries"), [
    ({}, True, 0),
    ({"upgrade": {"remediation": {"retries": 3}}}, True, 3),
    ({"upgrade": {"remediation": {"retries": 3}}}, False, 0),
    ({"install": {"remediation": {"retries": -1}}}, False, -1),
    ({"upgrade": {"remediation": {"retries": "3"}}}, True, 0),
])
def test_remediation_retries(spec: dict[str, Any], installed: bool, retries: int) -> None:
    assert remediation_retries(spec, installed) == retries
