"""The operator process runs on uvloop (less CPU per request, and small TLS connections) and collects
its young garbage generation less often than CPython's default (see ``controller.main.tune_gc``)."""

from __future__ import annotations

import argparse
import asyncio
import gc

import pytest
import uvloop

import controller.main


def test_the_operator_runs_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    loops: list[type] = []

    async def serve(args: argparse.Namespace, tracing: object = None) -> int:
        loops.append(type(asyncio.get_running_loop()))
        return 0

    monkeypatch.setattr(controller.main, "serve", serve)
    monkeypatch.setattr(controller.main, "configure_logging", lambda *_: None)
    assert controller.main.main(["--metrics-bind-address", "0"]) == 0
    assert loops == [uvloop.Loop]


def test_the_operator_collects_young_garbage_every_10000_allocations(monkeypatch: pytest.MonkeyPatch) -> None:
    thresholds: list[tuple[int, ...]] = []

    async def serve(args: argparse.Namespace, tracing: object = None) -> int:
        thresholds.append(gc.get_threshold())
        return 0

    before = gc.get_threshold()
    monkeypatch.setattr(controller.main, "serve", serve)
    monkeypatch.setattr(controller.main, "configure_logging", lambda *_: None)
    try:
        assert controller.main.main(["--metrics-bind-address", "0"]) == 0
    finally:
        gc.set_threshold(*before)
    assert thresholds == [(controller.main.GC_THRESHOLD0, *before[1:])]
