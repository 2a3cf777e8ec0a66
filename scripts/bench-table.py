#!/usr/bin/env python3
"""Prints the figures of the last `cargo bench` run (target/criterion) as Markdown tables.

Medians (p50) from criterion's estimates; ratios are computed within this one run.
Usage: scripts/bench-table.py [TARGET_DIR]
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target") / "criterion"


def median(group, bench):
    p = root / group / bench / "new" / "estimates.json"
    if not p.exists():
        return None
    return json.loads(p.read_text())["median"]["point_estimate"]


def fmt(ns):
    if ns is None:
        return "–"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.1f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


def ratio(a, b):
    return f"{a / b:,.0f}×" if a and b else "–"


print("### stepup, Cedar and Rego side by side (same policies, same requests)\n")
print("| workload | request | stepup | Cedar | Rego | Cedar ÷ stepup | Rego ÷ stepup |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for w in ["20x10", "scale_100", "scale_1000"]:
    for r in ["near_miss", "match"]:
        g = f"peers_{w}"
        s, c, o = median(g, f"stepup/{r}"), median(g, f"cedar/{r}"), median(g, f"rego/{r}")
        print(f"| {w} | {r} | {fmt(s)} | {fmt(c)} | {fmt(o)} | {ratio(c, s)} | {ratio(o, s)} |")

print("\n### Policies that all guard one operation (N policies × 10 predicates), side by side\n")
print("| policies | request | stepup | Cedar | Rego | Cedar ÷ stepup | Rego ÷ stepup |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for n in [20, 200, 2000]:
    for r in ["allow", "step_up"]:
        g = f"shared_op_{n}"
        s, c, o = median(g, f"stepup/{r}"), median(g, f"cedar/{r}"), median(g, f"rego/{r}")
        print(f"| {n:,} | {r} | {fmt(s)} | {fmt(c)} | {fmt(o)} | {ratio(c, s)} | {ratio(o, s)} |")
    # The step-up as a verdict (no audit record), against the peers' same step-up.
    g = f"shared_op_{n}"
    s, c, o = median(g, "stepup/step_up_verdict"), median(g, "cedar/step_up"), median(g, "rego/step_up")
    if s:
        print(f"| {n:,} | step_up, verdict | {fmt(s)} | {fmt(c)} | {fmt(o)} | {ratio(c, s)} | {ratio(o, s)} |")

print("\n### Decision latency (compiled tree, reference interpreter, explanation)\n")
print("| workload | request | compiled | reference | explain |")
print("| --- | --- | --- | --- | --- |")
for r in ["no_candidate", "near_miss", "match"]:
    g = "decision_20x10"
    print(f"| 20×10 | {r} | {fmt(median(g, f'compiled/{r}'))} | {fmt(median(g, f'reference/{r}'))} | {fmt(median(g, f'explain/{r}'))} |")
    if r == "match" and median(g, "verdict/match"):
        print(f"| 20×10 | match, verdict | {fmt(median(g, 'verdict/match'))} | – | – |")
for r in ["routine_allow", "change_email_step_up", "sign_in_signals"]:
    g = "decision_rules"
    print(f"| rules/ | {r} | {fmt(median(g, f'compiled/{r}'))} | – | {fmt(median(g, f'explain/{r}'))} |")

print("\n### Growth with the number of policies (compiled tree)\n")
print("| policies | near_miss | × 20 | match | × 20 |")
print("| --- | --- | --- | --- | --- |")
base_n, base_m = median("decision_scale", "near_miss/20"), median("decision_scale", "match/20")
for n in [20, 100, 1000, 10000]:
    a, b = median("decision_scale", f"near_miss/{n}"), median("decision_scale", f"match/{n}")
    print(f"| {n:,} | {fmt(a)} | {a / base_n:.1f} | {fmt(b)} | {b / base_m:.1f} |" if a and b else f"| {n} | – | – | – | – |")

print("\n### Other figures\n")
print("| what | p50 |")
print("| --- | --- |")
for g, b, label in [
    ("compile", "parse_check_compile_10000", "parse + check + compile, 10,000 policies (the previous set freed in the loop)"),
    ("compile", "parse_check_compile_10000_ready", "parse + check + compile, 10,000 policies: the set ready (each freed after the timing)"),
    ("compile", "free_10000", "freeing a compiled set of 10,000 policies"),
    ("compile", "parse_check_10000", "parse + check, 10,000 policies"),
    ("compile", "parse_only_10000", "parse only, 10,000 policies"),
    ("rhai", "no_script", "operation with an attribute test, no script"),
    ("rhai", "one_script", "same, with one scripted predicate"),
    ("replay", "examples_memory", "replay of examples/scenarios (all files, memory store)"),
    ("signals", "memory", "sign-in: load, signals, decide, commit — memory store"),
    ("signals", "disk", "same — embedded disk store (redb, durable commit)"),
    ("signals", "redis", "same — Redis on loopback"),
]:
    print(f"| {label} | {fmt(median(g, b))} |")
