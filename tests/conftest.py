"""Test set-up: offline, caches in a temp dir, one fresh workspace per test."""
import os
import tempfile

# Before anything imports huggingface_hub/torch: no network, no writes to the real home.
_HOME = tempfile.mkdtemp(prefix="workbench-test-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
for var in ("HOME", "XDG_CACHE_HOME", "HF_HOME", "TORCH_HOME"):
    os.environ[var] = os.path.join(_HOME, var.lower())
    os.makedirs(os.environ[var], exist_ok=True)
# One thread per process: the tests' models are tiny, and a test often runs beside a worker or a second training
# process on 2 cores, where two threads each only contend (the two-process training test: 43 s -> 32 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Servers .ci/run started for the PostgreSQL and Redis variants (read before the WORKBENCH_ variables are cleared).
_SERVICE_URLS = {name: os.environ.get(f"WORKBENCH_TEST_{name.upper()}_URL") for name in ("postgres", "redis")}
for var in list(os.environ):
    if var.startswith("WORKBENCH_"):
        del os.environ[var]

import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from workbench import db  # noqa: E402
from workbench.settings import get_settings, reload_settings  # noqa: E402


@pytest.fixture(scope="session")
def _migrated_db(tmp_path_factory):
    """A SQLite database migrated to every head once per session: each test's workspace starts from a copy of it
    (~5 ms) instead of running the ~25 migrations again (~0.1-0.2 s on 2 cores, for ~600 tests)."""
    import sqlite3

    from workbench.settings import Settings

    root = tmp_path_factory.mktemp("migrated-db")
    settings = Settings(workspace=str(root / "ws"))
    db.init_db(settings)
    db.reset_for_tests()
    template = root / "workbench.db"
    with sqlite3.connect(settings.workspace_dir / "workbench.db") as src, sqlite3.connect(template) as dst:
        src.backup(dst)
    return template


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch, request, _migrated_db):
    """A fresh workspace for every test (WORKBENCH_WORKSPACE), with settings and engines reset. Its database is
    already migrated (a copy of ``_migrated_db``) unless the test is marked ``empty_workspace`` (then the workspace
    folder does not exist yet, as on a new machine)."""
    ws = tmp_path / "workspace"
    monkeypatch.setenv("WORKBENCH_WORKSPACE", str(ws))
    monkeypatch.setenv("WORKBENCH_STOP_GRACE_SECONDS", "1")
    # Most tests' workers run one model job: forking them from a preloaded server would only add its ~20 s import.
    # The `preloaded_worker` fixture and the browser journey use it (the product's default on CPU machines).
    monkeypatch.setenv("WORKBENCH_JOBS_PRELOAD", "off")
    # Queueing does not start a consumer in tests: those that run jobs start one (the `worker` fixtures) and stop it.
    monkeypatch.setenv("WORKBENCH_AUTO_WORKER", "false")
    # `workbench --as NAME` sets WORKBENCH_CLI_USER for the rest of its process: undone after each test.
    monkeypatch.setenv("WORKBENCH_CLI_USER", "")
    monkeypatch.delenv("WORKBENCH_CLI_USER")
    monkeypatch.chdir(tmp_path)  # no stray workbench.toml from the repo
    db.reset_for_tests()
    settings = reload_settings()
    if request.node.get_closest_marker("empty_workspace") is None:
        import shutil

        ws.mkdir()
        shutil.copyfile(_migrated_db, ws / "workbench.db")
        db.mark_migrated(settings)
    yield ws
    db.reset_for_tests()
    get_settings.cache_clear()


def _worker(tmp_path):
    """A real Huey consumer (``python -m workbench.jobs``) for this test's workspace; its output in worker.log."""
    from workbench import jobs

    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "workbench.jobs"], start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while not jobs.worker_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jobs.worker_alive(), "the worker did not start"
    yield proc
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker's group: the consumer and its job fork server
    except ProcessLookupError:
        pass
    proc.wait()
    log.close()


@pytest.fixture
def worker(workspace, tmp_path):
    """A worker that starts every job as a fresh process."""
    yield from _worker(tmp_path)


@pytest.fixture
def preloaded_worker(workspace, tmp_path, monkeypatch):
    """A worker that forks model jobs from its preloaded job server (workbench.jobs.spawn)."""
    monkeypatch.setenv("WORKBENCH_JOBS_PRELOAD", "on")
    reload_settings()
    yield from _worker(tmp_path)


# -- PostgreSQL and Redis variants (issue #23): one server per session, a fresh database per test --------------------

# pytest-xdist runs the suite in two worker processes (README's test command): each worker has its own template
# database and its own Redis database number, so one worker's set-up and flushes never touch the other's tests.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist; "" otherwise
PG_TEMPLATE = f"wb_template_{_XDIST_WORKER or 'main'}"  # migrated to head once per session; tests get copies


def _redis_url_for_this_worker(url: str) -> str:
    """The session's Redis URL with a database number of this xdist worker's own (0 without xdist)."""
    index = int(_XDIST_WORKER[2:]) + 1 if _XDIST_WORKER.startswith("gw") else 0
    base, _, last = url.rstrip("/").rpartition("/")
    return f"{base}/{index}" if last.isdigit() else f"{url.rstrip('/')}/{index}"


# The most expensive modules run first, so under xdist none of their long tests is left as the last thing running
# while the other worker idles (tests keep their order inside a module, so module fixtures are built once).
_EXPENSIVE_FIRST = ("e2e/test_browser.py", "test_train_jobs.py", "test_generate_batch.py", "test_demo.py",
                    "test_data_captions.py", "test_train_script.py", "test_evaluate_runs.py", "test_jobs_workers.py",
                    "e2e/test_served_app.py", "test_demo_base.py")


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        path = item.path.as_posix()
        for i, suffix in enumerate(_EXPENSIVE_FIRST):
            if path.endswith("/" + suffix):
                return i
        return len(_EXPENSIVE_FIRST)

    items.sort(key=rank)  # stable: the order inside each rank (and module) stays pytest's


@pytest.fixture(scope="session")
def postgres_server():
    """The PostgreSQL server of this session: .ci/run's (WORKBENCH_TEST_POSTGRES_URL), else a private one started
    with the installed binaries (initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin), else skip saying why."""
    from helpers.services import PostgresServer
    from workbench.settings import Settings

    if _SERVICE_URLS["postgres"]:
        server = PostgresServer(url=_SERVICE_URLS["postgres"])
    else:
        try:
            server = PostgresServer.start()
        except FileNotFoundError as exc:
            pytest.skip(f"{exc}; .ci/run installs and starts it")
    server.drop_database(server.url_for(PG_TEMPLATE))  # a server given by URL may keep one from an older run
    url = server.new_database("template0", name=PG_TEMPLATE)
    with tempfile.TemporaryDirectory() as ws:
        db.init_db(Settings(database_url=url, workspace=ws))
    db.reset_for_tests()  # no connection may stay on a template
    yield server
    server.drop_database(url)
    server.stop()


def _postgres_database(server, monkeypatch, template: str):
    url = server.new_database(template)
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", url)  # worker and job processes started by the test inherit it
    db.reset_for_tests()
    reload_settings()
    return url


@pytest.fixture
def postgres_db(workspace, postgres_server, monkeypatch):
    """A fresh PostgreSQL database, migrated to head, as this test's WORKBENCH_DATABASE_URL."""
    url = _postgres_database(postgres_server, monkeypatch, PG_TEMPLATE)
    yield url
    db.reset_for_tests()
    postgres_server.drop_database(url)


@pytest.fixture
def empty_postgres_db(workspace, postgres_server, monkeypatch):
    """A fresh, empty PostgreSQL database (no tables) as this test's WORKBENCH_DATABASE_URL."""
    url = _postgres_database(postgres_server, monkeypatch, "template0")
    yield url
    db.reset_for_tests()
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request):
    """Runs the test on the workspace's SQLite file and on a fresh PostgreSQL database (migrated to head)."""
    if request.param == "postgresql":
        request.getfixturevalue("postgres_db")
    return request.param


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_backend(request):
    """Like ``db_backend``, with an empty database: the test migrates it."""
    if request.param == "postgresql":
        request.getfixturevalue("empty_postgres_db")
    return request.param


@pytest.fixture(scope="session")
def redis_server():
    """The Redis server of this session: .ci/run's (WORKBENCH_TEST_REDIS_URL), else a private one, else skip."""
    from helpers.services import RedisServer

    if _SERVICE_URLS["redis"]:
        server = RedisServer(url=_redis_url_for_this_worker(_SERVICE_URLS["redis"]))
    else:
        try:
            server = RedisServer.start()
        except FileNotFoundError as exc:
            pytest.skip(f"{exc}; .ci/run installs it")
    yield server
    server.stop()


@pytest.fixture
def redis_queue(workspace, redis_server, monkeypatch):
    """An empty Redis as this test's job queue (WORKBENCH_REDIS_URL); returns its URL."""
    redis_server.flush()
    monkeypatch.setenv("WORKBENCH_REDIS_URL", redis_server.url)
    reload_settings()
    yield redis_server.url
    redis_server.flush()


# -- The browser (Playwright + Debian's Chromium): one per test process -------------------------------------------

@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright's sync API, shared by every browser test of this process (tests/e2e/,
    the served-app fault test): Playwright allows one sync instance per thread, so a second session fixture beside
    this one fails with "using Playwright Sync API inside the asyncio loop". Skips without Chromium or Playwright."""
    from workbench.browser import CHROMIUM_ARGS, find_chromium

    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements-test.txt)")
    executable = find_chromium()
    if not executable:
        pytest.skip("Chromium is not installed: apt-get install chromium (.ci/run installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()
