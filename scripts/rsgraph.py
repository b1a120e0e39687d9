#!/usr/bin/env python3
"""rsgraph.py - the module import graph of a Rust crate's src/ (file -> file, from `use crate::…`
and inline `crate::…` paths), and its circles (strongly connected components). A file's
`#[cfg(test)] mod tests { … }` (at its end, as the crate writes them) is not counted: a test may
reach up. (A copy of /work/shared/hooks/rsgraph.py, for scripts/import-graph.)
Usage: rsgraph.py [SRC]   prints each circle of more than one file, and the top-level modules
each circle spans. Import: circles(src) -> list of sorted file lists."""
import os, re, sys


def modules(src):
    mods = {}
    for d, _, fs in os.walk(src):
        for f in fs:
            if not f.endswith(".rs"):
                continue
            p = os.path.join(d, f)
            rel = os.path.relpath(p, src)[:-3].split(os.sep)
            if rel[0] == "bin":
                continue
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            mods[tuple(rel)] = p
    return mods


def uses(text, here):
    """Absolute module paths named in `text` of module `here` (a tuple): crate::, super::, self::."""
    text = re.sub(r"//[^\n]*", "", text)
    out = []
    for root, base in (("crate", ()), ("super", here[:-1]), ("self", here)):
        for m in re.finditer(r"\buse\s+" + root + r"::([^;]+);", text):
            out += [list(base) + p for p in expand(m.group(1).replace("\n", " "))]
        for m in re.finditer(r"(?<!use )(?<!::)\b" + root + r"::((?:\w+::)*\w+)", text):
            out.append(list(base) + m.group(1).split("::"))
    return out


def expand(s, prefix=()):
    s = s.strip()
    i = s.find("{")
    if i < 0:
        return [list(prefix) + [x for x in s.split("::") if x and x != "self"]]
    head = [x for x in s[:i].split("::") if x]
    body, depth, parts, cur = s[i + 1:s.rfind("}")], 0, [], ""
    for ch in body:
        depth += ch == "{"; depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(cur); cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            out += expand(p, tuple(prefix) + tuple(head))
    return out


def graph(src):
    mods = modules(src)
    g = {}
    for key, p in mods.items():
        tgt = set()
        text = open(p, encoding="utf-8", errors="replace").read()
        text = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)[0]
        for path in uses(text, key):
            for n in range(len(path), 0, -1):
                if tuple(path[:n]) in mods:
                    q = mods[tuple(path[:n])]
                    if q != p:
                        tgt.add(q)
                    break
        g[p] = tgt
    return g


def circles(src="src"):
    g = graph(src)
    index, low, st, on, res, c = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                res.append(sorted(comp))
    for v in g:
        if v not in index:
            visit(v)
    return res


def top(src, p):
    return os.path.relpath(p, src).split(os.sep)[0].removesuffix(".rs")


if __name__ == "__main__":
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    for comp in circles(src):
        tops = sorted({top(src, p) for p in comp})
        print(f"circle of {len(comp)} files across {tops}: {comp}")
