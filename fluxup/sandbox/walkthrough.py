"""The walkthrough ``fluxup demo`` prints: what a person does, step by step, on the demo.

:func:`build_walkthrough` is pure: it turns what the demo started (UI address, login,
paths) into steps made of text to read, commands to run and commands to watch with.
``fluxup demo`` prints :meth:`Walkthrough.render` and saves :meth:`Walkthrough.to_json`
next to the sandbox, and the browser test (``tests/integration/test_demo_walkthrough.py``)
reads that file and runs exactly the same command lines, so what is printed is what is
tested. Nothing here starts, reads or changes anything.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["Part", "Step", "Walkthrough", "build_walkthrough"]

#: ``say``: read (and do in the browser); ``run``: type these commands; ``watch``: optional
#: commands to look at what happens (they keep running until Ctrl-C)
PartKind = Literal["say", "run", "watch"]


@dataclass(frozen=True)
class Part:
    kind: PartKind
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    title: str
    parts: tuple[Part, ...]

    def commands(self) -> list[str]:
        """The command lines of this step's ``run`` parts, in order."""
        return [line for p in self.parts if p.kind == "run" for line in p.lines]


@dataclass(frozen=True)
class Walkthrough:
    ui_url: str
    login: str
    password: str
    #: the commands' environment (the ``export`` line printed once, before the steps):
    #: the sandbox's kubeconfig, and directories put in front of ``PATH``
    kubeconfig: str
    path: tuple[str, ...]
    app: str
    steps: tuple[Step, ...]

    def export_line(self) -> str:
        return (f"export KUBECONFIG={shlex.quote(self.kubeconfig)} "
                f"PATH={shlex.quote(':'.join(self.path))}:\"$PATH\"")

    def render(self, ready_seconds: float | None = None) -> str:
        """The text printed for a person."""
        ready = f" (ready in {ready_seconds:.0f}s)" if ready_seconds is not None else ""
        out = [
            "",
            "=" * 78,
            f"FluxUp demo is running{ready}.",
            "",
            f"  Web UI:  {self.ui_url}",
            f"  Log in:  {self.login}   password: {self.password}",
            "           (at Dex, the sandbox's OpenID provider; the UI sends you there)",
            "",
            "For the commands below, open another terminal and first run:",
            f"  {self.export_line()}",
        ]
        for number, step in enumerate(self.steps, 1):
            out += ["", f"{number}. {step.title}"]
            for part in step.parts:
                if part.kind == "say":
                    out += [f"   {line}" for line in part.lines]
                elif part.kind == "run":
                    out += [f"     {line}" for line in part.lines]
                else:
                    out += ["   Watch it (Ctrl-C ends the watch):"]
                    out += [f"     {line}" for line in part.lines]
        out += ["", "Ctrl-C here (or `make demo-down`) stops everything the demo started.",
                "=" * 78]
        return "\n".join(out)

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Walkthrough:
        data = json.loads(text)
        steps = tuple(
            Step(s["title"], tuple(Part(p["kind"], tuple(p["lines"])) for p in s["parts"]))
            for s in data["steps"])
        return cls(data["ui_url"], data["login"], data["password"], data["kubeconfig"],
                   tuple(data["path"]), data["app"], steps)


def build_walkthrough(*, ui_url: str, login: str, password: str, namespace: str, app: str,
                      kubeconfig: Path, path: tuple[Path, ...], sandbox_dir: Path,
                      checkout: Path, release_file: str, chart: str, current: str,
                      approve: str, push: str) -> Walkthrough:
    """The three steps on ``namespace/app`` (chart ``current`` now): approve ``approve`` in
    the UI; push ``push`` to Git by hand from ``checkout`` (a clone of the fleet repository
    whose ``release_file`` holds the HelmRelease of chart ``chart``) and watch the gate
    hold it; play the new
    version's migration, roll back in the UI and see the data return. ``path`` holds the
    directories of ``kubectl`` and ``fluxup``."""
    data = f"fluxup demo data --dir {shlex.quote(str(sandbox_dir))}"
    migrated = f"migrated by {push}: the old format is gone"
    approve_step = Step("Approve an upgrade in the UI", (
        Part("say", (
            f"Open {ui_url} and log in. The inbox lists {namespace}/{app}: chart {current},",
            "with the updates Renovate found. Open it; under \"Versions you can upgrade to\",",
            f"in the row {chart} {current} → {approve} (the chart; image rows name the",
            f"registry) click \"Review upgrade to {approve}\". FluxUp previews the change as",
            "you (a dry run: preflight checks, the volumes it will snapshot, the exact Git",
            "diff). Click \"Confirm upgrade\" and watch the phases live: both volumes are",
            f"snapshotted (ReadyToUse) before Flux may apply {approve}, then Succeeded.",
        )),
    ))
    push_step = Step("Push a version bump to Git by hand and watch the gate hold it", (
        Part("say", ("A colleague skips the UI and edits Git directly:",)),
        Part("run", (
            f"cd {shlex.quote(str(checkout))} && git pull -q --ff-only",
            f"sed -i 's/version: \"{approve}\"/version: \"{push}\"/' {release_file}",
            f"git commit -qam 'chore: bump {app} to {push} by hand'",
            "git push -q",
            "kubectl annotate --overwrite -n flux-system gitrepository/flux-system "
            "reconcile.fluxcd.io/requestedAt=\"$(date +%s)\"",
        )),
        Part("say", (
            "(the annotation only makes Flux look now instead of within a minute)",
            f"Flux applies {push}, and FluxUp's admission gate holds the HelmRelease",
            "(suspended, annotation fluxup.dev/held) until it has snapshotted the volumes;",
            "then it releases it. In the UI the app shows the hold and an upgrade it made",
            "for your push (origin git) with its snapshots.",
        )),
        Part("watch", (
            f"kubectl get upgraderequests -n {namespace} -o wide -w",
            f"kubectl get helmrelease {app} -n {namespace} -w -o "
            "'custom-columns=VERSION:.spec.chart.spec.version,SUSPENDED:.spec.suspend,"
            "HELD:.metadata.annotations.fluxup\\.dev/held'",
        )),
    ))
    rollback_step = Step("Roll back and see the data return", (
        Part("say", (f"The app's data, in its volumes (written while {current} ran):",)),
        Part("run", (data,)),
        Part("say", (f"{push} runs a one-way migration that rewrites it. Play that:",)),
        Part("run", (f"{data} --write {shlex.quote(migrated)}",)),
        Part("say", (
            f"In the UI, on {namespace}/{app}'s page under \"Snapshot sets\", find the set",
            f"{approve} → {push} and click \"Roll back to this\". Read the data-loss warning,",
            "tick the box and click \"Roll back\". FluxUp stops the app, restores both",
            f"volumes from the snapshots, reverts Git and {app} runs {approve} again.",
            "Then look at the data again:",
        )),
        Part("run", (data,)),
    ))
    return Walkthrough(ui_url, login, password, str(kubeconfig), tuple(str(p) for p in path),
                       f"{namespace}/{app}",
                       (approve_step, push_step, rollback_step))
