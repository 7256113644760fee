#!/usr/bin/env python3
"""Static planning against a hand-judged corpus of real commits (issue 12, "Numbers to record").

  bench/real_corpus.py [--bin build/runner/app/switchyard] [--corpus bench/real_corpus.json]
                       [--mirrors /work/.mirror] [--repo OWNER/NAME] [--runs N] [--verbose]

The corpus (bench/real_corpus.json) names public NixOS infrastructure repositories and, per
repository, real commits with the NixOS hosts a person judged affected by reading the diff and
the flake's wiring (the truth), with a one-line reason. Each repository is looked for as a git
directory at MIRRORS/<owner>+<name>/repo (where the `fetch` tool puts it; the repositories are
not part of Switchyard's tree): a repository that is absent, or that lacks a commit, is reported
SKIPPED, never counted.

For each commit: `switchyard plan --mode static --json --from <commit>^ --to <commit>`; the
hosts it marks affected are compared with the judged ones. Recall = judged hosts the plan also
marks / judged hosts; precision = the same hosts / hosts the plan marks (a commit judged to
affect nothing and planned as nothing counts for neither). Every miss is printed as MISS (a
soundness bug); every over-report as EXTRA with static's reasons. Exit status 1 on a miss.

`"judged": "all"` means every host of the repository's `hosts` list (its NixOS hosts over the
window the commits are drawn from).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def run_plan(binary, gitdir, sha, runs):
    cmd = [binary, "plan", "--repo", gitdir, "--from", sha + "^", "--to", sha,
           "--mode", "static", "--json"]
    times = []
    out = None
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True)
        times.append((time.monotonic() - t0) * 1000.0)
        if p.returncode != 0:
            return None, p.stderr.strip() or f"exit {p.returncode}", times
        out = p.stdout
    return json.loads(out), None, times


def commit_present(gitdir, sha):
    p = subprocess.run(["git", "-C", gitdir, "cat-file", "-e", sha + "^{commit}"],
                       capture_output=True)
    return p.returncode == 0


def short_reasons(host):
    rs = []
    for r in host.get("reasons", []):
        kind = r.get("kind", "")
        what = r.get("path") or r.get("name") or ""
        detail = r.get("detail") or ""
        s = kind + (":" + what if what else "") + (" (" + detail + ")" if detail else "")
        rs.append(s[:140])
    return "; ".join(rs[:3])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(here, "..", "build", "runner", "app", "switchyard"))
    ap.add_argument("--corpus", default=os.path.join(here, "real_corpus.json"))
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--repo", default="", help="only this repository")
    ap.add_argument("--runs", type=int, default=1, help="plans per commit (latency median)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()

    with open(a.corpus) as f:
        corpus = json.load(f)

    total = {"tp": 0, "judged": 0, "planned": 0, "commits": 0, "misses": 0}
    all_times = []
    rows = []
    for repo in corpus["repositories"]:
        name = repo["repo"]
        if a.repo and a.repo != name:
            continue
        gitdir = os.path.join(a.mirrors, name.replace("/", "+"), "repo")
        if not os.path.isdir(gitdir):
            print(f"SKIPPED {name}: no git directory at {gitdir} (fetch github:{name})")
            continue
        st = {"tp": 0, "judged": 0, "planned": 0, "commits": 0, "misses": 0}
        for c in repo["commits"]:
            sha = c["commit"]
            if not commit_present(gitdir, sha):
                print(f"SKIPPED {name} {sha[:10]}: commit not in {gitdir}")
                continue
            judged = set(repo["hosts"] if c["judged"] == "all" else c["judged"])
            plan, err, times = run_plan(a.bin, gitdir, sha, a.runs)
            if plan is None:
                print(f"ERROR {name} {sha[:10]}: {err}")
                st["commits"] += 1
                st["judged"] += len(judged)
                st["misses"] += len(judged)
                continue
            all_times.append(statistics.median(times))
            hosts = {h["name"]: h for h in plan["hosts"]}
            planned = {h["name"] for h in plan["hosts"] if h.get("affected")}
            tp = judged & planned
            miss = judged - planned
            extra = planned - judged
            st["commits"] += 1
            st["tp"] += len(tp)
            st["judged"] += len(judged)
            st["planned"] += len(planned)
            st["misses"] += len(miss)
            tag = "ok" if not miss and not extra else ("MISS" if miss else "over")
            print(f"{tag:4} {name} {sha[:10]} [{c.get('kind', '')}] judged {len(judged)} "
                  f"planned {len(planned)} ({statistics.median(times):.0f} ms)")
            if plan.get("discovery_error"):
                print(f"     discovery: {plan['discovery_error'][:200]}")
            for h in sorted(miss):
                print(f"     MISS {h}")
            for h in sorted(extra):
                print(f"     EXTRA {h}: {short_reasons(hosts[h])}")
            if a.verbose:
                for w in plan.get("warnings", []):
                    print(f"     warning: {w[:200]}")
        rows.append((name, st))
        for k in total:
            total[k] += st[k]

    def ratio(n, d):
        return f"{n / d:.3f}" if d else "-"

    print()
    print("| repository | commits | hosts judged | hosts static | both | recall | precision |")
    print("|---|---|---|---|---|---|---|")
    for name, st in rows + [("all", total)]:
        print(f"| {name} | {st['commits']} | {st['judged']} | {st['planned']} | {st['tp']} | "
              f"{ratio(st['tp'], st['judged'])} | {ratio(st['tp'], st['planned'])} |")
    if all_times:
        print(f"\nmedian static plan (CLI process, per commit median of {a.runs}): "
              f"{statistics.median(all_times):.1f} ms, max {max(all_times):.1f} ms")
    return 1 if total["misses"] else 0


if __name__ == "__main__":
    sys.exit(main())
