"""The end-to-end benchmark's report: e2e.json, e2e.md and e2e.png from the measured runs."""

from __future__ import annotations

import io
import json
import math
import pstats
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from e2e_analysis import ANALYSIS

AIM_RATIO = 0.5
AIM_P99_MS = 250.0
ROLE_ORDER = ("publisher", "gateway", "relay", "consumer", "broker")


def _ordered(names: set[str]) -> list[str]:
    return sorted(names, key=lambda n: (ROLE_ORDER.index(_role_kind(n)), n))


def _role_kind(name: str) -> str:
    return name.split("-", maxsplit=1)[0]


def one_line(result: dict[str, Any]) -> str:
    latency = result["latency_ms_from_due"]
    rss = ", ".join(f"{k} {v:.0f}" for k, v in result["peak_rss_mib"].items())
    cpu = ", ".join(f"{k} {100 * v:.0f}%" for k, v in result["cpu_share_of_two_cores"].items())
    state = "" if result["complete"] else f"  INCOMPLETE (missing {result['missing']})"
    signals = max(1, result["signals"])
    written = "; ".join(
        f"{family} {usage['records'] / signals:.2f} rec {usage['bytes'] / signals:,.0f} B"
        for family, usage in sorted(result.get("broker_written", {}).items())
    )
    if written:
        state += f"\n  broker per signal: {written}"
    return (
        f"  {result['throughput']:,.0f} signals/s over {result['seconds']:.2f} s; "
        f"latency p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms; "
        f"peak RSS MiB: {rss}; CPU (of 2 cores): {cpu}{state}"
    )


def _find(results: list[dict[str, Any]], side: str, mode: str, workers: int) -> dict[str, Any]:
    for result in results:
        if (result["side"], result["mode"], result["workers"]) == (side, mode, workers):
            return result
    return {}


def profile_summaries(folder: Path, top: int = 40) -> dict[str, str]:
    """The functions with the most cumulative time in each profiled process of a run."""
    summaries = {}
    for path in sorted(folder.glob("*.prof")):
        stream = io.StringIO()
        stats = pstats.Stats(str(path), stream=stream)
        stats.strip_dirs().sort_stats("cumulative").print_stats(top)
        text = stream.getvalue()
        start = text.find("   ncalls")
        summaries[path.stem] = text[start:].rstrip() if start >= 0 else text.rstrip()
    return summaries


def build(
    results: list[dict[str, Any]],
    notes: dict[str, Any],
    started: datetime,
    settings: dict[str, Any],
    profiles: dict[str, str],
) -> dict[str, Any]:
    base = _find(results, "baseline", "max", 1)
    sigex = _find(results, "sigex", "max", 1)
    sigex2 = _find(results, "sigex", "max", 2)
    base2 = _find(results, "baseline", "max", 2)
    paced = _find(results, "sigex", "paced", 1)
    paced_base = _find(results, "baseline", "paced", 1)
    low = _find(results, "sigex", "paced-low", 1)
    low_base = _find(results, "baseline", "paced-low", 1)
    rdk = _find(results, "librdkafka", "max", 1)

    def ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
        if not a or not b or not b.get("throughput"):
            return None
        return round(float(a["throughput"]) / float(b["throughput"]), 3)

    summary = {
        "throughput_ratio_sigex_to_baseline": ratio(sigex, base),
        "two_gateways_to_one": ratio(sigex2, sigex),
        "two_relays_to_one": ratio(base2, base),
        "librdkafka_to_baseline": ratio(rdk, base),
        "sigex_to_librdkafka": ratio(sigex, rdk),
        "sigex_p99_ms_at_rate": paced.get("latency_ms_from_due", {}).get("p99"),
        "baseline_p99_ms_at_rate": paced_base.get("latency_ms_from_due", {}).get("p99"),
        "sigex_achieved_rate_at_rate": paced.get("throughput"),
        "low_rate": low.get("offered_rate"),
        "sigex_p50_ms_at_low_rate": low.get("latency_ms_from_due", {}).get("p50"),
        "sigex_p99_ms_at_low_rate": low.get("latency_ms_from_due", {}).get("p99"),
        "baseline_p99_ms_at_low_rate": low_base.get("latency_ms_from_due", {}).get("p99"),
    }
    ratio_value = summary["throughput_ratio_sigex_to_baseline"]
    p99 = summary["sigex_p99_ms_at_rate"]
    summary["aim_throughput_met"] = ratio_value is not None and ratio_value >= AIM_RATIO
    summary["aim_latency_met"] = (
        p99 is not None and not math.isnan(p99) and p99 < AIM_P99_MS and bool(paced.get("complete"))
    )
    return {
        "benchmark": "e2e",
        "date": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": notes,
        "settings": settings,
        "aim": {"throughput_ratio_at_least": AIM_RATIO, "p99_ms_below": AIM_P99_MS},
        "summary": summary,
        "runs": results,
        "profiles": profiles,
    }


# ------------------------------------------------------------------ markdown


def _ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.1f}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _runs_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| run | workers | signals | signals/s | p50 ms | p99 ms | max ms | complete |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        latency = r["latency_ms_from_due"]
        offered = f" at {r['offered_rate']:,.0f}/s" if r["offered_rate"] else ""
        complete = "yes" if r["complete"] else f"NO, {r['missing']} missing"
        lines.append(
            f"| {r['side']} {r['mode']}{offered} | {r['workers']} | {r['signals']:,} | "
            f"{r['throughput']:,.0f} | {_ms(latency['p50'])} | {_ms(latency['p99'])} | "
            f"{_ms(latency['max'])} | {complete} |"
        )
    return lines


def _stages_table(results: list[dict[str, Any]]) -> list[str]:
    rows = [r for r in results if r.get("stages_ms") and r["mode"] != "max"]
    if not rows:
        return []
    lines = [
        "### Where a sigex signal's latency goes (paced runs)",
        "",
        "Split at two times carried in the delivered envelope (millisecond resolution): "
        "when the Publisher sealed the signal's batch, and when the gateway sealed its "
        "decision for the batch. The last stage includes the gateway's transaction commit, "
        "the subscriber's fetch, and its checks before the handler.",
        "",
        "| run | stage | p50 ms | p99 ms |",
        "|---|---|---:|---:|",
    ]
    for r in rows:
        for stage, summary in r["stages_ms"].items():
            lines.append(
                f"| {r['name']} | {stage} | {_ms(summary['p50'])} | {_ms(summary['p99'])} |"
            )
    return [*lines, ""]


def _process_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| run | process | peak RSS MiB | CPU s | CPU ms per signal | share of 2 cores |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        names = _ordered(set(r["cpu_seconds"]) | set(r["peak_rss_mib"]))
        for name in names:
            cpu = r["cpu_seconds"].get(name, 0.0)
            rss = r["peak_rss_mib"].get(name)
            share = r["cpu_share_of_two_cores"].get(name, 0.0)
            lines.append(
                f"| {r['name']} | {name} | {'-' if rss is None else f'{rss:,.0f}'} | "
                f"{cpu:.2f} | {1000 * cpu / max(1, r['signals']):.3f} | {100 * share:.0f}% |"
            )
    return lines


def _broker_table(results: list[dict[str, Any]]) -> list[str]:
    """Records and bytes the broker appended per signal, by kind of topic."""
    rows = [r for r in results if r.get("broker_written") and r["mode"] == "max"]
    if not rows:
        return []
    lines = [
        "### What the broker wrote per signal (maximum-throughput runs)",
        "",
        "Records are log end offsets (a transaction marker counts as a record), bytes the "
        "growth of the partitions' segment files, between the start and the end of the "
        "measured part.",
        "",
        "| run | topics | records per signal | bytes per signal |",
        "|---|---|---:|---:|",
    ]
    for r in rows:
        written = r["broker_written"]
        signals = max(1, r["signals"])
        total_records = sum(v["records"] for v in written.values())
        total_bytes = sum(v["bytes"] for v in written.values())
        for family in sorted(written, key=lambda f: -written[f]["bytes"]):
            usage = written[family]
            lines.append(
                f"| {r['name']} | {family} | {usage['records'] / signals:.2f} | "
                f"{usage['bytes'] / signals:,.0f} |"
            )
        lines.append(
            f"| {r['name']} | **all** | **{total_records / signals:.2f}** | "
            f"**{total_bytes / signals:,.0f}** |"
        )
    return [*lines, ""]


def markdown(report: dict[str, Any], analysis: str, before: dict[str, Any] | None = None) -> str:
    s = report["summary"]
    m = report["machine"]
    results = report["runs"]
    ratio = s["throughput_ratio_sigex_to_baseline"]
    lines = [
        "# End to end: sigex against plain kafka-python",
        "",
        "Produced by `.venv/bin/python bench/bench_e2e.py` "
        f"(settings: {json.dumps(report['settings'], sort_keys=True)}).",
        "",
        "## Result",
        "",
        f"- throughput, sigex / baseline (one gateway vs one relay, maximum load): "
        f"**{'-' if ratio is None else f'{ratio:.2f}'}** "
        f"(aim ≥ {AIM_RATIO}: {'met' if s['aim_throughput_met'] else 'NOT met'})",
        f"- sigex p99 latency at {report['settings']['rate']:,.0f} signals/s offered: "
        f"**{_ms(s['sigex_p99_ms_at_rate'])} ms** (aim < {AIM_P99_MS:.0f} ms: "
        f"{'met' if s['aim_latency_met'] else 'NOT met'}); baseline "
        f"{_ms(s['baseline_p99_ms_at_rate'])} ms",
        f"- below saturation, at {s.get('low_rate') or 0:,.0f} signals/s offered: sigex p50 "
        f"{_ms(s.get('sigex_p50_ms_at_low_rate'))} ms, p99 "
        f"{_ms(s.get('sigex_p99_ms_at_low_rate'))} ms; baseline p99 "
        f"{_ms(s.get('baseline_p99_ms_at_low_rate'))} ms",
        f"- reference: the baseline's pipeline on librdkafka (confluent-kafka) moves "
        f"{_times(s.get('librdkafka_to_baseline'))} the kafka-python baseline's signals per "
        f"second; sigex moves {_times(s.get('sigex_to_librdkafka'))} of it",
        f"- two gateway processes / one: **{_times(s['two_gateways_to_one'])}** "
        f"the throughput; two baseline relays / one: {_times(s['two_relays_to_one'])}",
        "",
        *_runs_table(results),
        "",
        *(f"- **run failed**: {failure}" for failure in report.get("failed_runs", ())),
        *(
            f"- {r['name']}: {r['consumer_restarts_in_warm_up']} consumer process(es) "
            "restarted in the warm-up (never fetched, or its commits failed; see below)"
            for r in results
            if r.get("consumer_restarts_in_warm_up")
        ),
        *(
            f"- {r['name']}: {len(r['consumer_commit_failures'])} offset commits of the "
            f"consumers failed ({', '.join(sorted(set(r['consumer_commit_failures'])))}); "
            "see below"
            for r in results
            if r.get("consumer_commit_failures")
        ),
        "",
        "Latency is from the moment a signal was due (paced runs) or its publish call "
        "began (maximum-throughput runs) to the moment the recipient's handler was "
        "called; in the maximum-throughput runs it is mostly time spent queued behind "
        "the other signals, so only the paced rows say anything about latency.",
        "",
        *_stages_table(results),
        "### Per process",
        "",
        *_process_table(results),
        "",
        *_broker_table(results),
        *_before_after(report, before),
        "![throughput, latency CDF and CPU per signal](e2e.png)",
        "",
        analysis.strip(),
        "",
        "## How it was measured",
        "",
        "- One run of `bench/bench_e2e.py` builds everything it uses: a fresh federation "
        "(keys, certificates, signed directory) in a temporary folder, a local Kafka "
        f"{m['kafka']} broker (KRaft, one JVM) with mutual TLS and ACLs on free ports, "
        "provisioned from the agreements with "
        "4 partitions per topic; the baseline gets its own topics (4 partitions) and ACLs "
        "for the same principals (UWV writes, GATEWAY relays, each municipality reads its "
        "own). Everything is stopped and deleted at the end, also after an error or Ctrl-C.",
        "- The records are `payroll.bsn-mismatch` signals (valid BSNs, kind "
        "BSN_UNKNOWN_IN_BRP), municipality alternating over GM0363, GM0599 and GM0518, "
        "purpose BRP_TERUGMELDING; both sides send the same kind of records.",
        "- **sigex**: a process with the `Publisher` as UWV (validate, pre-check the "
        "policy, commit to each field, one signature per batch, encrypt for the gateway, "
        "idempotent producer, acks=all); `sigex gateway run` processes (one or two, same "
        "group, different `--instance`; each batch's deliveries, audit records and "
        "offsets in one transaction); one process per municipality with a `Subscriber` "
        "(read_committed, both signatures checked, decrypt, policy checked again, receipts "
        "written, offsets committed after each poll).",
        "- **baseline**: the same three kinds of process in plain kafka-python: a producer "
        "with the same settings (idempotent, acks=all, linger 5 ms, flush per batch) "
        "sending the whole record encoded with fastavro (schemaless, `strict=True`); a "
        "relay with the gateway's consumer and transactional producer settings "
        "(read_committed, up to 500 records per poll, offsets sent in the transaction) "
        "that decodes each record only to route it to its municipality's topic; one "
        "consumer per municipality (read_committed, decode, handler, commit per poll). "
        "No policy, no signatures, no encryption, no audit records, no receipts.",
        "- **librdkafka** (the reference row): the baseline's pipeline, the same records, "
        "topics, certificates, ACLs and client settings (idempotent, acks=all, linger 5 ms; "
        "a transactional relay with the offsets in the transaction; read_committed "
        "consumers committing per poll), with confluent-kafka (librdkafka, C) as the client: "
        "what the Kafka client alone would give a speed-minded team. sigex keeps "
        "kafka-python, the design's client.",
        "- The broker runs with the JVM's full compiler (the test broker's quick-start flag "
        "`-XX:TieredStopAtLevel=1` is off), as a broker in operation would. What it wrote per "
        "signal is read from its log end offsets and the growth of its segment files.",
        "- Each run starts its processes fresh, waits until the gateway/relay group is "
        f"stable, sends {report['settings'].get('warmup', 300)} warm-up signals end to end "
        "(not measured), then the measured ones. Maximum-throughput runs send batches "
        "of 500 back to back; throughput is "
        "signals received divided by the time from the first measured publish call to "
        "the last handler call. Paced runs offer a fixed rate: signal *i* is due at "
        "start + i/rate, each publish call takes every signal already due, and latency is "
        "counted from the due time, so a publisher that falls behind shows up as latency.",
        "- Publisher and consumer are different processes on the same machine; latency "
        "is the consumer's wall clock at the handler minus the publisher's wall clock at "
        "the due time (one system clock). The publisher writes signal id -> time, the "
        "consumer signal id -> time, and the benchmark joins them on the `signal_id` "
        "field of the delivered record.",
        "- Peak RSS is each process's `VmHWM` from `/proc`, read just before it is "
        "stopped; CPU seconds are user+system time from `/proc/<pid>/stat` between the "
        "start and end of the measured part (the broker JVM included). A first version "
        "ran the three subscribers as threads of one process; the GIL convoy between "
        "them and the six kafka-python I/O threads made every call that releases the GIL "
        "(socket writes, AES-GCM) cost up to milliseconds, which says more about that "
        "layout than about sigex, so each municipality now has its own process, as it "
        "would in operation.",
        "",
        "## Machine",
        "",
        f"- {m['cpu']}, {m['cores']} cores; Python {m['python']}; {m['platform']}",
        f"- load average when the run started: "
        f"{' '.join(f'{x:.2f}' for x in m['load_average_at_start'])} "
        "(the machine is shared with other engineers' work)",
        f"- run from {report['date']} to {report['finished']}, on commit "
        f"{m.get('commit', 'unknown')} of the repository (the work tree is shared, so "
        "files other engineers had changed but not committed were measured too)",
        "- every process of a run (publisher, gateway(s) or relay(s), consumers, the "
        "broker JVM) shares the same two cores, so these are not numbers for a deployment "
        "where each party runs on its own machine.",
        "",
    ]
    if report["profiles"]:
        lines += ["## Profile of a sigex run (cProfile, cumulative time, top functions)", ""]
        lines += [
            "A separate maximum-throughput run with the gateway started under "
            "`python -m cProfile` and the publisher and consumer profiled the same way "
            "(cProfile slows each process; its numbers are not in the tables above). "
            "The times include the idle wait before the measured signals arrive; cProfile "
            "sees only the thread it runs in (the main loop of the gateway and the "
            "publisher, the polling thread of each subscriber), not kafka-python's I/O "
            "threads, whose CPU is in the per-process columns.",
            "",
        ]
        for name, text in report["profiles"].items():
            lines += [f"### {name}", "", "```", text, "```", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ plot


def plot(report: dict[str, Any], path: Path) -> None:
    results = report["runs"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 6.4))

    bars = [
        (label, _find(results, side, "max", workers))
        for label, side, workers in (
            ("baseline\n1 relay", "baseline", 1),
            ("baseline\n2 relays", "baseline", 2),
            ("librdkafka\n1 relay", "librdkafka", 1),
            ("sigex\n1 gateway", "sigex", 1),
            ("sigex\n2 gateways", "sigex", 2),
        )
    ]
    bars = [(label, r) for label, r in bars if r]
    ax = axes[0]
    colours = [
        "#7f7f7f" if "baseline" in label else "#bcbd22" if "librdkafka" in label else "#1f77b4"
        for label, _ in bars
    ]
    values = [r["throughput"] for _, r in bars]
    ax.bar([label for label, _ in bars], values, color=colours)
    for index, value in enumerate(values):
        ax.text(index, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=10)
    ax.set_ylabel("signals per second (end to end)")
    ax.set_title("Maximum throughput, 2-core machine")
    ax.set_ylim(0, max(values or [1]) * 1.15)

    ax = axes[1]
    for mode, style in (("paced", "-"), ("paced-low", "--")):
        for side, colour in (("baseline", "#7f7f7f"), ("sigex", "#1f77b4")):
            paced = _find(results, side, mode, 1)
            if not paced:
                continue
            cdf = paced["latency_cdf_ms"]
            ax.plot(
                [max(v, 0.1) for v in cdf],
                [q / 100 for q in range(len(cdf))],
                color=colour,
                linestyle=style,
                label=f"{side} at {paced['offered_rate']:,.0f}/s: "
                f"p50 {_ms(paced['latency_ms_from_due']['p50'])}, "
                f"p99 {_ms(paced['latency_ms_from_due']['p99'])} ms",
            )
    ax.axvline(AIM_P99_MS, color="#d62728", linestyle="--", linewidth=1, label="aim: p99 < 250 ms")
    ax.axhline(0.99, color="#bbbbbb", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("latency, publish due -> recipient's handler (ms, log scale)")
    ax.set_ylabel("fraction of signals")
    rate = report["settings"]["rate"]
    ax.set_title(f"Latency CDF, paced runs (aim: at {rate:,.0f} signals/s)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, ncol=1)
    ax.grid(True, which="both", alpha=0.3)

    ax = axes[2]
    kinds = ("publisher", "gateway", "relay", "consumer", "broker")
    palette = {
        "publisher": "#2ca02c",
        "gateway": "#1f77b4",
        "relay": "#1f77b4",
        "consumer": "#ff7f0e",
        "broker": "#9467bd",
    }
    runs = [
        r
        for r in (
            _find(results, "baseline", "max", 1),
            _find(results, "librdkafka", "max", 1),
            _find(results, "sigex", "max", 1),
        )
        if r
    ]
    labels = [r["side"] for r in runs]
    bottoms = [0.0] * len(runs)
    drawn: set[str] = set()
    for kind in kinds:
        heights = [
            1000
            * sum(v for k, v in r["cpu_seconds"].items() if _role_kind(k) == kind)
            / max(1, r["signals"])
            for r in runs
        ]
        if not any(heights):
            continue
        label = "gateway / relay" if kind in ("gateway", "relay") else kind
        ax.bar(
            labels,
            heights,
            bottom=bottoms,
            color=palette[kind],
            label=None if label in drawn else label,
        )
        drawn.add(label)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    for index, total in enumerate(bottoms):
        ax.text(index, total, f"{total:.2f} ms", ha="center", va="bottom", fontsize=10)
    ax.set_ylabel("CPU ms per signal (all processes)")
    ax.set_title("Where the CPU goes (max-throughput run, 1 worker)")
    ax.set_ylim(0, max(bottoms or [1]) * 1.15)
    ax.legend(fontsize=9)

    fig.suptitle(
        f"sigex end to end vs plain kafka-python (TLS + ACLs, {report['machine']['cores']} cores, "
        f"{report['date'][:10]})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replace_profiles(folder: Path, profiles: dict[str, str]) -> None:
    """Put a new profiled run's summaries into the recorded report (its runs stay)."""
    report = json.loads((folder / "e2e.json").read_text())
    report["profiles"] = profiles
    write(report, folder)


def rewrite(folder: Path) -> None:
    """Markdown and plot again from the recorded JSON (after the analysis text changed)."""
    write(json.loads((folder / "e2e.json").read_text()), folder)


def _kind_cpu(result: dict[str, Any]) -> dict[str, float]:
    """CPU ms per signal by kind of process (the three consumers together)."""
    totals: dict[str, float] = {}
    for name, seconds in result["cpu_seconds"].items():
        kind = _role_kind(name)
        totals[kind] = totals.get(kind, 0.0) + 1000 * seconds / max(1, result["signals"])
    return totals


def _before_after(report: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    if before is None:
        return []
    lines = [
        "### Before and after (maximum throughput, one gateway)",
        "",
        f"*Before*: commit {before['machine'].get('commit', '?')}, measured "
        f"{before['date'][:16]}; *after*: this run. Same machine, same benchmark, same broker "
        "settings. CPU ms per signal by kind of process (the three subscribers together).",
        "",
        "| | before | after | change |",
        "|---|---:|---:|---:|",
    ]
    rows: list[tuple[str, float | None, float | None]] = []
    for side in ("sigex", "baseline"):
        old, new = _find(before["runs"], side, "max", 1), _find(report["runs"], side, "max", 1)
        if not old or not new:
            continue
        old_cpu, new_cpu = _kind_cpu(old), _kind_cpu(new)
        for kind in ROLE_ORDER:
            if kind in old_cpu or kind in new_cpu:
                rows.append((f"{side} {kind}", old_cpu.get(kind), new_cpu.get(kind)))
        rows.append((f"**{side} all processes**", sum(old_cpu.values()), sum(new_cpu.values())))
        rows.append((f"{side} signals/s", old["throughput"], new["throughput"]))
    for label, old_value, new_value in rows:
        change = (
            f"{100 * (new_value - old_value) / old_value:+.0f}%"
            if old_value and new_value is not None
            else "-"
        )
        digits = 0 if "signals/s" in label else 3
        lines.append(
            f"| {label} | {'-' if old_value is None else f'{old_value:,.{digits}f}'} | "
            f"{'-' if new_value is None else f'{new_value:,.{digits}f}'} | {change} |"
        )
    return [*lines, ""]


BEFORE = "e2e.before.json"


def write_before(report: dict[str, Any], folder: Path) -> None:
    """Keep ``report`` as the reference the next reports compare with (before a change)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BEFORE).write_text(json.dumps(report, indent=2) + "\n")


def write(report: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    before_path = folder / BEFORE
    before = json.loads(before_path.read_text()) if before_path.exists() else None
    (folder / "e2e.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "e2e.md").write_text(markdown(report, ANALYSIS, before))
    plot(report, folder / "e2e.png")
