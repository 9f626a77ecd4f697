"""The ``mcp-operator`` command: one image, several entrypoints.

``run`` starts the operator, ``proxy`` the MCP proxy, ``vmcp`` the virtual MCP gateway, ``crds``
prints the CustomResourceDefinitions and ``migrate`` rewrites ToolHive manifests. Each subcommand
imports its own module lazily so the data-plane entrypoints do not load the operator's dependencies
and vice versa.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("controller.main", "run the operator (watch MCP custom resources and reconcile them)"),
    "proxy": ("gateway.proxy_cli", "run the MCP proxy in front of a stdio or HTTP MCP server"),
    "vmcp": ("gateway.vmcp_cli", "run the virtual MCP gateway over several MCP servers"),
    "crds": ("api.crds_cli", "print the CustomResourceDefinitions as YAML"),
    "migrate": ("api.migrate_cli", "rewrite ToolHive manifests for this API and print what is refused"),
}

USAGE = (
    "usage: mcp-operator {"
    + ",".join(SUBCOMMANDS)
    + "} [options]\n\n"
    + "\n".join(f"  {name:<8} {help_text}" for name, (_, help_text) in SUBCOMMANDS.items())
)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a subcommand's ``main(argv) -> int``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"mcp-operator: unknown command '{name}'\n\n{USAGE}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    entry: Callable[[list[str]], int] = module.main
    return entry(rest)


if __name__ == "__main__":
    sys.exit(main())
