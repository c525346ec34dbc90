#!/usr/bin/env python3
"""make bench's report: bench_report.py RESULTS.jsonl OUT.json OUT.svg

Reads the lines scripts/bench.sh collected, prints one table, writes the figures as one JSON
document and draws latency (p50 and p99) against offered rate, per task kind, as an SVG.
"""
import json
import math
import sys

# A rate counts as saturated when the system took less than 95% of it (the client's lanes were
# all waiting on answers, so it fell behind its schedule), or when submits failed.
SATURATED_SHARE = 0.95


def load(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by = {}
    for row in rows:
        by.setdefault(row["bench"], []).append(row)
    return by


def figures(by):
    raw = by["raw"][0]
    e2e = by["throughput"][0]
    cpu = by["cpu"][0]
    end = by["end"][0]
    idle = by["idle"][0]["rss"]
    used = {g: round(cpu["after"][g] - cpu["before"].get(g, 0), 3) for g in cpu["after"]}
    total_cpu = sum(used.values())
    latency = [
        {k: row.get(k) for k in ("task", "rate", "offered", "accepted", "errors", "not_succeeded", "achieved_rate",
                                  "p50_ms", "p95_ms", "p99_ms", "max_ms", "lag_p99_ms", "lag_max_ms",
                                  "stages_p50_ms", "stages_p99_ms", "first_error")}
        | {"saturated": (row.get("achieved_rate") or 0) < SATURATED_SHARE * row["rate"] or row.get("errors", 0) > 0}
        for row in by.get("latency", [])
    ]
    kill = by.get("kill", [{}])[0]
    return {
        "date": end.get("date"), "commit": end.get("commit"),
        "raw_broker_per_s": raw["per_s"],
        "e2e": {"tasks": e2e["accepted"], "seconds": e2e["seconds"], "per_s": e2e["per_s"],
                "submit_per_s": e2e["submit_per_s"], "ratio_to_raw": round(e2e["per_s"] / raw["per_s"], 3),
                "errors": e2e["errors"], "not_succeeded": e2e["not_succeeded"]},
        "latency": latency,
        "kill": {k: kill.get(k) for k in ("node", "running_on_it", "started_elsewhere", "p50_s", "max_s")},
        "cpu_ms_per_task": {g: round(v * 1000 / cpu["tasks"], 3) for g, v in sorted(used.items())}
                           | {"all": round(total_cpu * 1000 / cpu["tasks"], 3)},
        "rss_mb": {"idle": {g: v["rss_mb"] for g, v in idle.items()},
                   "peak": {g: v["hwm_mb"] for g, v in end["rss"].items()},
                   "tasks_at_end": end["tasks"]},
        "deadlocks": end["deadlocks"], "serialization_failures": end["serialization_failures"],
        "top_up": by.get("top-up", [{}])[0].get("per_s"),
    }


def table(f):
    lines = [f"make bench, {f['date']}, commit {f['commit']}", ""]
    e = f["e2e"]
    lines.append(f"(a) broker limit (confirmed publish + acked consume, quorum queue)  {f['raw_broker_per_s']:>8,.0f} msg/s")
    lines.append(f"(b) end to end, {e['tasks']:,} no-ops through the API                 {e['per_s']:>8,.0f} tasks/s"
                 f"   {e['ratio_to_raw']:.0%} of (a); submits {e['submit_per_s']:,.0f}/s; {e['not_succeeded']} not succeeded")
    lines.append("")
    lines.append(f"{'(c/d) task':<12}{'rate/s':>8}{'achieved':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
                 f"{'lag p99':>9}  stages p50 ms (stored>attempt, attempt>confirm, attempt>start, run, finish>recorded)")
    for row in f["latency"]:
        s = row.get("stages_p50_ms") or {}
        stages = ", ".join(str(s.get(k, "-")) for k in
                           ("stored_to_attempt", "attempt_to_confirm", "attempt_to_start", "run", "finish_to_recorded"))
        mark = "  saturated" if row["saturated"] else ""
        lines.append(f"{row['task']:<12}{row['rate']:>8g}{row['achieved_rate']:>10g}{row['p50_ms']:>9g}{row['p95_ms']:>9g}"
                     f"{row['p99_ms']:>9g}{row['max_ms']:>9g}{row['lag_p99_ms']:>9g}  {stages}{mark}")
    k = f["kill"]
    lines.append("")
    lines.append(f"(e) fog node {k['node']} killed with {k['running_on_it']} sleeps running: {k['started_elsewhere']} started "
                 f"elsewhere, median {k['p50_s']} s, last {k['max_s']} s after the kill")
    c = f["cpu_ms_per_task"]
    lines.append("(f) CPU ms per task during (b): " + ", ".join(f"{g} {v}" for g, v in c.items() if g != "all")
                 + f"; all {c['all']}")
    r = f["rss_mb"]
    lines.append("    RSS MB idle: " + ", ".join(f"{g} {v}" for g, v in r["idle"].items() if g.startswith("bench-") or g == "scheduler")
                 + f"; peak after {r['tasks_at_end']:,} tasks: "
                 + ", ".join(f"{g} {v}" for g, v in r["peak"].items() if g.startswith("bench-") or g == "scheduler"))
    lines.append(f"    PostgreSQL deadlocks {f['deadlocks']}, serialization failures {f['serialization_failures']}")
    return "\n".join(lines)


def svg(f):
    width, height, left, right, top, bottom = 720, 420, 70, 160, 40, 50
    rows = [r for r in f["latency"] if r["p99_ms"] is not None and not math.isnan(r["p99_ms"])]
    rates = sorted({r["rate"] for r in rows})
    values = [v for r in rows for v in (r["p50_ms"], r["p99_ms"]) if v and v > 0]
    if not rates or not values:
        return "<svg xmlns='http://www.w3.org/2000/svg'/>"
    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    hi = max(hi, lo + 1)
    rlo, rhi = math.log10(min(rates)), math.log10(max(rates))
    rhi = max(rhi, rlo + 1)

    def x(rate):
        return left + (math.log10(rate) - rlo) / (rhi - rlo) * (width - left - right)

    def y(ms):
        return top + (hi - math.log10(max(ms, 10 ** lo))) / (hi - lo) * (height - top - bottom)

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' font-size='12'>",
           "<rect width='100%' height='100%' fill='white'/>",
           f"<text x='{left}' y='22' font-size='14'>Client send to outcome recorded, open loop ({f['date']}, {f['commit']})</text>"]
    for d in range(lo, hi + 1):
        yy = y(10 ** d)
        out.append(f"<line x1='{left}' x2='{width - right}' y1='{yy:.1f}' y2='{yy:.1f}' stroke='#ddd'/>")
        out.append(f"<text x='{left - 8}' y='{yy + 4:.1f}' text-anchor='end'>{10 ** d:g} ms</text>")
    for rate in rates:
        xx = x(rate)
        out.append(f"<line x1='{xx:.1f}' x2='{xx:.1f}' y1='{top}' y2='{height - bottom}' stroke='#eee'/>")
        out.append(f"<text x='{xx:.1f}' y='{height - bottom + 18}' text-anchor='middle'>{rate:g}/s</text>")
    out.append(f"<text x='{(left + width - right) / 2}' y='{height - 10}' text-anchor='middle'>offered tasks per second</text>")
    colors = {"noop": "#1f77b4", "true": "#d62728"}
    legend = 0
    for task in ("noop", "true"):
        series = sorted((r for r in rows if r["task"] == task), key=lambda r: r["rate"])
        if not series:
            continue
        for key, dash in (("p50_ms", ""), ("p99_ms", " stroke-dasharray='5,4'")):
            points = " ".join(f"{x(r['rate']):.1f},{y(r[key]):.1f}" for r in series)
            out.append(f"<polyline points='{points}' fill='none' stroke='{colors[task]}' stroke-width='2'{dash}/>")
            for r in series:
                fill = "white" if r["saturated"] else colors[task]
                out.append(f"<circle cx='{x(r['rate']):.1f}' cy='{y(r[key]):.1f}' r='4' fill='{fill}' stroke='{colors[task]}'/>")
            ly = top + 16 + legend * 18
            label = ("no-op" if task == "noop" else "/bin/true") + " " + key[:3]
            out.append(f"<line x1='{width - right + 12}' x2='{width - right + 40}' y1='{ly}' y2='{ly}' stroke='{colors[task]}' stroke-width='2'{dash}/>")
            out.append(f"<text x='{width - right + 46}' y='{ly + 4}'>{label}</text>")
            legend += 1
    ly = top + 16 + legend * 18
    out.append(f"<circle cx='{width - right + 26}' cy='{ly}' r='4' fill='white' stroke='black'/>")
    out.append(f"<text x='{width - right + 46}' y='{ly + 4}'>saturated</text>")
    out.append("</svg>")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    f = figures(load(sys.argv[1]))
    print(table(f))
    with open(sys.argv[2], "w") as out:
        json.dump(f, out, indent=2, sort_keys=True)
        out.write("\n")
    with open(sys.argv[3], "w") as out:
        out.write(svg(f) + "\n")
    print(f"\nfigures: {sys.argv[2]}\nchart:   {sys.argv[3]}")
