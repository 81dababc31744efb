"""Conformance tests of the session API against any URL."""
