"""The Drone plugin: performs cold and quick runs of a recipe."""
