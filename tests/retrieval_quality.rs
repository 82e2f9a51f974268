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

use campaign_studio::config::Config;
use campaign_studio::domain::SearchFilter;
use campaign_studio::engine::Library;
use campaign_studio::engine::ingest::{IngestOptions, ingest};
use campaign_studio::engine::reindex::reindex;
use campaign_studio::engine::search::{SearchRequest, search};
use campaign_studio::paths::Paths;
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
    let e = lib.embedder_for(embedder).unwrap();
    let index = lib.load_index(e.id()).unwrap();
    let mut total = 0.0;
    let mut tops = Vec::new();
    for (text, labels) in queries {
        let r = search(
            &lib.store,
            &index,
            e.as_ref(),
            &SearchRequest {
                query: text.clone(),
                filter: SearchFilter::default(),
                k: 40,
                kpi_weight: 0.0,
                rerank_pool: 40,
            },
        )
        .unwrap();
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
    let dev = judgeable(
        load_sets(&fixtures(), "dev_english.jsonl", "dev_bilingual.jsonl"),
        &judged,
        full,
    );

    // The reference library, ingested with the real models, then given both embedders' vectors.
    let dir = tempfile::tempdir().unwrap();
    let lib = indexed(dir.path(), &lib_dir, &lib_dir.join("manifest.jsonl"));

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

/// What a user with a raw folder of photos gets: the reference library indexed from its
/// images, objective, node and KPI only (no labels, no captions: the descriptions are the
/// local models' own), judged by the COCO labels the index never saw.
///
/// Threshold, fixed before this was first measured: P@5 at least twice chance, for the default
/// embedder, on the held-out English queries, English briefs and Spanish briefs. Chance is the
/// P@5 of a random ranking (the share of judged images that carry one of the query's labels,
/// averaged over the queries); "twice chance" is a floor from the definition, not from a
/// measurement.
#[test]
fn raw_photos_without_labels_or_captions_are_found_at_twice_chance_or_better() {
    let Judged {
        lib_dir,
        judged,
        held_out,
        ..
    } = judged();
    let rows: Vec<serde_json::Value> = common::jsonl(&lib_dir.join("manifest.jsonl"));

    // Only what a raw folder has: the file, and the campaign facts a marketer knows.
    let dir = tempfile::tempdir().unwrap();
    let raw: Vec<String> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r["id"], "file": r["file"], "objective": r["objective"],
                "node": r["node"], "results": r["results"],
            })
            .to_string()
        })
        .collect();
    let manifest = dir.path().join("raw.jsonl");
    std::fs::write(&manifest, raw.join("\n")).unwrap();
    let lib = indexed(dir.path(), &lib_dir, &manifest);
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
    let chance = |set: &[(String, Vec<String>)]| -> f64 {
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
    };
    let chances = [0, 1, 2].map(|i| chance(&held_out[i]));
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
}
