"""cc-ci's shared core: settings, names, versions and the release-note gate, the recipe catalog.

Everything here is used by at least two deployables (plugin, host agent, bridge). Nothing is built
at import time; entry points build settings and adapters and pass them down.
"""

__version__ = "0.1.0"
