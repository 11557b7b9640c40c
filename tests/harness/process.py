"""A service's console script as its own process on a port, with its environment: started, waited for, killed and
started again on the same port (fault tests), stopped in order at the end."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from tests.harness.infra import free_port
from tests.harness.poll import wait_ready

BIN = Path(sys.executable).parent


class ServiceProcess:
    """`command` (a console script of this environment: `minaintyg-intake`, `fk-sim`, ...) listening on `port`, which
    it is told through the environment variable `port_env`. The process inherits this environment with `env` on top;
    its stderr (and its stdout too with `stdout_to_log`) is appended to `log` when given."""

    def __init__(
        self,
        command: str,
        env: Mapping[str, str],
        *,
        port_env: str,
        port: int | None = None,
        log: Path | None = None,
        stdout_to_log: bool = False,
        own_session: bool = False,
    ) -> None:
        self.command = command
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, port_env: str(self.port)}
        self.log = log
        self.stdout_to_log = stdout_to_log
        self.own_session = own_session
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0
        self._terminating = False

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.command} is not started"
        return self.process.pid

    def spawn(self) -> None:
        """Start the process (again, after a kill) without waiting for it to be ready."""
        assert self.process is None or self.process.poll() is not None, f"{self.command} is still running"
        if self.log is None:
            self.process = subprocess.Popen(
                [str(BIN / self.command)], env=self.env, stdin=subprocess.DEVNULL, start_new_session=self.own_session
            )
        else:
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    [str(BIN / self.command)],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stderr=log,
                    stdout=log if self.stdout_to_log else None,
                    start_new_session=self.own_session,
                )
        self.started += 1
        self._terminating = False

    async def ready(self, within: float = 60.0) -> None:
        """Wait for /readyz to answer 200; fail at once, with the log's tail, if the process ends first."""
        await wait_ready(self.url, within=within, alive=self.exited, what=self.command)

    async def start(self, within: float = 60.0) -> None:
        self.spawn()
        await self.ready(within)

    def exited(self) -> str | None:
        """None while the process runs, else how it ended (and the end of its log)."""
        if self.process is None:
            return "not started"
        code = self.process.poll()
        if code is None:
            return None
        tail = self.log.read_text(errors="replace")[-3000:] if self.log is not None and self.log.exists() else ""
        return f"exited with {code}" + (f"; its log ends:\n{tail}" if tail else "")

    def read_log(self) -> str:
        assert self.log is not None, f"{self.command} has no log file"
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown runs."""
        self._signal(signal.SIGKILL)
        self._wait(None)

    def terminate(self) -> None:
        """SIGTERM without waiting (to stop several processes at once; `stop` then waits)."""
        if self.process is not None and not self._terminating:
            self._signal(signal.SIGTERM)
            self._terminating = True

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (once: a second one would cut the shutdown short) and wait for the ordered shutdown; SIGKILL after
        `timeout` s. Its exit code (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None, f"{self.command} is not started"
        if self.process.poll() is not None:
            return
        if self.own_session:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)

    def _wait(self, timeout: float | None) -> None:
        assert self.process is not None
        self.process.wait(timeout=timeout)

    async def __aenter__(self) -> ServiceProcess:
        try:
            await self.start()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


async def run_command(command: str, *args: str, env: Mapping[str, str], timeout: float = 60.0) -> tuple[int, str]:
    """A one-shot console script (`minaintyg-admin ...`) with this environment and `env` on top: its exit code and
    its output (stdout and stderr together)."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / command),
        *args,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")
