"""Runs Pacemaker's scheduler corpus through `warden simulate --cib` (scripts/conformance.sh).

Usage: conformance.py WARDEN CORPUS LIST [--update] [--show CASE]
Compares the Transition Summary lines, normalising only presentation: runs of blanks become one,
clone instance numbers (rsc:1) are dropped, and lines are compared as a set (crm_simulate lists
them in its resource order, Warden in its own).
"""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

warden, corpus, listing = sys.argv[1:4]
update = "--update" in sys.argv
show = sys.argv[sys.argv.index("--show") + 1] if "--show" in sys.argv else None


def summary_lines(text):
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("Transition Summary:"):
            inside = True
            continue
        if inside:
            if not line.strip():
                break
            if line.startswith("  * "):
                lines.append(line)
    return lines


def normal(line):
    line = re.sub(r"(\S):\d+(?=\s|$|\))", r"\1", line)
    return " ".join(line.split())


def run(case):
    xml = os.path.join(corpus, "xml", case + ".xml")
    want_file = os.path.join(corpus, "summary", case + ".summary")
    if not os.path.exists(want_file):
        return case, "n/a", "no summary in the corpus", [], []
    want = sorted(normal(l) for l in summary_lines(open(want_file).read()))
    p = subprocess.run([warden, "simulate", "--cib", xml], capture_output=True, text=True)
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["failed"])[0]
        return case, "n/a", "import: " + err[:200], want, []
    notes = [l[len("Note: not carried over: "):] for l in p.stdout.splitlines()
             if l.startswith("Note: not carried over: ")]
    got = sorted(normal(l) for l in summary_lines(p.stdout))
    if notes:
        return case, "n/a", notes[0], want, got
    if got == want:
        return case, "match", "", want, got
    missing = [l for l in want if l not in got]
    extra = [l for l in got if l not in want]
    why = ("missing: " + missing[0]) if missing else ("extra: " + extra[0])
    return case, "differs", why[:200], want, got


cases = sorted(f[:-4] for f in os.listdir(os.path.join(corpus, "xml")) if f.endswith(".xml"))
if show:
    c, cls, why, want, got = run(show)
    print(f"{c}: {cls} {why}\n--- crm_simulate\n" + "\n".join(want) + "\n--- warden\n" + "\n".join(got))
    sys.exit(0)
with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
    results = list(ex.map(run, cases))

listed = {}
if os.path.exists(listing):
    for line in open(listing):
        if line.startswith("#") or not line.strip():
            continue
        case, cls, why = (line.rstrip("\n").split("\t") + ["", ""])[:3]
        listed[case] = (cls, why)

counts = {"match": 0, "differs": 0, "n/a": 0}
problems = []
for case, cls, why, _, _ in results:
    counts[cls] += 1
    was = listed.get(case)
    if cls == "match" and was:
        problems.append(f"{case}: now matches; take it off the list")
    elif cls != "match" and (was is None or was[0] != cls):
        problems.append(f"{case}: {cls} ({why}), listed as {was[0] if was else 'matching'}")

applicable = counts["match"] + counts["differs"]
share = 100.0 * counts["match"] / applicable if applicable else 0.0
print(f"pacemaker 2.1.5 scheduler corpus: {len(results)} cases, {applicable} applicable, "
      f"{counts['match']} match ({share:.1f}% of applicable), {counts['differs']} differ, "
      f"{counts['n/a']} not applicable")

if update:
    with open(listing, "w") as f:
        f.write("# Cases of Pacemaker 2.1.5's scheduler corpus that do not match (scripts/conformance.sh):\n")
        f.write("# CASE<TAB>CLASS<TAB>WHY. n/a: the case uses something Warden does not carry over;\n")
        f.write("# differs: Warden schedules otherwise (the first line that differs). Only shrinks.\n")
        for case, cls, why, _, _ in results:
            if cls != "match":
                f.write(f"{case}\t{cls}\t{why}\n")
    print(f"wrote {listing}")
    sys.exit(0)
if problems:
    print(f"{len(problems)} case(s) changed:")
    for p in problems[:50]:
        print("  " + p)
    sys.exit(1)
