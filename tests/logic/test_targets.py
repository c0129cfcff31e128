"""Conversion between the status identity and the gate's identity."""

from __future__ import annotations

import pytest

from fluxup.api.meta import Identity as StatusIdentity
from fluxup.api.meta import ImageTag
from fluxup.logic.identity import Identity as GateIdentity
from fluxup.logic.targets import from_gate, to_gate


@pytest.mark.parametrize(
    ("status", "gate"),
    [
        pytest.param(StatusIdentity(), GateIdentity(), id="empty"),
        pytest.param(StatusIdentity(version="6.5.4"), GateIdentity(chart="6.5.4"), id="chart-only"),
        pytest.param(
            StatusIdentity(images=(ImageTag("image.tag", "1.2.3"),)),
            GateIdentity(images=(("image.tag", "1.2.3"),)),
            id="image-only",
        ),
        pytest.param(
            StatusIdentity(
                version="6.5.4",
                images=(
                    ImageTag("image.tag", "6.5.4"),
                    ImageTag("sidecar.image.tag", "2.0@sha256:" + "ab" * 32),
                ),
            ),
            GateIdentity(
                chart="6.5.4",
                images=(("image.tag", "6.5.4"), ("sidecar.image.tag", "2.0@sha256:" + "ab" * 32)),
            ),
            id="chart-and-images",
        ),
    ],
)
def test_round_trip(status: StatusIdentity, gate: GateIdentity) -> None:
    assert to_gate(status) == gate
    assert from_gate(gate) == status
    assert from_gate(to_gate(status)) == status
    assert to_gate(from_gate(gate)) == gate


def test_to_gate_orders_and_canonicalizes_paths() -> None:
    status = StatusIdentity(
        version="1.0.0",
        images=(
            ImageTag("spec.values.worker.image.tag", "3"),
            ImageTag("api.image.tag", "2"),
        ),
    )
    assert to_gate(status).images == (("api.image.tag", "2"), ("worker.image.tag", "3"))


def test_to_gate_drops_display_names() -> None:
    status = StatusIdentity(
        version="1.0.0", images=(ImageTag("image.tag", "2", name="ghcr.io/example/app"),)
    )
    assert to_gate(status) == GateIdentity(chart="1.0.0", images=(("image.tag", "2"),))
    assert from_gate(to_gate(status)).images == (ImageTag("image.tag", "2"),)


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        pytest.param(
            GateIdentity(chart="1.0.0", images=(("image.tag", None),)),
            StatusIdentity(version="1.0.0"),
            id="only-image-unset",
        ),
        pytest.param(
            GateIdentity(chart=None, images=(("a.tag", "1"), ("b.tag", None), ("c.tag", "3"))),
            StatusIdentity(images=(ImageTag("a.tag", "1"), ImageTag("c.tag", "3"))),
            id="unset-image-among-set-ones",
        ),
    ],
)
def test_from_gate_drops_images_without_tag(gate: GateIdentity, expected: StatusIdentity) -> None:
    assert from_gate(gate) == expected
