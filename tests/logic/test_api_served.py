"""The "API versions served" preflight decision, from documents and discovery answers."""

from __future__ import annotations

from fluxup.logic.api_served import api_versions_of, find_unserved
from fluxup.logic.yamledit import list_documents

FILE = """\
apiVersion: helm.toolkit.fluxcd.io/v2beta1
kind: HelmRelease
metadata:
  name: web
spec: {}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-values
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: web
"""

KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
metadata:
  name: ignored
resources: [release.yaml]
"""

SERVED = {
    "helm.toolkit.fluxcd.io/v2beta1": None,  # Flux 2.x no longer serves it
    "v1": frozenset({"ConfigMap", "Secret"}),
    "source.toolkit.fluxcd.io/v1": frozenset({"GitRepository", "HelmRepository"}),
}


def test_unserved_versions_and_kinds_are_named_with_file_and_line() -> None:
    docs = {"apps/web.yaml": list_documents(FILE, "apps/web.yaml")}
    assert api_versions_of(docs["apps/web.yaml"]) == (
        "helm.toolkit.fluxcd.io/v2beta1", "source.toolkit.fluxcd.io/v1", "v1")
    assert find_unserved(docs, SERVED) == [
        "apps/web.yaml:1: HelmRelease web uses apiVersion helm.toolkit.fluxcd.io/v2beta1, "
        "which the cluster does not serve",
        "apps/web.yaml:12: the cluster serves no kind OCIRepository in "
        "source.toolkit.fluxcd.io/v1 (web)",
    ]


def test_everything_served_and_kustomize_files_are_fine() -> None:
    docs = {"apps/kustomization.yaml": list_documents(KUSTOMIZATION),
            "apps/cm.yaml": list_documents(FILE.split("---\n")[1])}
    assert api_versions_of(docs["apps/kustomization.yaml"]) == ()
    assert find_unserved(docs, SERVED) == []
