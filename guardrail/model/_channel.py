"""One inference worker process and the parent's end of its socket pair.

The worker (``guardrail.model._worker``) is started with ``subprocess`` rather than
``multiprocessing``: a spawned ``multiprocessing`` child imports the server's main module
again, which for an application module can mean starting a second server. It gets its end
of the socket pair as an inherited descriptor, and the package path of this guardrail, so
it runs the same code whatever the server's working directory.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import guardrail
from guardrail.errors import ModelLoadError

__all__ = ["WorkerChannel", "WorkerError"]


class WorkerError(RuntimeError):
    """A worker process died, hung or could not be started during a call."""


class WorkerChannel:
    """One worker process and the parent's end of its socket pair."""

    def __init__(
        self,
        model_dir: Path,
        threads: int,
        start_timeout: float,
        tail_threshold: float,
    ) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # The worker must import this very guardrail, wherever it was imported from.
        package_root = str(Path(guardrail.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "guardrail.model._worker",
                    str(theirs.fileno()),
                    str(model_dir),
                    str(threads),
                    "0",  # the parent verified the files a moment ago
                    repr(tail_threshold),  # round-trips the float exactly
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            ours.close()
            raise ModelLoadError(f"cannot start an inference worker process: {exc}") from exc
        finally:
            theirs.close()
        # The socket is kept to shut it down: that wakes a thread waiting on the
        # connection (closing its descriptor would not) and gives the worker its EOF.
        self._socket = ours
        self.conn = Connection(os.dup(ours.fileno()))
        self._model_dir = model_dir
        self._start_timeout = start_timeout

    def wait_ready(self) -> None:
        """Wait for the worker's model to load; ModelLoadError if it does not."""
        model_dir = self._model_dir
        try:
            reply = self._reply(self._start_timeout, "start")
        except WorkerError as exc:
            self.stop()
            raise ModelLoadError(str(exc)) from None
        if reply[0] != "ready":
            self.stop()
            raise ModelLoadError(f"inference worker could not load {model_dir}: {reply[2]}")

    def _reply(self, timeout: float, what: str) -> Any:
        try:
            if not self.conn.poll(timeout):
                pid = self.process.pid
                raise WorkerError(f"inference worker {pid} did not {what} in {timeout:g} s")
            return marshal.loads(self.conn.recv_bytes())
        except (EOFError, OSError, ValueError) as exc:
            code = self.process.poll()
            raise WorkerError(
                f"inference worker {self.process.pid} failed to {what} "
                f"({'exit code ' + str(code) if code is not None else exc})"
            ) from None

    def call(self, request: tuple[Any, ...], timeout: float) -> Any:
        try:
            self.conn.send_bytes(marshal.dumps(request))
        except OSError as exc:
            raise WorkerError(f"inference worker {self.process.pid} is gone: {exc}") from None
        return self._reply(timeout, "answer")

    def stop(self, wait: float = 2.0) -> None:
        """End the connection (the worker then exits), and kill it if it does not."""
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.conn.close()
        self._socket.close()
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
