#!/usr/bin/env python3
"""Counts the unit suite: every test case of every Bazel test target.

Usage: bazel_test_totals.py BAZEL_TEST_OUTPUT TESTLOGS_DIR

Reads the summary lines of a `bazel test` run ("//pkg:name  PASSED in 0.1s",
"(cached) PASSED", "FAILED", "TIMEOUT", "NO STATUS", "FAILED TO BUILD"...)
and, for each of those targets only (a stale test.xml of a removed target is
never read), TESTLOGS_DIR/pkg/name/test.xml:
  - a gtest case that ran and completed is a pass, one with a <failure> or
    <error> a failure, a GTEST_SKIP or DISABLED_ case a skip (with reason);
  - a target whose binary crashed or timed out has no gtest XML (Bazel writes
    one <testcase> with an <error>), which counts as a failure; a target
    Bazel did not report PASSED with no failed case in its XML counts one
    failure more, so a crash is never lost;
  - a passing target without gtest cases (e.g. an sh_test) counts one pass;
  - the test.xml of a target that did not run this time (FAILED TO BUILD,
    NO STATUS, INCOMPLETE, SKIPPED) is a stale one and is not read.
Prints a FAIL or SKIP line per failed or skipped case, one summary line per
target ("target //pkg:name: 12 cases, ..."), how many targets' results
Bazel took from its cache (not run again), then, as the harness does,
"N passed, M failed, K skipped". Exit status 1 if anything failed.
"""

import os
import re
import sys
import xml.etree.ElementTree as ET

SUMMARY = re.compile(
    r"^(//\S+)\s+(\(cached\) )?"
    r"(PASSED|FLAKY|FAILED TO BUILD|FAILED|TIMEOUT|NO STATUS|INCOMPLETE|SKIPPED)\b")
# The results of a target that ran: its test.xml is this run's (or the
# cached run's). The others (not built, not run, cut short) have none.
RAN = ("PASSED", "FLAKY", "FAILED", "TIMEOUT")


def targets(output_path):
    found = {}
    with open(output_path, errors="replace") as out:
        for line in out:
            m = SUMMARY.match(line.strip())
            if m:
                found[m.group(1)] = (m.group(3), bool(m.group(2)))
    return found


def xml_path(testlogs, target):
    pkg, _, name = target[2:].partition(":")
    return os.path.join(testlogs, pkg, name, "test.xml")


def cases(path):
    """Yields (name, kind, detail) per <testcase>: kind pass, fail or skip."""
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        name = "%s.%s" % (case.get("classname", ""), case.get("name", ""))
        name = name.lstrip(".")
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            yield name, "fail", bad.get("message", "") or (bad.text or "")
        elif case.get("result") == "skipped" or case.find("skipped") is not None:
            why = case.find("skipped")
            yield name, "skip", (why.get("message", "") if why is not None else "") or "GTEST_SKIP"
        elif case.get("status") == "notrun":
            yield name, "skip", "disabled (DISABLED_ prefix)"
        else:
            yield name, "pass", ""


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    passed = failed = skipped = cached_targets = 0
    found = targets(sys.argv[1])
    for target, (status, cached) in sorted(found.items()):
        cached_targets += cached
        path = xml_path(sys.argv[2], target)
        counts = {"pass": 0, "fail": 0, "skip": 0}
        details = []
        # Only a target that ran (now, or in the run Bazel's cache restored)
        # has its own test.xml; one that did not build or run may have a
        # stale one of an earlier run, whose cases would count as results.
        if status in RAN and os.path.isfile(path):
            try:
                for name, kind, detail in cases(path):
                    counts[kind] += 1
                    if kind != "pass":
                        details.append((kind, name, detail))
            except ET.ParseError as e:
                details.append(("fail", "test.xml", "unreadable: %s" % e))
                counts["fail"] += 1
        if status in ("PASSED", "FLAKY") and sum(counts.values()) == 0:
            counts["pass"] = 1
        if status not in ("PASSED", "FLAKY") and counts["fail"] == 0:
            counts["fail"] += 1
            details.append(("fail", "target", "Bazel reports %s without a failed case "
                            "(crashed, timed out or not built)" % status))
        for kind, name, detail in details:
            first = " ".join(line.strip() for line in detail.strip().split("\n")[:3])[:300]
            if kind == "skip":
                print("SKIP: %s %s (%s)" % (target, name, first))
            else:
                print("FAIL: %s %s%s" % (target, name, ": " + first if first else ""))
        total = sum(counts.values())
        print("target %s: %d cases, %d passed, %d failed, %d skipped (Bazel: %s%s)" % (
            target, total,
            counts["pass"], counts["fail"], counts["skip"], status,
            ", cached" if cached else ""))
        passed += counts["pass"]
        failed += counts["fail"]
        skipped += counts["skip"]
    if cached_targets:
        print("%d of %d targets: Bazel's cached result of an earlier run with the "
              "same inputs, not run again (the long mode runs every one)" % (
                  cached_targets, len(found)))
    if not found:
        print("FAIL: no test target in the bazel test output")
        failed += 1
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
