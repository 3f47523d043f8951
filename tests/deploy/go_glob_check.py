#!/usr/bin/env python3
"""Checks deploy/k8s/scripts/go_glob.py against Go's own filepath.Match and
filepath.Glob (tests/deploy/go_match, built by the caller): a fixed list of
the cases that differ from Python's fnmatch, then seeded random patterns
and names over the characters that matter, then globs on a tree of odd
names. Usage: go_glob_check.py GO_MATCH_BINARY SCRIPTS_DIR"""

import json
import os
import random
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[2])
import go_glob  # noqa: E402

FIXED = [
    ("[^g]*.toml", "guest-pull.toml"), ("[!g]*.toml", "guest-pull.toml"),
    ("[^g]*.toml", "kata.toml"), ("[!g]*.toml", "!x.toml"),
    ("*.toml", ".hidden.toml"), ("\\*.toml", "*.toml"), ("\\*.toml", "a.toml"),
    ("[", "["), ("[]", "]"), ("[]a]", "]"), ("[a-]", "a"), ("[-a]", "-"),
    ("[\\-a]", "-"), ("[z-a]", "m"), ("[^z-a]", "m"), ("a\\", "a"), ("[a", "a"),
    ("*[", "x"), ("?", ""), ("?", "é"), ("[é-ü]", "ö"), ("*", ""), ("", ""),
    ("a*b*c", "abxbc"), ("[\\]]", "]"), ("[^]]", "a"), ("[a-c-e]", "d"),
]
ALPHABET = "ab^!-]\\[*?./€"
NAME_ALPHABET = "ab^!-]\\[*?.é€/"
ROUNDS = 100000  # bounded: each is one pattern and one name


def random_cases(seed):
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        p = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 7)))
        n = "".join(rng.choice(NAME_ALPHABET) for _ in range(rng.randint(0, 6)))
        yield p, n


def python_match(pattern, name):
    try:
        return "true" if go_glob.match(pattern, name) else "false"
    except go_glob.BadPattern:
        return "bad"


def python_glob(pattern, root=""):
    try:
        return go_glob.glob(pattern, root)
    except go_glob.BadPattern:
        return None


def make_tree(root):
    names = ["a.toml", ".hidden.toml", "[x].toml", "*.toml", "b\\c.toml", "guest-pull.toml",
             "!g.toml", "^g.toml", "é.toml", "plain"]
    for d in ["conf.d", "conf.e", ".dot", "[d]"]:
        os.makedirs(os.path.join(root, d))
        for n in names:
            open(os.path.join(root, d, n), "w").close()
    os.symlink("conf.d", os.path.join(root, "link.d"))
    os.symlink("nowhere", os.path.join(root, "conf.d", "dangling.toml"))
    open(os.path.join(root, "file.d"), "w").close()


GLOBS = ["*/*.toml", "conf.d/*", "conf.?/[^g]*.toml", "conf.?/[!g]*.toml", "*/\\[x\\].toml",
         "\\[d\\]/*", "[[]d]/a.toml", "*.d/*.toml", "file.d/*", "conf.d/[", "[/*.toml",
         "conf.d/dangling.toml", "missing/*", "*", ".*/*.toml", "conf.d/\\*.toml", "link.d/a.toml",
         # Go joins with filepath.Join, which cleans: no "//", "." or ".." in what it returns
         "conf.d//*.toml", "./conf.d/a.*", "conf.e/../conf.d/*.toml", "link.d/../conf.e/a.*",
         # Go refuses 10,000 directories with meta characters (CVE-2022-30632)
         "/".join(["*"] * 9999) + "/x.toml", "/".join(["*"] * 10000) + "/x.toml"]


def main():
    cases = FIXED + list(random_cases(1))
    with tempfile.TemporaryDirectory() as tmp:
        make_tree(tmp)
        globs = [os.path.join(tmp, g) for g in GLOBS]
        req = {"match": [list(c) for c in cases], "glob": globs}
        done = subprocess.run([sys.argv[1]], input=json.dumps(req), capture_output=True, text=True,
                              timeout=120, check=True)
        want = json.loads(done.stdout)
        bad = [f"Match({p!r}, {n!r}): Go {w}, ours {python_match(p, n)}"
               for (p, n), w in zip(cases, want["match"]) if python_match(p, n) != w]
        for g, pattern, w in zip(GLOBS, globs, want["glob"]):
            got, rooted = python_glob(pattern), python_glob("/" + g, tmp)
            want_rooted = None if w is None else [p[len(tmp):] for p in w]
            if got != w or rooted != want_rooted:
                bad.append(f"Glob({g[:60]!r}): Go {w}, ours {got}, ours under a root {rooted}")
    for line in bad[:20]:
        print(line)
    print(f"{len(cases)} Match cases and {len(GLOBS)} Glob cases, {len(bad)} differ from Go")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
