#!/usr/bin/env python3
"""Builds demo/: a small subset of ../shared/data/reference-library that ships with the project
so `campaign-studio demo` works in a clone without the shared fixture. Only images whose licence
allows commercial use, captioned ones first, spread over objectives and nodes; <= 3 MB in all.
Run from the repository root: python3 scripts/make-demo-subset.py"""
import json, os, shutil, sys

SRC = os.path.join("..", "shared", "data", "reference-library")
DST = "demo"
WANT = 40
MAX_BYTES = 3_000_000

rows = [json.loads(l) for l in open(os.path.join(SRC, "manifest.jsonl"), encoding="utf-8")]
ok = [r for r in rows if r.get("commercial_use") is True]
# Captioned and labelled first; then round-robin over (objective, node) for variety.
ok.sort(key=lambda r: (not r["caption"], not r["labels"], r["id"]))
groups = {}
for r in ok:
    groups.setdefault((r["objective"], r["node"]), []).append(r)
picked, total = [], 0
while len(picked) < WANT and any(groups.values()):
    for key in sorted(groups):
        if groups[key] and len(picked) < WANT:
            r = groups[key].pop(0)
            size = os.path.getsize(os.path.join(SRC, r["file"]))
            if total + size <= MAX_BYTES:
                picked.append(r)
                total += size
picked.sort(key=lambda r: r["id"])
if os.path.isdir(DST):
    shutil.rmtree(DST)
os.makedirs(os.path.join(DST, "images"))
with open(os.path.join(DST, "manifest.jsonl"), "w", encoding="utf-8") as m:
    for r in picked:
        shutil.copyfile(os.path.join(SRC, r["file"]), os.path.join(DST, r["file"]))
        m.write(json.dumps(r, ensure_ascii=False) + "\n")
with open(os.path.join(DST, "ATTRIBUTION.md"), "w", encoding="utf-8") as a:
    a.write("# Demo images: attribution\n\n")
    a.write("A subset of the project's reference-library fixture (COCO 2017 and scikit-image sample data),\n")
    a.write("only images whose licence allows commercial use. Images were resized to at most 512 px.\n")
    a.write("`objective`, `node` and `results` in manifest.jsonl are SYNTHETIC campaign metadata.\n\n")
    a.write("| id | licence | attribution |\n|---|---|---|\n")
    for r in picked:
        a.write(f"| {r['id']} | {r['license']} | {r['attribution'].replace('|', '/')} |\n")
print(f"{len(picked)} images, {total} bytes", file=sys.stderr)
