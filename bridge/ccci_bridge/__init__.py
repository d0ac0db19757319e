"""The bridge: PR and chat comments become Drone builds."""
