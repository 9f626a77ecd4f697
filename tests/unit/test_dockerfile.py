"""The Dockerfile: hadolint clean, multi-stage, pinned slim base, non-root, no compilers at runtime."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    split: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            split.append([])
        if split:
            split[-1].append((keyword, rest))
    return split


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def build_arg_defaults() -> dict[str, str]:
    """``ARG NAME=default`` lines before the first stage (the ones a FROM line may use)."""
    defaults = {}
    for keyword, rest in instructions():
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            defaults[name] = value
    return defaults


def test_every_stage_uses_the_same_pinned_slim_python_base() -> None:
    args = build_arg_defaults()
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage[0][1].split()[0]) for stage in stages()]
    assert len(bases) >= 2, "the Dockerfile must be multi-stage"
    for base in bases:
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    assert len(set(bases)) == 1


def test_runtime_stage_runs_as_non_root_with_mcp_operator_entrypoint() -> None:
    runtime = dict(stages()[-1])
    user = runtime["USER"].split(":")
    assert all(part.isdigit() and int(part) != 0 for part in user), runtime["USER"]
    assert runtime["ENTRYPOINT"] == '["mcp-operator"]'
    assert runtime["CMD"] == '["run"]'


def test_runtime_stage_installs_nothing_and_copies_only_the_virtual_environment() -> None:
    runtime = stages()[-1]
    assert [keyword for keyword, _ in runtime if keyword == "RUN"] == []
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=build /opt/mcp-operator /opt/mcp-operator"]
    text = " ".join(rest for _, rest in instructions())
    for compiler in ("gcc", "build-essential", "g++", "clang"):
        assert compiler not in text


def test_everything_the_build_copies_is_in_the_build_context() -> None:
    """.dockerignore keeps everything out but an allow list: a COPY of a path it does not allow fails the
    image build (a new top-level package must be added to both)."""
    allowed = {
        line.removeprefix("!").removesuffix("/**")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    sources = [
        source
        for keyword, rest in instructions()
        if keyword == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    ]
    assert sources and all(Path(s).as_posix().rstrip("/") in allowed for s in sources), (sources, allowed)
    packages = {
        p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name not in {"tests", "hack"}
    }
    assert packages <= allowed, f"packages missing from .dockerignore's allow list: {packages - allowed}"
