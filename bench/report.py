"""The one table of a run, its verdicts on the targets, and bench/results.md."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.chat import Chat
from bench.load import Run
from bench.run import IN_MEMORY, KEYS_SUFFIX, MANY_KEYS, NOT_BUILT, Contract, Memory, Results

RESULTS = Path(__file__).with_name("results.md")
START = "<!-- bench:start: written by `make bench`; the rest of this file is kept as it is -->"
END = "<!-- bench:end -->"
LABELS = {
    "mock": "mock (`python -m mockserver`)",
    "prism": "Prism 5 (`-v silent`)",
    "bare": "bare Starlette (answers 200)",
    "bare-json": "bare Starlette, same JSON work",
    IN_MEMORY: "mock in memory, 1 worker, in turn with the `--store` rows",
    "store-1": "mock `--store redis://`, 1 worker",
    "store-2": "mock `--store redis://`, 2 workers",
    IN_MEMORY + KEYS_SUFFIX: f"mock in memory, 1 worker, {MANY_KEYS} keys in turn",
    "store-1" + KEYS_SUFFIX: f"mock `--store redis://`, 1 worker, {MANY_KEYS} keys in turn",
    "store-2" + KEYS_SUFFIX: f"mock `--store redis://`, 2 workers, {MANY_KEYS} keys in turn",
}

# The targets, at 32 connections with one mock worker on 2 cores.
TARGET_CONNECTIONS = 32
TARGET_VS_PRISM = 3.0
TARGET_VS_BARE_JSON = 0.6
TARGET_P99_MS = 10.0
FLAT_GROWTH = 0.05  # RSS may grow by at most 5% between the first pass over the keys and the end

# Issue 24's targets for `--store`, at 32 connections on both mixes, against the in-memory worker measured in turn.
STORE_ONE_VS_MEMORY = 0.5  # at least
STORE_TWO_VS_MEMORY = 0.9  # at least
STORE_TWO_VS_ONE = 1.5  # more than
STORE_P99_MS = 20.0


LEGEND = [
    "The mix (bench/mix.lua), cycled by every connection: modelsession on key A and one model (R1 reuse),",
    "modelsession on key B alternating two models (R2 switch), pingsession (A), modelsession then closesession",
    "on key C, pingsession without a key (intended 401) and a modelsession with a bad body (intended 422).",
    "Prism answers from the spec's examples, without state; it is counted right when it gives the intended",
    "status. errors = socket errors and timeouts + answers with a status the mix did not intend (wrk cannot",
    "pair answers with requests, so statuses are matched as counts); the bare endpoints answer 200 to",
    'everything by design, so only their socket errors and non-200s count. "Same JSON work": the bare',
    "endpoint reads and parses the body and answers a JSON object (bench/bare.py --json-work). The --store",
    "rows run against a throwaway local redis-server (one database per mock) after the other cells, in turn",
    "with a fresh in-memory mock, on the mix and on the many-keys mix (the same 8-request cycle over",
    f"{MANY_KEYS} generated keys in turn: mix.lua's `keys` mode). CPU is cores used on average",
    "during the cell by the server (all its processes) and by wrk itself (the load generator's own cost), and",
    "in the --store rows a third figure, by the redis-server (the store's own cost beside the workers'). The",
    "contract suite's generated cases are its Schemathesis cases plus its state-machine steps; it also says",
    "how many requests it sent. The chat rows (bench/chat.py) are a fresh mock answering",
    "`POST /api/v1/chat/completions` on one key (hello, stream false or true): req/s of whole answers, chunk",
    "frames per second of streams (one at a time and 32 at once), and the first frame's latency measured",
    "from the request's last byte, one stream at a time.",
]


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def _answers(run: Run) -> str:
    return ", ".join(f"{status}: {count:,}" for status, count in sorted(run.statuses.items()))


def _row(label: str, run: Run, ratios: Sequence[str] = ("", "", ""), answers: str | None = None) -> str:
    cells = [
        label,
        str(run.connections),
        f"{run.rps:,.0f}",
        f"{run.p50_ms:.2f}",
        f"{run.p99_ms:.2f}",
        f"{run.errors:,}",
        _answers(run) if answers is None else answers,
        *ratios,
        f"{run.server_cpu:.2f} / {run.wrk_cpu:.2f}" + ("" if run.store_cpu is None else f" / {run.store_cpu:.2f}"),
    ]
    return "| " + " | ".join(cells) + " |"


def _ratio(results: Results, server: str, connections: int, mock_name: str = "mock") -> float | None:
    mock, other = results.cells.get((mock_name, connections)), results.cells.get((server, connections))
    return None if mock is None or other is None else mock.rps / other.rps


def _ratios(results: Results, name: str, connections: int) -> list[str]:
    """mock/Prism, mock/bare, mock/bare JSON work for a mock row; empty cells for the others."""
    if name not in ("mock", "store-1", "store-2"):
        return ["", "", ""]
    found = [_ratio(results, other, connections, name) for other in ("prism", "bare", "bare-json")]
    return ["" if found[0] is None else f"{found[0]:.2f}x", *("" if r is None else f"{r:.2f}x" for r in found[1:])]


def chat_rows(chat: Chat) -> list[str]:
    """The chat row (issue 12): whole answers, streams (chunk frames/s) and the first chunk's latency."""
    rows = []
    for name, run in chat.cells.items():
        kind, _, _ = name.partition("-")
        if kind == "plain":
            rows.append(_row("mock chat completions, whole answers", run))
        else:
            label = "mock chat completions, streamed" + (" (one stream)" if run.connections == 1 else "")
            answers = f"{_answers(run)}; {run.frames:,} chunks, **{run.frames_per_second:,.0f} chunks/s**"
            rows.append(_row(label, run, answers=answers))
    if chat.first is not None:
        first = chat.first
        text = (
            f"first chunk p50 {first.p50_ms:.2f} ms, p99 {first.p99_ms:.2f} ms; whole stream {first.whole_ms:.2f} ms "
            f"(median; {first.streams} streams in turn on one connection)"
        )
        rows.append(f"| mock chat completions, first-chunk latency | 1 | | | | | {text} | | | | |")
    return rows


def table(results: Results, connections: Sequence[int], chat: Chat | None = None) -> list[str]:
    lines = [
        "| server | conns | req/s | p50 ms | p99 ms | errors | answers (status: count) | mock/Prism | mock/bare "
        "| mock/bare JSON work | CPU cores server / wrk (/ redis) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for count in connections:
        for name, label in LABELS.items():
            run = results.cells.get((name, count))
            if run is None:
                continue
            lines.append(_row(label, run, _ratios(results, name, count)))
    if chat is not None:
        lines.extend(chat_rows(chat))
    lines.extend(_memory_row(memory) for memory in (results.memory, results.store_memory) if memory is not None)
    lines.append(_contract_row(results.contract))
    return lines


def _memory_row(memory: Memory) -> str:
    rss = (
        f"RSS {_mib(memory.rss_start_kib)} at start, {_mib(memory.rss_warm_kib)} after {memory.warm_requests:,}, "
        f"{_mib(memory.rss_end_kib)} after {memory.requests:,} ({_answers(memory.run)})"
    )
    if memory.store_rss_kib is None:
        return _row(f"mock memory soak: {memory.keys:,} keys, `--accept-any-key`", memory.run, answers=rss)
    label = f"mock memory soak: {memory.keys:,} keys, `--accept-any-key --store redis://`, 1 worker"
    store = ", ".join(_mib(kib) for kib in memory.store_rss_kib)
    return _row(label, memory.run, answers=f"the worker's {rss}; the redis-server's RSS {store}")


def _contract_row(contract: Contract | None) -> str:
    label = "contract suite default run (`python -m contracts`)"
    if contract is None:
        text = "not run (--skip-contract)"
    elif contract.status == NOT_BUILT:
        text = NOT_BUILT
    else:
        parts = [f"{contract.status}: wall time {contract.seconds:.1f} s"]
        if contract.own_seconds is not None:
            parts.append(f"{contract.own_seconds:.1f} s by its own clock")
        if contract.tests is not None:
            parts.append(f"{contract.tests:,} tests")
        if contract.cases is not None:
            parts.append(f"{contract.cases:,} generated cases, {contract.cases / contract.seconds:,.0f} cases/s")
        if contract.requests is not None:
            rate = contract.requests / contract.seconds
            parts.append(f"{contract.requests:,} requests sent (its own count), {rate:,.0f} requests/s")
        text = ", ".join(parts)
    return f"| {label} | | | | | | {text} | | | | |"


def verdicts(results: Results) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each of the issue's targets; None when it was not measured."""
    mock = results.cells.get(("mock", TARGET_CONNECTIONS))
    prism = _ratio(results, "prism", TARGET_CONNECTIONS)
    bare = _ratio(results, "bare-json", TARGET_CONNECTIONS)
    out: list[tuple[str, str, bool | None]] = [
        (
            f"throughput >= {TARGET_VS_PRISM:g}x Prism's",
            "-" if prism is None else f"{prism:.2f}x",
            _at_least(prism, TARGET_VS_PRISM),
        ),
        (
            f"throughput >= {TARGET_VS_BARE_JSON:g}x bare Starlette doing the same JSON work",
            "-" if bare is None else f"{bare:.2f}x",
            _at_least(bare, TARGET_VS_BARE_JSON),
        ),
        (
            f"p99 < {TARGET_P99_MS:g} ms",
            "-" if mock is None else f"{mock.p99_ms:.2f} ms",
            None if mock is None else mock.p99_ms < TARGET_P99_MS,
        ),
        ("zero errors", "-" if mock is None else f"{mock.errors}", None if mock is None else mock.errors == 0),
    ]
    out.append(_flat("memory flat", results.memory))
    return out


def _flat(target: str, memory: Memory | None) -> tuple[str, str, bool | None]:
    """The soak's verdict: RSS grew by at most FLAT_GROWTH after every key was seen, and no errors."""
    if memory is None:
        return (f"{target} over 1M requests, 10,000 keys", "-", None)
    growth = memory.rss_end_kib - memory.rss_warm_kib
    flat = growth <= FLAT_GROWTH * memory.rss_warm_kib and memory.run.errors == 0
    measured = f"{growth / 1024:+.1f} MiB from {memory.warm_requests:,} to {memory.requests:,} requests"
    if memory.run.errors:
        measured += f", {memory.run.errors:,} errors"
    if memory.store_rss_kib is not None:
        start, warm, end = (_mib(kib) for kib in memory.store_rss_kib)
        measured += f" (the redis-server, for information: {start}, {warm}, {end})"
    return (f"{target} (<= {FLAT_GROWTH:.0%} growth after every key was seen), no errors", measured, flat)


def store_verdicts(results: Results) -> list[tuple[str, str, bool | None]]:
    """Issue 24's targets for `--store`, on each mix, from the cells measured in turn in the same rounds."""
    out: list[tuple[str, str, bool | None]] = []
    for suffix, mix in (("", "the mix"), (KEYS_SUFFIX, f"{MANY_KEYS} keys in turn")):
        memory, one, two = (results.cells.get((name + suffix, TARGET_CONNECTIONS)) for name in _STORE_ROWS)
        out += [
            (
                f"`--store` 1 worker >= {STORE_ONE_VS_MEMORY:g}x one in-memory worker, {mix}",
                *_times(one, memory, lambda ratio: ratio >= STORE_ONE_VS_MEMORY),
            ),
            (
                f"`--store` 2 workers >= {STORE_TWO_VS_MEMORY:g}x one in-memory worker, {mix}",
                *_times(two, memory, lambda ratio: ratio >= STORE_TWO_VS_MEMORY),
            ),
            (
                f"`--store` 2 workers > {STORE_TWO_VS_ONE:g}x 1 `--store` worker, {mix}",
                *_times(two, one, lambda ratio: ratio > STORE_TWO_VS_ONE),
            ),
        ]
        p99 = _each_store(one, two, lambda run: f"{run.p99_ms:.2f} ms", lambda run: run.p99_ms < STORE_P99_MS)
        out.append((f"`--store` p99 < {STORE_P99_MS:g} ms, {mix}", *p99))
        errors = _each_store(one, two, lambda run: f"{run.errors:,}", lambda run: run.errors == 0)
        out.append((f"`--store` zero errors, {mix}", *errors))
    out.append(_flat("`--store` memory flat, the worker's RSS", results.store_memory))
    return out


_STORE_ROWS = (IN_MEMORY, "store-1", "store-2")


def _each_store(
    one: Run | None, two: Run | None, show: Callable[[Run], str], meets: Callable[[Run], bool]
) -> tuple[str, bool | None]:
    """A figure of the 1- and 2-worker `--store` cells, and whether both meet its target."""
    if one is None or two is None:
        return ("-", None)
    return (f"1 worker {show(one)}, 2 workers {show(two)}", meets(one) and meets(two))


def _times(run: Run | None, base: Run | None, meets: Callable[[float], bool]) -> tuple[str, bool | None]:
    """`run`'s throughput over `base`'s, and whether that ratio `meets` its target."""
    if run is None or base is None or not base.rps:
        return ("-", None)
    ratio = run.rps / base.rps
    return (f"{run.rps:,.0f} vs {base.rps:,.0f} req/s = {ratio:.2f}x", meets(ratio))


def p99_arithmetic(results: Results) -> list[str]:
    """Why the p99 is what it is, from the mock's 32-connection cell: Little's law and its CPU per request.

    wrk is closed-loop (each connection sends its next request when the answer came), so the mean
    latency is connections / throughput; a p99 under the target needs at least that mean under it.
    """
    run = results.cells.get(("mock", TARGET_CONNECTIONS))
    if run is None or not run.rps:
        return []
    needed = TARGET_CONNECTIONS * 1000 / TARGET_P99_MS
    mean = TARGET_CONNECTIONS * 1000 / run.rps
    lines = [
        f"  - Little's law (wrk is closed-loop): mean latency = connections / throughput = {TARGET_CONNECTIONS} / "
        f"{run.rps:,.0f} req/s = {mean:.2f} ms (p50 {run.p50_ms:.2f} ms). A p99 under {TARGET_P99_MS:g} ms needs a "
        f"mean under {TARGET_P99_MS:g} ms, so more than {needed:,.0f} req/s at {TARGET_CONNECTIONS} connections: "
        f"this run served {run.rps / needed:.0%} of that.",
    ]
    if run.server_cpu > 0:
        cpu_us = run.server_cpu / run.rps * 1e6
        one_core = 1e6 / cpu_us
        budget = 1e6 / needed
        if cpu_us >= budget:
            verdict = f"above the {budget:.0f} us a request may cost at {needed:,.0f} req/s on this machine's cores"
        elif run.rps >= needed:
            verdict = f"within the {budget:.0f} us a request may cost at {needed:,.0f} req/s, and the mean is under "
            verdict += "the target"
            if run.p50_ms:
                tail = f"p99 {run.p99_ms / run.p50_ms:.1f}x the p50"
                met = run.p99_ms < TARGET_P99_MS
                verdict += f", the p99 too ({tail})" if met else f": what is over it is the tail ({tail})"
        else:
            verdict = (
                f"within the {budget:.0f} us a request may cost at {needed:,.0f} req/s: the gap is the CPU the "
                f"server did not get ({run.server_cpu:.2f} of a core), not the mock's work"
            )
        bare = results.cells.get(("bare-json", TARGET_CONNECTIONS))
        if bare is not None and bare.server_cpu > 0 and bare.rps:
            bare_us = bare.server_cpu / bare.rps * 1e6
            verdict += f" (the bare JSON-work endpoint cost {bare_us:.0f} us per request in the same minutes)"
        lines.append(
            f"  - The server used {run.server_cpu:.2f} cores: {cpu_us:.0f} us of CPU per request, so one whole "
            f"core would serve about {one_core:,.0f} req/s (mean {TARGET_CONNECTIONS * 1000 / one_core:.1f} ms); "
            f"{verdict}."
        )
    return lines


def store_targets(results: Results) -> list[str]:
    """Issue 24's section under the table: each `--store` target and its verdict, or that none was measured."""
    measured = results.store_memory is not None or any(name in _STORE_ROWS for name, _ in results.cells)
    lines = ["", f"Targets with `--store` (2 cores, {TARGET_CONNECTIONS} connections, the same run):", ""]
    if not measured:
        return [*lines, "- not measured (--skip-store, or no redis-server)"]
    return lines + [_verdict_line(*verdict) for verdict in store_verdicts(results)]


def _verdict_line(target: str, measured: str, met: bool | None) -> str:
    verdict = "not measured" if met is None else ("met" if met else "**MISSED**")
    return f"- {target}: {measured}: {verdict}"


def _at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def render(
    results: Results,
    environment: Mapping[str, str],
    connections: Sequence[int],
    seconds: float,
    chat: Chat | None = None,
    *,
    rounds: int = 1,
    store_rounds_count: int = 1,
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run of {when}: each cell of the four servers is the median (by req/s) of {rounds} rounds of a",
        f"{seconds:g} s wrk run (1 thread, the mix of bench/mix.lua) after a warm-up; the four servers run side by",
        "side and are measured in turn within each round, so ratios come from the same minutes. The `--store`",
        f"rows and the in-memory worker beside them: the median of {store_rounds_count} rounds"
        + (" (the slower middle one of an even count)," if store_rounds_count % 2 == 0 else ","),
        "measured in turn the same way after those; the other cells are one run each.",
        "",
        f"- cores: {environment['cores']}; {environment['os']}",
        f"- {environment['python']}; {environment['stack']}",
        f"- {environment['prism']}; {environment['wrk']}",
        f"- commit {environment['commit']}",
        "",
        *table(results, connections, chat),
        "",
        *LEGEND,
        "",
        f"Targets (2 cores, one mock worker, {TARGET_CONNECTIONS} connections):",
        "",
    ]
    for target, measured, met in verdicts(results):
        lines.append(_verdict_line(target, measured, met))
        if target.startswith("p99"):
            lines.extend(p99_arithmetic(results))
    lines.extend(round_by_round(results))
    lines.extend(store_targets(results))
    lines.extend(store_rounds(results))
    return "\n".join(lines) + "\n"


def round_by_round(results: Results) -> list[str]:
    """The rounds behind the median cells at the target's connections: each server's req/s, and the ratios
    each round gave on its own (the spread says how far one round could be trusted)."""
    mine = {name: results.rounds.get((name, TARGET_CONNECTIONS), []) for name in ("mock", "prism", "bare-json")}
    if len(mine["mock"]) < 2:
        return []
    lines = [f"- rounds at {TARGET_CONNECTIONS} connections (req/s, in order; each cell above is its median round):"]
    for name, label in (("mock", "mock"), ("prism", "Prism"), ("bare-json", "bare JSON work")):
        lines.append(f"  - {label}: {', '.join(f'{rps:,.0f}' for rps in mine[name])}")
    for name, label in (("prism", "mock/Prism"), ("bare-json", "mock/bare JSON work")):
        pairs = [f"{mock / other:.2f}x" for mock, other in zip(mine["mock"], mine[name], strict=True) if other]
        if pairs:
            lines.append(f"  - {label}, round by round: {', '.join(pairs)}")
    return lines


def store_rounds(results: Results) -> list[str]:
    """The rounds behind the `--store` cells and the in-memory one beside them, and the store/in-memory ratios
    each round gave on its own."""
    lines: list[str] = []
    for suffix, mix in (("", "the mix"), (KEYS_SUFFIX, f"{MANY_KEYS} keys in turn")):
        mine = {name: results.rounds.get((name + suffix, TARGET_CONNECTIONS), []) for name in _STORE_ROWS}
        if len(mine[IN_MEMORY]) < 2:
            continue
        text = "; ".join(f"{name} {', '.join(f'{rps:,.0f}' for rps in rounds)}" for name, rounds in mine.items())
        lines.append(f"- `--store` rounds, {mix} (req/s, in order): {text}")
        for name in _STORE_ROWS[1:]:
            pairs = [
                f"{store / memory:.2f}x" for store, memory in zip(mine[name], mine[IN_MEMORY], strict=True) if memory
            ]
            lines.append(f"  - {name}/in-memory, round by round: {', '.join(pairs)}")
    return lines


def write(block: str, path: Path = RESULTS) -> None:
    """Replace the generated block of results.md (or start the file) and keep everything around it."""
    generated = f"{START}\n{block}{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmark results\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = f"{text.rstrip()}\n\n{START}\n{END}\n"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    path.write_text(pattern.sub(lambda _: generated, text, count=1), encoding="utf-8")
