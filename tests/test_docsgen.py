"""docs/reference.md documents every CRD field, setting, flag and fluxup.dev/ name.

The reference is generated (``python -m fluxup.docsgen``); these tests fail when the file
is stale, or when something new in the code has no words in the CRD descriptions or in
fluxup/docsgen_text.py, which would make the generated reference silently incomplete.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from fluxup import docsgen
from fluxup.docsgen_text import ANNOTATIONS, CLI_COMMANDS, OPERATOR_ENV, UI_ENV
from fluxup.settings import Settings
from fluxup.ui.settings import UiSettings

REPO = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"""["'](fluxup\.dev/[a-z][a-z-]*)["']""")
_ENV = re.compile(r'"(FLUXUP_[A-Z0-9_]*[A-Z0-9])"')


def test_reference_is_current() -> None:
    assert docsgen.REFERENCE.read_text() == docsgen.build_reference(), (
        "docs/reference.md is stale: run .venv/bin/python -m fluxup.docsgen and commit it")


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text("old\n")
    monkeypatch.setattr(docsgen, "REFERENCE", stale)
    assert docsgen.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert stale.read_text() == "old\n"  # --check writes nothing
    assert docsgen.main([]) == 0
    assert docsgen.main(["--check"]) == 0


@pytest.mark.parametrize("name", docsgen.CRD_FILES)
def test_every_crd_field_is_described_and_listed(name: str) -> None:
    reference = docsgen.REFERENCE.read_text()
    fields = docsgen.crd_fields(docsgen.load_crd(name))
    assert len(fields) > 40
    undescribed = [f.path for f in fields if not f.description]
    assert not undescribed, f"give these fields a description in crds/{name}: {undescribed}"
    missing = [f.path for f in fields if f"| `{f.path}`" not in reference]
    assert not missing


def test_every_crd_file_is_documented() -> None:
    on_disk = {p.name for p in (REPO / "crds").glob("fluxup.dev_*.yaml")}
    assert on_disk == set(docsgen.CRD_FILES)


def _code_files() -> list[Path]:
    files = [p for p in (REPO / "fluxup").rglob("*.py")
             if "sandbox" not in p.parts and p.name not in ("docsgen.py", "docsgen_text.py")]
    return files + list((REPO / "webhook").rglob("*.py")) + list((REPO / "certs").rglob("*.py"))


def test_every_fluxup_name_in_the_code_is_documented() -> None:
    in_code = {m for p in _code_files() for m in _NAME.findall(p.read_text())}
    documented = {a.name for a in ANNOTATIONS}
    assert "fluxup.dev/bypass" in in_code  # the scan sees the code
    assert in_code - documented == set(), "describe them in fluxup/docsgen_text.py"
    assert documented - in_code == set(), "documented names the code no longer uses"


@pytest.mark.parametrize(("module", "docs", "cls"), [
    ("fluxup/settings.py", OPERATOR_ENV, Settings),
    ("fluxup/ui/settings.py", UI_ENV, UiSettings),
])
def test_every_setting_is_documented(module: str, docs: tuple[object, ...], cls: type) -> None:
    read = set(_ENV.findall((REPO / module).read_text()))
    documented = {d.env for d in OPERATOR_ENV + UI_ENV}
    assert read - documented == set(), "describe them in fluxup/docsgen_text.py"
    names = {f.name for f in dataclasses.fields(cls)}
    for d in docs:
        assert d.env in read, f"{d.env} is documented but {module} does not read it"
        assert d.field in names, f"{d.env}: {cls.__name__} has no field {d.field}"
    if cls is Settings:  # every operator setting can be set from the environment
        assert {d.field for d in docs} == names


def test_documented_defaults_are_the_code_defaults() -> None:
    reference = docsgen.REFERENCE.read_text()
    assert "| `FLUXUP_NOTIFY_ATTEMPTS` | `4` |" in reference
    assert "| `FLUXUP_UI_PORT` | `8080` |" in reference
    user = "system:serviceaccount:fluxup-system:fluxup-operator"
    assert f"| `FLUXUP_OPERATOR_USERNAME` | `{user}` |" in reference


def test_every_flag_has_help() -> None:
    for words, _ in CLI_COMMANDS:
        for flag, _default, text in docsgen.cli_flags(words):
            assert text, f"fluxup {' '.join(words)} {flag}: add help= in fluxup/cli.py"
    flags = {row[0] for row in docsgen.cli_flags(("webhook",))}
    assert {"--cert-file CERT_FILE", "--key-file KEY_FILE", "--port PORT"} <= flags
