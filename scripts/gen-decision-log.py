#!/usr/bin/env python3
"""Generates a large decision log from the example stories, for `stepup backtest` at scale.

1. Replays every story of examples/scenarios/ through the engine once
   (`stepup replay --decision-log`): real decisions, with the state each was made on.
2. Copies those stories onto many users and days: each (user, day) lives a few stories drawn
   with a fixed seed, at a random time of the day. A copy renames the story's users and sessions
   and moves every timestamp of its records by the same amount; the engine decides on time
   differences only, so every copied record still holds the decision the engine makes on it
   (`stepup backtest --rules rules LOG` finds no change: run it to check).

    python3 scripts/gen-decision-log.py OUT.jsonl [--decisions 1000000] [--users 1500]
                                        [--days 61] [--seed 7] [--stepup target/release/stepup]

The log is large (about 1 GB for a million decisions): keep it out of the repository.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAY = 86_400
# 2027-01-01T00:00:00Z: the first day of the generated traffic.
START = 1_798_761_600


def base_log(stepup):
    """The example stories replayed once: records grouped by story, in order."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "base.jsonl")
        subprocess.run(
            [stepup, "replay", "--store", "memory", "--rules", os.path.join(ROOT, "rules"),
             "--decision-log", path, os.path.join(ROOT, "examples", "scenarios")],
            check=True, stdout=subprocess.DEVNULL)
        stories = {}
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                story = rec["session"].split(":")[0]
                stories.setdefault(story, []).append(rec)
    return [stories[k] for k in sorted(stories)]


TIME_KEYS = {"now", "at", "issued_at", "expires_at"}
PAIR_KEYS = {"country", "access"}  # [name, time] pairs of a history update
MAP_KEYS = {"countries", "accesses"}  # name -> time
MARK = re.compile(r'"@@T(-?\d+)@@"|@@U([^@"]*)@@|@@S@@|@@A@@')


def template(rec, t0):
    """The record as text with markers where a copy puts its own times, users and session."""

    def walk(v, key=None):
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if k in TIME_KEYS and isinstance(x, int):
                    out[k] = f"@@T{x - t0}@@"
                elif k in MAP_KEYS and isinstance(x, dict):
                    out[k] = {n: f"@@T{t - t0}@@" for n, t in x.items()}
                elif k in PAIR_KEYS and isinstance(x, list) and len(x) == 2:
                    out[k] = [x[0], f"@@T{x[1] - t0}@@"]
                else:
                    out[k] = walk(x, k)
            return out
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        return v

    r = walk(rec)
    r["at"] = "@@A@@"
    r["user"] = f"@@U{rec['user']}@@"
    r["session"] = "@@S@@"
    text = json.dumps(r, separators=(",", ":"), ensure_ascii=False)
    parts, last = [], 0
    for m in MARK.finditer(text):
        parts.append(text[last:m.start()])
        if m.group(1) is not None:
            parts.append(("T", int(m.group(1))))
        elif m.group(2) is not None:
            parts.append(("U", m.group(2)))
        elif m.group(0) == "@@S@@":
            parts.append(("S", rec["session"]))
        else:
            parts.append(("A", None))
        last = m.end()
    parts.append(text[last:])
    return parts


def render(parts, t_start, user_suffix, session_suffix):
    now = None
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
            continue
        kind, v = p
        if kind == "T":
            out.append(str(t_start + v))
        elif kind == "U":
            out.append(f"{v}-{user_suffix}")
        elif kind == "S":
            out.append(f"{v}@{session_suffix}")
        else:
            out.append(None)  # the `at` text, once `now` is known
            now = len(out) - 1
    return out, now


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--days", type=int, default=61)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--stepup", default=os.path.join(ROOT, "target", "release", "stepup"))
    args = ap.parse_args()

    stories = base_log(args.stepup)
    templates = []
    for s in stories:
        t0 = s[0]["now"]
        templates.append([(template(r, t0), r["now"] - t0) for r in s])
    rng = random.Random(args.seed)
    written = 0
    started = time.time()
    with open(args.out, "w") as f:
        day = 0
        while written < args.decisions:
            d = day % args.days
            for u in range(args.users):
                if written >= args.decisions:
                    break
                # A user lives one to four stories a day, at random times of the day.
                for k, si in enumerate(rng.sample(range(len(templates)), rng.randint(1, 4))):
                    t_start = START + d * DAY + rng.randint(6 * 3600, 20 * 3600)
                    for parts, offset in templates[si]:
                        out, at = render(parts, t_start, f"{u:05d}", f"{u}/{day}/{k}")
                        out[at] = datetime.fromtimestamp(t_start + offset, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                        f.write("".join(out))
                        f.write("\n")
                        written += 1
            day += 1
    size = os.path.getsize(args.out)
    print(f"wrote {written} decisions ({size / 1e6:.0f} MB) from {len(stories)} stories, "
          f"{args.users} users, {min(day, args.days)} days, in {time.time() - started:.0f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
