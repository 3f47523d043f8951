"""A line editor for containerd's config.toml that can undo its own edits.

Used by containerd-config.py. The host's config belongs to the operator and
often to kata-deploy too, so it is never re-serialised: each edit changes as
few lines as possible and marks every line it writes with a comment naming
guest-pull-snapshotter. A changed line also carries the original text, so
`unmerge` can put back exactly what was there, in whatever file it finds the
marks, without a backup and without knowing which settings were applied:

  key = value  # set by guest-pull-snapshotter              (key was absent)
  key = value  # set by guest-pull-snapshotter, was: "<original line(s)>"
  [table]  # added by guest-pull-snapshotter                (table was absent)
  imports = [...]  # guest-pull-snapshotter added "<path>"[, was: "<original>"]

A line someone else rewrote since (kata-deploy writes through toml_edit,
which drops a value's comment when it sets that value) has lost its mark: it
is theirs now and `unmerge` leaves it alone.

Line endings are kept line by line (a config may mix CRLF and LF lines): the
text is edited with its "\r\n" endings in it, a line we write ends as the
line it replaces or the line before it, and "was:" holds the original
lines with their endings, so `unmerge` gives back every byte.
"""

import json
import re
import tomllib

MARK = "guest-pull-snapshotter"
_JSON_STR = r'"(?:[^"\\]|\\.)*"'
SET_MARK = re.compile(r"\s*#\s*set by " + MARK + r"(?:, was: (" + _JSON_STR + r"))?\s*$")
TABLE_MARK = re.compile(r"\s*#\s*added by " + MARK + r"\s*$")
IMPORT_MARK = re.compile(r"^(\s*imports\s*=\s*)(.*?)\s*#\s*" + MARK + r" added (" + _JSON_STR
                         + r")(?:, was: (" + _JSON_STR + r"))?\s*$")

EXIT_USAGE = 1
EXIT_UNSUPPORTED = 2


class ConfigError(Exception):
    def __init__(self, message, code=EXIT_UNSUPPORTED):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- TOML bits

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_str(value):
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"unsupported value {value!r}")


def toml_key(part):
    return part if BARE_KEY.fullmatch(part) else toml_str(part)


def table_header(path):
    return "[" + ".".join(toml_key(p) for p in path) + "]"


def parse_key_path(text):
    """Split a dotted TOML key (`a."b.c".d`) into its parts; None if invalid."""
    parts, i, n = [], 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return None
        if text[i] == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j:j + 2])
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            if j >= n:
                return None
            parts.append(json.loads('"' + "".join(buf) + '"'))
            i = j + 1
        elif text[i] == "'":
            j = text.find("'", i + 1)
            if j < 0:
                return None
            parts.append(text[i + 1:j])
            i = j + 1
        else:
            m = BARE_KEY.match(text, i)
            if not m:
                return None
            parts.append(m.group(0))
            i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return parts
        if text[i] != ".":
            return None
        i += 1


def strip_strings(line, state=None):
    """(code, state): `line` without its strings and its comment, and the
    delimiter (three double or single quotes) of the multi-line string still
    open at its end, given the one open at its start (None: none). Quotes in
    comments and in one-line strings open nothing."""
    code, i, n = [], 0, len(line)
    while i < n:
        if state:
            if state == '"""' and line[i] == "\\":
                i += 2
            elif line.startswith(state, i):
                # Up to two more quotes before the delimiter are content.
                run = len(line[i:]) - len(line[i:].lstrip(state[0]))
                i += min(run, 5)
                state = None
            else:
                i += 1
            continue
        c = line[i]
        if c == "#":
            break
        if line.startswith('"""', i) or line.startswith("'''", i):
            state = line[i:i + 3]
            i += 3
        elif c in "\"'":
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if c == '"' and line[j] == "\\" else 1
            i = j + 1
        else:
            code.append(c)
            i += 1
    return "".join(code), state


HEADER = re.compile(r"^\s*\[(?!\[)(.*?)\]\s*(#.*)?$")
ARRAY_HEADER = re.compile(r"^\s*\[\[")
KEY_LINE = re.compile(r"^(\s*)([A-Za-z0-9_\-\"'. ]+?)\s*=(.*)$")


def line_ending(line):
    """The ending of `line`: CRLF or LF."""
    return "\r\n" if line.endswith("\r\n") else "\n"


def lookup(doc, path):
    node = doc
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class Lines:
    """The config as lines, with the table each line belongs to."""

    def __init__(self, text):
        # Split at "\n" only: str.splitlines also splits at U+2028, U+0085
        # and others, which TOML allows inside comments and strings.
        self.lines = [line + "\n" for line in text.split("\n")]
        if self.lines[-1] == "\n":
            self.lines.pop()  # after the final newline, or an empty text
        elif len(self.lines) > 1:
            # A last line without one gets the ending of the line before.
            self.lines[-1] = self.lines[-1][:-1] + line_ending(self.lines[-2])

    def text(self):
        return "".join(self.lines)

    def ending(self, idx):
        """The ending of line `idx` (the nearest one that exists; LF in an
        empty text): what a line we write there ends with."""
        if not self.lines:
            return "\n"
        return line_ending(self.lines[max(0, min(idx, len(self.lines) - 1))])

    def scan(self):
        """Yield (index, kind, data): kind is 'header' (data = path),
        'array' (array-of-tables header), 'string' (a line that starts
        inside a multi-line string or a multi-line array: a line such as
        `  ["a"]` there is an element, no header) or 'line'."""
        in_string, depth = None, 0
        for idx, line in enumerate(self.lines):
            inside, within = in_string, depth
            code, in_string = strip_strings(line, inside)
            depth = max(0, depth + code.count("[") - code.count("]"))
            if inside or within:
                yield idx, "string", None
                continue
            if in_string:
                yield idx, "line", None
                continue
            if ARRAY_HEADER.match(line):
                yield idx, "array", None
                continue
            m = HEADER.match(line)
            if m:
                path = parse_key_path(m.group(1))
                if path is not None:
                    yield idx, "header", path
                    continue
            yield idx, "line", None

    def table_span(self, path):
        """(header index, end index) of the table `path`, or None."""
        start = None
        for idx, kind, data in self.scan():
            if start is not None and kind in ("header", "array"):
                return start, idx
            if kind == "header" and data == path:
                start = idx
        if start is not None:
            return start, len(self.lines)
        return None

    def top_level_end(self):
        for idx, kind, _ in self.scan():
            if kind in ("header", "array"):
                return idx
        return len(self.lines)

    def find_key(self, begin, end, key):
        for idx, kind, _ in self.scan():
            if begin <= idx < end and kind == "line":
                m = KEY_LINE.match(self.lines[idx])
                if m and parse_key_path(m.group(2)) == [key]:
                    return idx
        return None

    def value_span(self, idx):
        """Indices [idx, end) covered by the key/value starting at line idx:
        one line, or until its brackets balance (an array) and its
        multi-line string is closed (brackets in strings and comments do
        not count)."""
        depth, state, end = 0, None, idx
        while end < len(self.lines):
            code, state = strip_strings(self.lines[end], state)
            depth += code.count("[") - code.count("]")
            end += 1
            if depth <= 0 and state is None:
                break
        return end


def parse(text, what="containerd config"):
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} is not valid TOML: {exc}", EXIT_USAGE)


# ------------------------------------------------------------- the editor


class Editor:
    def __init__(self, text):
        self.lines = Lines(text)

    def doc(self):
        return parse(self.lines.text())

    def set_key(self, table, key, value):
        """Make table.key == value, touching as little as possible."""
        if lookup(self.doc(), table + [key]) == value:
            return
        span = self.lines.table_span(table)
        new_line = f"{toml_key(key)} = {toml_value(value)}  # set by {MARK}"
        if span is None:
            eol = self.lines.ending(len(self.lines.lines) - 1)
            self.lines.lines.extend([eol, f"{table_header(table)}  # added by {MARK}{eol}",
                                     "  " + new_line + eol])
        else:
            start, end = span
            found = self.lines.find_key(start + 1, end, key)
            if found is None:
                indent = re.match(r"\s*", self.lines.lines[start]).group(0) + "  "
                self.lines.lines.insert(start + 1, indent + new_line + self.lines.ending(start))
            else:
                indent = KEY_LINE.match(self.lines.lines[found]).group(1)
                stop = self.lines.value_span(found)
                was = "".join(self.lines.lines[found:stop])
                eol = self.lines.ending(stop - 1)
                self.lines.lines[found:stop] = [f"{indent}{new_line}, was: {json.dumps(was)}{eol}"]
        try:
            done = lookup(self.doc(), table + [key]) == value
        except ConfigError:
            # Our header next to the same table in dotted keys or inline:
            # the edit is invalid, not the operator's config.
            done = False
        if not done:
            raise ConfigError(
                f"could not set {'.'.join(table + [key])}: the table is defined in a form "
                "this tool does not edit (dotted keys or an inline table); "
                "set it by hand, see deploy/containerd/README.md")

    def add_import(self, path):
        """Append `path` to the top-level `imports` array."""
        imports = self.doc().get("imports", [])
        if not isinstance(imports, list):
            raise ConfigError("`imports` in the containerd config is not an array")
        top_end = self.lines.top_level_end()
        new_line = f"imports = {toml_value(imports + [path])}  # {MARK} added {json.dumps(path)}"
        idx = self.lines.find_key(0, top_end, "imports")
        if idx is not None:
            stop = self.lines.value_span(idx)
            was = "".join(self.lines.lines[idx:stop])
            eol = self.lines.ending(stop - 1)
            self.lines.lines[idx:stop] = [f"{new_line}, was: {json.dumps(was)}{eol}"]
        else:
            where = self.lines.find_key(0, top_end, "version")
            where = 0 if where is None else where + 1
            self.lines.lines.insert(where, new_line + self.lines.ending(where - 1))
        if path not in self.doc().get("imports", []):
            raise ConfigError("could not add the drop-in to `imports`")


# ---------------------------------------------------------------- unmerge


def _was(text, line):
    """The original text `text` a marked `line` says it replaced. Releases
    before line endings were kept wrote it with LF endings only, and the
    line itself with CRLF in a CRLF config: that text gets CRLF again."""
    if line.endswith("\r\n") and "\r" not in text:
        return text.replace("\n", "\r\n")
    return text


def _restore_import(m, line, keep_import):
    """The text that replaces a marked `imports` line (match m of line)."""
    ours = json.loads(m.group(3))
    current = parse("imports = " + m.group(2), "a marked imports line")["imports"]
    eol = line_ending(line)
    if keep_import is not None and keep_import(ours):
        # Others' files rely on our entry now (a conf.d glob): it is theirs.
        return f"{m.group(1)}{toml_value(current)}{eol}"
    rest = [p for p in current if p != ours]
    if m.group(4) is not None:
        was = _was(json.loads(m.group(4)), line)
        if parse(was, "the original imports line").get("imports") == rest:
            return was
    elif not rest:
        return ""
    # Someone else changed the list since: keep their entries, drop ours.
    return f"{m.group(1)}{toml_value(rest)}{eol}"


def unmerge(text, keep_import=None):
    """`text` without any edit marked as ours (see the module docstring).
    keep_import(path): True if an `imports` entry we added must stay."""
    lines = Lines(text)
    out, added_headers = [], []
    for idx, kind, _ in lines.scan():
        line = lines.lines[idx]
        if kind == "header" and TABLE_MARK.fullmatch(HEADER.match(line).group(2) or ""):
            added_headers.append(len(out))
            out.append(line)
            continue
        if kind != "line":
            out.append(line)
            continue
        m = IMPORT_MARK.match(line)
        if m:
            out.append(_restore_import(m, line, keep_import))
            continue
        m = SET_MARK.search(line)
        if m and KEY_LINE.match(line):
            if m.group(1) is not None:
                out.append(_was(json.loads(m.group(1)), line))
            continue
        out.append(line)
    # A table we added goes again unless someone else has put keys in it.
    for pos in reversed(added_headers):
        end = pos + 1
        while end < len(out) and not (HEADER.match(out[end]) or ARRAY_HEADER.match(out[end])):
            end += 1
        body = [ln for ln in out[pos + 1:end] if ln.strip() and not ln.lstrip().startswith("#")]
        if body:
            eol = line_ending(out[pos])
            out[pos] = TABLE_MARK.sub("", out[pos][:-len(eol)]) + eol
        else:
            start = pos - 1 if pos > 0 and out[pos - 1] in ("\n", "\r\n") else pos
            del out[start:pos + 1]
    return "".join(out)
