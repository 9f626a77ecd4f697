"""The change notifier over a fake view: it announces a kind only when what clients see of it changed,
once per change, and its first round only records the lists."""

from __future__ import annotations

import mcp_types as types
from mcp.server.subscriptions import ServerEvent

from gateway.vmcp.aggregation import AggregatedView
from gateway.vmcp.notify import ChangeNotifier


async def test_announces_only_what_changed() -> None:
    views = [AggregatedView(tools=(types.Tool(name="a", input_schema={"type": "object"}),))]
    refreshes: list[int] = []

    async def refresh() -> AggregatedView:
        refreshes.append(1)
        return views[-1]

    notifier = ChangeNotifier(refresh)
    events: list[ServerEvent] = []
    notifier.bus.subscribe(events.append)

    await notifier.announce_changes()  # the first round records
    assert events == [] and notifier.announced == 0
    await notifier.announce_changes()  # nothing changed
    assert events == []

    views.append(AggregatedView(tools=views[0].tools, prompts=(types.Prompt(name="p"),)))
    await notifier.announce_changes()
    assert [type(e).__name__ for e in events] == ["PromptsListChanged"]
    views.append(AggregatedView(prompts=views[1].prompts))
    await notifier.announce_changes()
    assert [type(e).__name__ for e in events] == ["PromptsListChanged", "ToolsListChanged"]
    assert len(refreshes) == 4, "one refresh per round"
