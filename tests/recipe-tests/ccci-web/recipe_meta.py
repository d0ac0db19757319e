"""Test metadata of the ccci-web test recipe (a CCCI_TESTS_DIR entry)."""

WARM_CANONICAL = True
HEALTH_PATH = "/version"
HEALTH_SERVICE = "app"
HEALTH_PORT = 80
DEPLOY_TIMEOUT = 120
MARKER_PATH = "/data/ccci-marker"
