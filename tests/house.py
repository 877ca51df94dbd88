#!/usr/bin/env python3
"""The house rules of the workspace (make test runs this; issue 44).

1. Tools are thin: no lib.rs under tools/, and no source file under tools/
   over 80 lines (the logic lives in crates/).
2. No two modules of one crate import each other: for every pair of
   source files of a crate, where neither is the other's ancestor module
   (lib.rs, a mod.rs and their children), at most one refers to the other
   (`crate::a::b`, `super::b`, `use crate::{a, b::c}`).
3. docs/architecture.md names functions that exist: every `crate::path::fn`
   in backticks there is defined (`fn name`) in that crate's source.

Prints each breach and exits 1 when there is one.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_TOOL_LINES = 80
failures = []


def rust_files(folder):
    for base, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if f.endswith(".rs"):
                yield os.path.join(base, f)


# 1. Thin tools.
for path in rust_files(os.path.join(ROOT, "tools")):
    rel = os.path.relpath(path, ROOT)
    if os.path.basename(path) == "lib.rs":
        failures.append(f"{rel}: a library under tools/ (move it to a crate under crates/)")
    if "/src/" in rel:
        n = sum(1 for _ in open(path, encoding="utf-8"))
        if n > MAX_TOOL_LINES:
            failures.append(f"{rel}: {n} lines, over {MAX_TOOL_LINES} (a tool's main parses, calls a crate, maps the error)")


# 2. Module imports within each crate.
def module_of(src, path):
    """The module path of a source file: lib.rs -> (), a/mod.rs -> (a,), a/b.rs -> (a, b)."""
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def paths_in_use_tree(tree):
    """`{a, b::{c, d}}` -> ['a', 'b::c', 'b::d']."""
    tree = tree.strip()
    out, depth, start = [], 0, 0
    items = []
    for i, ch in enumerate(tree):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(tree[start:i])
            start = i + 1
    items.append(tree[start:])
    for item in items:
        item = item.strip()
        if not item:
            continue
        m = re.match(r"^([\w:]*?)(?:::)?\{(.*)\}$", item, flags=re.S)
        if m:
            prefix = m.group(1)
            for sub in paths_in_use_tree(m.group(2)):
                out.append(f"{prefix}::{sub}" if prefix else sub)
        else:
            out.append(item.split(" as ")[0].strip())
    return out


def references(text, here):
    """The module paths (from the crate root) that a file's text names."""
    refs = []
    for m in re.finditer(r"\buse\s+(crate|super)::(\{.*?\}|[^;]*?);", text, flags=re.S):
        base = () if m.group(1) == "crate" else here[:-1]
        for p in paths_in_use_tree(m.group(2)):
            refs.append(base + tuple(x for x in p.split("::") if x and x != "self"))
    for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
        base = () if m.group(1) == "crate" else here[:-1]
        refs.append(base + tuple(m.group(2).strip(":").split("::")))
    return refs


for crate_dir in sorted(os.listdir(os.path.join(ROOT, "crates"))):
    src = os.path.join(ROOT, "crates", crate_dir, "src")
    if not os.path.isdir(src):
        continue
    files = {module_of(src, p): p for p in rust_files(src)}
    edges = set()
    for here, path in files.items():
        text = strip_comments(open(path, encoding="utf-8").read())
        for ref in references(text, here):
            # the longest prefix that is a module file
            target = max((ref[:k] for k in range(len(ref) + 1) if ref[:k] in files), key=len)
            if target != here:
                edges.add((here, target))
    for a, b in sorted(edges):
        if a < b and (b, a) in edges:
            if a == b[: len(a)] or b == a[: len(b)]:
                continue  # a module and its own submodule
            name = lambda m: "::".join(m) or "lib"
            failures.append(
                f"crates/{crate_dir}: modules {name(a)} and {name(b)} import each other "
                f"({os.path.relpath(files[a], ROOT)}, {os.path.relpath(files[b], ROOT)})")

# 3. The functions docs/architecture.md names.
arch = os.path.join(ROOT, "docs", "architecture.md")
if not os.path.exists(arch):
    failures.append("docs/architecture.md: missing")
else:
    named = re.findall(r"`([a-z_]+(?:::[A-Za-z_][A-Za-z0-9_]*)+)`", open(arch, encoding="utf-8").read())
    crates = {d: os.path.join(ROOT, "crates", d, "src") for d in os.listdir(os.path.join(ROOT, "crates"))}
    crates.update({c.replace("-", "_"): s for c, s in list(crates.items())})
    checked = 0
    for path in sorted(set(named)):
        parts = path.split("::")
        crate, fn = parts[0], parts[-1]
        if crate not in crates or not fn[0].islower():
            continue
        # The deepest module the path names (crate::a::b::Type::f -> a/b.rs),
        # else the whole crate.
        src, files = crates[crate], list(rust_files(crates[crate]))
        for k in range(len(parts) - 2, 0, -1):
            mod = os.path.join(src, *parts[1 : k + 1])
            found = [f for f in (mod + ".rs", os.path.join(mod, "mod.rs")) if os.path.exists(f)]
            if found:
                files = found
                break
        text = "\n".join(open(f, encoding="utf-8").read() for f in files)
        checked += 1
        if not re.search(rf"\bfn\s+{re.escape(fn)}\b", text):
            where = ", ".join(os.path.relpath(f, ROOT) for f in files) if len(files) < 3 else f"crates/{crate}"
            failures.append(f"docs/architecture.md names `{path}`: no `fn {fn}` in {where}")
    if checked < 10:
        failures.append(f"docs/architecture.md names {checked} functions of our crates; the data flow should name each stage's")

for f in failures:
    print(f"house: {f}", file=sys.stderr)
if failures:
    sys.exit(1)
print("house: tools thin, no module import circles, docs/architecture.md's functions exist")
