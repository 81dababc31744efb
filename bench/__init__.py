"""Benchmarks of the mock gateway against Prism and a bare Starlette endpoint (`make bench`)."""
