#!/usr/bin/env python3
"""Copy ToolHive's example manifests into ``tests/fixtures/toolhive-examples/``.

Reads a git checkout (or bare mirror) of github.com/stacklok/toolhive at one commit: every YAML file
under ``examples/`` and every ``yaml`` block of the Markdown and YAML files under ``docs/``. It keeps
the objects of the ToolHive kinds this API serves or plans (:data:`KINDS_IN_SCOPE`), one fixture file
per source file, in source order, and writes ``SOURCE.txt`` with the commit and what it left out.
``tests/integration/test_toolhive_examples.py`` ports each object by changing only its API group.

    python hack/toolhive_examples.py --repo PATH/TO/toolhive.git [--commit SHA]
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.parity import NOT_PLANNED_KINDS, TOOLHIVE_KINDS  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "toolhive-examples"
GROUP = "toolhive.stacklok.dev"

KINDS_IN_SCOPE = tuple(k for k in TOOLHIVE_KINDS if k not in NOT_PLANNED_KINDS)
"""The kinds this API provides and the shared-configuration kinds ToolHive workloads reference."""

_YAML_BLOCK = re.compile(r"```ya?ml[^\n]*\n(.*?)```", re.S)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def _sources(repo: Path, commit: str) -> list[str]:
    names = _git(repo, "ls-tree", "-r", commit, "--name-only").split("\n")
    return sorted(
        n
        for n in names
        if (n.startswith("examples/") and n.endswith((".yaml", ".yml")))
        or (n.startswith("docs/") and n.endswith((".md", ".yaml", ".yml")))
    )


def _objects(text: str, markdown: bool) -> list[dict[str, Any]]:
    """The ToolHive objects of one source file (blocks that are not valid YAML are skipped)."""
    found = []
    for block in _YAML_BLOCK.findall(text) if markdown else [text]:
        try:
            docs = list(yaml.safe_load_all(block))
        except yaml.YAMLError:
            continue
        found += [d for d in docs if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith(GROUP)]
    return found


def _fixture_name(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "__", source.replace("/", "__")) + (
        "" if source.endswith((".yaml", ".yml")) else ".yaml"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repo", type=Path, required=True, help="a clone or bare mirror of stacklok/toolhive"
    )
    parser.add_argument("--commit", default="HEAD", help="the commit to copy from (default HEAD)")
    args = parser.parse_args(argv)
    commit = _git(args.repo, "rev-parse", args.commit).strip()
    left_out: collections.Counter[str] = collections.Counter()
    for old in OUT.glob("*.yaml"):
        # the test's lists (what does not port, what ToolHive refuses too) are not copies
        if old.name not in ("not-porting.yaml", "refused-by-toolhive.yaml"):
            old.unlink()
    OUT.mkdir(parents=True, exist_ok=True)
    kept = 0
    for source in _sources(args.repo, commit):
        objects = _objects(_git(args.repo, "show", f"{commit}:{source}"), source.endswith(".md"))
        left_out.update(o.get("kind", "?") for o in objects if o.get("kind") not in KINDS_IN_SCOPE)
        objects = [o for o in objects if o.get("kind") in KINDS_IN_SCOPE]
        if objects:
            header = f"# From {source} of github.com/stacklok/toolhive at {commit[:12]}.\n"
            body = yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True)
            (OUT / _fixture_name(source)).write_text(header + body)
            kept += len(objects)
    date = _git(args.repo, "show", "-s", "--format=%cs", commit).strip()
    lines = [f"commit {commit} ({date})", f"objects {kept}"]
    lines += [f"left out {kind} {n}" for kind, n in sorted(left_out.items())]
    (OUT / "SOURCE.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {kept} objects to {OUT.relative_to(ROOT)}; left out {sum(left_out.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
