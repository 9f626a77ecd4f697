"""A kind is added by registry edits: each kind of the API registry has one controller, registered from a
list, and the generated chart and docs list every kind."""

from __future__ import annotations

from api.docs import render_kinds_table
from api.registry import KINDS
from controller.reconcilers.registry import CONTROLLERS
from controller.reconcilers.workload import WorkloadKind


def test_every_kind_of_the_api_has_a_controller() -> None:
    assert set(CONTROLLERS) == set(KINDS)


def test_workload_kinds_name_their_api_kind_and_model() -> None:
    from controller.reconcilers import mcpremoteproxy, mcpserver, virtualmcpserver  # noqa: PLC0415
    from controller.reconcilers.settings import ReconcilerSettings  # noqa: PLC0415

    settings = ReconcilerSettings(proxy_image="example.test/mcp-operator:test")
    for module in (mcpserver, mcpremoteproxy, virtualmcpserver):
        kind = module.kind(settings)
        assert isinstance(kind, WorkloadKind)
        info = KINDS[kind.resource.kind]
        assert kind.model is info.model and kind.resource.plural == info.plural


def test_kinds_table_lists_every_kind_with_its_resource() -> None:
    table = render_kinds_table()
    for info in KINDS.values():
        assert f"| `{info.kind}` | `{info.plural}` |" in table
