"""The words of ``docs/reference.md`` that no schema holds: labels, annotations, settings.

Data only, read by :mod:`fluxup.docsgen`. Defaults are not written here (they come from
the settings dataclasses) unless the code computes them. ``tests/test_docsgen.py`` fails
when a ``fluxup.dev/`` name in the code, a ``FLUXUP_*`` variable in the settings or a
settings field has no entry here, so a new one cannot ship undocumented.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANNOTATIONS", "CLI_COMMANDS", "OPERATOR_ENV", "UI_ENV", "EnvDoc", "NameDoc"]


@dataclass(frozen=True)
class NameDoc:
    """A label, annotation or finalizer: its name, what it is, where it appears, meaning."""

    name: str
    what: str
    on: str
    meaning: str


@dataclass(frozen=True)
class EnvDoc:
    """An environment variable, the settings field it fills, and what it means.

    ``default``: text for a default the code computes (``None``: the field's default)."""

    env: str
    field: str
    meaning: str
    default: str | None = None


_FLUX = "HelmRelease, OCIRepository"

ANNOTATIONS: tuple[NameDoc, ...] = (
    # --- the gate, on the Flux objects of a managed app
    NameDoc("fluxup.dev/managed-app", "label", _FLUX,
            "The ManagedApp's name. The operator puts it on the app's HelmRelease (and the "
            "OCIRepository of a `chartRef`); the webhook configurations select on it, so "
            "unlabelled objects never reach the gate. Only the operator may remove it; "
            "deleting the ManagedApp removes it."),
    NameDoc("fluxup.dev/managed-app", "label", "VolumeSnapshot",
            "The ManagedApp a pre-upgrade snapshot belongs to."),
    NameDoc("fluxup.dev/held", "annotation", _FLUX,
            "The identity (JSON) the gate holds; written by the mutating webhook together "
            "with `spec.suspend: true`."),
    NameDoc("fluxup.dev/held-since", "annotation", _FLUX,
            "RFC 3339 time the current hold began (mutating webhook)."),
    NameDoc("fluxup.dev/approved", "annotation", _FLUX,
            "*Operator-only.* `{\"identity\": …, \"request\": \"<Kind>/<ns>/<name>\"}`: the "
            "identity approved for one UpgradeRequest or RollbackRequest after its snapshots "
            "became ReadyToUse; removed when the request ends."),
    NameDoc("fluxup.dev/released", "annotation", _FLUX,
            "*Operator-only.* The identity (JSON) FluxUp last released or saw running at "
            "rest, including image tags the HelmRelease status does not show and the tag an "
            "OCIRepository serves when its `status.artifact` is gone."),
    NameDoc("fluxup.dev/image-paths", "annotation", "HelmRelease",
            "*Operator-only.* JSON list of the value paths whose images belong to the "
            "identity (from `spec.versionPolicy.images[].valuesPath`)."),
    NameDoc("fluxup.dev/upgrade-request", "annotation", _FLUX,
            "The UpgradeRequest handling the current hold (so the webhook's messages can "
            "name it)."),
    NameDoc("fluxup.dev/bypass", "annotation", _FLUX,
            "Written by a person: `\"<reason>\"`. Lets a person un-suspend a held object "
            "without snapshots, for one identity only ([operations.md](operations.md)). "
            "Audited; removed by the operator once that identity runs."),
    NameDoc("fluxup.dev/bypassed", "annotation", _FLUX,
            "`{\"identity\": …, \"used\": bool}`: the one identity a bypass covers, "
            "recorded by the mutating webhook when the bypass first appears and kept on "
            "every later write."),
    NameDoc("fluxup.dev/bypass-recorded", "annotation", _FLUX,
            "The bypass reason the operator has audited (Warning Event `GateBypassed` and a "
            "notification), so it is announced once."),
    NameDoc("fluxup.dev/suspended-by-rollback", "annotation",
            "Kustomization, HelmRelease, OCIRepository",
            "`RollbackRequest/<ns>/<name>` that suspended the object; a later rollback does "
            "not mistake that suspension for a person's."),
    # --- line 2: Helm release records
    NameDoc("fluxup.dev/release-records", "label", "Namespace",
            "`gated`: the namespace stores a managed app's Helm release records; the line-2 "
            "webhook only sees Helm's Secrets in namespaces with this label. Written by the "
            "operator, removed when no managed app needs it."),
    NameDoc("fluxup.dev/release-key", "label", "ManagedApp",
            "*Operator-only.* Hash of the Helm storage namespace and release name: how the "
            "webhook finds the app of a release record."),
    NameDoc("fluxup.dev/release-gate", "annotation", "ManagedApp",
            "*Operator-only.* JSON: the Helm release the app protects, its image value "
            "paths and the deployed identities."),
    NameDoc("fluxup.dev/release-approved", "annotation", "ManagedApp",
            "*Operator-only.* JSON `{\"identity\": …, \"request\": …}`: the release identity "
            "one request may install; removed when the request ends."),
    NameDoc("fluxup.dev/held-at", "annotation", "UpgradeRequest",
            "`release-record` on a request FluxUp created for a hold at Helm's release "
            "record (line 2)."),
    NameDoc("fluxup.dev/release-held", "annotation", "UpgradeRequest",
            "The exact release identity held at line 2 that the request releases."),
    # --- snapshots and rollbacks
    NameDoc("fluxup.dev/upgrade-request", "label", "VolumeSnapshot",
            "The UpgradeRequest the snapshot was taken for; the snapshots of one request "
            "are one set (restored together, pruned together)."),
    NameDoc("fluxup.dev/protects-version", "label", "VolumeSnapshot",
            "The version the upgrade went to (label-safe form)."),
    NameDoc("fluxup.dev/source-pvc", "annotation", "VolumeSnapshot", "The PVC snapshotted."),
    NameDoc("fluxup.dev/previous-identity", "annotation", "VolumeSnapshot",
            "JSON of what ran before the upgrade: what a rollback from this snapshot "
            "returns to when its UpgradeRequest is gone."),
    NameDoc("fluxup.dev/retained-by-rollback", "label", "PersistentVolume",
            "The RollbackRequest that kept this volume (reclaim policy `Retain`): it holds "
            "the data from before the rollback. FluxUp never deletes it "
            "([operations.md](operations.md#reclaiming-retained-volumes))."),
    NameDoc("fluxup.dev/retained-from-pvc", "annotation", "PersistentVolume",
            "`<namespace>/<pvc>` the retained volume belonged to."),
    NameDoc("fluxup.dev/restore-claim", "annotation", "PersistentVolume",
            "JSON of the claim that replaces the old one, written before the old claim is "
            "deleted so a crash in between loses nothing."),
    NameDoc("fluxup.dev/restored-by", "annotation", "PersistentVolumeClaim",
            "`<namespace>/<RollbackRequest>` that recreated the claim from a snapshot."),
    NameDoc("fluxup.dev/replicas-before-rollback", "annotation", "Deployment, StatefulSet",
            "Replicas before a rollback scaled the workload to zero."),
    NameDoc("fluxup.dev/pvc-retention-before-rollback", "annotation", "StatefulSet",
            "Its `persistentVolumeClaimRetentionPolicy` (JSON) before a rollback set "
            "`whenScaled: Retain`; put back in StartingApp."),
    # --- updates, UI, reports
    NameDoc("fluxup.dev/announced-update", "annotation", "ManagedApp",
            "The available update already announced, so each version is announced once."),
    NameDoc("fluxup.dev/requested-by", "annotation", "UpgradeRequest, RollbackRequest",
            "The user who asked for it in the web UI."),
    NameDoc("fluxup.dev/renovate-report", "label", "ConfigMap",
            "`\"true\"` on ConfigMaps in FluxUp's namespace that hold a Renovate report "
            "([renovate.md](renovate.md))."),
    NameDoc("fluxup.dev/repository", "annotation", "ConfigMap",
            "The Git repository (URL or `org/name`) a report ConfigMap is about."),
    NameDoc("fluxup.dev/report-digest", "annotation", "ConfigMap",
            "sha256 of the report content the operator last ingested."),
    NameDoc("fluxup.dev/report-result", "annotation", "ConfigMap",
            "What the last ingest of the report did, on one line."),
    # --- finalizers
    NameDoc("fluxup.dev/managedapp", "finalizer", "ManagedApp",
            "Deleting a ManagedApp first waits for its requests in flight, then removes "
            "FluxUp's label and annotations from the Flux objects and releases a hold."),
    NameDoc("fluxup.dev/upgrade", "finalizer", "UpgradeRequest",
            "Deleting a request in flight first gives writers their replicas back and frees "
            "the app's lock."),
    NameDoc("fluxup.dev/rollback", "finalizer", "RollbackRequest",
            "Deleting a request in flight first gives Flux its suspend states and the "
            "workloads their replicas back."),
    NameDoc("fluxup.dev/kopf", "finalizer", "FluxUp's kinds",
            "The name the operator gives the kopf framework's own finalizer; kopf adds and "
            "removes it."),
)

OPERATOR_ENV: tuple[EnvDoc, ...] = (
    EnvDoc("FLUXUP_NAMESPACE", "namespace",
           "FluxUp's own namespace: where it reads the Secrets of `FLUXUP_RENOVATE_SECRETS` "
           "and the report ConfigMaps. The manifests set it from the Pod's namespace."),
    EnvDoc("FLUXUP_OPERATOR_USERNAME", "operator_username",
           "The Kubernetes user the operator acts as: the only user the webhook lets write "
           "operator-only annotations or remove the `fluxup.dev/managed-app` label. The "
           "operator asks the API server who it is at start-up and refuses to start when it "
           "is someone else. Give the webhook the same value."),
    EnvDoc("FLUXUP_FIELD_MANAGER", "field_manager",
           "Field manager of every write the operator makes."),
    EnvDoc("FLUXUP_WORK_DIR", "work_dir",
           "Scratch directory for Git checkouts (`git/`) and Renovate runs (`renovate/`); "
           "an `emptyDir` in the manifests."),
    EnvDoc("FLUXUP_KUBECONFIG", "kubeconfig",
           "kubeconfig to act with (else `KUBECONFIG`); unset: the Pod's ServiceAccount.",
           default="in-cluster"),
    EnvDoc("FLUXUP_ACTIVE_POLL_SECONDS", "active_poll_seconds",
           "How often an UpgradeRequest or RollbackRequest in flight is re-checked, besides "
           "watch events."),
    EnvDoc("FLUXUP_IDLE_RESYNC_SECONDS", "idle_resync_seconds",
           "How often every ManagedApp is reconciled on a timer besides watch events "
           "(discovery, line-2 holds, stale approvals, bypass audit, autoUpdate)."),
    EnvDoc("FLUXUP_ALLOW_CROSS_NAMESPACE_REFS", "allow_cross_namespace_refs",
           "Read by `fluxup webhook`: `true` lets ManagedApps and requests name objects in "
           "other namespaces (`helmReleaseRef`, `volumeSnapshots.pvcs`, `managedAppRef`, "
           "`upgradeRequestRef`, `snapshotRef`); `false` refuses them."),
    EnvDoc("FLUXUP_GIT_BACKEND", "git_backend",
           "How FluxUp reaches Git: `git` (clone and push, any forge), or the REST API of "
           "`gitea`, `github` or `gitlab` ([git-backends.md](git-backends.md))."),
    EnvDoc("FLUXUP_GIT_API_URL", "git_api_url",
           "REST API address for the forge backends; unset: derived from the repository "
           "URL."),
    EnvDoc("FLUXUP_GIT_AUTHOR_NAME", "git_author_name", "Author name of FluxUp's commits."),
    EnvDoc("FLUXUP_GIT_AUTHOR_EMAIL", "git_author_email", "Author e-mail of FluxUp's commits."),
    EnvDoc("FLUXUP_METRICS_ADDRESS", "metrics_address",
           "`host:port` of the operator's `/metrics` (plain HTTP, its own port); unset or "
           "empty: off. The manifests set `0.0.0.0:9090` ([metrics.md](metrics.md))."),
    EnvDoc("FLUXUP_NOTIFY_URLS_FILE", "notify_urls_file",
           "File with Apprise URLs, one per line, mounted from a Secret; unset: no Apprise "
           "notifications ([notifications.md](notifications.md))."),
    EnvDoc("FLUXUP_FLUX_EVENTS_URL", "flux_events_url",
           "Flux notification-controller's events address; unset: no Flux events."),
    EnvDoc("FLUXUP_UI_URL", "ui_url",
           "The web UI's external address, for links in notifications."),
    EnvDoc("FLUXUP_NOTIFY_ATTEMPTS", "notify_attempts",
           "Delivery attempts per channel and event."),
    EnvDoc("FLUXUP_NOTIFY_BACKOFF_SECONDS", "notify_backoff_seconds",
           "Wait before the first retry of a delivery, doubled each time."),
    EnvDoc("FLUXUP_RENOVATE_NODE", "renovate_node",
           "Node 24 binary that runs Renovate (the image has it here)."),
    EnvDoc("FLUXUP_RENOVATE_JS", "renovate_js", "Renovate's `dist/renovate.js`."),
    EnvDoc("FLUXUP_RENOVATE_INTERVAL_SECONDS", "renovate_interval_seconds",
           "Seconds between scheduled Renovate scans, at least 60; `0`: only on demand "
           "([renovate.md](renovate.md))."),
    EnvDoc("FLUXUP_RENOVATE_TIMEOUT_SECONDS", "renovate_timeout_seconds",
           "Time limit of one Renovate run."),
    EnvDoc("FLUXUP_RENOVATE_INSECURE_REGISTRIES", "renovate_insecure_registries",
           "Comma-separated `HOST[:PORT]` of plain-HTTP registries."),
    EnvDoc("FLUXUP_RENOVATE_INTERNAL_HOSTS", "renovate_internal_hosts",
           "Comma-separated in-cluster or private hosts Renovate may contact."),
    EnvDoc("FLUXUP_RENOVATE_DISABLED_HOSTS", "renovate_disabled_hosts",
           "Comma-separated hosts Renovate must never contact."),
    EnvDoc("FLUXUP_RENOVATE_SECRETS", "renovate_secrets",
           "Comma-separated Secrets in FluxUp's namespace with registry credentials for "
           "Renovate: keys `host`, `username` + `password` or `token`, optional `hostType`."),
    EnvDoc("FLUXUP_REPORT_ADDRESS", "report_address",
           "`host:port` of the HTTPS endpoint that accepts reports of a Renovate running "
           "elsewhere; unset: off. Needs the two files below."),
    EnvDoc("FLUXUP_REPORT_CERT_FILE", "report_cert_file",
           "Certificate (PEM) of the report endpoint; reloaded when it changes."),
    EnvDoc("FLUXUP_REPORT_KEY_FILE", "report_key_file", "Its private key (PEM)."),
    EnvDoc("FLUXUP_REPORT_AUDIENCES", "report_audiences",
           "Comma-separated audiences a sender's ServiceAccount token must be bound to; "
           "unset: the API server's default."),
    EnvDoc("FLUXUP_REPORT_CONFIGMAP_INTERVAL_SECONDS", "report_configmap_interval_seconds",
           "How often the ConfigMaps labelled `fluxup.dev/renovate-report` are read; `0`: "
           "never."),
)

UI_ENV: tuple[EnvDoc, ...] = (
    EnvDoc("FLUXUP_UI_ENABLED", "enabled", "Serve the web UI from the operator process."),
    EnvDoc("FLUXUP_UI_HOST", "host", "Listen address (the manifests set `0.0.0.0`)."),
    EnvDoc("FLUXUP_UI_PORT", "port", "Listen port."),
    EnvDoc("FLUXUP_UI_PUBLIC_URL", "public_url",
           "Where browsers reach the UI; the OIDC redirect URI is `<url>/auth/callback`.",
           default="`http://HOST:PORT`"),
    EnvDoc("FLUXUP_UI_AUTH", "auth",
           "`oidc`: log in with the provider below. `none`: no login (the local demo), "
           "refused unless `FLUXUP_UI_HOST` is a loopback address."),
    EnvDoc("FLUXUP_UI_SESSION_KEYS", "session_keys",
           "Required with OIDC: comma-separated Fernet keys (32 random bytes, urlsafe "
           "base64); the first seals new sessions, all open them (rotation)."),
    EnvDoc("FLUXUP_UI_SECURE_COOKIES", "secure_cookies",
           "Force the cookies' `Secure` flag on (`true`) or off.",
           default="on for an `https` public URL"),
    EnvDoc("FLUXUP_UI_LIST_CACHE_SECONDS", "list_cache_seconds",
           "How long one identity's (user + groups) inbox lists are reused, 0 to 300 seconds; "
           "`0` reads them on every request. Errors are never kept."),
    EnvDoc("FLUXUP_UI_OIDC_ISSUER", "oidc_issuer", "OIDC issuer URL (required with OIDC)."),
    EnvDoc("FLUXUP_UI_OIDC_CLIENT_ID", "oidc_client_id", "OIDC client id (required with OIDC)."),
    EnvDoc("FLUXUP_UI_OIDC_CLIENT_SECRET", "oidc_client_secret",
           "OIDC client secret; unset for a public client (PKCE alone)."),
    EnvDoc("FLUXUP_UI_OIDC_SCOPES", "oidc_scopes", "Scopes requested at login."),
    EnvDoc("FLUXUP_UI_OIDC_CA_FILE", "oidc_ca_file",
           "CA bundle to verify the provider with; unset: the system's CAs."),
    EnvDoc("FLUXUP_UI_USERNAME_CLAIM", "username_claim", "ID-token claim that names the user."),
    EnvDoc("FLUXUP_UI_GROUPS_CLAIM", "groups_claim", "ID-token claim that lists the groups."),
    EnvDoc("FLUXUP_UI_USER_PREFIX", "user_prefix",
           "Prepended to the username FluxUp impersonates (match your RBAC subjects)."),
    EnvDoc("FLUXUP_UI_GROUP_PREFIX", "group_prefix", "Prepended to each impersonated group."),
)

#: The subcommands whose flags the reference lists, with one sentence each.
CLI_COMMANDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("operator",), "The operator (and the web UI when enabled); every setting comes from "
     "the environment above."),
    (("webhook",), "The admission webhook (both gate lines and the checks of FluxUp's own "
     "objects), HTTPS only; reloads the certificate files when they change."),
    (("certs", "ensure"), "Create or renew the webhook's CA and serving certificate in a "
     "Secret and inject the CA bundle into the webhook configurations; changes nothing "
     "while they are valid."),
    (("certs", "write"), "Write a CA and serving certificate to files, for a webhook run "
     "outside the cluster."),
    (("scan",), "One Renovate scan now (settings from the environment above), or ingest a "
     "report of a Renovate that ran elsewhere."),
)
