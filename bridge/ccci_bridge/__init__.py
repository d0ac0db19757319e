"""The bridge: ``!testme`` in PR comments and chat becomes a Drone build.

The package imports nothing, so every install builds the ``cc-ci`` parser without Flask; the
wiring lives in :mod:`ccci_bridge.app` (gunicorn runs ``'ccci_bridge.app:create_app()'``).
"""
