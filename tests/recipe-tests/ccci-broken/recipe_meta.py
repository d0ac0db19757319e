"""Test metadata of the ccci-broken test recipe: short timeout, it never becomes ready."""

HEALTH_PATH = "/"
DEPLOY_TIMEOUT = 60
