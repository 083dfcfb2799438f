"""A real `streamlit run app.py` server on 127.0.0.1 and the headless Chromium that drives it.

Shared by the browser tests (tests/test_browser.py) and the soak benchmark (bench/soak.py), which used to
start their servers each their own way.

    with running_app(Path("artifacts/server.log")) as server:
        page.goto(server.url)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class AppServer:
    """A running server: its address and its process (for its pid: memory, PDF workers)."""

    url: str
    process: subprocess.Popen
    log_path: Path


def free_port() -> int:
    """A TCP port nobody listens on now (another process may take it before the server does: rare)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    """Block until Streamlit's health endpoint answers 200.

    Raises:
        RuntimeError: the server exited (its log says why).
        TimeoutError: no answer within `timeout` seconds (a loaded machine: raise the timeout).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}; see its log")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


def start_app(log_path: Path, env: Mapping[str, str] | None = None) -> AppServer:
    """Start `streamlit run app.py` headless on a free port of 127.0.0.1, output to `log_path`."""
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=None if env is None else dict(env),
    )
    log.close()  # the child holds its own descriptor
    return AppServer(f"http://127.0.0.1:{port}", process, log_path)


def stop_app(server: AppServer, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    server.process.terminate()
    try:
        server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


@contextlib.contextmanager
def running_app(
    log_path: Path, env: Mapping[str, str] | None = None, healthy_within: float = 120
) -> Iterator[AppServer]:
    """A server that answers its health check, stopped when the block ends (whatever happens)."""
    server = start_app(log_path, env)
    try:
        wait_until_healthy(server.url, server.process, healthy_within)
        yield server
    finally:
        stop_app(server)


class ServerMessages:
    """What the server sent one page over its websocket (Streamlit's ForwardMsg), decoded as it arrives.

    Tells a full run of the page from a run of one fragment (`runs_ended`) and how much was drawn where
    (`deltas`). Works with Playwright's sync and async pages alike (it only registers callbacks):

        messages = ServerMessages(page)   # before page.goto
        messages.clear()
        ...click...
        messages.runs_ended()             # ["FINISHED_FRAGMENT_RUN_SUCCESSFULLY"]
    """

    def __init__(self, page) -> None:
        self.received: list = []  # ForwardMsg, oldest first
        self.bytes = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._received))

    def _received(self, payload: str | bytes) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        # Streamlit's messages are binary; a text frame is not one of them.
        if isinstance(payload, bytes | bytearray):
            self.bytes += len(payload)
            self.received.append(ForwardMsg.FromString(bytes(payload)))

    def clear(self) -> None:
        self.received.clear()
        self.bytes = 0

    def runs_ended(self) -> list[str]:
        """How each script run that ended since `clear` ended (ForwardMsg.ScriptFinishedStatus names)."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        return [
            ForwardMsg.ScriptFinishedStatus.Name(m.script_finished)
            for m in self.received
            if m.WhichOneof("type") == "script_finished"
        ]

    def deltas(self, root: str = "") -> int:
        """Elements drawn since `clear`: all, or only those in `root` ("main", "sidebar")."""
        roots = {"": None, "main": 0, "sidebar": 1}[root]
        return sum(
            m.WhichOneof("type") == "delta" and (roots is None or m.metadata.delta_path[:1] == [roots])
            for m in self.received
        )
