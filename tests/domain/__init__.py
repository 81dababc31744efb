"""Tests of the mock's domain layer."""
