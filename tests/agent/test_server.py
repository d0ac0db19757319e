"""The agent served by gunicorn on a real Unix socket: peer credentials, mode, CLI end to end."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ccci_core.agent_client import LEASE_HOLDER_HEADER, AgentClient, AgentClientError
from ccci_core.cli import main
from tests.agent.conftest import BASE_DOMAIN, App
from tests.agent.volumes import fingerprint, write_dataset
from tests.agent_server import running_agent

ROOT = Path(__file__).resolve().parents[2]
GROUP = "nogroup"
GROUP_GID = 65534
STRANGER = 54321  # a uid and gid no passwd or group entry names
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Server:
    """A running agent: its socket and state directory."""

    socket: Path
    state_dir: Path

    def client(self) -> AgentClient:
        """Return a client of this agent."""
        return AgentClient(self.socket)


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory for the socket and state that other uids may traverse (tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="ccci-agent-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def server(base: Path) -> Iterator[Server]:
    """``cc-ci agent serve`` in a subprocess, on a socket in a directory others may traverse."""
    socket, state_dir = base / "agent.sock", base / "state"
    env = {"CCCI_SOCKET_GROUP": GROUP, "CCCI_MAX_TESTS": "2", "CCCI_DOMAIN": BASE_DOMAIN}
    with running_agent(socket, state_dir, env, workers=3):
        yield Server(socket, state_dir)


def _holder(lease: dict[str, str]) -> dict[str, str]:
    return {LEASE_HOLDER_HEADER: lease["token"]}


def _curl_as(
    uid: int, gid: int, socket: Path, path: str, *curl_args: str, groups: tuple[int, ...] = ()
) -> tuple[int, dict[str, object]]:
    """Run curl on the socket as ``uid``:``gid`` with the supplementary ``groups`` (none)."""

    def drop() -> None:
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)

    done = subprocess.run(
        [
            *("curl", "-s", "-w", "\n%{http_code}", "--unix-socket", str(socket), *curl_args),
            f"http://agent{path}",
        ],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=drop,
        timeout=30,
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code), json.loads(body) if body else {}


@pytest.fixture
def crashed_state(base: Path) -> Path:
    """A state directory as a crash leaves it: trash of a prune, a temp link, an orphan."""
    app = base / "state" / "crashed"
    (app / "snapshots" / "20990101T000000Z-deadbeef").mkdir(parents=True)
    (app / ".tmp-snapshot.0000").symlink_to("snapshots/20990101T000000Z-deadbeef")
    (base / "state" / "_trash-gone-0000").mkdir()
    return base / "state"


def test_start_cleans_what_a_crash_left(crashed_state: Path, server: Server) -> None:
    """Before serving, the agent removes crash leftovers; nothing half-written stays."""
    assert [] == list((crashed_state / "crashed" / "snapshots").iterdir())
    assert not (crashed_state / "crashed" / ".tmp-snapshot.0000").is_symlink()
    assert not (crashed_state / "_trash-gone-0000").exists()


@pytest.fixture
def corrupt_state(base: Path) -> Path:
    """A state directory whose one canonical has a truncated registry and manifest."""
    app = base / "state" / "broken"
    generation = app / "snapshots" / "20990101T000000Z-deadbeef"
    generation.mkdir(parents=True)
    (generation / "manifest.json").write_bytes(b'{"format": 1, "id": "2099')
    (app / "snapshot").symlink_to("snapshots/20990101T000000Z-deadbeef")
    (app / "canonical.json").write_bytes(b'{"recipe": "bro')
    return base / "state"


def test_start_survives_a_corrupt_canonical(corrupt_state: Path, server: Server) -> None:
    """Truncated state files: the agent starts, reports the canonical corrupt, alerts, serves."""
    status = server.client().get("/v1/status")

    [broken] = status["canonicals"]
    assert ("broken", "corrupt") == (broken["recipe"], broken["status"])
    assert any("canonical.json" in c for c in broken["corrupt"])
    assert any("manifest.json" in c for c in broken["corrupt"])
    assert {"state-corrupt", "snapshot-corrupt"} == {a["kind"] for a in status["alerts"]}
    assert (corrupt_state / "broken" / "snapshots" / "20990101T000000Z-deadbeef").is_dir()


@pytest.mark.docker
def test_retake_of_a_dirty_canonical_over_the_socket_is_409(server: Server, app: App) -> None:
    """PATCH dirty, write, `cc-ci snapshot R` (an empty POST): 409 restore first, exit 2."""
    write_dataset(app.mountpoint, "a")
    body = {"domain": app.domain, "version": "1.0.0+1.0", "commit": COMMIT}
    promoted = server.client().post(f"/v1/canonicals/{app.recipe}/snapshot", body)
    server.client().patch(f"/v1/canonicals/{app.recipe}", {"volume": "dirty"})
    write_dataset(app.mountpoint, "b")

    with pytest.raises(AgentClientError, match="restore first") as refused:
        server.client().post(f"/v1/canonicals/{app.recipe}/snapshot")
    assert 2 == main(["snapshot", app.recipe, "--socket", str(server.socket)])

    assert 409 == refused.value.http_status
    view = server.client().get(f"/v1/canonicals/{app.recipe}")
    assert (promoted["snapshot"]["id"], "dirty") == (view["snapshot"]["id"], view["volume"])


def test_socket_is_0660_and_owned_by_the_group(server: Server) -> None:
    """The socket is born 0660 with the configured group."""
    st = server.socket.stat()
    assert (0o660, GROUP_GID) == (stat.S_IMODE(st.st_mode), st.st_gid)


def test_curl_as_root_works(server: Server) -> None:
    """An operator's ``curl --unix-socket SOCK http://agent/v1/status`` gets the status."""
    code, body = _curl_as(0, 0, server.socket, "/v1/status")
    assert (200, str(server.state_dir)) == (code, body["state_dir"])


def test_group_member_is_allowed(server: Server) -> None:
    """A uid outside root whose gid is the agent's group gets answers."""
    assert 200 == _curl_as(STRANGER, GROUP_GID, server.socket, "/v1/leases")[0]


def test_supplementary_group_member_is_allowed(server: Server) -> None:
    """A uid without an account, in the group only as a supplementary one (--group-add): 200."""
    assert 200 == _curl_as(STRANGER, STRANGER, server.socket, "/v1/leases", groups=(GROUP_GID,))[0]


def test_non_member_is_refused_by_peer_credentials(server: Server) -> None:
    """Even on a world-writable socket, a uid outside the group gets a JSON 403."""
    assert 0 == _curl_as(STRANGER, STRANGER, server.socket, "/v1/status")[0]  # 0660 stops it
    server.socket.chmod(0o666)

    code, body = _curl_as(STRANGER, STRANGER, server.socket, "/v1/status")

    assert (403, "Forbidden") == (code, body["error"])


def test_only_root_breaks_a_lease_without_its_token(server: Server) -> None:
    """?force=1 works for a uid-0 peer only; another group member needs the holder's token."""
    client = server.client()
    held = client.post("/v1/leases", {"recipe": "a", "lane": "cold"})
    stuck = client.post("/v1/leases", {"recipe": "b", "lane": "cold"})
    member = (STRANGER, GROUP_GID, server.socket)

    forced = _curl_as(*member, f"/v1/leases/{held['id']}?force=1", "-X", "DELETE")
    tokenless = _curl_as(*member, f"/v1/leases/{held['id']}", "-X", "DELETE")
    holder = f"{LEASE_HOLDER_HEADER}: {held['token']}"
    released = _curl_as(*member, f"/v1/leases/{held['id']}", "-X", "DELETE", "-H", holder)
    broken = _curl_as(0, 0, server.socket, f"/v1/leases/{stuck['id']}?force=1", "-X", "DELETE")

    assert [403, 403, 204, 204] == [code for code, _ in (forced, tokenless, released, broken)]
    assert ["Forbidden", "NotLeaseHolder"] == [body["error"] for _, body in (forced, tokenless)]
    assert [] == client.get("/v1/leases")["leases"]


def test_concurrent_lease_requests_never_exceed_max_tests(server: Server) -> None:
    """Twenty simultaneous requests across three workers: exactly MAX_TESTS=2 granted."""

    def ask(i: int) -> str:
        try:
            server.client().post("/v1/leases", {"recipe": f"r{i}", "lane": "cold"})
            return "granted"
        except AgentClientError as exc:
            return "refused" if exc.http_status == 409 else f"error {exc.http_status}"

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = sorted(pool.map(ask, range(20)))

    assert ["granted"] * 2 + ["refused"] * 18 == results
    assert 2 == len(server.client().get("/v1/leases")["leases"])


def test_a_truncated_leases_file_does_not_stop_lease_calls(server: Server) -> None:
    """A cut _leases.json: every lease call still answers, an alert says the leases were lost."""
    client = server.client()
    lost = client.post("/v1/leases", {"recipe": "a", "lane": "cold"})
    leases_file = server.state_dir / "_leases.json"
    leases_file.write_bytes(leases_file.read_bytes()[:40])

    assert [] == client.get("/v1/leases")["leases"]
    with pytest.raises(AgentClientError) as renewal:
        client.post(f"/v1/leases/{lost['id']}/renew", headers=_holder(lost))
    granted = client.post("/v1/leases", {"recipe": "b", "lane": "cold"})
    client.post(f"/v1/leases/{granted['id']}/renew", headers=_holder(granted))

    assert 404 == renewal.value.http_status
    [alert] = client.get("/v1/status")["alerts"]
    assert ("state-corrupt", "_leases.json") == (alert["kind"], alert["message"].split()[0])
    assert "renewals will 404" in alert["message"]
    assert [Path(alert["details"]["moved_to"]).name] == [
        p.name for p in server.state_dir.glob("_leases.json.corrupt-*")
    ]


@dataclass
class Oversized:
    """What a client sending an oversized body saw: the answer, and whether the body all went."""

    status: int
    body: dict[str, object]
    sent_all: bool


def _post_oversized(socket_path: Path, size: int, *, chunked: bool) -> Oversized:
    """POST ``size`` bytes to prune-stale, with Content-Length or chunked, reading the answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(socket_path))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = "POST /v1/prune-stale HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n"
    sock.sendall(f"{head}{framing}\r\n\r\n".encode())
    chunk = b" " * (1 << 20)

    def pump() -> bool:
        try:
            for _ in range(size // len(chunk)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sock.sendall(b"0\r\n\r\n" if chunked else b"")
        except (BrokenPipeError, ConnectionResetError):
            return False  # the agent stopped reading and hung up
        return True

    with ThreadPoolExecutor(max_workers=1) as pool:
        sent = pool.submit(pump)
        answer = b""
        # Closing with the body unread, the agent resets the socket: after the answer, on Linux.
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(65536):
                answer += data
        sent_all = sent.result()
    sock.close()
    head_part, _, body = answer.partition(b"\r\n\r\n")
    return Oversized(int(head_part.split()[1]), json.loads(body), sent_all)


def _peak_rss_kib(socket_path: Path) -> int:
    """Return the largest peak RSS (VmHWM) of the agent's processes (master and workers)."""
    peaks = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(socket_path).encode() not in cmdline.read_bytes():
                continue
            status = (cmdline.parent / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        peaks += [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")]
    return max(peaks)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_body_is_a_413_and_never_buffered(server: Server, chunked: bool) -> None:
    """A 128 MiB body gets a JSON 413 before it is sent; no process grows; the agent serves on."""
    before = _peak_rss_kib(server.socket)

    refused = _post_oversized(server.socket, 128 << 20, chunked=chunked)

    assert (413, "RequestEntityTooLarge") == (refused.status, refused.body["error"])
    assert not refused.sent_all  # the agent hung up instead of reading it all
    assert _peak_rss_kib(server.socket) - before < 16 << 10  # KiB: far below the body's size
    assert {"pruned": [], "refused": {}} == server.client().post(
        "/v1/prune-stale", {"enrolled": []}
    )


@pytest.mark.docker
def test_operator_cli_end_to_end(
    server: Server, app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    """Promote over the socket, then cc-ci status/canonical/snapshot/restore/alerts."""
    write_dataset(app.mountpoint, "a")
    known_good = fingerprint(app.mountpoint)
    body = {"domain": app.domain, "version": "1.0.0+1.0", "commit": COMMIT}
    server.client().post(f"/v1/canonicals/{app.recipe}/snapshot", body)
    alert = server.client().post(
        "/v1/alerts", {"kind": "infra-held", "key": "k1", "message": "keycloak 27 held"}
    )
    sock = ["--socket", str(server.socket)]

    assert 0 == main(["snapshot", app.recipe, *sock])
    write_dataset(app.mountpoint, "b")
    assert 0 == main(["restore", app.recipe, *sock])
    assert known_good == fingerprint(app.mountpoint)
    assert 0 == main(["status", *sock])
    status = capsys.readouterr().out
    assert app.recipe in status
    assert "keycloak 27 held" in status
    assert 0 == main(["canonical", app.recipe, "--json", *sock])
    assert "clean" == json.loads(capsys.readouterr().out)["volume"]
    assert 0 == main(["alerts", "ack", alert["id"], *sock])
    assert 0 == main(["alerts", "--json", *sock])
    assert "[]" == capsys.readouterr().out.strip().splitlines()[-1]
    assert 2 == main(["restore", "No-Such", *sock])
    assert 2 == main(["restore", "no-such", *sock])


GATED_TAR = """#!{python}
# tar for the agent under test: an archive run waits until the test opens the gate.
import fcntl, os, sys

if "--version" not in sys.argv:
    with open({started!r}, "a") as started:
        started.write(f"{{os.getpid()}}\\n")
    gate = os.open({gate!r}, os.O_RDONLY)
    fcntl.flock(gate, fcntl.LOCK_SH)  # the test holds LOCK_EX while the gate is shut
    os.close(gate)
os.execvp("tar", ["tar", *sys.argv[1:]])
"""


@dataclass
class Gate:
    """A tar wrapper whose archive runs wait while the test holds the gate shut."""

    tar: Path
    started: Path
    lock: Path

    def runs(self) -> int:
        """Return how many archive runs reached the gate so far."""
        return len(self.started.read_text().splitlines()) if self.started.exists() else 0

    def wait_for_runs(self, count: int, proc_timeout: float = 120) -> None:
        """Wait until ``count`` runs wait at the gate (the timeout only guards against a hang)."""
        deadline = time.monotonic() + proc_timeout
        while self.runs() < count:
            assert time.monotonic() < deadline, f"{self.runs()} of {count} tar runs started"
            time.sleep(0.05)

    @contextmanager
    def shut(self) -> Iterator[None]:
        """Hold the gate shut: archive runs started meanwhile wait until the block ends."""
        fd = os.open(self.lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


@pytest.fixture
def gate(base: Path) -> Gate:
    """A gated tar in ``base`` (the agent runs it as root)."""
    gate = Gate(base / "gated-tar", base / "tar-started", base / "tar-gate")
    gate.lock.touch()
    gate.tar.write_text(
        GATED_TAR.format(python=sys.executable, started=str(gate.started), gate=str(gate.lock))
    )
    gate.tar.chmod(0o755)
    return gate


@pytest.mark.docker
def test_leases_status_and_alerts_answer_while_snapshots_and_restores_run(
    base: Path, gate: Gate, make_app: Callable[[], App]
) -> None:
    """Four restores and promotes blocked in tar, two workers: every quick call still answers."""
    socket_path, state_dir = base / "agent.sock", base / "state"
    env = {"CCCI_SOCKET_GROUP": GROUP, "CCCI_DOMAIN": BASE_DOMAIN, "CCCI_TAR": str(gate.tar)}
    apps = [make_app() for _ in range(4)]
    for app in apps:
        write_dataset(app.mountpoint, "a", bulk=4096)
    known_good = [fingerprint(app.mountpoint) for app in apps]
    with running_agent(socket_path, state_dir, env | {"CCCI_MAX_TESTS": "4"}, workers=2) as agent:
        for app in apps[:2]:  # two canonicals to restore, two to promote
            agent.post(f"/v1/canonicals/{app.recipe}/snapshot", _promote_body(app))
            write_dataset(app.mountpoint, "b", bulk=4096)
        slow = [f"/v1/canonicals/{app.recipe}/restore" for app in apps[:2]]
        slow += [f"/v1/canonicals/{app.recipe}/snapshot" for app in apps[2:]]
        bodies = [None, None, _promote_body(apps[2]), _promote_body(apps[3])]
        quick = AgentClient(socket_path, timeout=60)  # a guard against a hang, not a measure
        with ThreadPoolExecutor(max_workers=4) as pool:
            with gate.shut():
                runs = gate.runs()
                blocked = [pool.submit(agent.post, p, b) for p, b in zip(slow, bodies, strict=True)]
                gate.wait_for_runs(runs + 4)

                lease = quick.post("/v1/leases", {"recipe": "a", "lane": "cold"})
                quick.post(f"/v1/leases/{lease['id']}/renew", headers=_holder(lease))
                listed = quick.get("/v1/leases")["leases"]
                status = quick.get("/v1/status")
                alerts = quick.get("/v1/alerts")["alerts"]
                quick.delete(f"/v1/leases/{lease['id']}", headers=_holder(lease))

                assert [] == [future for future in blocked if future.done()]
                assert runs + 4 == gate.runs()
            done = [future.result() for future in blocked]

    assert ([lease["id"]], []) == ([held["id"] for held in listed], alerts)
    pending = {c["recipe"]: c["restore_pending"] for c in status["canonicals"]}
    # A restore blocked in tar is still staging beside the volume: no volume touched, no marker.
    assert set() == {r for r, p in pending.items() if p is not None}
    assert ["clean"] * 4 == [view["volume"] for view in done]
    assert known_good == [fingerprint(app.mountpoint) for app in apps]


def _promote_body(app: App) -> dict[str, str]:
    return {"domain": app.domain, "version": "1.0.0+1.0", "commit": COMMIT}


def test_unreachable_agent_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without an agent, cc-ci status says so in one line and exits 2."""
    assert 2 == main(["status", "--socket", str(tmp_path / "none.sock")])
    err = capsys.readouterr().err
    assert 1 == len(err.splitlines())
    assert "not reachable" in err
