#!/usr/bin/env python3
"""Do a photo's parts name objects its whole does not? (README, "Labels from parts of a
photo".) For every photo of the reference library with COCO labels, the words (ImageNet class
names and their WordNet kinds, data/imagenet-kinds.json) of every class above a probability
threshold, from the whole photo (examples/image_probs.rs) and, optionally, also from its five
parts (examples/region_probs.rs: corners and centre of the classifier's own feature map; or
crops run through the classifier, in the same "ID|part" format); reported: the share of COCO
labels other than "person" that those words name, and the words per photo it took. A label
counts when its name (or the few names ImageNet uses for it, SAME below) is one of the words.

usage: measure-part-labels.py WHOLE.jsonl [NAME=PARTS.jsonl ...]
"""
import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = json.load(open(os.path.join(HERE, "..", "data", "imagenet-kinds.json")))["classes"]
SAME = {
    "dining table": ["table"], "cell phone": ["phone", "cellular telephone"],
    "motorcycle": ["motorcycle", "moped", "motor scooter"], "airplane": ["airplane", "airliner"],
    "couch": ["couch", "sofa", "studio couch"], "tv": ["television", "monitor", "screen"],
    "sports ball": ["ball"], "potted plant": ["pot", "plant"], "hair drier": ["hair dryer"],
}


def words_of(c):
    ws = set()
    for t in [KINDS[c]["name"]] + KINDS[c]["kinds"]:
        ws.add(t.lower())
        ws.update(t.lower().split())
    return ws


def above(probs, t):
    ws = set()
    for c, p in enumerate(probs):
        if p >= t:
            ws |= words_of(c)
    return ws


def main():
    whole = {}
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if r["labels"]:
            whole[r["id"]] = r
    sources = [("whole", None)]
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        parts = collections.defaultdict(list)
        for line in open(path):
            r = json.loads(line)
            parts[r["id"].split("|")[0]].append(r["probs"])
        sources.append((f"whole+{name}", parts))
    for t in (0.5, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01):
        cells = []
        for name, parts in sources:
            found = total = words = 0
            for i, r in whole.items():
                ws = above(r["probs"], t)
                for p in (parts or {}).get(i, []):
                    ws |= above(p, t)
                words += len(ws)
                for label in set(r["labels"]) - {"person"}:
                    total += 1
                    found += any(s in ws for s in SAME.get(label, [label]))
            cells.append(f"{name} {found / max(1, total):.3f} ({words / len(whole):.1f} words)")
        print(f"p >= {t}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
