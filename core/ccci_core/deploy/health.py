"""Know when an app is really up: convergence of every service, container health, an HTTP probe.

An app is up when, for ``settle`` seconds in a row, every service of its stack has its desired
replicas running on the current spec (same running tasks throughout, so a task that keeps
restarting never counts) and no task of an older spec still running, no update is rolling back,
every container with a healthcheck reports healthy, the version label is the one we deployed, and
the probe (if the recipe has a ``HEALTH_PATH``) answers 2xx/3xx.

An update Swarm still calls ``updating`` counts once converged so: after the last task started,
Swarm keeps that state for its ``monitor`` period (5 s by default) to watch the new tasks, and
our settle window watches them at the same time, as the Docker CLI's own wait does (``docker
service update`` returns once the service has been converged for ``monitor``, whatever the update
state says). Waiting for ``completed`` first would stack the two windows.

Swarm's update state ``paused`` is a trap: with the default ``failure_action: pause`` one flicker
of a new task pauses the update for good, even when the new tasks then run fine. A paused service
whose tasks all run the current spec and are healthy counts as converged; a paused one that does
not is reported at once (Swarm will not resume it by itself) instead of waiting out the timeout.
More than ``crash_limit`` failed tasks since the deploy also end the wait early.

How the probe reaches the app (never through a container's own IP):

- ``proxy`` (production): ``https://<domain><HEALTH_PATH>`` through the proxy;
- ``loopback`` (hosts without the proxy): the service's ``mode: host`` published port for
  ``HEALTH_PORT`` on 127.0.0.1, with ``Host: <domain>``;
- ``exec``: ``wget`` inside a running container of ``HEALTH_SERVICE`` against its own loopback.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from ..docker_engine import Task
from ..names import AppName
from ..recipe_meta import RecipeMeta
from .errors import DeployError, NotReady
from .stack import Stack

ProbeMode = Literal["proxy", "loopback", "exec"]
SETTLE = 3.0  # s an app must stay up before it counts (a task that flaps restarts the window)
_BAD_UPDATES = {"rollback_started", "rollback_paused", "rollback_completed"}
# A replicated task that ends on its own is a restart too: one stopped by Swarm as unhealthy whose
# process exits 0 on SIGTERM ends "complete", not "failed".
_FAILED = {"failed", "rejected", "orphaned", "complete"}


@dataclass
class ServiceState:
    """One service's convergence at one instant."""

    name: str
    desired: int
    running: int
    update: str | None
    update_message: str = ""
    failures: int = 0
    last_error: str = ""
    unhealthy: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    task_ids: frozenset[str] = frozenset()
    stale: int = 0  # tasks of an older spec still running (a start-first update's old ones)

    @property
    def converged(self) -> bool:
        """Return whether all replicas run the current spec, report healthy, and no old one runs."""
        return self.running == self.desired and not self.unhealthy and not self.stale

    @property
    def ready(self) -> bool:
        """Return whether the service counts as up (a converged ``paused`` counts)."""
        return self.converged and self.update not in _BAD_UPDATES

    @property
    def stuck(self) -> bool:
        """Return whether Swarm will not get there by itself (update paused, not converged)."""
        return self.update in {"paused", "rollback_completed", "rollback_paused"} and not (
            self.converged and self.update == "paused"
        )

    def line(self) -> str:
        """Return one line for the report."""
        text = f"{self.name}: {self.running}/{self.desired} running"
        if self.waiting:
            text += f" (other tasks: {', '.join(self.waiting)})"
        if self.stale:
            text += f", {self.stale} of an older spec still running"
        if self.update:
            text += f", update {self.update}"
            if self.update_message:
                text += f" ({self.update_message})"
        if self.unhealthy:
            text += f", not healthy: {', '.join(self.unhealthy)}"
        if self.failures:
            text += f", {self.failures} failed task(s)"
        if self.last_error:
            text += f", last error: {self.last_error}"
        return text


def _describe(stack: Stack, task: Task) -> str:
    """Return why a task ended: Swarm's error, the exit code, the last failing healthcheck."""
    text = task.error
    if task.exit_code is not None:
        text += f" (exit {task.exit_code})"
    container = stack.container(task.container_id) if task.container_id else None
    health = container.health if container else None
    if health is not None and health.status == "unhealthy":
        output = health.last_output[-200:]
        text += f"; healthcheck unhealthy (exit {health.last_exit}): {output or 'no output'}"
    return text


def observe(stack: Stack, since: datetime) -> list[ServiceState]:
    """Return the state of every service of ``stack``, counting failures after ``since``."""
    states = []
    for service in stack.services():
        tasks = stack.tasks(service)
        live = [t for t in tasks if t.desired_state == "running"]
        desired = service.replicas if service.replicas is not None else len(live)
        running = [t for t in live if t.state == "running" and t.spec == service.spec]
        stale = sum(1 for t in tasks if t.state == "running" and t.spec != service.spec)
        failed = sorted(
            (t for t in tasks if t.state in _FAILED and t.timestamp > since),
            key=lambda t: t.timestamp,
        )
        last_error = _describe(stack, failed[-1]) if failed else ""
        waiting = sorted({t.state or "?" for t in live if t not in running} - {"running"})
        unhealthy = []
        for task in running:
            container = stack.container(task.container_id) if task.container_id else None
            if container is None:
                unhealthy.append(f"{task.id[:12]} gone")
            elif container.health is not None and container.health.status != "healthy":
                unhealthy.append(f"{task.id[:12]} {container.health.status}")
        states.append(
            ServiceState(
                name=service.name,
                desired=desired,
                running=len(running),
                update=service.update_state,
                update_message=service.update_message,
                failures=len(failed),
                last_error=last_error,
                unhealthy=unhealthy,
                waiting=waiting,
                task_ids=frozenset(t.id for t in running),
                stale=stale,
            )
        )
    return states


class Probe(Protocol):
    """An app-level check: return None when the app answers, else why not."""

    def __call__(self) -> str | None:
        """Probe the app once."""


@dataclass
class HttpProbe:
    """GET ``url`` (optionally with a ``Host`` header); 2xx/3xx is up."""

    url: str
    host: str | None = None
    timeout: float = 5.0
    verify_tls: bool = True

    def __call__(self) -> str | None:
        """Probe the app once."""
        request = urllib.request.Request(self.url)  # noqa: S310 - http(s) URLs we built
        if self.host:
            request.add_header("Host", self.host)
        # A cold app's certificate may be self-signed: checking it is the operator's call.
        unverified = None if self.verify_tls else ssl._create_unverified_context()  # noqa: S323 - opt-in
        try:
            with urllib.request.urlopen(  # noqa: S310 - an http(s) URL we built
                request, timeout=self.timeout, context=unverified
            ) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            return f"GET {self.url}: {exc}"
        return None if status < 400 else f"GET {self.url}: HTTP {status}"


@dataclass
class LoopbackProbe:
    """GET the service's host-mode published port on 127.0.0.1 (found when probed)."""

    stack: Stack
    service: str
    port: int
    path: str
    host: str

    def __call__(self) -> str | None:
        """Probe the app once."""
        try:
            published = loopback_port(self.stack, self.service, self.port)
        except DeployError as exc:
            return str(exc)
        if published is None:
            return f"{self.stack.name}_{self.service} publishes no host-mode port for {self.port}"
        return HttpProbe(f"http://127.0.0.1:{published}{self.path}", host=self.host)()


def loopback_port(stack: Stack, service: str, port: int) -> int | None:
    """Return the host-mode port ``service`` publishes for container ``port``, if any."""
    for entry in stack.service(service).ports:
        if entry.target == port and entry.mode == "host":
            return entry.published
    return None


@dataclass
class ExecProbe:
    """``wget`` the app from inside its own container (loopback of that container)."""

    stack: Stack
    service: str
    port: int
    path: str

    def __call__(self) -> str | None:
        """Probe the app once."""
        url = f"http://127.0.0.1:{self.port}{self.path}"
        try:
            code, output = self.stack.exec(self.service, ["wget", "-q", "-O", "/dev/null", url])
        except DeployError as exc:
            return str(exc)
        return None if code == 0 else f"wget {url} in {self.service}: exit {code} {output.strip()}"


def probe_for(mode: ProbeMode, stack: Stack, app: AppName, meta: RecipeMeta) -> Probe | None:
    """Return the probe the recipe asks for, reached the way ``mode`` says, or None."""
    path = meta.health_path
    if path is None:
        return None
    if mode == "proxy":
        return HttpProbe(f"https://{app.domain}{path}")
    if mode == "loopback":
        return LoopbackProbe(stack, meta.health_service, meta.health_port, path, app.domain)
    return ExecProbe(stack, meta.health_service, meta.health_port, path)


def wait_ready(
    stack: Stack,
    *,
    timeout: float,
    since: datetime,
    version: str | None = None,
    probe: Probe | None = None,
    settle: float = SETTLE,
    crash_limit: int = 3,
    poll: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ServiceState]:
    """Wait until the stack is up (see module doc); raise NotReady with a report if it is not."""
    deadline = clock() + timeout
    stable_since: float | None = None
    seen: frozenset[str] = frozenset()
    while True:
        states = observe(stack, since)
        report = [s.line() for s in states] or [f"{stack.name}: no services"]
        problem = None
        deployed = stack.deployed()
        if not states:
            problem = "no services"
        elif version is not None and (deployed is None or deployed.version != version):
            problem = f"version label is {deployed.version if deployed else None}, want {version}"
        for state in states:
            if state.stuck:
                raise NotReady(stack.name, f"{state.name} update {state.update}", report)
            if state.failures > crash_limit:
                raise NotReady(stack.name, f"{state.name} keeps failing", report)
        if problem is None and not all(s.ready for s in states):
            problem = "services not converged"
        tasks = frozenset().union(*(s.task_ids for s in states)) if states else frozenset()
        if problem is not None:
            stable_since = None
        else:
            if tasks != seen or stable_since is None:
                stable_since = clock()  # (re)start the settle window on a new set of tasks
            if clock() - stable_since >= settle:
                answer = probe() if probe is not None else None
                if answer is None:
                    return states
                problem = answer
                report.append(f"probe: {answer}")
        seen = tasks
        if clock() > deadline:
            raise NotReady(stack.name, f"{problem or 'not settled'} after {timeout:.0f}s", report)
        sleep(poll)
