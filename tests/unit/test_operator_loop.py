"""The operator process runs on uvloop (less CPU per request, and small TLS connections)."""

from __future__ import annotations

import argparse
import asyncio

import pytest
import uvloop

import controller.main


def test_the_operator_runs_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    loops: list[type] = []

    async def serve(args: argparse.Namespace) -> int:
        loops.append(type(asyncio.get_running_loop()))
        return 0

    monkeypatch.setattr(controller.main, "serve", serve)
    monkeypatch.setattr(controller.main, "configure_logging", lambda *_: None)
    assert controller.main.main(["--metrics-bind-address", "0"]) == 0
    assert loops == [uvloop.Loop]
