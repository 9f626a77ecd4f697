"""``mcp-operator crds``: print the CustomResourceDefinitions (``| kubectl apply -f -`` installs them)."""

from __future__ import annotations

import argparse
import sys

from api.crds import build_crd, render_crd, render_crds
from api.registry import KINDS

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Print every CRD, or only those of the kinds given with ``--kind``."""
    parser = argparse.ArgumentParser(
        prog="mcp-operator crds", description="Print the CustomResourceDefinitions as YAML."
    )
    parser.add_argument(
        "--kind",
        action="append",
        choices=list(KINDS),
        help="print only this kind's CRD (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.kind:
        sys.stdout.write("".join(f"---\n{render_crd(build_crd(KINDS[k]))}" for k in args.kind))
    else:
        sys.stdout.write(render_crds())
    return 0
