"""Whether the cluster serves every object a Git change will make Flux apply.

The preflight check "API versions served" (DESIGN.md's preflight list): a file the
upgrade commit touches may define an object with an ``apiVersion`` the cluster no longer
serves (``helm.toolkit.fluxcd.io/v2beta1`` after a Flux upgrade). Committing it would
break the Kustomization's next apply — for every object of that Kustomization, not only
this app — so the upgrade is refused before anything is committed. The operator asks the
apiserver's discovery which kinds each group/version serves; this module decides from
the documents and those answers. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fluxup.logic.yamledit import DocumentRef

__all__ = ["LOCAL_GROUPS", "api_versions_of", "find_unserved"]

#: API groups of files kustomize itself reads (``kustomization.yaml``, KRM function
#: configs): never sent to the cluster, so the cluster need not serve them.
LOCAL_GROUPS = frozenset({"kustomize.config.k8s.io", "config.kubernetes.io"})


def _applied(doc: DocumentRef) -> bool:
    return bool(doc.api_version) and doc.api_version.split("/")[0] not in LOCAL_GROUPS


def api_versions_of(documents: Iterable[DocumentRef]) -> tuple[str, ...]:
    """The distinct apiVersions of the objects in ``documents`` Flux would apply, sorted
    (documents without one, and kustomize's own files, are skipped)."""
    return tuple(sorted({d.api_version for d in documents if _applied(d)}))


def find_unserved(
    documents: Mapping[str, Iterable[DocumentRef]],
    served: Mapping[str, frozenset[str] | None],
) -> list[str]:
    """One problem per document whose ``apiVersion``/``kind`` the cluster does not serve.

    ``documents`` maps a repository path to the objects it defines after the change;
    ``served`` maps an apiVersion to the kinds the cluster serves under it, ``None`` when
    the group/version is not served at all.
    """
    problems = []
    for path, docs in sorted(documents.items()):
        for doc in docs:
            if not _applied(doc):
                continue
            kinds = served.get(doc.api_version)
            if kinds is None:
                problems.append(f"{path}:{doc.line}: {doc.kind} {doc.name} uses apiVersion "
                                f"{doc.api_version}, which the cluster does not serve")
            elif doc.kind not in kinds:
                problems.append(f"{path}:{doc.line}: the cluster serves no kind {doc.kind} "
                                f"in {doc.api_version} ({doc.name})")
    return problems
