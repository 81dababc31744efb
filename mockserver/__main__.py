"""`python -m mockserver`: placeholder until the mock gateway is built (issue 3)."""

import sys


def main() -> int:
    print("The mock gateway is not built yet (issue 3). Nothing was started.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
