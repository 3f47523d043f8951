"""Go's filepath.Match and filepath.Glob on Linux, as containerd resolves a
glob in `imports`. Python's fnmatch and glob read the same patterns
otherwise: in Go `[^x]` is the negated class and `[!x]` the class of `!`
and `x`, a backslash escapes the next character, every name (dot files
too) can match `*`, and a malformed pattern can be an error, which
containerd does not start with. Go matches UTF-8 bytes (`?` and a class
take one rune, a `*` may skip into the middle of one), so this does too.
tests/deploy/go_glob_check.py compares it with Go's own functions.
A tree at a root (the host's /, mounted in the installer pod) is read with
its links resolved as the host resolves them (host_path.py)."""

import os

import host_path

SEP = ord("/")
GLOB_DEPTH_LIMIT = 10000  # Go's pathSeparatorsLimit
RUNE_ERROR = 0xFFFD


class BadPattern(ValueError):
    """A pattern Go's filepath.Match refuses (filepath.ErrBadPattern)."""

    def __init__(self):
        super().__init__("syntax error in pattern")


def _rune(b, i):
    """(the code point of the UTF-8 rune at b[i], its length in bytes); an
    invalid byte is U+FFFD of length 1, as Go's utf8.DecodeRune."""
    for n in (1, 2, 3, 4):
        try:
            return ord(b[i:i + n].decode("utf-8")), n
        except UnicodeDecodeError:
            continue
    return RUNE_ERROR, 1


def _scan_chunk(p):
    """(a star before it, the chunk up to the next star outside a class,
    the rest of the pattern)."""
    star = False
    while p[:1] == b"*":
        p, star = p[1:], True
    in_class, i = False, 0
    while i < len(p):  # each pass consumes at least a byte
        c = p[i]
        if c == ord("\\") and i + 1 < len(p):
            i += 1
        elif c == ord("["):
            in_class = True
        elif c == ord("]"):
            in_class = False
        elif c == ord("*") and not in_class:
            break
        i += 1
    return star, p[:i], p[i:]


def _class_rune(chunk):
    """(a rune of a class, the chunk after it); BadPattern if the class
    ends there or the rune is `-` or `]` unescaped."""
    if not chunk or chunk[0] in b"-]":
        raise BadPattern()
    if chunk[0] == ord("\\"):
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern()
    r, n = _rune(chunk, 0)
    if (r == RUNE_ERROR and n == 1) or not chunk[n:]:
        raise BadPattern()
    return r, chunk[n:]


def _match_chunk(chunk, s):
    """The rest of `s` after `chunk` matched its start, or None. The whole
    chunk is read even once it failed, so a malformed one raises."""
    failed = False
    while chunk:  # each pass consumes at least a byte of the chunk
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == ord("["):
            r = 0
            if not failed:
                r, n = _rune(s, 0)
                s = s[n:]
            chunk = chunk[1:]
            negated = chunk[:1] == b"^"
            if negated:
                chunk = chunk[1:]
            matched, ranges = False, 0
            while True:  # each pass consumes a range, or the `]`
                if chunk[:1] == b"]" and ranges:
                    chunk = chunk[1:]
                    break
                lo, chunk = _class_rune(chunk)
                hi = lo
                if chunk[0] == ord("-"):
                    hi, chunk = _class_rune(chunk[1:])
                matched = matched or lo <= r <= hi
                ranges += 1
            if matched == negated:
                failed = True
        elif c == ord("?"):
            if not failed:
                if s[0] == SEP:
                    failed = True
                s = s[_rune(s, 0)[1]:]
            chunk = chunk[1:]
        else:
            if c == ord("\\"):
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern()
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    return None if failed else s


def _match_bytes(p, name):
    while p:  # each pass consumes a chunk
        star, chunk, p = _scan_chunk(p)
        if star and not chunk:
            return SEP not in name
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or p):
            name = rest
            continue
        if not star:
            return False
        found = None
        for i in range(len(name)):  # skip 1, 2, ... bytes, never a `/`
            if name[i] == SEP:
                break
            rest = _match_chunk(chunk, name[i + 1:])
            if rest is not None and (p or not rest):
                found = rest
                break
        if found is None:
            return False
        name = found
    return not name


def match(pattern, name):
    """Whether `name` matches `pattern` whole, as Go's filepath.Match on
    Linux; BadPattern for a malformed pattern (as far as Go reads it)."""
    return _match_bytes(os.fsencode(pattern), os.fsencode(name))


def has_meta(path):
    return any(c in path for c in "*?[\\")


def _split(pattern):
    """Go's Split and cleanGlobPath: (directory, last element)."""
    i = pattern.rfind("/")
    d, f = pattern[:i + 1], pattern[i + 1:]
    if d == "":
        d = "."
    elif d != "/":
        d = d[:-1]
    return d, f


def clean(path):
    """Go's filepath.Clean: normpath, which keeps a leading "//" that Go
    makes "/"."""
    path = os.path.normpath(path)
    return path[1:] if path.startswith("//") else path


def _glob_dir(d, pattern, root):
    """The entries of directory `d` whose name matches `pattern`, in byte
    order, joined to `d` as Go's filepath.Join (cleaned: no "//", "." or
    ".." left of `d`); none if `d` is no directory or cannot be read."""
    path = host_path.host(root, d)
    if path is None:  # a link loop
        return []
    try:
        names = os.listdir(path)
    except OSError:
        return []
    names.sort(key=os.fsencode)
    return [clean(d + "/" + n) for n in names if match(pattern, n)]


def glob(pattern, root=""):
    """Go's filepath.Glob of the absolute `pattern` on the tree at `root`
    (a prefix that is no pattern; links in the tree are followed within
    it): the matching paths without `root`, in Go's order. BadPattern where
    Go fails."""
    match(pattern, "")  # Go checks the pattern first
    if not has_meta(pattern):
        path = host_path.host(root, pattern, follow_last=False)  # Go's Lstat
        return [pattern] if path is not None and os.path.lexists(path) else []
    # Go recurses on the directory while it has meta characters (each
    # checked as above, at most 10,000 deep: CVE-2022-30632); the same,
    # iteratively.
    files, p = [], pattern
    while True:  # each pass drops the last element of p
        d, f = _split(p)
        files.append(f)
        if not has_meta(d):
            break
        if d == p or len(files) == GLOB_DEPTH_LIMIT:
            raise BadPattern()
        match(d, "")
        p = d
    paths = [d]
    for f in reversed(files):
        paths = [m for parent in paths for m in _glob_dir(parent, f, root)]
    return paths
