"""Tests of the contract kit itself."""
