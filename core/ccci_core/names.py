"""Validate names and derive every app name (domain, stack, realm) from a recipe.

Every component calls this module before a name reaches a path, a domain, a stack, a secret or a
realm. The derivations follow abra: an app is named by its domain, its stack name is the domain with
dots replaced by underscores, and abra trims stack names to 45 characters. Swarm refuses object
names over 64 characters, and the longest object an app produces is ``<stack>_<volume>`` or a
secret or config the recipe names ``<stack>_<...>``. So the stack gets ``min(45, 63 - suffix_len)``
characters, where ``suffix_len`` is the longest such ``<...>`` of the recipe
(``ccci_core.deploy.compose.recipe_suffix``), and the recipe
part of the host label is shortened deterministically (head + ``-`` + 4 hex of its sha256) when it
does not fit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError, InvalidName

RECIPE_MAX = 63  # one DNS label
HEX_LEN = 6
INFRA_APPS = ("keycloak", "traefik")  # the live-warm infra apps, a closed set
ABRA_STACK_MAX = 45  # abra's MAX_SANITISED_APP_NAME_LENGTH
SWARM_NAME_MAX = 64  # Swarm's limit for service, volume, secret and network names
MIN_LABEL_ROOM = 13  # room for "x-abcd" plus "-<6hex>": below this the base domain is too long
CANONICAL_PREFIX = "warm-"

# One DNS label (RFC 1123): it starts and ends with a letter or digit, as warm-<recipe> must.
_RECIPE_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_HEX_RE = re.compile(r"[0-9a-f]{6}")
_DOMAIN_RE = re.compile(
    r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+"
)

AppKind = Literal["canonical", "cold", "infra"]  # which of a recipe's apps (not a run's lane)


def validate_recipe(name: object) -> str:
    """Return ``name`` if it is a recipe name, else raise InvalidName."""
    if not isinstance(name, str):
        raise InvalidName("recipe", name, "not a string")
    if not name:
        raise InvalidName("recipe", name, "empty")
    if len(name) > RECIPE_MAX:
        raise InvalidName("recipe", name, f"longer than {RECIPE_MAX} characters")
    # fullmatch on an explicit ASCII class: unicode look-alikes and "\n" tails never pass.
    if not _RECIPE_RE.fullmatch(name):
        raise InvalidName(
            "recipe",
            name,
            "use lowercase a-z, digits and '-', starting and ending with a letter or digit",
        )
    if name == CANONICAL_PREFIX[:-1] or name.startswith(CANONICAL_PREFIX):
        # A cold app of "warm-x" would be named like the canonical of "x-<6hex>".
        raise InvalidName("recipe", name, f"the prefix {CANONICAL_PREFIX!r} is reserved")
    return name


def validate_hex(value: object) -> str:
    """Return ``value`` if it is a run's 6-hex tag, else raise InvalidName."""
    if not isinstance(value, str) or not _HEX_RE.fullmatch(value):
        raise InvalidName("run hex", value, f"expected {HEX_LEN} lowercase hex digits")
    return value


def validate_base_domain(domain: object, variable: str = "CCCI_DOMAIN") -> str:
    """Return the CI base domain if apps can be named under it, else raise ConfigError."""
    if not isinstance(domain, str) or len(domain) > 253 or not _DOMAIN_RE.fullmatch(domain):
        raise ConfigError(variable, f"{domain!r} is not a lowercase DNS name with a dot")
    room = ABRA_STACK_MAX - 1 - len(stack_name(domain))
    if room < MIN_LABEL_ROOM:
        raise ConfigError(
            variable,
            f"{domain!r} is too long: app stacks must fit abra's {ABRA_STACK_MAX} characters",
        )
    return domain


def stack_name(domain: str) -> str:
    """Return the stack name abra derives from an app domain."""
    return domain.replace(".", "_")


@dataclass(frozen=True)
class AppName:
    """The names of one app: its recipe, kind, domain, stack, and for cold runs the run's hex."""

    recipe: str
    kind: AppKind
    domain: str
    stack: str
    run_hex: str | None = None

    @property
    def realm(self) -> str | None:
        """Return the run's Keycloak realm ``<recipe>-<6hex>`` (cold runs only)."""
        return None if self.run_hex is None else realm_name(self.recipe, self.run_hex)


def _stack_budget(suffix: int) -> int:
    budget = min(ABRA_STACK_MAX, SWARM_NAME_MAX - 1 - suffix)
    if budget < 1:
        raise InvalidName("recipe object", suffix, "volume or secret names are too long for Swarm")
    return budget


def _fit(recipe: str, room: int) -> str:
    """Return ``recipe`` or, if longer than ``room``, its head plus 4 hex of its sha256."""
    if len(recipe) <= room:
        return recipe
    if room < 6:
        raise InvalidName("recipe", recipe, "no room left in the app name; shorten its names")
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:4]
    head = recipe[: room - 5].rstrip("-")
    if head == CANONICAL_PREFIX[:-1]:
        head = head[:-1]  # a shortened cold label must never read as a canonical one
    return f"{head}-{digest}"


def _label_room(base_domain: str, suffix: int) -> int:
    return min(RECIPE_MAX, _stack_budget(suffix) - 1 - len(stack_name(base_domain)))


def _app(recipe: str, kind: AppKind, label: str, base_domain: str, run_hex: str | None) -> AppName:
    domain = f"{label}.{base_domain}"
    return AppName(recipe, kind, domain, stack_name(domain), run_hex)


def canonical_app(recipe: str, base_domain: str, *, suffix: int) -> AppName:
    """Return the canonical app ``warm-<recipe>.<base>`` of a recipe."""
    validate_recipe(recipe)
    validate_base_domain(base_domain)
    room = _label_room(base_domain, suffix) - len(CANONICAL_PREFIX)
    return _app(recipe, "canonical", CANONICAL_PREFIX + _fit(recipe, room), base_domain, None)


def validate_infra(name: object) -> str:
    """Return ``name`` if it is one of the live-warm infra apps (it reaches a path)."""
    if name not in INFRA_APPS:
        raise InvalidName("infra app", name, f"expected one of {', '.join(INFRA_APPS)}")
    return str(name)


def infra_app(recipe: str, domain: str) -> AppName:
    """Return a live-warm infra app: ``recipe`` deployed at its own full ``domain``.

    The deployers check the recipe's object names against Docker's limits at each deploy.
    """
    validate_recipe(recipe)
    stack = stack_name(validate_base_domain(domain, "domain"))
    return AppName(recipe, "infra", domain, stack)


def cold_app(recipe: str, base_domain: str, run_hex: str, *, suffix: int) -> AppName:
    """Return a cold run's app ``<recipe-prefix>-<6hex>.<base>``."""
    validate_recipe(recipe)
    validate_hex(run_hex)
    validate_base_domain(base_domain)
    room = _label_room(base_domain, suffix) - 1 - HEX_LEN
    return _app(recipe, "cold", f"{_fit(recipe, room)}-{run_hex}", base_domain, run_hex)


def realm_name(recipe: str, run_hex: str) -> str:
    """Return the per-run Keycloak realm ``<recipe>-<6hex>``."""
    return f"{validate_recipe(recipe)}-{validate_hex(run_hex)}"


_COLD_STACK_RE = re.compile(r"[a-z0-9][a-z0-9-]*-(?P<hex>[0-9a-f]{6})_")


def run_hex_of(stack: str) -> str | None:
    """Return the run hex of a cold run's stack, or None if ``stack`` is not one."""
    if stack.startswith(CANONICAL_PREFIX):
        return None
    match = _COLD_STACK_RE.match(stack)
    return match["hex"] if match else None


def new_run_hex(
    live_stacks: Iterable[str],
    token: Callable[[int], str] = secrets.token_hex,
    attempts: int = 32,
) -> str:
    """Return a random run hex that no live stack uses."""
    taken = {run_hex_of(stack) for stack in live_stacks}
    for _ in range(attempts):
        candidate = token(HEX_LEN // 2)
        if candidate not in taken:
            return validate_hex(candidate)
    raise InvalidName("run hex", None, f"no free hex after {attempts} attempts")
