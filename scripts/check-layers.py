#!/usr/bin/env python3
"""The module layering of src/, checked from the source (run by `make test`).

1. No import cycle: at every level of the module tree, the children of one
   module depend on each other without a cycle (A uses B and B uses A,
   directly or through others, is refused). A child using its own parent's
   items is not counted: that is how Rust modules are declared.
2. The engine is pure: nothing under src/engine/ names axum, hyper, tower,
   tokio, reqwest, rusqlite, the AWS SDK, or a crate module outside
   `engine`, `domain`, `secret` and `clock`.

Dependencies are read from `crate::…`, `super::…` and `self::…` paths in the
code (comments, strings and `#[cfg(test)]` modules left out). Exit 1 with
one line per problem; `--self-test` checks that a planted cycle and a
planted import are caught.
"""

import os
import re
import sys
import tempfile

ENGINE_MAY_USE = {"engine", "domain", "secret", "clock"}
ENGINE_FORBIDDEN_CRATES = re.compile(
    r"\b(axum|hyper|hyper_util|tower|tower_http|tokio|tokio_util|reqwest|rusqlite|"
    r"aws_config|aws_sdk_\w+|aws_smithy_\w+|aws_types)::"
)


def lex(src):
    """The code with comments removed and every string or char literal
    emptied (one pass, so a quote inside a comment or a string is never
    taken for the start of something)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            i = src.find("\n", i)
            i = n if i < 0 else i
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif (m := re.compile(r'(?<![\w])b?r(#*)"').match(src, i)) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            end = src.find('"' + m.group(1), m.end())
            out.append('""')
            i = n if end < 0 else end + 1 + len(m.group(1))
        elif c == '"':
            i += 1
            while i < n and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'" and i + 2 < n and (src[i + 1] == "\\" or src[i + 2] == "'"):
            j = src.find("'", i + 2 if src[i + 1] == "\\" else i + 2)
            out.append("' '")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip(src):
    """Source without comments, string contents and #[cfg(test)] modules."""
    src = lex(src)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\(\w+\))?\s+)?mod\s+\w+\s*\{", src):
        if m.start() < i:
            continue
        out.append(src[i : m.start()])
        depth, j = 1, m.end()
        while depth and j < len(src):
            depth += {"{": 1, "}": -1}.get(src[j], 0)
            j += 1
        i = j
    out.append(src[i:])
    return "".join(out)


def modules(root):
    """{module path tuple: file} for every .rs file under root."""
    found = {}
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(d, f), root)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib"):
                rel = rel[:-1]
            if rel == ["main"]:
                continue
            found[tuple(rel)] = os.path.join(d, f)
    return found


def paths(src):
    """Every path written from `crate::`, `super::` or `self::`, as segments;
    a `{…}` group expands to one path per member."""
    out = []
    for m in re.finditer(r"\b(crate|super|self)((?:::\w+)*)(::\{)?", src):
        base = [m.group(1)] + [p for p in m.group(2).split("::") if p]
        if not m.group(3):
            out.append(base)
            continue
        depth, j, start, members = 1, m.end(), m.end(), []
        while depth and j < len(src):
            c = src[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            if depth == 1 and c == "," or depth == 0:
                members.append(src[start:j])
                start = j + 1
            j += 1
        for member in members:
            segs = re.findall(r"\w+", member.split("{")[0])
            out.append(base + [s for s in segs if s != "as"][:2])
    return out


def resolve(me, path, mods):
    """The module a path names: the longest known prefix, or None. `me` is
    the module the path is written in (a `mod.rs` is its folder's module)."""
    base = list(me) if path[0] in ("self", "super") else []
    rest = path[1:] if path[0] != "super" else path
    while rest and rest[0] == "super":
        base, rest = base[:-1], rest[1:]
    full = base + list(rest)
    for n in range(len(full), 0, -1):
        if tuple(full[:n]) in mods:
            return tuple(full[:n])
    return None


def check(root):
    mods = modules(root)
    problems = []
    deps = {}
    for me, f in mods.items():
        src = strip(open(f, encoding="utf-8").read())
        deps[me] = {t for p in paths(src) if (t := resolve(me, p, mods))}
        if me[:1] == ("engine",):
            for m in ENGINE_FORBIDDEN_CRATES.finditer(src):
                problems.append(f"{f}: the engine uses {m.group(1)}")
            for t in deps[me]:
                if t[0] not in ENGINE_MAY_USE:
                    problems.append(f"{f}: the engine uses crate::{'::'.join(t)}")
    parents = {m[:-1] for m in mods if m} | {()}
    for parent in sorted(parents):
        kids = {m[len(parent)] for m in mods if len(m) > len(parent) and m[: len(parent)] == parent}
        graph = {k: set() for k in kids}
        for me, targets in deps.items():
            if len(me) <= len(parent) or me[: len(parent)] != parent:
                continue
            for t in targets:
                if len(t) > len(parent) and t[: len(parent)] == parent and t[len(parent)] != me[len(parent)]:
                    # A child naming its own ancestor is declaration, not use.
                    if me[: len(t)] == t:
                        continue
                    graph[me[len(parent)]].add(t[len(parent)])
        for cycle in cycles(graph):
            where = "::".join(parent) or "crate"
            edges = "; ".join(f"{a} -> {', '.join(sorted(graph[a] & set(cycle)))}" for a in cycle)
            problems.append(f"import cycle among the children of {where}: {edges}")
    return problems


def cycles(graph):
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def self_test():
    tree = {
        "lib.rs": "pub mod a; pub mod b; pub mod engine;",
        "a.rs": "const Q: char = '\"'; use crate::b::B; pub struct A;",
        "b/mod.rs": "pub mod c; pub struct B;",
        "b/c.rs": "use super::B; fn f() -> crate::a::A { todo() } // crate::engine::x",
        "engine/mod.rs": 'pub mod x; const S: &str = "axum::Router";',
        "engine/x.rs": "use crate::a::A;\n#[cfg(test)]\nmod tests { use tokio::time; }\nfn g(_: axum::Router) {}",
    }
    with tempfile.TemporaryDirectory() as d:
        for path, text in tree.items():
            os.makedirs(os.path.dirname(os.path.join(d, path)), exist_ok=True)
            with open(os.path.join(d, path), "w") as f:
                f.write(text)
        got = check(d)
    want = [
        "engine/x.rs: the engine uses axum",
        "engine/x.rs: the engine uses crate::a",
        "import cycle among the children of crate: a -> b; b -> a",
    ]
    got = sorted(p.replace(d + os.sep, "") for p in got)
    if got != sorted(want):
        print("check-layers self-test failed:\n  got  " + "\n       ".join(got), file=sys.stderr)
        return 1
    print("check-layers self-test: a planted cycle and two planted engine imports found")
    return 0


def main():
    if "--self-test" in sys.argv:
        return self_test()
    root = next((a for a in sys.argv[1:] if not a.startswith("-")), "src")
    if not modules(root):
        print(f"check-layers: no .rs files under {root}", file=sys.stderr)
        return 1
    problems = check(root)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"check-layers: {len(modules(root))} modules, no import cycle, the engine is pure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
