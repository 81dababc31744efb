"""Conformance tests of the session API against any URL.

PYTEST_DONT_REWRITE: `morpheus-contract` imports this package before pytest starts, too early for
pytest to rewrite its asserts (the shipped modules use none; the test modules are rewritten as any
test module is), and this marker keeps pytest from warning about it on every run.
"""
