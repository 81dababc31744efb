"""Tests of the spec reader and of the contract document."""
