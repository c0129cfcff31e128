"""The demo's walkthrough: what is printed is what the JSON (read by the browser test)
holds, and its commands work in a shell exactly as printed."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from fluxup.sandbox.walkthrough import Walkthrough, build_walkthrough


def _walkthrough(tmp_path: Path) -> Walkthrough:
    return build_walkthrough(
        ui_url="http://127.0.0.1:8080", login="demo@fluxup.test", password="pw-1",
        namespace="demo-helm", app="demo-helm", kubeconfig=tmp_path / "my dir" / "kubeconfig",
        path=(tmp_path / "bin a", tmp_path / "bin b"), sandbox_dir=tmp_path / "my dir",
        checkout=tmp_path / "my dir" / "demo" / "fleet",
        release_file="flux/apps/demo-helm/helmrelease.yaml", chart="demo-app", current="1.0.0",
        approve="1.1.0", push="1.2.0")


def test_three_steps_with_address_login_and_every_command_printed(tmp_path: Path) -> None:
    walk = _walkthrough(tmp_path)
    text = walk.render(ready_seconds=61.4)
    assert "ready in 61s" in text
    assert "http://127.0.0.1:8080" in text
    assert "demo@fluxup.test   password: pw-1" in text
    assert [s.title for s in walk.steps] == [
        "Approve an upgrade in the UI",
        "Push a version bump to Git by hand and watch the gate hold it",
        "Roll back and see the data return"]
    assert walk.export_line() in text
    assert "in the row demo-app 1.0.0 → 1.1.0 (the chart;" in text
    for step in walk.steps:
        for part in step.parts:
            for line in part.lines:
                assert line in text, line
    push = walk.steps[1].commands()
    assert push[1] == ("sed -i 's/version: \"1.1.0\"/version: \"1.2.0\"/' "
                       "flux/apps/demo-helm/helmrelease.yaml")
    assert push[2:4] == ["git commit -qam 'chore: bump demo-helm to 1.2.0 by hand'",
                         "git push -q"]  # own lines: a failed commit stops a `bash -e`
    (watch,) = [p for p in walk.steps[1].parts if p.kind == "watch"]
    # the shell hands kubectl the escaped dot of the annotation's name
    assert shlex.split(watch.lines[1])[-1].endswith(r"HELD:.metadata.annotations.fluxup\.dev/held")
    rollback = walk.steps[2].commands()
    assert rollback[0] == f"fluxup demo data --dir '{tmp_path}/my dir'"
    assert rollback[1] == rollback[0] + " --write 'migrated by 1.2.0: the old format is gone'"
    assert rollback[2] == rollback[0]


def test_json_round_trip_is_the_same_walkthrough(tmp_path: Path) -> None:
    walk = _walkthrough(tmp_path)
    assert Walkthrough.from_json(walk.to_json()) == walk


def test_the_export_line_works_in_a_shell_with_spaces_in_paths(tmp_path: Path) -> None:
    walk = _walkthrough(tmp_path)
    shown = subprocess.run(
        ["bash", "-c", walk.export_line() + '\nprintf "%s\\n" "$KUBECONFIG" "$PATH"'],
        capture_output=True, text=True, check=True).stdout.splitlines()
    assert shown[0] == f"{tmp_path}/my dir/kubeconfig"
    assert shown[1].startswith(f"{tmp_path}/bin a:{tmp_path}/bin b:/")  # then the old PATH
