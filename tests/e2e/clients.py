"""Run the real TRW client packages (trw-mcp, trw-memory) against a loopback server.

Each pinned client version gets its own virtual environment under a cache folder,
built once and reused while its completion marker matches the pinned requirements.
A :class:`ClientSession` runs a driver script from ``drivers/`` or a client CLI
inside that environment, in a temporary project folder with its own ``HOME``.
Afterwards it stops every process the run left behind, because trw-mcp 9.5.1
starts a trw-memory daemon that outlives the command.

Every run routes HTTP(S) through an :class:`EgressGuard` proxy on 127.0.0.1 that
rejects and records each request, and only loopback hosts bypass it. A client that
tried to reach its default platform (``https://api.trwframework.com``) shows up in
``ClientRun.blocked_egress`` instead of leaving the machine. The guard sees only
clients that honour the standard proxy variables (httpx and urllib both do).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVERS_DIR = Path(__file__).resolve().parent / "drivers"
CACHE_ENV_VAR = "TRW_TEST_CLIENT_CACHE"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "clients"
MARKER_NAME = ".trw-e2e-complete.json"

PIP_INSTALL_TIMEOUT_S = 1800
DEFAULT_RUN_TIMEOUT_S = 300
PROCESS_STOP_TIMEOUT_S = 10.0

#: Hosts that bypass the egress guard: the loopback server under test.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

#: Consent flags that let every client send telemetry, publish learnings and
#: run shared recall. They live in the project's ``.trw/config.yaml``.
FULL_CONSENT: Mapping[str, object] = {
    "platform_telemetry_enabled": True,
    "learning_sharing_enabled": True,
    "team_sync_enabled": True,
}


@dataclass(frozen=True)
class ClientSpec:
    """One pinned client release and the requirements that install it."""

    name: str
    version: str
    cli: str
    #: Extra pins beside the client itself, so its bundled trw-memory does not drift.
    companion_pins: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def requirements(self) -> tuple[str, ...]:
        return (f"{self.name}=={self.version}", *self.companion_pins)


# The companion pins are what pip resolved for each release in December 2026:
# trw-mcp 0.62.0 allows trw-memory >=0.11,<1 and 9.5.1 allows >=5.4,<6.
TRW_MCP_NEW = ClientSpec(
    "trw-mcp", "9.5.1", cli="trw-mcp", companion_pins=("trw-memory==5.4.0",)
)
TRW_MCP_OLD = ClientSpec(
    "trw-mcp", "0.62.0", cli="trw-mcp", companion_pins=("trw-memory==0.19.0",)
)
TRW_MEMORY = ClientSpec("trw-memory", "5.4.0", cli="trw-memory")


@dataclass(frozen=True)
class ClientEnv:
    """A complete virtual environment holding one client release."""

    spec: ClientSpec
    path: Path

    @property
    def bin_dir(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin_dir / "python"

    def script(self, name: str) -> Path:
        return self.bin_dir / name


def cache_root() -> Path:
    """Return the client environments' folder: ``$TRW_TEST_CLIENT_CACHE`` if set."""
    configured = os.environ.get(CACHE_ENV_VAR, "").strip()
    return Path(configured).expanduser().resolve() if configured else DEFAULT_CACHE_DIR


def ensure_client_env(spec: ClientSpec) -> ClientEnv:
    """Create the virtual environment for *spec*, or reuse a complete one.

    The environment counts as complete only when its marker file exists and
    lists the same requirements; anything else is deleted and rebuilt. A lock
    file serialises concurrent test processes building the same environment.
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    env = ClientEnv(spec=spec, path=root / spec.key)
    with _exclusive_lock(root / f"{spec.key}.lock"):
        if _marker_matches(env):
            return env
        if env.path.exists():
            logger.info("removing incomplete client environment %s", env.path)
            shutil.rmtree(env.path)
        _build_env(env)
    return env


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _marker_matches(env: ClientEnv) -> bool:
    marker = env.path / MARKER_NAME
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        recorded.get("requirements") == list(env.spec.requirements)
        and env.python.exists()
    )


def _build_env(env: ClientEnv) -> None:
    started = time.monotonic()
    logger.info(
        "creating client environment %s for %s",
        env.path,
        " ".join(env.spec.requirements),
    )
    _run_checked(
        [sys.executable, "-m", "venv", str(env.path)], timeout=PIP_INSTALL_TIMEOUT_S
    )
    pip = [str(env.python), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run_checked(
        [*pip, "install", "--progress-bar", "off", *env.spec.requirements],
        timeout=PIP_INSTALL_TIMEOUT_S,
    )
    frozen = _run_checked([*pip, "freeze", "--all"], timeout=120).stdout.splitlines()
    seconds = round(time.monotonic() - started, 1)
    marker = {
        "requirements": list(env.spec.requirements),
        "python": sys.version,
        "seconds": seconds,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "packages": frozen,
    }
    # Written last: a marker means every step above finished.
    (env.path / MARKER_NAME).write_text(
        json.dumps(marker, indent=2) + "\n", encoding="utf-8"
    )
    logger.info("created client environment %s in %.1f s", env.path, seconds)


def _run_checked(
    argv: Sequence[str], *, timeout: float
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"command failed with exit code {completed.returncode}: {' '.join(argv)}\n"
            f"stdout:\n{completed.stdout[-4000:]}\nstderr:\n{completed.stderr[-4000:]}"
        )
    return completed


def anonymize_installation_id(raw_id: str) -> str:
    """Hash an installation id the way trw-mcp does before sending it.

    sha256 hex of the id, then sha256 hex of that string, first 16 characters
    (``trw_mcp.telemetry.anonymizer.anonymize_installation_id`` in 0.62.0 and 9.5.1).
    """
    first = hashlib.sha256(raw_id.encode()).hexdigest()
    return hashlib.sha256(first.encode()).hexdigest()[:16]


class EgressGuard:
    """HTTP proxy on 127.0.0.1 that rejects every request and records its first line.

    A client that honours ``HTTP(S)_PROXY`` and tries a non-loopback host
    sends ``CONNECT host:443`` or ``GET http://host/...`` here and gets 403.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._lock = threading.Lock()
        guard = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 5

            def handle(self) -> None:
                try:
                    first_line = self.rfile.readline(4096).decode("latin-1").strip()
                except OSError:
                    first_line = "<unreadable>"
                with guard._lock:
                    guard.attempts.append(first_line)
                logger.warning("egress guard rejected %r", first_line)
                with contextlib.suppress(OSError):
                    self.wfile.write(
                        b"HTTP/1.1 403 Forbidden\r\n"
                        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                    )

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="egress-guard", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.attempts)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class ClientRun:
    """The outcome of one driver or CLI run inside a client environment."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    #: The driver's JSON result line (a dict with a ``driver`` key).
    #: None for CLI runs.
    result: dict[str, object] | None
    #: First lines of the requests the egress guard rejected during this run.
    blocked_egress: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{' '.join(self.argv)} exited {self.returncode}"
            f" after {self.seconds:.1f} s\n"
            f"stdout (tail):\n{self.stdout[-3000:]}\n"
            f"stderr (tail):\n{self.stderr[-3000:]}"
        )

    def require_success(self) -> dict[str, object]:
        """Return the driver result.

        Raises AssertionError with the output tails if the run failed.
        """
        if self.returncode != 0:
            raise AssertionError(f"client run failed:\n{self.describe()}")
        if self.result is None:
            raise AssertionError(
                f"client run printed no JSON result line:\n{self.describe()}"
            )
        return self.result


def parse_result_line(stdout: str) -> dict[str, object] | None:
    """Return the last stdout line that is a JSON object with a ``driver`` key."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and "driver" in parsed:
            return parsed
    return None


class ClientSession:
    """A temporary project folder and ``HOME`` for one or more runs of one client.

    Use it as a context manager: leaving it stops the egress guard and every
    process whose environment carries this session's ``HOME`` (the trw-memory
    daemon among them). *root* should be a fresh folder, such as pytest's
    ``tmp_path``. *project_config* is merged into ``.trw/config.yaml``.
    *init_project* runs ``git init`` and ``trw-mcp init-project`` first, which
    trw-mcp needs before it stores or publishes learnings (0.62.0 rejects a
    folder that is not a git repository).
    """

    def __init__(
        self,
        client: ClientEnv,
        *,
        root: Path,
        platform_url: str,
        api_key: str,
        project_config: Mapping[str, object] = FULL_CONSENT,
        init_project: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.platform_url = platform_url.rstrip("/")
        self.api_key = api_key
        self.project_dir = root / "project"
        self.home_dir = root / "home"
        self.installation_id = f"e2e-{uuid.uuid4().hex[:12]}"
        self._processes: list[subprocess.Popen[str]] = []
        self.project_dir.mkdir(parents=True)
        self.home_dir.mkdir(parents=True)
        self._guard = EgressGuard()
        self.env = self._build_env(extra_env or {})
        try:
            if init_project:
                self._init_project()
            config = {"installation_id": self.installation_id, **project_config}
            write_project_config(self.project_dir, config)
        except BaseException:
            self.close()
            raise

    @property
    def installation_hash(self) -> str:
        """The ``installation_id`` that trw-mcp sends for this session's project."""
        return anonymize_installation_id(self.installation_id)

    def __enter__(self) -> ClientSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _build_env(self, extra_env: Mapping[str, str]) -> dict[str, str]:
        host = urlsplit(self.platform_url).hostname or "127.0.0.1"
        system_path = os.environ.get("PATH", "/usr/bin:/bin")
        guard_url = self._guard.url
        env = {
            "PATH": os.pathsep.join((str(self.client.bin_dir), system_path)),
            "HOME": str(self.home_dir),
            "XDG_CONFIG_HOME": str(self.home_dir / ".config"),
            "XDG_DATA_HOME": str(self.home_dir / ".local" / "share"),
            "XDG_CACHE_HOME": str(self.home_dir / ".cache"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            # Keeps the client Pythons from writing __pycache__ into tests/e2e/drivers.
            "PYTHONDONTWRITEBYTECODE": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            # Settings prefixes: trw-mcp reads TRW_*, trw-memory reads MEMORY_*.
            "TRW_PLATFORM_URL": self.platform_url,
            "TRW_PLATFORM_API_KEY": self.api_key,
            "MEMORY_PLATFORM_URL": self.platform_url,
            "MEMORY_PLATFORM_API_KEY": self.api_key,
            "TRW_PLATFORM_TRUSTED_HOSTS": host,
            # trw-memory rejects a plain-http platform URL unless TRW_DEBUG is "true".
            "TRW_DEBUG": "true",
            # `trw-mcp auth login` runs $BROWSER with the URL, and `true` opens nothing.
            "BROWSER": "true",
            # No client environment has sentence-transformers, but if one gains it,
            # a model download at run time fails instead of reaching the network.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "NO_PROXY": ",".join(LOOPBACK_HOSTS),
            "no_proxy": ",".join(LOOPBACK_HOSTS),
        }
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = guard_url
            env[name.lower()] = guard_url
        env.update(extra_env)
        return env

    def _init_project(self) -> None:
        git = shutil.which("git")
        if git is None:
            raise RuntimeError(
                "git is not installed; trw-mcp init-project needs a git repository"
            )
        for argv in (
            [git, "-c", "init.defaultBranch=main", "init", "-q", "."],
            [str(self.client.script("trw-mcp")), "init-project", "."],
        ):
            completed = subprocess.run(
                argv,
                cwd=self.project_dir,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=DEFAULT_RUN_TIMEOUT_S,
                check=False,
            )
            if completed.returncode != 0:
                raise RuntimeError(
                    f"project setup failed with exit code {completed.returncode}:"
                    f" {' '.join(argv)}\n"
                    f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
                )

    def run_driver(
        self, driver: str, *args: str, timeout: float = DEFAULT_RUN_TIMEOUT_S
    ) -> ClientRun:
        """Run ``drivers/<driver>`` with the client's Python in the project folder."""
        script = DRIVERS_DIR / driver
        if not script.is_file():
            raise FileNotFoundError(f"driver script not found: {script}")
        return self._run(
            [str(self.client.python), str(script), *args], timeout=timeout, parse=True
        )

    def run_cli(self, *args: str, timeout: float = DEFAULT_RUN_TIMEOUT_S) -> ClientRun:
        """Run the client's console script (``trw-mcp`` or ``trw-memory``)."""
        return self._run(
            [str(self.client.script(self.client.spec.cli)), *args],
            timeout=timeout,
            parse=False,
        )

    def start_cli(self, *args: str) -> subprocess.Popen[str]:
        """Start the client's console script without waiting for it.

        Its stdout and stderr are text pipes. The session stops it on close
        if it is still running.
        """
        process = subprocess.Popen(
            [str(self.client.script(self.client.spec.cli)), *args],
            cwd=self.project_dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._processes.append(process)
        return process

    def _run(self, argv: list[str], *, timeout: float, parse: bool) -> ClientRun:
        blocked_before = len(self._guard.snapshot())
        started = time.monotonic()
        completed = subprocess.run(
            argv,
            cwd=self.project_dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return ClientRun(
            argv=argv,
            returncode=completed.returncode,
            stdout=completed.stdout,
            stderr=completed.stderr,
            seconds=time.monotonic() - started,
            result=parse_result_line(completed.stdout) if parse else None,
            blocked_egress=self._guard.snapshot()[blocked_before:],
        )

    @property
    def blocked_egress(self) -> list[str]:
        """First lines of every request the egress guard rejected in this session."""
        return self._guard.snapshot()

    def close(self) -> None:
        """Stop this session's CLIs, daemons and other processes, then its guard."""
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=PROCESS_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        self._processes.clear()
        stop_session_processes(self.home_dir)
        self._guard.close()


def write_project_config(project_dir: Path, settings: Mapping[str, object]) -> None:
    """Set top-level keys in ``<project>/.trw/config.yaml``.

    Earlier ``key: value`` lines for the same keys at column 0 are removed,
    but a key inside a nested block is left alone. Values are written as JSON
    scalars, which YAML reads unchanged.
    """
    config_path = project_dir / ".trw" / "config.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    existing = (
        config_path.read_text(encoding="utf-8").splitlines()
        if config_path.exists()
        else []
    )
    kept = [
        line
        for line in existing
        if not any(line.startswith(f"{key}:") for key in settings)
    ]
    kept.extend(f"{key}: {json.dumps(value)}" for key, value in settings.items())
    config_path.write_text("\n".join(kept) + "\n", encoding="utf-8")


def daemon_record_paths(home_dir: Path) -> list[Path]:
    """Where trw-memory records its daemon's PID for a given ``HOME``."""
    return [
        home_dir / ".trw" / "memory" / "daemon.json",
        home_dir / ".local" / "share" / "trw" / "memory" / "daemon.json",
    ]


def stop_session_processes(home_dir: Path) -> list[int]:
    """Stop the trw-memory daemon and any other process started with ``HOME=home_dir``.

    The PID in ``daemon.json`` is tried first. Then ``/proc`` is scanned for
    processes whose environment contains exactly this ``HOME``, which only this
    session's processes have. Returns the PIDs that were signalled.
    """
    candidates: list[int] = []
    for record in daemon_record_paths(home_dir):
        with contextlib.suppress(OSError, ValueError, TypeError):
            pid = int(json.loads(record.read_text(encoding="utf-8"))["pid"])
            candidates.append(pid)
    candidates.extend(_pids_with_home(home_dir))
    own = {os.getpid()}
    targets = sorted(
        {pid for pid in candidates if pid not in own and _has_home(pid, home_dir)}
    )
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + PROCESS_STOP_TIMEOUT_S
    while time.monotonic() < deadline and any(_alive(pid) for pid in targets):
        time.sleep(0.1)
    for pid in targets:
        if _alive(pid):
            logger.warning("process %d did not stop on SIGTERM; sending SIGKILL", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return targets


def _home_marker(home_dir: Path) -> bytes:
    return b"HOME=" + os.fsencode(str(home_dir))


def _has_home(pid: int, home_dir: Path) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return _home_marker(home_dir) in environ.split(b"\0")


def _pids_with_home(home_dir: Path) -> list[int]:
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    return [
        int(entry.name)
        for entry in proc.iterdir()
        if entry.name.isdigit() and _has_home(int(entry.name), home_dir)
    ]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie (state Z) has exited and only waits for its parent to reap it.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
