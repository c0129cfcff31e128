"""FluxUp's exception hierarchy.

Adapters translate library exceptions into these; only kopf handlers translate them
into ``kopf.TemporaryError``/``kopf.PermanentError``. Every message says what happened
and what to do about it, and never contains secrets.
"""

from __future__ import annotations

__all__ = [
    "AccessError",
    "AmbiguousDocumentError",
    "CertificateError",
    "ConfigError",
    "DocumentNotFoundError",
    "FieldNotFoundError",
    "FluxUpError",
    "GitAuthError",
    "GitConflictError",
    "GitError",
    "GitNotFoundError",
    "InvalidObjectError",
    "InvalidValueError",
    "InvalidYamlError",
    "NotAScalarError",
    "NotAuthenticatedError",
    "NotAuthorizedError",
    "PushRejectedError",
    "SandboxError",
    "TransitionError",
    "UnsupportedYamlError",
    "VersionRangeError",
    "YamlEditError",
]


class FluxUpError(Exception):
    """Base of every error FluxUp raises on purpose."""


class TransitionError(FluxUpError):
    """A state machine was asked for a transition its table does not list: a bug in
    FluxUp, never the user's doing; the object is left in its current phase."""


class ConfigError(FluxUpError):
    """Settings or user input are invalid; nothing was changed."""


class InvalidObjectError(ConfigError):
    """A FluxUp object (or a part of one) does not match FluxUp's API schema.

    Raised by the ``from_dict()`` parsers in :mod:`fluxup.api`. ``path`` is the dotted
    JSON path of the offending field (``spec.timeouts.snapshot``), ``problem`` what is
    wrong with it, ``obj`` which object it is (``ManagedApp demo/podinfo``) when known.
    """

    def __init__(self, path: str, problem: str, *, obj: str = "") -> None:
        self.path = path
        self.problem = problem
        self.obj = obj
        where = f"{obj}: " if obj else ""
        super().__init__(
            f"{where}{path or 'object'}: {problem}; fix the object, or apply crds/ again "
            "if the cluster's CRDs are older than this FluxUp"
        )

    def within(self, prefix: str = "", *, obj: str = "") -> InvalidObjectError:
        """The same error with ``prefix`` put in front of its path and ``obj`` set."""
        path = ".".join(p for p in (prefix, self.path) if p).replace(".[", "[")
        return InvalidObjectError(path, self.problem, obj=obj or self.obj)


class SandboxError(FluxUpError):
    """The local sandbox cluster could not be built, started or reached."""


class YamlEditError(FluxUpError):
    """A YAML edit (:mod:`fluxup.logic.yamledit`) could not be made; the text is unchanged.

    Messages name the file, the object (``HelmRelease apps/redis``) and the field.
    """


class InvalidYamlError(YamlEditError):
    """The file is not valid YAML (or not YAML at all, e.g. a Helm template)."""


class DocumentNotFoundError(YamlEditError):
    """No document in the file defines the object of that kind and name."""


class AmbiguousDocumentError(YamlEditError):
    """Several documents define an object of that kind and name; give the namespace."""


class FieldNotFoundError(YamlEditError):
    """The object has no field at the dotted path (or no container uses the image)."""


class NotAScalarError(YamlEditError):
    """The field holds a mapping, a list or a block scalar, not a single value."""


class VersionRangeError(YamlEditError):
    """The field holds a version range (``12.x``, ``>=12``, ``ref.semver``) where an
    exact version is needed: FluxUp cannot gate per version, so it does not edit it."""


class InvalidValueError(YamlEditError):
    """The new value is not acceptable for the field (empty, a range, bad characters)."""


class UnsupportedYamlError(YamlEditError):
    """The field is written in a way FluxUp does not edit (an alias, a merge key, a
    duplicate key, a ``${var}`` substitution); change it by hand."""


class GitError(FluxUpError):
    """A Git operation failed. The message never contains credentials."""


class GitAuthError(GitError):
    """The Git server refused the credentials (or none were configured)."""


class GitNotFoundError(GitError):
    """The branch, commit or file does not exist in the repository."""


class GitConflictError(GitError):
    """A revert or rebase conflicts with changes made since; nothing was pushed."""


class PushRejectedError(GitError):
    """The remote permanently refused the push (authentication, permissions, a
    protected branch, a hook) or kept refusing it after every retry; nothing was pushed."""


class KubeError(FluxUpError):
    """A Kubernetes API call failed; the message names the call and the API's reason."""


class KubeNotFound(KubeError):
    """The object does not exist."""


class KubeConflict(KubeError):
    """The object already exists or was changed concurrently."""


class KubeForbidden(KubeError):
    """RBAC (or authentication) refused the call."""


class CertificateError(FluxUpError):
    """The webhook's certificates could not be read, stored or injected; the message
    names the Secret or webhook configuration and what to fix (never key material)."""


class ChartSourceError(FluxUpError):
    """A chart source (Helm repository, OCI registry) could not be read."""


class AccessError(FluxUpError):
    """A caller of one of the operator's endpoints was refused; nothing was changed."""


class NotAuthenticatedError(AccessError):
    """No credentials, or the API server did not accept them (HTTP 401)."""


class NotAuthorizedError(AccessError):
    """The caller is known but RBAC does not allow what it asked for (HTTP 403)."""
