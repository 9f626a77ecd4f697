"""The Dockerfile's build stage, performed without a Docker engine, and every entrypoint's --help.

The test reads the build stage (WORKDIR, COPY, RUN), copies the same files into a fresh build context,
runs the same RUN commands there with the image's virtual environment path replaced by a temporary one,
then runs ``mcp-operator {run,proxy,vmcp,crds} --help`` from that environment. It installs the pinned
dependencies from the package index; unlike the image build it keeps pip's download cache, so only the
first run downloads them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_VENV = "/opt/mcp-operator"
ENTRYPOINTS = ["run", "proxy", "vmcp", "crds"]


def build_stage() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stage: list[tuple[str, str]] = []
    seen_from = 0
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        if keyword.upper() == "FROM":
            seen_from += 1
            if seen_from > 1:
                break
            continue
        stage.append((keyword.upper(), rest.strip()))
    return stage


def perform_build_stage(context: Path, venv: Path) -> None:
    base_python_dir = Path(getattr(sys, "_base_executable", sys.executable)).resolve().parent
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env["PATH"] = f"{base_python_dir}:{env.get('PATH', '')}"
    for keyword, rest in build_stage():
        if keyword == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                if key != "PIP_NO_CACHE_DIR":
                    env[key] = value
        elif keyword == "COPY":
            *sources, destination = rest.split()
            for source in sources:
                target = context / destination / (Path(source).name if destination.endswith("/") else "")
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                    )
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / source, target)
        elif keyword == "RUN":
            # Same command; only pip's download cache is allowed, so repeated runs do not refetch.
            command = rest.replace(IMAGE_VENV, str(venv)).replace(" --no-cache-dir", "")
            result = subprocess.run(
                ["sh", "-c", command],
                cwd=context,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert result.returncode == 0, f"RUN {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        elif keyword not in ("WORKDIR", "ARG", "LABEL"):
            pytest.fail(f"the test does not know how to perform {keyword} in the build stage")


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("image")
    context, venv = root / "src", root / "venv"
    context.mkdir()
    perform_build_stage(context, venv)
    yield venv


@pytest.mark.slow
@pytest.mark.parametrize("entrypoint", ENTRYPOINTS)
def test_every_entrypoint_prints_its_help(image_venv: Path, entrypoint: str) -> None:
    result = subprocess.run(
        [str(image_venv / "bin" / "mcp-operator"), entrypoint, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=image_venv,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"mcp-operator {entrypoint}" in result.stdout


@pytest.mark.slow
def test_installed_image_prints_the_crds_and_ships_no_pip(image_venv: Path) -> None:
    result = subprocess.run(
        [str(image_venv / "bin" / "mcp-operator"), "crds"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=image_venv,
        check=True,
    )
    kinds = {doc["spec"]["names"]["kind"] for doc in yaml.safe_load_all(result.stdout) if doc}
    assert {"MCPServer", "MCPRemoteProxy", "VirtualMCPServer"} <= kinds
    assert not (image_venv / "bin" / "pip").exists()


@pytest.mark.slow
def test_installed_image_runs_a_code_mode_script(image_venv: Path) -> None:
    """The gateway's code mode runs its Starlark interpreter as ``python -m gateway.vmcp.codemode.worker``
    with the image's Python: the interpreter (starlark-pyo3) is installed there."""
    start = {
        "source": "def __main__():\n    return [n * 2 for n in data]\n__main__()\n",
        "lines": 1,
        "tools": {},
        "data": {"data": [1, 2, 3]},
        "limits": {"step_limit": 1000, "parallel_max": 1, "tool_call_timeout": 1.0, "script_timeout": 5.0},
    }
    result = subprocess.run(
        [str(image_venv / "bin" / "python"), "-m", "gateway.vmcp.codemode.worker"],
        input=json.dumps(start) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=image_venv,
        check=False,
    )
    assert json.loads(result.stdout) == {"result": [2, 4, 6], "logs": []}, result.stderr
