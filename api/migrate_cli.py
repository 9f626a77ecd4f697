"""``mcp-operator migrate``: rewrite ToolHive manifests for this API and print what would be refused.

    mcp-operator migrate toolhive.yaml > converted.yaml      # or: kubectl get ... -o yaml | ... migrate -

The converted manifests go to stdout (other objects, e.g. Secrets, unchanged); one report line per
ToolHive object goes to stderr: what was rewritten, and every field the operator would refuse
(``Accepted=False``) with its reason. Exit status 0 when nothing is refused, 1 when something is, 2 when
the input cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import yaml

from api.migrate import migrate_object

__all__ = ["main", "migrate_documents"]


def _documents(text: str) -> list[Any]:
    """The YAML documents of ``text``; a ``kind: List`` (``kubectl get -o yaml``) becomes its items."""
    docs: list[Any] = []
    for doc in yaml.safe_load_all(text):
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            docs += doc["items"]
        elif doc is not None:
            docs.append(doc)
    return docs


def migrate_documents(docs: Iterable[Any], report: TextIO) -> tuple[list[Any], int]:
    """The converted documents and how many ToolHive objects would still be refused; reports to ``report``."""
    out: list[Any] = []
    refused = 0
    for doc in docs:
        migration = migrate_object(doc) if isinstance(doc, dict) else None
        if migration is None:
            out.append(doc)
            continue
        out.append(migration.obj)
        verdict = "REFUSED" if migration.refused else "ok"
        print(f"{migration.label}: {verdict} ({'; '.join(migration.changes)})", file=report)
        for problem in migration.refused:
            print(f"  {problem}", file=report)
        refused += bool(migration.refused)
    return out, refused


def main(argv: list[str]) -> int:
    """Convert the files given (``-`` or none: stdin) to stdout; report on stderr."""
    parser = argparse.ArgumentParser(
        prog="mcp-operator migrate",
        description="Rewrite ToolHive (toolhive.stacklok.dev) manifests for mcp-operator.dev.",
    )
    parser.add_argument("files", nargs="*", default=["-"], help="YAML files (default: stdin)")
    args = parser.parse_args(argv)
    docs: list[Any] = []
    try:
        for name in args.files:
            docs += _documents(sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        print(f"mcp-operator migrate: {exc}", file=sys.stderr)
        return 2
    out, refused = migrate_documents(docs, sys.stderr)
    sys.stdout.write(yaml.safe_dump_all(out, sort_keys=False, explicit_start=True) if out else "")
    if refused:
        print(f"{refused} object(s) would be refused: see the lines above", file=sys.stderr)
    return 1 if refused else 0
