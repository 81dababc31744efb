"""`python -m contracts`: placeholder until the conformance suite is built (issue 4)."""

import sys


def main() -> int:
    print("The conformance suite is not built yet (issue 4). Nothing was run.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
