"""One run of the service under `protokit dev`: started, known to be serving, stopped gracefully.

The service runs as `python -m MODULE` with PROTOKIT_* settings that make restarts seamless: the port
is shared (SO_REUSEPORT) so the new server binds it while the old one drains, the grace period is short,
and the server ends with `protokit dev` even if that is killed (PROTOKIT_PARENT_PID). It is known to
serve when the runtime logs "serving ... on HOST:PORT"; its output goes to our stderr as it comes.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from protokit.dev.target import Target

# In-flight calls get this long to finish when a restart replaces the server.
GRACE_SECONDS = 2.0


class ServiceProcess:
    def __init__(self, target: Target, port: int, env: dict[str, str], echo: Callable[[str], None]) -> None:
        self.target = target
        self.port = port
        self.env = env
        self.echo = echo
        self.ready = threading.Event()
        self.tail: list[str] = []  # the last lines of output, for a failure report
        self.proc: subprocess.Popen[str] | None = None
        self._serving = re.compile(rf"serving .* on \S*:{port}\b")

    def start(self, timeout: float = 60.0) -> bool:
        """Start the service; True once it serves, False if it exited (or hung) first."""
        self.proc = subprocess.Popen(
            [sys.executable, *self.target.argv],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # Its own session: Ctrl-C reaches protokit dev, which stops the server gracefully.
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.01):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(0)
                return False
        return True

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.echo(line.rstrip("\n"))
            self.tail = [*self.tail[-19:], line.rstrip("\n")]
            if not self.ready.is_set() and self._serving.search(line):
                self.ready.set()

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """SIGTERM (the runtime drains for `grace` seconds), then SIGKILL if it has not exited."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_later(self) -> threading.Thread:
        """Stop in the background: the new server already serves while this one drains."""
        thread = threading.Thread(target=self.stop, daemon=True)
        thread.start()
        return thread
