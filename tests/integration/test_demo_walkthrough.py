"""``fluxup demo`` walked as a person would: the printed walkthrough, step by step.

The module starts the real command (``python -m fluxup demo --dir DIR``, what
``make demo`` runs) on a fresh directory and waits for its walkthrough; it reads the
walkthrough the demo saved (``walkthrough.json``, checked equal to what it printed) and
does exactly that: logs in through Dex's form in headless Chromium (Debian's, driven by
Playwright) with the printed login, approves the printed upgrade in the UI, runs the
printed ``git`` commands (and the printed watch commands, whose output must show the
held HelmRelease), plays the migration and rolls back in the UI with the printed
``fluxup demo data`` commands, and finally presses Ctrl-C (SIGINT) and checks that no
process of the demo is left. Screenshots land in the test's temporary directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fluxup.sandbox import controlplane
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.demo import APPROVE, CHART, PUSH, START, WALKTHROUGH, read_data
from fluxup.sandbox.processes import is_ours, token_processes, wait_until
from fluxup.sandbox.walkthrough import Walkthrough
from tests.integration.test_ui_browser import CHROMIUM, CHROMIUM_FLAGS

pytestmark = [pytest.mark.sandbox, pytest.mark.full]


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    dir: Path
    out: Path
    walk: Walkthrough
    sandbox: Sandbox
    shots: Path

    @property
    def namespace(self) -> str:
        return self.walk.app.split("/")[0]

    @property
    def name(self) -> str:
        return self.walk.app.split("/")[1]

    def printed(self) -> str:
        return self.out.read_text(errors="replace")

    def shell(self, lines: list[str], timeout: float = 120) -> str:
        """Run ``lines`` as printed, after the printed ``export`` line, in one bash."""
        script = "\n".join([self.walk.export_line(), *lines])
        proc = subprocess.run(["bash", "-ec", script], capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def watch(self, line: str, output: Path) -> subprocess.Popen[bytes]:
        """Start a printed watch command writing to ``output`` (it runs until stopped)."""
        with output.open("wb") as sink:
            return subprocess.Popen(["bash", "-ec", f"{self.walk.export_line()}\nexec {line}"],
                                    stdout=sink, stderr=subprocess.STDOUT)

    def get(self, *args: str) -> dict[str, Any]:
        return self.sandbox.get_json(*args) or {}


def _demo_env() -> dict[str, str]:
    """The test's environment minus anything pointing at another cluster or FluxUp."""
    return {k: v for k, v in os.environ.items()
            if k != "KUBECONFIG" and not k.startswith("FLUXUP_")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    work = tmp_path_factory.mktemp("demo")
    directory, out = work / "demo", work / "demo.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "fluxup", "demo", "--dir",
                                 str(directory)], stdout=sink, stderr=subprocess.STDOUT,
                                env=_demo_env())
    try:
        wait_until("the demo's walkthrough", lambda: proc.poll() is not None or
                   "stops everything the demo started" in out.read_text(errors="replace"),
                   900, out)
        assert proc.poll() is None, out.read_text(errors="replace")[-4000:]
        walk = Walkthrough.from_json((directory / WALKTHROUGH).read_text())
        yield Demo(proc, directory, out, walk, controlplane.load(directory),
                   work / "screenshots")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(180)
            except subprocess.TimeoutExpired:
                proc.kill()
        if (directory / "sandbox.json").exists():
            controlplane.down(directory)


@pytest.fixture(scope="module")
def page(demo: Demo) -> Iterator[Any]:
    """One browser, logged in once through Dex's form with the printed login."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run `make system-deps`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_FLAGS)
        context = chromium.new_context()
        tab = context.new_page()
        tab.goto(demo.walk.ui_url)
        tab.locator("#login").wait_for()  # Dex's own form (plain HTTP on loopback: no warning)
        _shot(demo, tab, "1-dex-login")
        tab.fill("#login", demo.walk.login)
        tab.fill("#password", demo.walk.password)
        tab.click("#submit-login")
        tab.wait_for_url(demo.walk.ui_url + "/")
        yield tab
        context.close()
        chromium.close()


def _shot(demo: Demo, page: Any, name: str) -> None:
    demo.shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(demo.shots / f"{name}.png"), full_page=True)


def _released(demo: Demo, version: str) -> dict[str, Any]:
    hr = demo.get("helmrelease", demo.name, "-n", demo.namespace)
    history = (hr.get("status") or {}).get("history") or [{}]
    assert history[0].get("chartVersion") == version, hr.get("status")
    return hr


def test_the_printed_walkthrough_is_the_saved_one(demo: Demo) -> None:
    printed = demo.printed()
    # everything after the headline (which carries the start-up time) as printed
    rendered = demo.walk.render().split("FluxUp demo is running.\n", 1)[1]
    assert rendered in printed
    assert f"Web UI:  {demo.walk.ui_url}" in printed
    assert f"Log in:  {demo.walk.login}   password: {demo.walk.password}" in printed
    assert demo.walk.export_line() in printed
    assert (demo.dir / WALKTHROUGH).stat().st_mode & 0o077 == 0  # holds the password
    # every process the demo runs is one the sandbox recorded (so Ctrl-C can stop it)
    running = demo.sandbox.running()
    for name in ("dex", "fluxup-operator", "fluxup-webhook", "kube-apiserver"):
        assert running.get(name), running


def test_step_1_approve_an_upgrade_in_the_ui(demo: Demo, page: Any) -> None:
    inbox = page.locator("main").inner_text()
    assert demo.walk.app in inbox, inbox
    _shot(demo, page, "1-inbox")
    page.locator(f"a[href='/apps/{demo.walk.app}']").first.click()
    page.wait_for_url(f"{demo.walk.ui_url}/apps/{demo.walk.app}")
    assert page.locator("#current-version").inner_text() == START
    # the row the walkthrough names: the chart's, from START to APPROVE
    assert f"in the row {CHART} {START} → {APPROVE}" in demo.printed()
    row = page.locator("table.candidates tbody tr").filter(
        has=page.locator("td:first-child", has_text=re.compile(rf"^{CHART}$"))).filter(
        has=page.locator("td", has_text=re.compile(rf"^{re.escape(APPROVE)}$")))
    assert row.locator("td").nth(2).inner_text() == START
    row.get_by_role("button", name=f"Review upgrade to {APPROVE}").click()
    page.wait_for_url(re.compile(rf".*/upgrades/{demo.namespace}/[^/]+/confirm$"))
    page.locator("button.primary", has_text="Confirm upgrade").wait_for(timeout=120_000)
    assert f'version: "{APPROVE}"' in page.locator("#git-diff").inner_text()
    _shot(demo, page, "1-confirm")
    page.click("button.primary")
    page.wait_for_url(re.compile(rf".*/upgrades/{demo.namespace}/[^/]+$"))
    name = page.url.rsplit("/", 1)[1]
    page.locator("#phase[data-phase='Succeeded']").wait_for(timeout=300_000)
    assert page.locator("ul.snapshots li").count() == 2
    _shot(demo, page, "1-succeeded")
    request = demo.get("upgraderequest", name, "-n", demo.namespace)
    assert request["metadata"]["annotations"]["fluxup.dev/requested-by"] == "oidc:demo"
    snapshots = request["status"]["snapshots"]
    assert len(snapshots) == 2, snapshots
    assert all(s["readyToUse"] for s in snapshots), snapshots
    _released(demo, APPROVE)


def test_step_2_a_bump_pushed_by_hand_is_held_until_snapshots_are_ready(
        demo: Demo, page: Any) -> None:
    step = demo.walk.steps[1]
    _released(demo, APPROVE)  # step 1 left it there (else the printed sed changes nothing)
    watches = [line for part in step.parts if part.kind == "watch" for line in part.lines]
    assert len(watches) == 2
    outputs = [demo.dir / f"watch-{n}.txt" for n in range(len(watches))]
    watching = [demo.watch(line, output) for line, output in zip(watches, outputs, strict=True)]
    try:
        # the HelmRelease's watch shows its first row once it watches (the other has no
        # UpgradeRequest to show yet; it watches by then too)
        wait_until("the HelmRelease watch", lambda: len(outputs[1].read_text().splitlines())
                   >= 2, 30)
        demo.shell(step.commands())

        def done() -> dict[str, Any] | None:
            items = demo.get("upgraderequests", "-n", demo.namespace).get("items") or []
            mine = [r for r in items if r["spec"].get("origin") == "git"
                    and (r.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
            return mine[0] if mine else None

        request = wait_until("FluxUp's upgrade for the push", done, 300)
    finally:
        for proc in watching:
            proc.terminate()
            proc.wait(30)
    seen = [output.read_text() for output in outputs]
    assert request["status"]["phase"] == "Succeeded", request["status"]
    assert all(s["readyToUse"] for s in request["status"]["snapshots"])
    assert len(request["status"]["snapshots"]) == 2
    # the printed HelmRelease watch showed it at the pushed version, suspended and held
    held = [line.split() for line in seen[1].splitlines()
            if line.startswith(f"{PUSH} ") and f'"chart":"{PUSH}"' in line]
    assert held, seen[1]
    assert held[0][1] == "true", seen[1]  # spec.suspend while held
    # the printed UpgradeRequest watch (wide: with the Origin column) showed FluxUp's
    # upgrade for the push going through the hold to Succeeded
    name = request["metadata"]["name"]
    phases = re.findall(rf"^{name}\s+{demo.name}\s+{PUSH}\s+(\w+)\s+git\b", seen[0], re.M)
    assert "Snapshotting" in phases, seen[0]
    assert phases[-1] == "Succeeded", seen[0]
    _released(demo, PUSH)
    page.goto(f"{demo.walk.ui_url}/upgrades/{demo.namespace}/{request['metadata']['name']}")
    assert page.locator("#phase").get_attribute("data-phase") == "Succeeded"
    _shot(demo, page, "2-git-upgrade")


def test_step_3_roll_back_in_the_ui_and_the_data_returns(demo: Demo, page: Any) -> None:
    step = demo.walk.steps[2]
    show, migrate, show_again = step.commands()
    original = read_data(demo.sandbox)
    before = demo.shell([show])
    assert f"written while {START} ran" in before, before
    assert len(before.splitlines()) == 2, before  # both volumes
    demo.shell([migrate])
    assert f"migrated by {PUSH}" in demo.shell([show])
    assert read_data(demo.sandbox) != original
    page.goto(f"{demo.walk.ui_url}/apps/{demo.walk.app}")
    snapshot_set = page.locator("ul.sets li", has_text=f"{APPROVE} → {PUSH}")
    snapshot_set.locator("a", has_text="Roll back to this").click()
    page.wait_for_url(re.compile(rf".*/apps/{demo.walk.app}/rollback\?.*"))
    assert "will be lost" in page.locator("p.warning").first.inner_text()
    _shot(demo, page, "3-rollback")
    page.check("#confirm")
    page.click("button.danger")
    page.wait_for_url(re.compile(rf".*/rollbacks/{demo.namespace}/[^/]+$"))
    page.locator("#phase[data-phase='Succeeded']").wait_for(timeout=300_000)
    _shot(demo, page, "3-rolled-back")
    assert demo.shell([show_again]) == before
    assert read_data(demo.sandbox) == original  # byte for byte
    _released(demo, APPROVE)


def test_ctrl_c_stops_everything_the_demo_started(demo: Demo) -> None:
    pids = dict(demo.sandbox.running())
    assert pids, pids
    assert all(pids.values()), pids
    recorded = controlplane.load(demo.dir).pids
    demo.proc.send_signal(signal.SIGINT)
    assert demo.proc.wait(180) == 0, demo.printed()[-3000:]
    assert "stopping the demo" in demo.printed()
    assert token_processes(demo.sandbox.token) == []
    assert not [name for name, pid in recorded.items() if is_ours(pid, demo.sandbox.token)]
    assert controlplane.load(demo.dir).pids == {}
