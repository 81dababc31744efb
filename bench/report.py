"""The one table of a run, its verdicts on the targets, and bench/results.md."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.chat import Chat
from bench.load import Run
from bench.run import NOT_BUILT, Contract, Memory, Results

RESULTS = Path(__file__).with_name("results.md")
START = "<!-- bench:start: written by `make bench`; the rest of this file is kept as it is -->"
END = "<!-- bench:end -->"
LABELS = {
    "mock": "mock (`python -m mockserver`)",
    "prism": "Prism 5 (`-v silent`)",
    "bare": "bare Starlette (answers 200)",
    "bare-json": "bare Starlette, same JSON work",
    "store-1": "mock `--store redis://`, 1 worker",
    "store-2": "mock `--store redis://`, 2 workers",
}

# The targets, at 32 connections with one mock worker on 2 cores.
TARGET_CONNECTIONS = 32
TARGET_VS_PRISM = 3.0
TARGET_VS_BARE_JSON = 0.6
TARGET_P99_MS = 10.0
FLAT_GROWTH = 0.05  # RSS may grow by at most 5% between the first pass over the keys and the end


LEGEND = [
    "The mix (bench/mix.lua), cycled by every connection: modelsession on key A and one model (R1 reuse),",
    "modelsession on key B alternating two models (R2 switch), pingsession (A), modelsession then closesession",
    "on key C, pingsession without a key (intended 401) and a modelsession with a bad body (intended 422).",
    "Prism answers from the spec's examples, without state; it is counted right when it gives the intended",
    "status. errors = socket errors and timeouts + answers with a status the mix did not intend (wrk cannot",
    "pair answers with requests, so statuses are matched as counts); the bare endpoints answer 200 to",
    'everything by design, so only their socket errors and non-200s count. "Same JSON work": the bare',
    "endpoint reads and parses the body and answers a JSON object (bench/bare.py --json-work). The --store",
    "rows run against a throwaway local redis-server after the other cells. CPU is cores used on average",
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
    if results.memory is not None:
        lines.append(_memory_row(results.memory))
    lines.append(_contract_row(results.contract))
    return lines


def _memory_row(memory: Memory) -> str:
    rss = (
        f"RSS {_mib(memory.rss_start_kib)} at start, {_mib(memory.rss_warm_kib)} after {memory.warm_requests:,}, "
        f"{_mib(memory.rss_end_kib)} after {memory.requests:,} ({_answers(memory.run)})"
    )
    label = f"mock memory soak: {memory.keys:,} keys, `--accept-any-key`"
    return _row(label, memory.run, answers=rss)


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
    memory = results.memory
    if memory is None:
        out.append(("memory flat over 1M requests, 10,000 keys", "-", None))
    else:
        growth = memory.rss_end_kib - memory.rss_warm_kib
        flat = growth <= FLAT_GROWTH * memory.rss_warm_kib and memory.run.errors == 0
        measured = f"{growth / 1024:+.1f} MiB from {memory.warm_requests:,} to {memory.requests:,} requests"
        out.append((f"memory flat (<= {FLAT_GROWTH:.0%} growth after every key was seen), no errors", measured, flat))
    return out


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


def store_workers(results: Results) -> list[str]:
    """With `--store`: what a second worker buys (the issue asks that 2 workers beat 1)."""
    one, two = (results.cells.get((f"store-{n}", TARGET_CONNECTIONS)) for n in (1, 2))
    if one is None or two is None or not one.rps:
        return []
    verdict = "met" if two.rps > one.rps else "**MISSED**"
    return [
        f"- `--store`, 2 workers beat 1: {two.rps:,.0f} vs {one.rps:,.0f} req/s ({two.rps / one.rps:.2f}x): {verdict}"
    ]


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
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run of {when}: each cell of the four servers is the median (by req/s) of {rounds} rounds of a",
        f"{seconds:g} s wrk run (1 thread, the mix of bench/mix.lua) after a warm-up; the four servers run side by",
        "side and are measured in turn within each round, so ratios come from the same minutes. The other cells",
        "are one run each.",
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
        verdict = "not measured" if met is None else ("met" if met else "**MISSED**")
        lines.append(f"- {target}: {measured}: {verdict}")
        if target.startswith("p99"):
            lines.extend(p99_arithmetic(results))
    lines.extend(store_workers(results))
    lines.extend(round_by_round(results))
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


def write(block: str, path: Path = RESULTS) -> None:
    """Replace the generated block of results.md (or start the file) and keep everything around it."""
    generated = f"{START}\n{block}{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Benchmark results\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = f"{text.rstrip()}\n\n{START}\n{END}\n"
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    path.write_text(pattern.sub(lambda _: generated, text, count=1), encoding="utf-8")
