"""Idle resyncs spread over the interval (fluxup.handlers.registry.resync_phase): a fleet
whose timers all began at start-up must not be resynced in one wave each interval."""

from __future__ import annotations

import uuid

from fluxup.handlers.registry import resync_phase


def test_a_phase_is_stable_and_inside_the_interval() -> None:
    uid = "0b6c8f9e-2f4b-4d7e-9a51-3c1d2e4f5a6b"
    assert resync_phase(uid, 60.0) == resync_phase(uid, 60.0)
    assert 0.0 <= resync_phase(uid, 60.0) < 60.0
    assert resync_phase(uid, 0.0) == 0.0


def test_a_fleet_is_spread_evenly_over_the_interval() -> None:
    uids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(1000)]
    buckets = [0] * 12  # five-second slices of a minute
    for uid in uids:
        buckets[int(resync_phase(uid, 60.0) // 5)] += 1
    # 1,000 apps, about 83 a slice; no slice holds twice its share or is empty
    assert min(buckets) > 40
    assert max(buckets) < 170
