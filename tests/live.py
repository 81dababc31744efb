"""A uvicorn server in a background thread on a free loopback port (the contract suite's own helper)."""

from contracts.inprocess import LiveServer

__all__ = ["LiveServer"]
