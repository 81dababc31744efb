"""`python -m contracts` / `morpheus-contract`: run the contract suite (pytest) against a target.

    python -m contracts                                   # against the in-process mock
    python -m contracts --base-url https://staging.example --api-key sk-... --api-key sk-...
    python -m contracts --base-url ... --api-key ... --junitxml reports/contract.xml

Every option of `pytest contracts` is accepted (see `--help`), and so are pytest's own.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return int(pytest.main([str(SUITE), "-p", "no:cacheprovider", *args]))


if __name__ == "__main__":
    sys.exit(main())
