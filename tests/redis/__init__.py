"""Shared state in Redis: the store, the clock, several workers, restarts."""
