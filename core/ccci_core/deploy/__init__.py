"""Deploy apps and know when they are up: the port, two adapters, convergence and health.

Only :mod:`.protocol`, :mod:`.errors` and :mod:`.compose` are importable without the Docker SDK;
``stack``, ``swarm``, ``abra`` and ``health`` are imported by the plugin and the agent, which have
``docker`` in their extras.
"""

from .errors import DeployError, ForeignObject, NotReady, RecipeError, RecipeMetaError
from .protocol import Deployed, Deployer

__all__ = [
    "DeployError",
    "Deployed",
    "Deployer",
    "ForeignObject",
    "NotReady",
    "RecipeError",
    "RecipeMetaError",
]
