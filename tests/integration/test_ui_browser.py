"""The web UI in a real headless Chromium, logging in through a real OpenID provider.

The full sandbox runs Flux, the webhook and the operator; the operator serves the UI,
configured for OIDC against Dex (built from its Go module, HTTPS with the sandbox CA,
started for these tests only). Playwright drives Debian's ``/usr/bin/chromium`` (never a
downloaded browser). Two people log in through Dex's own login form: a viewer (group
bound to ``fluxup-viewer`` in the app's namespace) and an approver (``fluxup-approver``).
Every Kubernetes call of the UI impersonates them, so the apiserver decides; a
ValidatingAdmissionPolicy in the test namespace makes the apiserver itself check that
whoever creates an UpgradeRequest is the user its ``fluxup.dev/requested-by`` names.
Screenshots of each page are kept as test artifacts: in ``$FLUXUP_ARTIFACTS/screenshots``
(default ``.artifacts/screenshots`` in the checkout, which git ignores), where CI finds
them after the run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet

from fluxup.errors import SandboxError
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.dex import Dex, DexUser, start_dex
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import free_port, wait_until
from fluxup.sandbox.renovate import ensure_renovate
from fluxup.sandbox.seed import DemoApp
from fluxup.sandbox.stack import Stack, ui_healthy
from tests.integration.test_renovate_e2e import _scan
from tests.integration.test_rollback_e2e import DATA, _migrate, _write_known_bytes
from tests.integration.volumes import volume_dir

#: Where the screenshots are kept after the run (CI collects this directory).
ARTIFACTS = Path(os.environ.get("FLUXUP_ARTIFACTS") or Path(__file__).parents[2] / ".artifacts")

pytestmark = [pytest.mark.sandbox, pytest.mark.full]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
VIEWERS, APPROVERS = "fluxup-viewers", "fluxup-approvers"


@dataclass
class UI:
    url: str
    dex: Dex
    viewer: DexUser
    approver: DexUser
    app: DemoApp
    shots: Path
    #: PVC -> bytes written before any upgrade (a rollback must bring them back)
    original: dict[str, bytes]


def _managed_app(stack: Stack, fleet: Fleet, app: DemoApp) -> None:
    fleet.add_app(app)
    fleet.wait_released(app, app.chart_version)
    stack.enrol(app.namespace)
    body = {"apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
            "metadata": {"name": app.name, "namespace": app.namespace},
            "spec": {"helmReleaseRef": {"name": app.name}}}
    stack.sandbox.kubectl("apply", "-f", "-", input=json.dumps(body))

    def ready() -> bool:
        obj = stack.sandbox.get_json("managedapp", app.name, "-n", app.namespace) or {}
        conds = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
        return conds.get("Ready", {}).get("status") == "True"

    try:
        wait_until(f"ManagedApp {app.name} Ready", ready, 120)
    except SandboxError:
        raise AssertionError(stack.operator_log_tail()) from None


def _bind(sb: Sandbox, namespace: str) -> None:
    """Viewer and approver groups in the app's namespace, and the apiserver's own check
    that an UpgradeRequest's creator is the user its ``requested-by`` names."""
    for role, group in (("fluxup-viewer", VIEWERS), ("fluxup-approver", APPROVERS)):
        sb.kubectl("create", "rolebinding", f"{group}", "-n", namespace,
                   f"--clusterrole={role}", f"--group=oidc:{group}")
    policy = f"fluxup-requested-by-{namespace}"
    sb.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": policy},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{
                      "apiGroups": ["fluxup.dev"], "apiVersions": ["*"],
                      "operations": ["CREATE"], "resources": ["upgraderequests"]}]},
                  "validations": [{
                      "expression": "has(object.metadata.annotations) && "
                                    "object.metadata.annotations[?'fluxup.dev/requested-by']"
                                    ".orValue('') == request.userInfo.username",
                      "messageExpression": "'created by ' + request.userInfo.username + "
                                           "', not by the user requested-by names'"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1",
         "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": policy},
         "spec": {"policyName": policy, "validationActions": ["Deny"],
                  "matchResources": {"namespaceSelector": {"matchLabels": {
                      "kubernetes.io/metadata.name": namespace}}}}},
    ]}))
    probe = json.dumps({"apiVersion": "fluxup.dev/v1alpha1", "kind": "UpgradeRequest",
                        "metadata": {"name": "policy-probe", "namespace": namespace,
                                     "annotations": {"fluxup.dev/requested-by": "nobody"}},
                        "spec": {"managedAppRef": {"name": "none"}}})

    def enforced() -> bool:
        proc = sb.kubectl("create", "--dry-run=server", "-f", "-", input=probe, check=False)
        return proc.returncode != 0 and "not by the user requested-by names" in proc.stderr

    wait_until("the requested-by admission policy", enforced, 30, interval=0.5)


@pytest.fixture(scope="module")
def ui(stack: Stack, fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    sb = stack.sandbox
    app = DemoApp(f"ui-{secrets.token_hex(3)}", f"ui-{secrets.token_hex(3)}")
    _managed_app(stack, fleet, app)
    _bind(sb, app.namespace)
    pvcs = [p["name"] for p in (sb.get_json("managedapp", app.name, "-n", app.namespace)
                                or {})["status"]["pvcs"]]
    original = _write_known_bytes(sb, app.namespace, pvcs)
    work = tmp_path_factory.mktemp("ui")
    # Renovate's scan (as the operator's schedule runs it) finds the app's newer charts
    scanned = _scan(stack, fleet, ensure_renovate(), work / "scan")
    assert "Renovate scanned" in scanned.stdout, scanned.stdout + scanned.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    viewer = DexUser("viewer", secrets.token_urlsafe(12), (VIEWERS,))
    approver = DexUser("approver", secrets.token_urlsafe(12), (APPROVERS,))
    dex = start_dex(sb, work / "dex", [f"{url}/auth/callback"], [viewer, approver])
    ui_env: dict[str, str | None] = {
        "FLUXUP_UI_ENABLED": "true", "FLUXUP_UI_HOST": "127.0.0.1",
        "FLUXUP_UI_PORT": str(port), "FLUXUP_UI_PUBLIC_URL": url,
        "FLUXUP_UI_OIDC_ISSUER": dex.issuer, "FLUXUP_UI_OIDC_CLIENT_ID": dex.client.client_id,
        "FLUXUP_UI_OIDC_CLIENT_SECRET": dex.client.secret,
        "FLUXUP_UI_OIDC_CA_FILE": str(dex.ca_file),
        "FLUXUP_UI_SESSION_KEYS": Fernet.generate_key().decode(),
    }
    stack.restart_operator(ui_env)
    try:
        wait_until("the UI", lambda: ui_healthy(url), 60, stack.operator_log)
        yield UI(url, dex, viewer, approver, app, ARTIFACTS / "screenshots", original)
    finally:
        stack.restart_operator(dict.fromkeys(ui_env))  # back to the operator without UI
        dex.stop()
        sb.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy",
                   f"fluxup-requested-by-{app.namespace}", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def browser(ui: UI) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make system-deps`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # trust exactly Dex's key (sandbox CA, not in the browser's store); TLS stays on
        pin = f"--ignore-certificate-errors-spki-list={ui.dex.spki_pin()}"
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=[*CHROMIUM_FLAGS, pin])
        yield chromium
        chromium.close()


def _shot(ui: UI, page: Any, name: str) -> None:
    ui.shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ui.shots / f"{name}.png"), full_page=True)


def _login(ui: UI, page: Any, user: DexUser, start: str = "/") -> None:
    """Open ``start`` unauthenticated: the UI sends us to Dex's login form; log in there."""
    page.goto(ui.url + start)
    page.wait_for_url(re.compile(re.escape(ui.dex.issuer) + r"/auth/.*"))
    assert page.locator("#login").is_visible(), page.content()
    _shot(ui, page, f"dex-login-{user.username}")
    page.fill("#login", user.email)
    page.fill("#password", user.password)
    page.click("#submit-login")
    page.wait_for_url(ui.url + start)
    assert page.locator(".who").inner_text().startswith(user.username), page.content()


def _requests(sb: Sandbox, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (sb.get_json("upgraderequest", "-n", namespace) or {}).get(
        "items", [])
    return items


def test_unauthenticated_visits_are_sent_to_login(ui: UI, browser: Any) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(ui.url + "/api/apps", timeout=10)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error"] == "unauthenticated"
    context = browser.new_context()
    page = context.new_page()
    try:
        first = page.request.get(ui.url + "/settings", max_redirects=0)
        assert first.status == 302
        location = urlsplit(first.headers["location"])
        assert location.path == "/auth/login"
        assert parse_qs(location.query) == {"next": ["/settings"]}
        page.goto(ui.url + "/settings")
        page.wait_for_url(re.compile(re.escape(ui.dex.issuer) + r"/auth/.*"))
        assert page.locator("#login").is_visible(), page.content()
        # Dex checks the password: a wrong one stays on its form with its error
        page.fill("#login", ui.viewer.email)
        page.fill("#password", "not-" + ui.viewer.password)
        page.click("#submit-login")
        page.locator("#login-error").wait_for()
        assert "Invalid" in page.locator("#login-error").inner_text(), page.content()
        assert page.url.startswith(ui.dex.issuer)
        _shot(ui, page, "dex-login-refused")
        page.fill("#password", ui.viewer.password)
        page.click("#submit-login")
        page.wait_for_url(ui.url + "/settings")
        who = page.locator("main").inner_text()
        assert "oidc:viewer in oidc:fluxup-viewers" in who, who
        _shot(ui, page, "settings-viewer")
    finally:
        context.close()


def test_viewer_sees_the_app_but_cannot_upgrade(ui: UI, browser: Any, stack: Stack) -> None:
    sb, app = stack.sandbox, ui.app
    context = browser.new_context()
    page = context.new_page()
    try:
        _login(ui, page, ui.viewer)
        inbox = page.locator("main").inner_text()
        assert f"{app.namespace}/{app.name}" in inbox, inbox
        # the scan's updates of this app, with their versions, in the inbox
        updates = page.locator(f"tr.update:has(a[href='/apps/{app.namespace}/{app.name}'])")
        offered = updates.locator("td strong").all_inner_texts()
        assert "1.2.0" in offered, inbox  # the chart's newest minor (1.0.0 runs)
        _shot(ui, page, "inbox-viewer")
        page.locator(f"a[href='/apps/{app.namespace}/{app.name}']").first.click()
        page.wait_for_url(f"{ui.url}/apps/{app.namespace}/{app.name}")
        assert page.locator("#current-version").inner_text() == "1.0.0"
        _shot(ui, page, "app-viewer")
        # the form is there (RBAC is per namespace); the apiserver refuses the viewer
        page.locator("details summary").click()
        page.fill("#custom-version", "1.1.0")
        page.click("form.stack button[type=submit]")
        alert = page.locator("p.alert[data-status='403']")
        alert.wait_for()
        message = alert.inner_text()
        assert 'User "oidc:viewer" cannot create resource "upgraderequests"' in message, message
        assert "fluxup-approver" in message
        _shot(ui, page, "refused-viewer")
        # the JSON API says the same, with the session's CSRF token
        me = page.request.get(ui.url + "/api/me").json()
        resp = page.request.post(f"{ui.url}/api/apps/{app.namespace}/{app.name}/upgrade",
                                 data={"version": "1.1.0"},
                                 headers={"X-CSRF-Token": me["csrfToken"]})
        assert resp.status == 403, resp.text()
        assert resp.json()["error"] == "forbidden"
        assert _requests(sb, app.namespace) == []
    finally:
        context.close()


def test_approver_upgrades_as_themselves(ui: UI, browser: Any, stack: Stack) -> None:
    sb, app = stack.sandbox, ui.app
    context = browser.new_context()
    page = context.new_page()
    try:
        _login(ui, page, ui.approver, "/")
        # a forged POST (no CSRF token, or a wrong one) is refused and creates nothing
        for form in ({"version": "1.1.0"}, {"version": "1.1.0", "csrf_token": "forged"}):
            resp = page.request.post(f"{ui.url}/apps/{app.namespace}/{app.name}/preview",
                                     form=form, max_redirects=0)
            assert resp.status == 403, resp.text()
            assert "CSRF token missing or invalid" in resp.text()
        assert _requests(sb, app.namespace) == []
        # review from the inbox: the button of the update Renovate found (chart 1.2.0)
        # starts a dry run as the approver, which shows the exact Git diff
        review = page.get_by_role(
            "button", name=f"Review upgrade of {app.namespace}/{app.name} to 1.2.0", exact=True)
        assert review.count() == 1, page.locator("main").inner_text()
        _shot(ui, page, "inbox-approver")
        review.click()
        page.wait_for_url(re.compile(rf".*/upgrades/{app.namespace}/[^/]+/confirm$"))
        page.locator("button.primary", has_text="Confirm upgrade").wait_for(timeout=120_000)
        diff = page.locator("#git-diff").inner_text()
        assert '+      version: "1.2.0"' in diff, diff
        _shot(ui, page, "confirm-approver")
        page.click("button.primary")
        page.wait_for_url(re.compile(rf".*/upgrades/{app.namespace}/[^/]+$"))
        name = page.url.rsplit("/", 1)[1]
        assert "requested by oidc:approver" in page.locator("main").inner_text()
        # live progress over SSE: the phase on the open page moves to Succeeded
        page.locator("#phase[data-phase='Succeeded'], #phase[data-phase='Failed']").wait_for(
            timeout=300_000)
        assert page.locator("#phase").get_attribute("data-phase") == "Succeeded", (
            page.locator("main").inner_text())
        assert page.locator("p.ok[role=status]").inner_text().startswith("Upgrade complete.")
        assert page.locator("ul.snapshots li").count() == 2
        _shot(ui, page, "progress-approver")
    finally:
        context.close()
    request = sb.get_json("upgraderequest", name, "-n", app.namespace)
    assert request is not None
    assert request["metadata"]["annotations"]["fluxup.dev/requested-by"] == "oidc:approver"
    assert request["status"]["phase"] == "Succeeded"
    events = (sb.get_json("events", "-n", app.namespace,
                          f"--field-selector=involvedObject.name={name}") or {})["items"]
    audit = [e for e in events if e["reason"] == "UpgradeRequested"]
    assert len(audit) == 1, events
    assert audit[0]["message"].startswith(f"oidc:approver requested an upgrade of "
                                          f"{app.namespace}/{app.name} to 1.2.0")
    hr = sb.get_json("helmrelease", app.name, "-n", app.namespace)
    assert hr is not None
    assert hr["status"]["history"][0]["chartVersion"] == "1.2.0"
    previews = [r for r in _requests(sb, app.namespace) if r["spec"].get("dryRun")]
    assert [p["metadata"]["annotations"]["fluxup.dev/requested-by"] for p in previews] == [
        "oidc:approver"]


def test_approver_rolls_back_after_the_data_loss_warning(ui: UI, browser: Any,
                                                         stack: Stack) -> None:
    """Follows the upgrade above: the new version "migrated" the data; roll back in the
    UI and get the bytes written before the upgrade back."""
    sb, app = stack.sandbox, ui.app
    done = [r for r in _requests(sb, app.namespace)
            if not r["spec"].get("dryRun") and r["status"].get("phase") == "Succeeded"]
    assert len(done) == 1, "needs test_approver_upgrades_as_themselves to have run"
    upgrade = done[0]["metadata"]["name"]
    migrated = _migrate(sb, app.namespace, list(ui.original))
    context = browser.new_context()
    page = context.new_page()
    try:
        _login(ui, page, ui.approver, f"/upgrades/{app.namespace}/{upgrade}")
        page.locator("p.ok a", has_text="Roll back").click()
        page.wait_for_url(re.compile(rf".*/apps/{app.namespace}/{app.name}/rollback\?.*"))
        warning = page.locator("p.warning").first.inner_text()
        for pvc in ui.original:
            assert f"{app.namespace}/{pvc}" in warning, warning
        assert "will be lost" in warning, warning
        assert "returns to 1.0.0" in warning, warning
        _shot(ui, page, "rollback-approver")
        page.check("#confirm")
        page.click("button.danger")
        page.wait_for_url(re.compile(rf".*/rollbacks/{app.namespace}/[^/]+$"))
        page.locator("#phase[data-phase='Succeeded'], #phase[data-phase='Failed']").wait_for(
            timeout=300_000)
        assert page.locator("#phase").get_attribute("data-phase") == "Succeeded", (
            page.locator("main").inner_text())
        assert page.locator("p.ok[role=status]").inner_text() == "Rollback complete."
        _shot(ui, page, "rollback-progress-approver")
        name = page.url.rsplit("/", 1)[1]
    finally:
        context.close()
    rr = sb.get_json("rollbackrequest", name, "-n", app.namespace)
    assert rr is not None
    assert rr["metadata"]["annotations"]["fluxup.dev/requested-by"] == "oidc:approver"
    for pvc, data in ui.original.items():
        assert (volume_dir(sb, app.namespace, pvc) / DATA).read_bytes() == data, pvc
        claim = sb.get_json("pvc", pvc, "-n", app.namespace) or {}
        assert claim["spec"]["volumeName"] != migrated[pvc][0]  # a new volume
    hr = sb.get_json("helmrelease", app.name, "-n", app.namespace)
    assert hr is not None
    assert hr["status"]["history"][0]["chartVersion"] == "1.0.0"
