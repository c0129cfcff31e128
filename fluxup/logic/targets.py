"""Convert between the status model's identity and the gate's canonical identity.

The CRD status stores an identity as ``{version, images: [{valuesPath, tag}]}``
(:class:`fluxup.api.meta.Identity`); the gate and the annotations use
:class:`fluxup.logic.identity.Identity` (chart + path→tag). The UpgradeRequest
reconciler converts with these two functions. Pure.
"""

from __future__ import annotations

from fluxup.api.meta import Identity as StatusIdentity
from fluxup.api.meta import ImageTag
from fluxup.logic.identity import Identity as GateIdentity

__all__ = ["from_gate", "to_gate"]


def to_gate(identity: StatusIdentity) -> GateIdentity:
    return GateIdentity(
        chart=identity.version,
        images=tuple((img.values_path, img.tag) for img in identity.images),
    )


def from_gate(identity: GateIdentity) -> StatusIdentity:
    return StatusIdentity(
        version=identity.chart,
        images=tuple(ImageTag(values_path=p, tag=t) for p, t in identity.images if t is not None),
    )
