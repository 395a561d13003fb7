"""Trajectories: the schema, file formats, the shared chat formatter, expert generation."""
