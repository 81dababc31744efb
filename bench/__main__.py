"""`python -m bench` (`make bench`): the mock against Prism and bare Starlette, one table, bench/results.md."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench.chat import chat_cells
from bench.environment import describe, ensure_prism
from bench.load import ensure_wrk
from bench.report import RESULTS, render, write
from bench.run import contract_run, load_cells, memory_soak, store_cells, store_memory_soak


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each measured cell (default 6)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up per server before the cells (default 3)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the side-by-side cells; a cell is its median round (default 3)"
    )
    parser.add_argument(
        "--store-rounds",
        type=int,
        default=3,
        help="rounds of the --store cells and the in-memory worker beside them; a cell is its median round (default 3)",
    )
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[1, 32, 128], help="connection counts (default 1 32 128)"
    )
    parser.add_argument("--soak-requests", type=int, default=1_000_000, help="requests of each memory soak")
    parser.add_argument("--soak-keys", type=int, default=10_000, help="keys of each memory soak")
    parser.add_argument("--skip-soak", action="store_true", help="leave out the memory soaks (in memory and --store)")
    parser.add_argument(
        "--skip-store", action="store_true", help="leave out everything with --store (1 and 2 workers, its soak)"
    )
    parser.add_argument("--skip-chat", action="store_true", help="leave out the chat completions rows")
    parser.add_argument("--skip-contract", action="store_true", help="leave out the contract suite's run")
    parser.add_argument("--no-write", action="store_true", help=f"print the table only, do not rewrite {RESULTS.name}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    wrk = ensure_wrk()
    ensure_prism()
    environment = describe(wrk)
    results = load_cells(wrk, args.connections, args.seconds, args.warmup, args.rounds)
    if not args.skip_store:
        print("bench: the mock with --store, 1 and 2 workers, beside one in-memory worker, on two mixes", flush=True)
        store = store_cells(wrk, args.seconds, args.warmup, args.store_rounds)
        results.cells.update(store.cells)
        results.rounds.update(store.rounds)
    chat = None
    if not args.skip_chat:
        print("bench: chat completions, whole and streamed", flush=True)
        chat = chat_cells(wrk, args.seconds, args.warmup)
    if not args.skip_soak:
        keys, requests, warm = args.soak_keys, args.soak_requests, min(100_000, args.soak_requests // 2)
        print(f"bench: memory soak, {requests:,} requests over {keys:,} keys", flush=True)
        results.memory = memory_soak(wrk, keys=keys, requests=requests, warm=warm)
        if not args.skip_store:
            print("bench: memory soak with --store (1 worker), the same size", flush=True)
            results.store_memory = store_memory_soak(wrk, keys=keys, requests=requests, warm=warm)
    if not args.skip_contract:
        print("bench: the contract suite's default run", flush=True)
        results.contract = contract_run()
    block = render(
        results,
        environment,
        args.connections,
        args.seconds,
        chat,
        rounds=args.rounds,
        store_rounds_count=args.store_rounds,
    )
    print()
    print(block)
    if not args.no_write:
        write(block)
        print(f"bench: written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
