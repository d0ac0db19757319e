"""A run on the fakes: the lane, the lease, promotion and the exit code; each part on its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ccci_core.agent_client import AgentClientError, AgentUnreachable
from ccci_core.errors import CcciError, ConfigError
from ccci_core.names import canonical_app
from ccci_core.recipe_meta import RecipeMeta
from ccci_core.run_result import find_result
from ccci_plugin.context import Run
from ccci_plugin.errors import CheckFailed
from ccci_plugin.run import choose, execute, finish, hold_lease, hold_realm, perform, stop_code
from tests.plugin.conftest import (
    BASE,
    FAKE_DOMAIN,
    FAKE_HEX,
    LATEST,
    RECIPE,
    FakeRecipe,
    log,
    verdicts,
)
from tests.plugin.fakes import FakeAgent, FakeApps, FakeRealms

CANONICAL = canonical_app(RECIPE, FAKE_DOMAIN, suffix=len("data"))
PR = "refs/pull/1/head"
COLD_STEPS = ["lease", "install", "upgrade", "recipe tests", "teardown"]
QUICK_STEPS = ["lease", "reattach", "upgrade", "recipe tests", "restore"]
FAILING_TEST = "def test_fails():\n    assert False\n"
A_REF = "a run with a REF (a pull request) never promotes"
REALM = f"{RECIPE}-{FAKE_HEX}"


def enrol(agent: FakeAgent, apps: FakeApps) -> None:
    """Give RECIPE a promoted canonical at LATEST whose env is on this host."""
    agent.add_canonical(RECIPE, CANONICAL.domain, LATEST)
    apps.deployer.envs.add(CANONICAL.domain)


def result_of(tmp_path: Path) -> dict[str, object]:
    """Return the result file a run wrote."""
    data: dict[str, object] = json.loads((tmp_path / "result.json").read_text())
    return data


def perform_into(run: Run, tmp_path: Path, **options: object) -> int:
    """Perform ``run`` with no lease wait, its result into ``tmp_path/result.json``."""
    return perform(run, lease_wait=0, result_file=tmp_path / "result.json", **options)  # type: ignore[arg-type]


def acquired(agent: FakeAgent) -> list[tuple[object, ...]]:
    """Return each acquire as (recipe, lane, realm, canonical)."""
    return [(c[1], c[2], c[3], c[5]) for c in agent.calls if c[0] == "acquire"]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda agent, apps: None, f"no canonical of {RECIPE}"),
        (
            lambda agent, apps: agent.add_canonical(RECIPE, CANONICAL.domain, LATEST),
            f"the canonical app {CANONICAL.domain} has no env on this host",
        ),
        (
            lambda agent, apps: (
                enrol(agent, apps),
                agent.canonicals[RECIPE].update(snapshot=None),
            ),
            f"no canonical of {RECIPE}",
        ),
    ],
    ids=["no-canonical", "no-env", "no-snapshot"],
)
def test_quick_falls_back_to_cold_and_says_why(
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    fake_apps: FakeApps,
    tmp_path: Path,
    setup: Callable[[FakeAgent, FakeApps], object],
    reason: str,
) -> None:
    """No usable canonical: a cold run of the PR, never a promote; log, summary, result say why."""
    setup(fake_agent, fake_apps)
    run = make_run(PR, quick=True)

    code = perform_into(run, tmp_path)

    assert (0, COLD_STEPS) == (code, list(verdicts(run))), log(run)
    expected = f"cc-ci: quick lane → full cold run ({reason}; the PR is still tested), recipe"
    assert log(run)[0].startswith(expected)
    assert f"lane      cold (quick asked: {reason})" in log(run)
    assert f"canonical untouched ({A_REF})" in log(run)
    result = result_of(tmp_path)
    assert ("cold", "quick", reason) == (result["lane"], result["asked"], result["fallback"])
    assert [(RECIPE, "cold", None, False)] == acquired(fake_agent)
    assert "attach" not in fake_agent.calls.verbs()


def test_quick_with_a_canonical_runs_the_quick_lane_holding_its_lock(
    make_run: Callable[..., Run], fake_agent: FakeAgent, fake_apps: FakeApps, tmp_path: Path
) -> None:
    """A canonical with a snapshot and an env: the quick lane, the lease locks the canonical."""
    enrol(fake_agent, fake_apps)
    run = make_run(PR, quick=True)

    code = perform_into(run, tmp_path)

    assert (0, QUICK_STEPS) == (code, list(verdicts(run))), log(run)
    assert f"cc-ci: quick lane, recipe {RECIPE}, ref {PR}" == log(run)[0]
    assert [(RECIPE, "quick", None, True)] == acquired(fake_agent)
    assert ("quick", None) == (result_of(tmp_path)["lane"], result_of(tmp_path)["fallback"])
    assert {} == fake_agent.leases


def test_a_green_cold_run_on_latest_promotes_after_its_teardown(
    make_run: Callable[..., Run], fake_agent: FakeAgent, fake_apps: FakeApps, tmp_path: Path
) -> None:
    """Enrolled, latest, green: the lease locks the canonical, promote follows the teardown."""
    run = make_run()

    code = perform_into(run, tmp_path)

    assert (0, [*COLD_STEPS, "promote"]) == (code, list(verdicts(run))), log(run)
    assert [(RECIPE, "cold", None, True)] == acquired(fake_agent)
    promoted = [c for c in fake_agent.calls if c[0] == "promote"]
    assert [(RECIPE, CANONICAL.domain, LATEST)] == [c[1:4] for c in promoted]
    assert LATEST == fake_agent.canonicals[RECIPE]["version"]
    assert run.report.canonical.startswith(f"promoted nothing → {LATEST} (snapshot ")
    assert "cc-ci: cold lane, recipe ccci-web, ref latest" == log(run)[0]


@pytest.mark.parametrize(
    ("ref", "meta", "recipe_test", "reason", "locks"),
    [
        (BASE, {"WARM_CANONICAL": True}, None, A_REF, False),
        (None, {}, None, "the recipe is not enrolled (WARM_CANONICAL is not True)", False),
        (None, {"WARM_CANONICAL": True}, FAILING_TEST, "the cold run is red", True),
    ],
    ids=["with-a-ref", "not-enrolled", "red"],
)
def test_a_cold_run_that_may_not_promote_leaves_the_canonical_untouched(
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    fake_apps: FakeApps,
    tmp_path: Path,
    ref: str | None,
    meta: dict[str, object],
    recipe_test: str | None,
    reason: str,
    locks: bool,
) -> None:
    """The summary says why; the canonical is locked only when a promote was still possible."""
    fake_apps.meta = RecipeMeta(RECIPE, meta)
    run = make_run(ref, recipe_test=recipe_test)

    perform_into(run, tmp_path)

    assert f"untouched ({reason})" == run.report.canonical
    assert "promote" not in verdicts(run)
    assert [(RECIPE, "cold", None, locks)] == acquired(fake_agent)
    assert "promote" not in fake_agent.calls.verbs()


@pytest.mark.parametrize(
    ("verb", "error"),
    [
        ("promote", AgentClientError(409, "volumes still in use after 60s")),
        ("attach", AgentClientError(409, "restore first")),
        ("restore", AgentClientError(500, "restore failed")),
    ],
    ids=["409-at-promote", "409-at-attach", "500-at-restore"],
)
def test_an_agent_error_once_the_lease_is_held_is_a_red_run(
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    fake_apps: FakeApps,
    tmp_path: Path,
    verb: str,
    error: AgentClientError,
) -> None:
    """Mid-run the agent failing is a failure like any other: exit 1, the summary, no 'error'."""
    if verb != "promote":
        enrol(fake_agent, fake_apps)
    fake_agent.refuse[verb] = error
    run = make_run(PR if verb != "promote" else None, quick=verb != "promote")

    code = perform_into(run, tmp_path)

    assert 1 == code, log(run)
    assert "verdict   FAIL" == log(run)[-2]
    result = result_of(tmp_path)
    assert ("fail", 1) == (result["verdict"], result["exit"])
    assert {} == fake_agent.leases


@pytest.mark.parametrize(
    ("verb", "error", "failed"),
    [
        ("acquire", AgentClientError(403, "not in the socket group"), ["lease"]),
        ("acquire", AgentUnreachable(Path("/run/x.sock"), "no such file"), ["lease"]),
        ("canonical", AgentClientError(409, "busy"), []),
    ],
    ids=["403-at-acquire", "unreachable", "409-reading-the-canonical"],
)
def test_an_agent_refusal_before_the_lease_is_held_exits_2(
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    tmp_path: Path,
    verb: str,
    error: AgentClientError,
    failed: list[str],
) -> None:
    """Before the run starts an agent refusal is bad input: exit 2, verdict 'error', one line."""
    fake_agent.refuse[verb] = error
    run = make_run(PR, quick=True)

    code = perform_into(run, tmp_path)

    assert 2 == code, log(run)
    assert f"error: stopped: {error}" == log(run)[-2]
    result = result_of(tmp_path)
    assert ("error", 2) == (result["verdict"], result["exit"])
    assert failed == [name for name, verdict in verdicts(run).items() if verdict == "fail"]


def test_no_lease_within_the_wait_is_a_red_run(
    make_run: Callable[..., Run], fake_agent: FakeAgent, tmp_path: Path
) -> None:
    """The host stays busy: the lease step fails, exit 1, nothing was deployed."""
    fake_agent.busy = 1
    run = make_run(BASE)

    code = perform_into(run, tmp_path)

    assert (1, {"lease": "fail"}) == (code, verdicts(run)), log(run)
    assert "no run lease after 0s" in run.report.steps[0].detail
    assert "verdict   FAIL" == log(run)[-2]


def test_a_ref_that_does_not_resolve_exits_2_before_any_step(
    make_run: Callable[..., Run], fake_agent: FakeAgent, tmp_path: Path
) -> None:
    """An unknown tag: exit 2, no step, no lease asked, the run dir gone."""
    run = make_run("9.9.9+9")

    code = perform_into(run, tmp_path)

    assert (2, {}) == (code, verdicts(run))
    assert "has no such tag or commit" in log(run)[-2]
    assert ("error", []) == (result_of(tmp_path)["verdict"], acquired(fake_agent))
    assert not run.run_dir.exists()


def test_a_result_file_in_no_directory_is_refused_before_the_run(
    make_run: Callable[..., Run], fake_agent: FakeAgent, tmp_path: Path
) -> None:
    """CCCI_RESULT_FILE's folder must exist: ConfigError, and the agent was never asked."""
    run = make_run()
    with pytest.raises(ConfigError, match="CCCI_RESULT_FILE"):
        perform(run, lease_wait=0, result_file=tmp_path / "missing" / "result.json")
    assert [] == fake_agent.calls


def test_a_result_file_that_cannot_be_written_leaves_the_verdict(
    make_run: Callable[..., Run], tmp_path: Path
) -> None:
    """Writing the result fails (a directory is in the way): a warning, the exit code stands."""
    (tmp_path / "result.json").mkdir()
    run = make_run(BASE)

    code = perform_into(run, tmp_path)

    assert 0 == code
    assert log(run)[-2].startswith(f"warning: cannot write CCCI_RESULT_FILE {tmp_path}")


def test_the_run_pins_and_names_the_commit_it_tests(
    make_run: Callable[..., Run], fake_recipe: FakeRecipe, fake_apps: FakeApps, tmp_path: Path
) -> None:
    """CCCI_SHA: the log, summary and result name the commit; every deploy is of it."""
    sha = fake_recipe.commit(PR)
    run = make_run(PR, sha=sha)

    perform_into(run, tmp_path)

    assert f"commit: {sha} (pinned by CCCI_SHA)" == log(run)[1]
    assert f"commit    {sha} (CCCI_SHA)" in log(run)
    assert (sha, True) == (result_of(tmp_path)["commit"], result_of(tmp_path)["sha_pinned"])
    deployed = {c[2] for c in fake_apps.deployer.calls if c[0] == "deploy"}
    assert {sha, fake_recipe.commit(LATEST)} == deployed  # the head, and the upgrade base


def test_the_run_dir_is_removed_whatever_happened(
    make_run: Callable[..., Run], fake_apps: FakeApps, fake_recipe: FakeRecipe, tmp_path: Path
) -> None:
    """A red run leaves no scratch behind."""
    fake_apps.never_up.add(fake_recipe.commit(PR))
    run = make_run(PR)

    assert 1 == perform_into(run, tmp_path)
    assert (False, "fail") == (run.run_dir.exists(), verdicts(run)["install"])


def test_a_keycloak_dependent_run_holds_its_realm_inside_the_lease(
    make_run: Callable[..., Run], fake_agent: FakeAgent, fake_apps: FakeApps, tmp_path: Path
) -> None:
    """DEPS = keycloak: the lease names the realm, which is created after it and deleted."""
    fake_apps.meta = RecipeMeta(RECIPE, {"DEPS": ["keycloak"]})
    realms = FakeRealms()
    run = make_run(BASE)

    code = perform_into(run, tmp_path, realms=realms)

    assert (0, "pass") == (code, verdicts(run)["realm"]), log(run)
    assert ["lease", "realm", "install"] == list(verdicts(run))[:3]
    assert ([REALM], [REALM], REALM) == (realms.created, realms.deleted, run.realm)
    assert [(RECIPE, "cold", REALM, False)] == acquired(fake_agent)


def test_a_keycloak_dependent_run_without_keycloak_is_refused(
    make_run: Callable[..., Run], fake_agent: FakeAgent, fake_apps: FakeApps, tmp_path: Path
) -> None:
    """No Realms configured: the realm step fails with the variable to set, exit 2, lease back."""
    fake_apps.meta = RecipeMeta(RECIPE, {"DEPS": ["keycloak"]})
    run = make_run(BASE)

    code = perform_into(run, tmp_path)

    assert (2, {"lease": "pass", "realm": "fail"}) == (code, verdicts(run))
    assert "CCCI_KEYCLOAK_URL" in log(run)[-2]
    assert {} == fake_agent.leases


# -- each part on its own -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "quick", "enrolled", "meta", "expected"),
    [
        (None, False, False, {"WARM_CANONICAL": True}, ("cold", None, LATEST, None, True)),
        (PR, True, True, {}, ("quick", None, None, None, True)),
        (PR, True, False, {}, ("cold", f"no canonical of {RECIPE}", None, None, False)),
        (BASE, False, False, {"DEPS": ["keycloak"]}, ("cold", None, BASE, REALM, False)),
    ],
    ids=["cold-may-promote", "quick", "quick-falls-back", "keycloak"],
)
def test_choose_decides_the_plan_and_holds_nothing(
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    fake_apps: FakeApps,
    fake_recipe: FakeRecipe,
    ref: str | None,
    quick: bool,
    enrolled: bool,
    meta: dict[str, object],
    expected: tuple[object, ...],
) -> None:
    """Lane, fallback, target, realm and canonical lock; no lease asked, nothing deployed."""
    if enrolled:
        enrol(fake_agent, fake_apps)
    fake_apps.meta = RecipeMeta(RECIPE, meta)
    run = make_run(ref, quick)

    plan = choose(run)

    version = None if plan.target.version is None else str(plan.target.version)
    assert expected == (plan.lane, plan.fallback, version, plan.realm, plan.locks_canonical)
    assert fake_recipe.commit(ref or LATEST) == plan.target.commit
    assert (plan.lane, plan.fallback) == (run.report.lane, run.report.fallback)
    assert set(fake_agent.calls.verbs()) <= {"canonical"}
    assert [] == fake_apps.calls


def test_hold_lease_is_the_lease_step_and_holds_it_for_the_block(
    make_run: Callable[..., Run], fake_agent: FakeAgent
) -> None:
    """The step passes once granted and names the lease; it is released when the block ends."""
    run = make_run()
    plan = choose(run)

    with hold_lease(run, plan, wait=0) as lease:
        assert [lease.id] == list(fake_agent.leases)

    assert {"lease": "pass"} == verdicts(run)
    assert f"lease {lease.id} (canonical locked)" == run.report.steps[0].detail
    assert {} == fake_agent.leases


def test_hold_realm_is_no_step_without_a_realm(make_run: Callable[..., Run]) -> None:
    """A recipe that does not depend on keycloak gets no realm step, even with Realms."""
    run = make_run(BASE)
    realms = FakeRealms()

    with hold_realm(run, choose(run), realms):
        pass

    assert ({}, []) == (verdicts(run), realms.created)


def test_hold_realm_deletes_the_realm_when_the_run_fails(
    make_run: Callable[..., Run], fake_apps: FakeApps
) -> None:
    """The realm is deleted whatever the block raised."""
    fake_apps.meta = RecipeMeta(RECIPE, {"DEPS": ["keycloak"]})
    run = make_run(BASE)
    realms = FakeRealms()

    with pytest.raises(RuntimeError), hold_realm(run, choose(run), realms):
        raise RuntimeError("a step failed")

    assert ([REALM], [REALM]) == (realms.created, realms.deleted)


def test_execute_a_quick_plan_runs_the_quick_lane_only(
    make_run: Callable[..., Run], fake_agent: FakeAgent, fake_apps: FakeApps
) -> None:
    """No lease step of its own and never a promote: reattach through restore."""
    enrol(fake_agent, fake_apps)
    run = make_run(PR, quick=True)

    execute(run, choose(run))

    assert QUICK_STEPS[1:] == list(verdicts(run))
    assert "promote" not in fake_agent.calls.verbs()


@pytest.mark.parametrize(
    ("ref", "steps", "canonical"),
    [
        (None, [*COLD_STEPS[1:], "promote"], "promoted nothing → 1.1.0+1.1"),
        (BASE, COLD_STEPS[1:], f"untouched ({A_REF})"),
    ],
    ids=["promotes", "says-why-not"],
)
def test_execute_a_cold_plan_decides_promotion_after_the_lane(
    make_run: Callable[..., Run], ref: str | None, steps: list[str], canonical: str
) -> None:
    """After the cold lane: promote, or record in the report why the canonical is untouched."""
    run = make_run(ref)

    execute(run, choose(run))

    assert steps == list(verdicts(run))
    assert run.report.canonical.startswith(canonical)


@pytest.mark.parametrize(
    ("error", "started", "code"),
    [
        (AgentClientError(409, "busy"), False, 2),
        (AgentClientError(409, "busy"), True, 1),
        (AgentClientError(500, "broken"), False, 1),
        (AgentUnreachable(Path("/x.sock"), "gone"), False, 2),
        (AgentUnreachable(Path("/x.sock"), "gone"), True, 1),
        (ConfigError("CCCI_KEYCLOAK_URL", "unset"), True, 2),
        (CheckFailed("marker gone"), True, 1),
    ],
    ids=[
        "409-before",
        "409-after",
        "500-before",
        "unreachable-before",
        "unreachable-after",
        "config-after",
        "check-after",
    ],
)
def test_stop_code_makes_an_agent_error_red_once_the_run_started(
    error: CcciError, started: bool, code: int
) -> None:
    """Only the agent's errors change meaning with the lease; everything else keeps its code."""
    assert code == stop_code(error, started=started)


@pytest.mark.parametrize(
    ("given", "red", "code", "verdict", "last_line"),
    [
        (1, False, 0, "pass", "verdict   PASS"),
        (1, True, 1, "fail", "verdict   FAIL"),
        (0, True, 1, "fail", "verdict   FAIL"),
        (2, True, 2, "error", "error: stopped: refused"),
    ],
    ids=["passed", "red", "red-whatever-given", "refused"],
)
def test_finish_settles_the_code_prints_the_end_and_writes_the_result(
    make_run: Callable[..., Run],
    tmp_path: Path,
    given: int,
    red: bool,
    code: int,
    verdict: str,
    last_line: str,
) -> None:
    """The report decides 0 or 1, a 2 stands; the run dir goes; the result has the exit code."""
    run = make_run()
    run.run_dir.mkdir(parents=True)
    if red:
        run.report.stop("refused")

    assert code == finish(run, given, tmp_path / "result.json")

    assert (last_line, False) == (log(run)[-2], run.run_dir.exists())
    assert (verdict, code) == (result_of(tmp_path)["verdict"], result_of(tmp_path)["exit"])
    told = find_result(log(run))  # the log's last line, for the bridge
    assert told is not None
    assert (verdict, "refused" if red else "") == (told.verdict, told.detail)
