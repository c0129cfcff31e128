"""Pinned Go components of the local sandbox cluster.

Pure data: which published Go module builds which binary, at which version. The
builder (:mod:`fluxup.sandbox.gobuild`) turns each entry into a small wrapper module
and caches the binaries under ``~/.cache/fluxup/bin/<name>-<key>/``. Changing a
version here changes the cache key, so stale binaries are never reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "COMPONENTS",
    "DEX_VERSION",
    "FLUX_VERSIONS",
    "GITEA_VERSION",
    "KUBERNETES_VERSION",
    "KWOK_VERSION",
    "PROVISIONER_VERSION",
    "SNAPSHOTTER_VERSION",
    "SNAPSHOT_CLIENT_MODULE",
    "TOOLS",
    "GoComponent",
    "component",
]

KUBERNETES_VERSION = "v1.36.3"
KWOK_VERSION = "v0.8.0"
#: Flux controllers of one release train (Flux 2.9): CRD API versions agree
#: (source v1, kustomize v1, helm v2, notification v1/v1beta3). Each is the newest patch
#: whose whole dependency graph the module proxy serves: source v1.9.4+ needs
#: fluxcd/pkg/artifact v0.18.2/3, kustomize v1.9.6 needs fluxcd/pkg/kustomize v1.35.7 (zips
#: refused); the v1.10 train needs go 1.27 and helm v1.7 / notification v1.10 are refused.
FLUX_VERSIONS: dict[str, str] = {
    "source-controller": "v1.9.3",
    "kustomize-controller": "v1.9.5",
    "helm-controller": "v1.6.4",
    "notification-controller": "v1.9.3",
}
SNAPSHOTTER_VERSION = "v8.7.0"
SNAPSHOT_CLIENT_MODULE = "github.com/kubernetes-csi/external-snapshotter/client/v8"
#: v6.4.0 needs sigs.k8s.io/sig-storage-lib-external-provisioner/v13 v13.1.0 (zip refused).
PROVISIONER_VERSION = "v6.3.0"
#: Helm CLI for rendering FluxUp's chart; the version helm-controller v1.6 builds against.
HELM_VERSION = "v4.2.2"
#: Dex, the sandbox's OpenID Connect provider for the UI's browser tests: the v2.45.1
#: release commit as a pseudo-version. Dex's go.mod has no ``/v2`` suffix, so its ``v2.x``
#: tags are not Go versions (the proxy lists only a 2018 ``+incompatible`` one), but it
#: serves this commit. Master (2026-08) does not build from the proxy: it needs an
#: unreleased ``dex/api/v2`` (its go.mod replaces it with ./api/v2, and the published
#: api/v2 v2.4.0 lacks its new types); v2.45.1's api/v2 code is exactly v2.4.0's. The web
#: templates are embedded (``web/``), so the binary is complete.
DEX_VERSION = "v0.0.0-20260303133905-11d2eeb52b42"
#: Gitea server for testing the Gitea Git backend against the real REST API.
GITEA_VERSION = "v1.27.3"


def _k8s_version_ldflags(version: str) -> tuple[str, ...]:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=2026-01-01T00:00:00Z",
        ]
    return tuple(flags)


@dataclass(frozen=True)
class GoComponent:
    """One family of binaries built from one published Go module.

    ``packages`` maps binary name to Go package path. ``extra_requires`` pins sibling
    modules whose published version the upstream go.mod lists too old. ``source`` is the
    path the module proxy serves the module under when its go.mod declares another one
    (``module``): the wrapper then requires ``module`` and replaces it with
    ``source@version``, as for a fork.
    """

    name: str
    module: str
    version: str
    packages: dict[str, str]
    ldflags: tuple[str, ...] = ()
    extra_requires: tuple[str, ...] = ()
    cgo: bool = False
    data_modules: tuple[str, ...] = field(default=())
    source: str = ""

    @property
    def key(self) -> str:
        """Cache key: changes whenever anything that affects the binaries changes."""
        import hashlib

        text = repr((self.module, self.version, sorted(self.packages.items()), self.ldflags,
                     self.extra_requires, self.cgo, *((self.source,) if self.source else ())))
        return f"{self.version}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


COMPONENTS: tuple[GoComponent, ...] = (
    GoComponent(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version="v3.6.16",
        packages={"etcd": "go.etcd.io/etcd/server/v3"},
    ),
    GoComponent(
        name="kubernetes",
        module="k8s.io/kubernetes",
        version=KUBERNETES_VERSION,
        packages={
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kubectl": "k8s.io/kubernetes/cmd/kubectl",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        },
        ldflags=_k8s_version_ldflags(KUBERNETES_VERSION),
    ),
    # Fake nodes: marks pods bound to its nodes Running/Ready (no kubelet). No replaces.
    GoComponent(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version=KWOK_VERSION,
        packages={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
    ),
    # Flux 2.9 release train (all go 1.26.0, k8s v0.36.x, controller-runtime v0.24.1). The
    # v1.10.x source/kustomize controllers need go 1.27 and their helm/notification partners
    # are refused by the proxy; see FLUX_VERSIONS.
    *(
        GoComponent(
            name=name,
            module=f"github.com/fluxcd/{name}",
            version=version,
            packages={name: f"github.com/fluxcd/{name}"},
        )
        for name, version in FLUX_VERSIONS.items()
    ),
    # CSI snapshots: the upstream go.mod replaces client/v8 with ./client but requires a stale
    # published client; pin the client at the same tag (it also holds the CRDs).
    GoComponent(
        name="external-snapshotter",
        module="github.com/kubernetes-csi/external-snapshotter/v8",
        version=SNAPSHOTTER_VERSION,
        packages={
            "snapshot-controller":
                "github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller",
            "csi-snapshotter":
                "github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter",
        },
        ldflags=(f"-X main.version={SNAPSHOTTER_VERSION}",),
        extra_requires=(f"{SNAPSHOT_CLIENT_MODULE}@{SNAPSHOTTER_VERSION}",),
        data_modules=(f"{SNAPSHOT_CLIENT_MODULE}@{SNAPSHOTTER_VERSION}",),
    ),
    GoComponent(
        name="external-provisioner",
        module="github.com/kubernetes-csi/external-provisioner/v6",
        version=PROVISIONER_VERSION,
        packages={
            "csi-provisioner":
                "github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner",
        },
        ldflags=(f"-X main.version={PROVISIONER_VERSION}",),
    ),
)


#: Tools built on demand only (not part of the sandbox cluster, so `sandbox up` never
#: builds them): Helm's CLI renders FluxUp's own chart in tests/integration/test_chart.py;
#: Dex is the OIDC provider the UI tests log in with (fluxup/sandbox/dex.py);
#: Gitea serves the real REST API the Gitea Git backend is tested against
#: (tests/adapters/test_gitea_real.py, through :mod:`fluxup.sandbox.gitea`).
TOOLS: tuple[GoComponent, ...] = (
    GoComponent(
        name="helm",
        module="helm.sh/helm/v4",
        version=HELM_VERSION,
        packages={"helm": "helm.sh/helm/v4/cmd/helm"},
    ),
    GoComponent(
        name="dex",
        module="github.com/dexidp/dex",
        version=DEX_VERSION,
        packages={"dex": "github.com/dexidp/dex/cmd/dex"},
    ),
    # Gitea's go.mod declares `module gitea.dev`, whose zips the proxy refuses; the same
    # tree is served as code.gitea.io/gitea. No build tags: without `sqlite_mattn` it uses
    # the pure-Go modernc SQLite driver (no cgo), and without `bindata` it reads templates
    # and options from its module directory (see fluxup.sandbox.gitea). No web assets are
    # built (no npm): the REST API does not need them.
    GoComponent(
        name="gitea",
        module="gitea.dev",
        source="code.gitea.io/gitea",
        version=GITEA_VERSION,
        packages={"gitea": "gitea.dev"},
        ldflags=(f"-X main.Version={GITEA_VERSION.lstrip('v')}",),
    ),
)


def component(name: str) -> GoComponent:
    """Return the component called ``name``; raise ``KeyError`` naming the known ones."""
    for comp in (*COMPONENTS, *TOOLS):
        if comp.name == name:
            return comp
    known = [c.name for c in (*COMPONENTS, *TOOLS)]
    raise KeyError(f"unknown sandbox component {name!r}; known: {known}")
