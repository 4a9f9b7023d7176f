"""Private PostgreSQL and Redis servers for tests, on 127.0.0.1 with a free port and a temporary data directory.

`.ci/run` starts both and passes their URLs (``WORKBENCH_TEST_POSTGRES_URL``, ``WORKBENCH_TEST_REDIS_URL``); run
outside it, the session fixtures in ``tests/conftest.py`` start their own with the installed binaries, or skip saying
what to install. Tests never install system packages.

    server = PostgresServer.start()        # initdb + pg_ctl start (as `nobody` when run as root: postgres refuses root)
    url = server.new_database("wb_template")   # CREATE DATABASE ... TEMPLATE: a fresh copy in ~0.1 s
    server.stop()
"""
from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def postgres_bin_dir() -> Path | None:
    """The folder with initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                      if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


@dataclass
class PostgresServer:
    """A PostgreSQL server: one we started (``data_dir`` set, stopped by ``stop``) or one given by URL."""

    url: str  # postgresql+psycopg://user@127.0.0.1:port/postgres
    data_dir: Path | None = None
    bin_dir: Path | None = None
    _counter: itertools.count = field(default_factory=itertools.count)

    @classmethod
    def start(cls) -> PostgresServer:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
        root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))  # in /tmp, not pytest's 0700 folder: `nobody` reads it
        run_as: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            shutil.chown(root, "nobody")
            run_as = ["runuser", "-u", "nobody", "--"]
        data, port = root / "data", free_port()
        subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8", "--locale=C"], check=True, capture_output=True, timeout=120)
        options = _server_options(port)
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                        "-t", "60", "-o", options, "start"], check=True, capture_output=True, timeout=90)
        return cls(url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", data_dir=data, bin_dir=bin_dir)

    def stop(self) -> None:
        if self.data_dir is None or self.bin_dir is None:
            return  # not ours
        run_as = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        subprocess.run([*run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def restart(self, down: float = 0.0) -> float:
        """Restart the server we started: ``pg_ctl stop -m fast`` (every connection is cut), ``down`` seconds with no
        server, then start it again on the same port with the same options. Returns the seconds it was away."""
        if self.data_dir is None or self.bin_dir is None:
            raise RuntimeError("not our server: a server given by URL is shared and never restarted by a test")
        run_as = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        pg_ctl = [*run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir)]
        started = time.monotonic()
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "-t", "60", "stop"], check=True, capture_output=True, timeout=90)
        time.sleep(down)
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        subprocess.run([*pg_ctl, "-l", str(self.data_dir.parent / "server.log"), "-w", "-t", "60", "-o",
                        _server_options(int(port)),
                        "start"], check=True, capture_output=True, timeout=90)
        return time.monotonic() - started

    def _admin(self):
        from sqlalchemy import create_engine

        return create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=_null_pool())

    def url_for(self, database: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + database

    def new_database(self, template: str = "template0", name: str | None = None) -> str:
        """A new database (uniquely named unless ``name`` is given) copied from ``template``; returns its URL."""
        name = name or f"wb_{os.getpid()}_{next(self._counter)}"
        engine = self._admin()
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            engine.dispose()
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        engine = self._admin()
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            engine.dispose()


def _server_options(port: int) -> str:
    """Throw-away data: no fsync. Unix sockets off (TCP on loopback only)."""
    return (f"-h 127.0.0.1 -p {port} -k '' -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200")


def _null_pool():
    from sqlalchemy.pool import NullPool

    return NullPool


@dataclass
class RedisServer:
    url: str
    proc: subprocess.Popen | None = None
    dir: Path | None = None

    @classmethod
    def start(cls) -> RedisServer:
        exe = shutil.which("redis-server")
        if not exe:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        folder, port = Path(tempfile.mkdtemp(prefix="workbench-redis-")), free_port()
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                 "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_port(port):
            proc.kill()
            raise RuntimeError(f"redis-server did not listen on port {port}")
        return cls(url=f"redis://127.0.0.1:{port}/0", proc=proc, dir=folder)

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.flushdb()
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
