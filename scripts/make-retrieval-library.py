#!/usr/bin/env python3
"""Builds tests/fixtures/retrieval/library/: the commercial-use photos of the team's reference
library (../shared/data/reference-library), resized to at most 320 px, with their manifest rows
and attributions, so the retrieval tests can always run in a clone that has only the repository.

Run once from the repository root, with Pillow (pip install pillow==13.0.0):
    python3 scripts/make-retrieval-library.py
Non-commercial licences are left out, as they are from demo/.
"""
import json
import os
import sys

from PIL import Image

SRC = "../shared/data/reference-library"
DST = "tests/fixtures/retrieval/library"
MAX_PX = 320


def main() -> int:
    rows = [json.loads(l) for l in open(os.path.join(SRC, "manifest.jsonl")) if l.strip()]
    keep = [r for r in rows if r["commercial_use"]]
    os.makedirs(os.path.join(DST, "images"), exist_ok=True)
    out_rows = []
    for r in keep:
        src = os.path.join(SRC, r["file"])
        dst = os.path.join(DST, r["file"])
        with Image.open(src) as im:
            im = im.convert("RGB")
            im.thumbnail((MAX_PX, MAX_PX), Image.LANCZOS)
            im.save(dst, "JPEG", quality=85, optimize=True)
            w, h = im.size
        r = dict(r)
        r["width"], r["height"] = int(w), int(h)
        r["attribution"] = r["attribution"].replace(
            "resized to max 512 px", f"resized to max {MAX_PX} px"
        )
        r.pop("sha256", None)
        out_rows.append(r)
    with open(os.path.join(DST, "manifest.jsonl"), "w") as f:
        for r in out_rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(DST, "ATTRIBUTION.md"), "w") as f:
        f.write(
            "# Attribution\n\n"
            "Test data only: photos from the COCO 2017 dataset (cocodataset.org), each under the\n"
            "licence named below (commercial use allowed), resized to at most "
            f"{MAX_PX} px. Captions and labels\n"
            "come from COCO's annotations; objective, node and results are synthetic.\n"
            "Made by scripts/make-retrieval-library.py.\n\n"
        )
        for r in out_rows:
            f.write(f"- `{r['file']}` ({r['license']}): {r['attribution']}\n")
    print(f"{len(out_rows)} of {len(rows)} photos written to {DST}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
