#!/usr/bin/env python3
"""Regenerate what is derived from the API models: ``manifests/crds/*.yaml``, ``docs/api.md``, the
kinds table of ``docs/install.md``, and the ToolHive parity tables and non-porting examples of
``docs/toolhive-differences.md``.

``python hack/generate.py`` writes the files; ``--check`` writes nothing and exits 1 listing the files
that differ from the models (what CI and the drift test use).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.crds import GENERATED_HEADER, build_crd, crd_file_name, render_crd  # noqa: E402
from api.docs import render_api_docs, with_kinds_table  # noqa: E402
from api.parity import parse_field_list, with_not_porting, with_parity_tables  # noqa: E402
from api.registry import KINDS  # noqa: E402

CRD_DIR = ROOT / "manifests" / "crds"
API_DOC = ROOT / "docs" / "api.md"
INSTALL_DOC = ROOT / "docs" / "install.md"
DIFFERENCES_DOC = ROOT / "docs" / "toolhive-differences.md"
TOOLHIVE_FIELDS = ROOT / "tests" / "fixtures" / "toolhive-v1beta1-fields.txt"
NOT_PORTING = ROOT / "tests" / "fixtures" / "toolhive-examples" / "not-porting.yaml"
REFUSED_BY_TOOLHIVE = NOT_PORTING.parent / "refused-by-toolhive.yaml"


def toolhive_examples() -> tuple[list[dict[str, str]], int, list[dict[str, str]]]:
    """The ToolHive examples that do not port (from their data file), how many objects were copied, and
    the ones ToolHive refuses too (from theirs)."""
    total = sum(
        1
        for path in NOT_PORTING.parent.glob("*.yaml")
        if path not in (NOT_PORTING, REFUSED_BY_TOOLHIVE)
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    )
    refused = yaml.safe_load(REFUSED_BY_TOOLHIVE.read_text()) or []
    return yaml.safe_load(NOT_PORTING.read_text()) or [], total, refused


def expected_files() -> dict[Path, str]:
    """Every generated file and its content."""
    files = {
        CRD_DIR / crd_file_name(info): GENERATED_HEADER + render_crd(build_crd(info))
        for info in KINDS.values()
    }
    files[API_DOC] = render_api_docs()
    files[INSTALL_DOC] = with_kinds_table(INSTALL_DOC.read_text())
    differences = with_parity_tables(
        DIFFERENCES_DOC.read_text(), parse_field_list(TOOLHIVE_FIELDS.read_text())
    )
    files[DIFFERENCES_DOC] = with_not_porting(differences, *toolhive_examples())
    return files


def stale_files() -> list[Path]:
    """Generated files whose content differs from the models, plus stray CRD files."""
    expected = expected_files()
    stale = [p for p, text in expected.items() if not p.exists() or p.read_text() != text]
    stale += [p for p in CRD_DIR.glob("*.yaml") if p not in expected]
    return stale


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)} (run `make crds`)", file=sys.stderr)
        return 1 if stale else 0
    CRD_DIR.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    for path in CRD_DIR.glob("*.yaml"):
        if path not in expected:
            path.unlink()
    for path, text in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
