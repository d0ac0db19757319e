"""The host agent: the privileged daemon that owns the warm state directory."""
