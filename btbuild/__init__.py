"""btbuild: a build system for data."""
