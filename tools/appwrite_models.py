#!/usr/bin/env python3
"""Extracts the response models of an Appwrite SDK's `models.d.ts` as JSON.

Usage: tools/appwrite_models.py node_modules/node-appwrite/dist/models.d.ts MODEL...
Prints {"sdk": ..., "models": {Model: {field: {"type", "required", "nullable", "items"}}}}
for the models named (and every model their fields name), sorted, for
crates/permdb-server/tests/fixtures/appwrite_models.json: the test `server_models` checks permdb's answers
against it, and `.ci/run` regenerates it from the pinned package and fails on a change.
"""

import json
import re
import sys

SCALARS = {"string": "string", "number": "number", "boolean": "boolean", "bigint": "number"}


def parse(text):
    """Every `export type Name = { ... };` block: field -> (TS type, required)."""
    models = {}
    for m in re.finditer(r"\n    export type (\w+)(?:<[^\n]*?>)? = \{\n(.*?)\n    \};", text, re.S):
        fields = {}
        for f in re.finditer(r"\n        (\"?[\w$]+\"?)(\??): (.+?);(?=\n)", "\n" + m.group(2) + "\n"):
            fields[f.group(1).strip('"')] = (f.group(3).strip(), f.group(2) != "?")
        models[m.group(1)] = fields
    for m in re.finditer(r"\n    export type (\w+)(?:<[^\n]*?>)? = \{\};", text):
        models[m.group(1)] = {}
    enums = set(re.findall(r"export declare enum (\w+)", text))
    enums |= set(re.findall(r"import \{ (\w+) \} from '\./enums/", text))
    return models, enums


def kind(ts, models, enums):
    """The JSON kind of a TS type: scalar name, "object", or ("array", item model)."""
    if ts.startswith("(") and ts.endswith(")[]"):
        return "array", None, False  # an array of a union of models (attributes, columns)
    parts = [p.strip() for p in ts.split("|")]
    nullable = "null" in parts
    parts = [p for p in parts if p != "null"]
    t = parts[0]
    if len(parts) > 1 and all(SCALARS.get(p) == "number" for p in parts):
        t = "number"
    if t.endswith("[]"):
        inner = t[:-2].strip("()")
        item = inner if inner in models else None
        return "array", item, nullable
    if t in SCALARS:
        return SCALARS[t], None, nullable
    if t in enums:
        return "string", None, nullable
    return "object", (t if t in models else None), nullable


def main():
    path, wanted = sys.argv[1], sys.argv[2:]
    text = open(path, encoding="utf-8").read()
    models, enums = parse(text)
    out, todo = {}, list(wanted)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        if name not in models:
            sys.exit(f"no model {name} in {path}")
        fields = {}
        for field, (ts, required) in models[name].items():
            k, item, nullable = kind(ts, models, enums)
            entry = {"type": k, "required": required, "nullable": nullable}
            if item:
                entry["items" if k == "array" else "model"] = item
                todo.append(item)
            fields[field] = entry
        out[name] = fields
    package = json.load(open(path.rsplit("/dist/", 1)[0] + "/package.json"))
    sdk = f"{package['name']}@{package['version']}"
    print(json.dumps({"sdk": sdk, "models": dict(sorted(out.items()))}, indent=1, sort_keys=True))


main()
