"""Turn a trusted ``!testme`` into a Drone build and tell the commenter; refuse everything else.

The forge flow runs off the request path (a worker thread): react eyes, then help, refusal or
build, then rocket or confused and a reply. The chat flow runs in the request and returns the text
the chat posts. Neither lets an error escape: the commenter is told, the log has the detail.

A started build is recorded (:mod:`ccci_bridge.records`) before anyone is told, with where its
verdict goes (:mod:`ccci_bridge.verdicts`), and its commit status is set ``pending``; its reply
carries the build's hidden mark, so the verdict finds the reply even if its id was never learnt.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from ccci_core.build_params import BuildParams
from ccci_core.errors import InvalidName
from ccci_core.names import validate_recipe

from .commands import CHAT_HELP, COMMENT_HELP, Command
from .dedupe import Store
from .drone import Build, Drone
from .errors import BridgeError, NoPipeline
from .events import ChatEvent, CommentEvent
from .forge import Forge, Pull, Reaction
from .records import BuildRecord, Records
from .verdicts import marker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """The outcome of a request: what happened and the text for the human."""

    outcome: str  # started | help | refused | cooldown | failed
    text: str
    build: Build | None = None
    recipe: str = ""
    lane: str = ""
    pull: Pull | None = None


def build_params(recipe: str, command: Command, pull: Pull | None) -> dict[str, str]:
    """Return the Drone parameters of a run: RECIPE, REF, CCCI_PR, CCCI_QUICK and friends."""
    if pull is None:
        return BuildParams(recipe, quick=command.quick).to_env()
    return BuildParams(
        recipe, ref=pull.ref, pr=pull.number, sha=pull.head_sha, quick=command.quick
    ).to_env()


class Trigger:
    """The bridge's domain logic, given its adapters."""

    def __init__(
        self,
        *,
        drone: Drone,
        forges: Mapping[str, Forge],
        store: Store,
        records: Records,
        cooldown_s: float,
        trusted: frozenset[str],
        chat_users: frozenset[str],
        recipe_owner: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.drone = drone
        self.forges = forges
        self.store = store
        self.records = records
        self.clock = clock
        self.cooldown_s = cooldown_s
        self.trusted = trusted
        self.chat_users = chat_users
        self.recipe_owner = recipe_owner

    # -- forge comments -------------------------------------------------------------------

    def comment(self, event: CommentEvent) -> Answer:
        """Act on a PR comment and answer on the forge; never raise."""
        forge = self.forges[event.forge]
        self._react(forge, event, "eyes")
        try:
            answer = self._comment(forge, event)
        except BridgeError as exc:
            log.warning("request %s failed: %s", event.dedupe_keys[0], exc)
            answer = Answer("failed", f"Sorry, the run could not be started: {exc.message}.")
        except Exception:  # a worker thread: report to the commenter, never die silently
            log.exception("request %s failed", event.dedupe_keys[0])
            answer = Answer("failed", "Sorry, the run could not be started: an internal error.")
        user = f"{event.forge}:{event.user}"
        where = {"repo": event.repo, "pr": event.number, "comment_id": event.comment_id}
        recorded = self._record(answer, user, forge, **where)
        started = answer.outcome == "started"
        reaction_id = self._react(forge, event, "rocket" if started else "confused")
        text = f"@{event.user} {answer.text}"
        if answer.build is not None:
            text += "\n\n" + marker(answer.build.number)
        try:
            reply_id = forge.reply(event.repo, event.number, text)
        except BridgeError as exc:
            log.warning("cannot reply to %s#%s: %s", event.repo, event.number, exc)
            reply_id = None
        if recorded and answer.build is not None:
            self._announce(answer.build.number, reply_id, reaction_id)
        log.info(
            "%s %s#%s by %s: %s",
            event.forge,
            event.repo,
            event.number,
            event.user,
            answer.outcome,
        )
        return answer

    def _comment(self, forge: Forge, event: CommentEvent) -> Answer:
        command = event.command
        if command.help:
            return _help(COMMENT_HELP, command)
        try:
            recipe = validate_recipe(event.name)
        except InvalidName as exc:
            return Answer("refused", f"`{event.name}` is not a recipe name ({exc.reason}).")
        user = f"{event.forge}:{event.user}"
        if waiting := self._cooling_down(user):
            return waiting
        if not self._trusted(forge, event):
            # The cooldown stays: it also spares the forge's permission API from a flood.
            return Answer(
                "refused",
                "Thanks! Runs can be started by people with write access to this recipe "
                "(or on the bridge's allowlist); please ask a maintainer to comment `!testme`.",
            )
        return self._start(user, recipe, command, partial(forge.pull, event.repo, event.number))

    def _trusted(self, forge: Forge, event: CommentEvent) -> bool:
        if event.user in self.trusted or f"{event.forge}:{event.user}" in self.trusted:
            return True
        return forge.can_write(event.repo, event.user)

    def _react(self, forge: Forge, event: CommentEvent, reaction: Reaction) -> str | None:
        try:
            return forge.react(event.repo, event.comment_id, reaction)
        except BridgeError:
            log.warning("cannot react %s on %s comment %s", reaction, event.repo, event.comment_id)
            return None

    def _record(self, answer: Answer, user: str, forge: Forge | None, **where: Any) -> bool:
        """Record a started build and set its pending status; return whether it was recorded.

        Only a build the store holds gets a verdict back, so a store that fails is said in the
        log; the build runs anyway (Drone has it) and its page is the only place of its verdict.
        """
        build, pull = answer.build, answer.pull
        if build is None:
            return False
        record = BuildRecord(
            number=build.number,
            created=self.clock(),
            recipe=answer.recipe,
            lane=answer.lane,
            user=user,
            link=build.link,
            forge=forge.name if forge is not None and pull is not None else None,
            sha=pull.head_sha if pull is not None else None,
            **where,
        )
        try:
            self.records.add(record)
        except BridgeError as exc:
            log.error("build %s is not recorded, its verdict will not come back: %s", build, exc)
            return False
        if forge is not None and record.repo is not None and record.sha is not None:
            try:
                forge.set_status(
                    record.repo,
                    record.sha,
                    "pending",
                    context=record.context,
                    url=record.link,
                    description=f"{record.lane} lane: started",
                )
            except BridgeError as exc:
                log.warning("cannot set the pending status of build %s: %s", build.number, exc)
        return True

    def _announce(
        self, number: int, reply_id: int | None = None, reaction_id: str | None = None
    ) -> None:
        try:
            self.records.announce(number, reply_id, reaction_id)
        except BridgeError as exc:  # the verdict then waits out the grace, and may post anew
            log.warning("cannot note that build %s was announced: %s", number, exc)

    # -- chat -----------------------------------------------------------------------------

    def chat(self, event: ChatEvent) -> Answer:
        """Act on a chat command and return the text to post; never raise."""
        command = event.command
        if event.user not in self.chat_users:
            return Answer("refused", f"Sorry {event.user}, you are not on the chat allowlist.")
        if command.help or command.recipe is None:
            return _help(CHAT_HELP, command)
        recipe, number = command.recipe, command.pr
        fetch: Callable[[], Pull] | None = None
        forge: Forge | None = None
        repo = f"{self.recipe_owner}/{recipe}"
        if number is not None:
            forge = next(iter(self.forges.values()), None)
            if forge is None:
                return Answer("failed", "No forge is configured to look up pull requests.")
            fetch = partial(forge.pull, repo, number)
        user = f"chat:{event.user}"
        if waiting := self._cooling_down(user):
            return waiting
        try:
            answer = self._start(user, recipe, command, fetch)
        except BridgeError as exc:
            log.warning("chat request by %s failed: %s", event.user, exc)
            return Answer("failed", f"Sorry, the run could not be started: {exc.message}.")
        where: dict[str, object] = {"room": event.room, "event_id": event.event_id}
        if forge is not None:
            where |= {"repo": repo, "pr": number}
        if self._record(answer, user, forge, **where) and answer.build is not None:
            self._announce(answer.build.number)  # the chat posts the answer: nothing to wait for
        return answer

    # -- shared ---------------------------------------------------------------------------

    def _cooling_down(self, user: str) -> Answer | None:
        """Start ``user``'s cooldown, or return the answer saying when to retry."""
        wait = self.store.take_cooldown(user, self.cooldown_s)
        if wait > 0:
            return Answer("cooldown", f"Please wait: try again in {math.ceil(wait)} s.")
        return None

    def _start(
        self, user: str, recipe: str, command: Command, fetch: Callable[[], Pull] | None
    ) -> Answer:
        """Start a build, fetching the PR first if there is one; end the cooldown on failure."""
        try:
            pull = fetch() if fetch is not None else None
            if pull is not None and pull.state != "open":
                self.store.release_cooldown(user)
                return Answer("refused", f"Pull request #{pull.number} is {pull.state}, not open.")
            build = self.drone.create_build(build_params(recipe, command, pull))
        except NoPipeline as exc:
            self.store.release_cooldown(user)
            return Answer("failed", f"Drone started no build: {exc.message}.")
        except BridgeError:
            self.store.release_cooldown(user)
            raise
        what = f"`{recipe}`" + (f" at {pull.head_sha[:10]}" if pull is not None else "")
        text = f"Started the {command.lane} for {what}: {build.link}"
        return Answer("started", text, build, recipe=recipe, lane=command.run_lane, pull=pull)


def _help(text: str, command: Command) -> Answer:
    problem = f"{command.problem[:1].upper()}{command.problem[1:]}. " if command.problem else ""
    return Answer("help", problem + text)
