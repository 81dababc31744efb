"""Tests of the contract suite: it passes against the mock and fails, naming the rule, against broken ones."""
