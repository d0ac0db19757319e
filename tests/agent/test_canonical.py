"""The canonical registry: promote, mark, restore, recover and prune_stale."""

from __future__ import annotations

import docker
import pytest

from ccci_agent.canonical import Canonicals, validate_canonical_domain
from ccci_agent.errors import Conflict, NotFound
from ccci_agent.store import read_json
from ccci_core.atomic import write_json
from ccci_core.docker_engine import STACK_LABEL
from ccci_core.errors import InvalidName, VersionError
from ccci_core.names import canonical_app
from tests.agent.conftest import BASE_DOMAIN, App
from tests.agent.volumes import write_dataset

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.docker
def test_promote_records_the_snapshot(canonicals: Canonicals, app: App) -> None:
    """canonical.json names recipe, domain, stack, version, commit and the snapshot it promoted."""
    write_dataset(app.mountpoint, "a")
    view = canonicals.promote(app.recipe, app.domain, "1.2.0+3.4", COMMIT)
    record = read_json(canonicals.state.canonical(app.recipe))
    expected = {
        "recipe": app.recipe,
        "domain": app.domain,
        "stack": app.stack,
        "version": "1.2.0+3.4",
        "commit": COMMIT,
        "status": "idle",
        "volume": "clean",
        "snapshot_id": view["snapshot"]["id"],
    }
    assert expected == {k: record[k] for k in expected}
    assert [app.volume] == view["snapshot"]["volumes"]


@pytest.mark.docker
def test_mark_dirty_then_restore_is_clean(canonicals: Canonicals, app: App) -> None:
    """A canonical another version touched reads dirty until a restore makes it clean."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, "1.2.0+3.4", COMMIT)

    assert "dirty" == canonicals.mark(app.recipe, volume="dirty", status="idle")["volume"]
    assert "clean" == canonicals.restore(app.recipe)["volume"]


@pytest.mark.docker
def test_live_state_never_rewrites_the_registry(canonicals: Canonicals, app: App) -> None:
    """Marking, deploying and restoring leave canonical.json byte-identical; promote resets."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, "1.2.0+3.4", COMMIT)
    registry = canonicals.state.canonical(app.recipe)
    before = registry.read_bytes()
    canonicals.mark(app.recipe, status="deployed", volume="dirty")
    assert ("deployed", "dirty") == tuple(
        canonicals.view(app.recipe)[k] for k in ("status", "volume")
    )
    canonicals.mark(app.recipe, status="idle")
    canonicals.restore(app.recipe)
    assert before == registry.read_bytes()
    seed = canonicals.seed(app.recipe, "1.2.1+3.4")["seed"]
    canonicals.promote(app.recipe, app.domain, "1.2.1+3.4", COMMIT, seed)
    assert ("idle", "clean") == tuple(canonicals.view(app.recipe)[k] for k in ("status", "volume"))
    assert not canonicals.state.live(app.recipe).exists()


@pytest.mark.docker
def test_pending_restore_reads_dirty_and_cannot_be_marked_clean(
    canonicals: Canonicals, app: App
) -> None:
    """While a restore is pending the volume is dirty; marking it clean is refused."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, "1.2.0+3.4", COMMIT)
    write_json(canonicals.state.restore_pending(app.recipe), {"snapshot": "x"})

    assert "dirty" == canonicals.view(app.recipe)["volume"]
    with pytest.raises(Conflict):
        canonicals.mark(app.recipe, volume="clean")


@pytest.mark.docker
def test_recover_records_a_snapshot_flipped_before_the_registry_write(
    canonicals: Canonicals, app: App
) -> None:
    """A crash between the flip and canonical.json is repaired from the manifest."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, "1.0.0+1.0", COMMIT)
    record = {"recipe": app.recipe, "domain": app.domain, "stack": app.stack}
    record |= {"version": "2.0.0+2.0", "commit": COMMIT}
    manifest = canonicals.warmsnap.snapshot(app.recipe, app.stack, record)

    actions = canonicals.recover()

    view = canonicals.view(app.recipe)
    assert ("2.0.0+2.0", manifest["id"]) == (view["version"], view["snapshot_id"])
    assert [f"{app.recipe}: recorded snapshot {manifest['id']}"] == actions


@pytest.mark.docker
def test_prune_stale_drops_only_unenrolled_canonicals(
    canonicals: Canonicals, app: App, docker_client: docker.DockerClient
) -> None:
    """The unenrolled canonical loses volumes, snapshot and registry; enrolled ones stay."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, "1.0.0+1.0", COMMIT)
    kept = canonicals.state.app("kept-recipe")
    kept.mkdir()
    write_json(kept / "canonical.json", {"recipe": "kept-recipe"})

    result = canonicals.prune_stale(["kept-recipe"])

    assert {"pruned": [app.recipe], "refused": {}} == result
    assert not canonicals.state.app(app.recipe).exists()
    assert kept.is_dir()
    assert [] == docker_client.volumes.list(filters={"label": f"{STACK_LABEL}={app.stack}"})
    assert ["kept-recipe"] == canonicals.state.apps()


@pytest.mark.parametrize(
    ("recipe", "domain", "version", "commit", "error"),
    [
        ("../etc", "warm-x.ci.example.net", "1.0.0+1", COMMIT, InvalidName),
        ("alerts", "warm-alerts.ci.example.net", "1.0.0+1", COMMIT, InvalidName),
        ("x", "warm-y.ci.example.net", "1.0.0+1", COMMIT, InvalidName),
        ("x", "warm-x.evil.example.org", "1.0.0+1", COMMIT, InvalidName),
        ("x", "warm-x.ci.example.net", "latest", COMMIT, VersionError),
        ("x", "warm-x.ci.example.net", "1.0.0+1", "HEAD; rm -rf /", InvalidName),
    ],
)
def test_promote_refuses_bad_input_before_touching_anything(
    canonicals: Canonicals, recipe: str, domain: str, version: str, commit: str, error: type
) -> None:
    """Bad names, domains, versions and commits are refused and create no file."""
    before = sorted(canonicals.state.root.rglob("*"))
    with pytest.raises(error):
        canonicals.promote(recipe, domain, version, commit)
    assert before == sorted(canonicals.state.root.rglob("*"))


def test_canonical_domain_accepts_shortened_labels() -> None:
    """A long recipe's canonical domain is accepted whatever suffix budget shortened it."""
    recipe = "a-very-long-recipe-name-that-will-not-fit-in-the-stack"
    domain = canonical_app(recipe, BASE_DOMAIN, suffix=20).domain
    assert domain == validate_canonical_domain(recipe, domain, BASE_DOMAIN)


def test_unknown_canonical_is_not_found(canonicals: Canonicals) -> None:
    """Asking for a canonical that was never promoted is a 404-kind error."""
    with pytest.raises(NotFound):
        canonicals.view("never-promoted")
    with pytest.raises(NotFound):
        canonicals.restore("never-promoted")
