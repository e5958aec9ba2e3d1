"""Where dispatch time goes: each stage is observed once, from the moment the previous one ended."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from interconnect.adapters.metrics import DISPATCH_STAGES, Metrics
from interconnect.api.v1alpha1.job import ComputeJob
from interconnect.services.dispatcher import Dispatcher
from interconnect.services.jobs import job_state
from tests.integration.bad_manifests import job


def _count(metrics: Metrics, stage: str) -> float:
    return metrics.registry.get_sample_value("interconnect_dispatch_stage_seconds_count", {"stage": stage}) or 0.0


def _sum(metrics: Metrics, stage: str) -> float:
    return metrics.registry.get_sample_value("interconnect_dispatch_stage_seconds_sum", {"stage": stage}) or 0.0


def test_each_stage_is_timed_from_the_end_of_the_one_before(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = Metrics()
    assert all(_count(metrics, s) == 0 for s in DISPATCH_STAGES), "every stage has its series from the start"
    dispatcher = Dispatcher(None, None, None, None, None, None, metrics, None, None,  # type: ignore[arg-type]
                            mark_dirty=lambda _: None, wake=lambda: None)
    body: dict[str, Any] = job()
    body["metadata"].update(uid="uid-1", creationTimestamp=(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2))
                            .isoformat().replace("+00:00", "Z"))
    state = job_state(ComputeJob.model_validate(body))
    clock = iter([100.0, 100.5, 101.75, 102.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    dispatcher.seen(state)                      # 100.0: the watch stage ends (about 2 s after creation)
    dispatcher.stage_done(state, "queue")       # 100.5
    dispatcher.stage_done(state, "journal")     # 101.75
    dispatcher.stage_done(state, "member-create")  # 102.0
    assert 1.5 <= _sum(metrics, "watch") <= 10
    assert (_sum(metrics, "queue"), _sum(metrics, "journal"), _sum(metrics, "member-create")) == (0.5, 1.25, 0.25)
    assert all(_count(metrics, s) == 1 for s in DISPATCH_STAGES)


def test_a_stage_without_a_start_is_not_observed() -> None:
    metrics = Metrics()
    dispatcher = Dispatcher(None, None, None, None, None, None, metrics, None, None,  # type: ignore[arg-type]
                            mark_dirty=lambda _: None, wake=lambda: None)
    state = job_state(ComputeJob.model_validate({**job(), "metadata": {**job()["metadata"], "uid": "u"}}))
    dispatcher.stage_done(state, "journal")  # e.g. a job recovered from the journal after a restart
    assert _count(metrics, "journal") == 0
    assert state.stage_at is not None
