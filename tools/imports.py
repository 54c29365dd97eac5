#!/usr/bin/env python3
"""The library's import graph between its top-level modules (a file or a folder under
src/), read from every `crate::` path in the code, and the circles in it.

Usage: tools/imports.py [--dot | --check]
Prints each module with the modules it imports, the number of arrows, and every
strongly connected component of more than one module (an import circle). With --dot,
prints the graph in Graphviz form instead. With --check (run by .ci/run), reads the
layer order from docs/ARCHITECTURE.md (the block after the line LAYERS_MARKER) and
fails on an import circle, an arrow from a lower layer to a higher one, or a module
the order does not place.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
LAYERS_MARKER = "<!-- layer order, lowest first: checked by tools/imports.py --check -->"
# Not part of the library's layering: the binary, and test-only or fuzz-only helpers.
SKIP = {"bin", "lib.rs", "corpus_replay", "fuzz_document"}


def module_of(path):
    """The top-level module a source file belongs to: `auth` for src/auth/users.rs."""
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def graph():
    modules = {module_of(p) for p in SRC.rglob("*.rs")} - {m.removesuffix(".rs") for m in SKIP}
    edges = {m: set() for m in modules}
    for path in SRC.rglob("*.rs"):
        source = module_of(path)
        if source not in edges:
            continue
        text = path.read_text()
        # Test modules do not count: they may reach anywhere.
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
        for target in re.findall(r"crate::(\w+)", text):
            if target in modules and target != source:
                edges[source].add(target)
        # `use crate::{a, b::c}` groups.
        for group in re.findall(r"use crate::\{([^;]*)\};", text, re.S):
            for target in re.findall(r"(?:^|[,{\s])(\w+)(?=::|\s*[,}]|$)", group):
                if target in modules and target != source:
                    edges[source].add(target)
    return edges


def circles(edges):
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layers():
    """The documented layer of each module: {module: (rank, layer name)}."""
    lines = ARCHITECTURE.read_text().splitlines()
    if LAYERS_MARKER not in lines:
        sys.exit(f"{ARCHITECTURE}: no line {LAYERS_MARKER!r}")
    at = lines.index(LAYERS_MARKER) + 1
    if not lines[at].startswith("```"):
        sys.exit(f"{ARCHITECTURE}: the layer order must follow its marker in a ``` block")
    placed = {}
    rank = 0
    for line in lines[at + 1 :]:
        if line.startswith("```"):
            break
        if not line.strip():
            continue
        # `name: module module ...`, one layer per line, lowest first.
        name, _, modules = line.partition(":")
        rank += 1
        for m in modules.split():
            if m in placed:
                sys.exit(f"{ARCHITECTURE}: module {m} is in two layers")
            placed[m] = (rank, name.strip())
    return placed


def check(edges):
    """Every fault of the graph against the documented layers."""
    placed = layers()
    faults = []
    for m in sorted(edges):
        if m not in placed:
            faults.append(f"module {m} is in no layer of {ARCHITECTURE.name}")
    for m in sorted(placed):
        if m not in edges:
            faults.append(f"{ARCHITECTURE.name} places {m}, which is not a module")
    for m in sorted(edges):
        for t in sorted(edges[m]):
            if m in placed and t in placed and placed[t][0] > placed[m][0]:
                faults.append(
                    f"{m} ({placed[m][1]}) imports {t} ({placed[t][1]}), a higher layer"
                )
    for c in circles(edges):
        faults.append(f"import circle: {', '.join(c)}")
    return faults


def main():
    edges = graph()
    if "--check" in sys.argv:
        faults = check(edges)
        for f in faults:
            print(f)
        arrows = sum(len(t) for t in edges.values())
        print(f"{len(edges)} modules, {arrows} import arrows, {len(faults)} layering fault(s)")
        sys.exit(1 if faults else 0)
    if "--dot" in sys.argv:
        print("digraph imports {")
        for m in sorted(edges):
            for t in sorted(edges[m]):
                print(f'  "{m}" -> "{t}";')
        print("}")
        return
    for m in sorted(edges):
        print(f"{m:12} -> {', '.join(sorted(edges[m])) or '-'}")
    arrows = sum(len(t) for t in edges.values())
    found = circles(edges)
    print(f"\n{len(edges)} modules, {arrows} import arrows, {len(found)} circle(s)")
    for c in found:
        print(f"circle of {len(c)}: {', '.join(c)}")


if __name__ == "__main__":
    main()
