"""Every example in docs/openapi.json validates against its own schema (JSON Schema 2020-12,
formats checked); with a second argument, a JSON list of answers {method, path, status, body},
every body validates against its operation's response schema and every success answer the
document describes is among them. Run by cluster/tests/t60_schemathesis.rs with the venv
schemathesis lives in."""
import json, sys
import jsonschema_rs
doc = json.load(open(sys.argv[1]))
bad = []
n = 0
def check(name, schema, example):
    global n
    n += 1
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "components": doc["components"]}
    v = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
    for e in v.iter_errors(example):
        bad.append(f"{name}: {e.message} at {list(e.instance_path)}")
for name, s in doc["components"]["schemas"].items():
    if "example" in s:
        check(name, s, s["example"])
for path, ops in doc["paths"].items():
    for m, op in ops.items():
        for st, r in op.get("responses", {}).items():
            for ct, c in r.get("content", {}).items():
                if "example" in c:
                    check(f"{m} {path} {st}", c["schema"], c["example"])
print(f"{n} examples checked against their schemas, {len(bad)} invalid")
if len(sys.argv) > 2:
    answers = json.load(open(sys.argv[2]))
    seen = set()
    for a in answers:
        op = doc["paths"].get(a["path"], {}).get(a["method"])
        r = (op or {}).get("responses", {}).get(a["status"])
        if r is None:
            bad.append(f"{a['method']} {a['path']} {a['status']}: not in the document")
            continue
        for ct, c in r.get("content", {}).items():
            check(f"{a['method']} {a['path']} {a['status']} body", c["schema"], a["body"])
        seen.add((a["path"], a["method"], a["status"]))
    described = {(p, m, st) for p, ops in doc["paths"].items() for m, op in ops.items()
                 for st in op.get("responses", {}) if st.startswith("2")}
    for p, m, st in sorted(described - seen):
        bad.append(f"{m} {p} {st}: no answer of the walk")
    print(f"{len(answers)} answers of {len(seen)} of {len(described)} success answers checked")
print(f"{len(bad)} problems")
for b in bad: print(b)
sys.exit(1 if bad else 0)
