"""A real Redis for the data-plane tests: Debian's ``redis-server`` on loopback, in a temporary directory.

Started without persistence (a restart is an empty Redis), with ``DEBUG`` allowed from loopback (the
slow-Redis fault sends ``DEBUG SLEEP``), stopped by its pid. ``hack/cluster`` installs the package.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.processes import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class RedisServer:
    """One ``redis-server`` process; :meth:`kill` and :meth:`start` again give an empty Redis."""

    workdir: Path
    port: int = field(default_factory=free_port)
    password: str | None = None
    acl_user: tuple[str, str] | None = None
    """An ACL user (name, password) allowed every command and key, besides the default user."""
    popen: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, timeout: float = 30.0) -> redis.Redis:
        """A client that tries each command once (what the test sends is what Redis sees)."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def start(self) -> None:
        argv = [
            REDIS_SERVER,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "local",
        ]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        if self.acl_user is not None:
            argv += ["--user", self.acl_user[0], "on", f">{self.acl_user[1]}", "~*", "&*", "+@all"]
        log = (self.workdir / "redis.log").open("ab")
        self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(redis.exceptions.ConnectionError):
                if self.client().ping():
                    return
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: what a crashed Redis pod looks like to its clients."""
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@contextlib.contextmanager
def running_redis(workdir: Path, password: str | None = None) -> Iterator[RedisServer]:
    server = RedisServer(workdir, password=password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def running_sentinel(workdir: Path, master: RedisServer, name: str) -> Iterator[str]:
    """``redis-server --sentinel`` monitoring ``master`` as ``name`` (with its ACL user); yields the
    sentinel's address once it names the master."""
    port = free_port()
    conf = workdir / "sentinel.conf"
    lines = [
        f"port {port}",
        "bind 127.0.0.1",
        f"dir {workdir}",
        f"sentinel monitor {name} 127.0.0.1 {master.port} 1",
    ]
    if master.acl_user is not None:
        lines += [
            f"sentinel auth-user {name} {master.acl_user[0]}",
            f"sentinel auth-pass {name} {master.acl_user[1]}",
        ]
    conf.write_text("\n".join(lines) + "\n")
    log = (workdir / "sentinel.log").open("ab")
    popen = subprocess.Popen(
        [REDIS_SERVER, str(conf), "--sentinel"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(redis.exceptions.ConnectionError):
                if client.sentinel_get_master_addr_by_name(name):
                    break
            if popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "redis sentinel did not start: " + (workdir / "sentinel.log").read_text()[-2000:]
                )
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        if popen.poll() is None:
            popen.terminate()
            popen.wait(timeout=10)
