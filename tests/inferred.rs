//! Photos nobody described borrow words and direction from the described photos that look most
//! like them (`engine::inferred`), with the real embedded default (EfficientNet-Lite0 features
//! and labels, multilingual-e5-small) on photos of the demo library (demo/): a few come raw
//! (file, objective, node, KPI), the others with their manifest caption and labels.
mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use campaign_studio::domain::Asset;
use campaign_studio::engine::Library;
use campaign_studio::engine::inferred;
use campaign_studio::engine::ingest::IngestReport;
use serde_json::Value;

const SKIER: &str = "coco-000000000785";
const APPLES: &str = "coco-000000002149";
const RAW: [&str; 2] = [SKIER, APPLES];
const DESCRIBED: [&str; 8] = [
    "coco-000000000285",
    "coco-000000000872",
    "coco-000000000885",
    "coco-000000001000",
    "coco-000000002153",
    "coco-000000003501",
    "coco-000000006012",
    "coco-000000007281",
];

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("demo")
}

/// The demo manifest's row of `id`, whole (described) or as a raw folder has it.
fn row(id: &str, described: bool) -> Value {
    let manifest = std::fs::read_to_string(demo().join("manifest.jsonl")).unwrap();
    let r: Value = manifest
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("demo/manifest.jsonl lost {id}"));
    if described { r } else { common::raw_row(&r) }
}

/// Ingests `rows` from `root` (two workers, every row must succeed).
fn ingest_rows(lib: &mut Library, dir: &Path, root: &Path, rows: &[Value]) -> IngestReport {
    let manifest = dir.join(format!("manifest-{}.jsonl", common::unique_name("m")));
    let lines: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(&manifest, lines.join("\n")).unwrap();
    common::ingest_manifest(lib, root, manifest)
}

/// A library in `dir` with `raw` photos raw and `described` ones described.
fn library(dir: &Path, raw: &[&str], described: &[&str]) -> (Library, IngestReport) {
    let mut lib = common::real_library(dir);
    let rows: Vec<Value> = raw
        .iter()
        .map(|id| row(id, false))
        .chain(described.iter().map(|id| row(id, true)))
        .collect();
    let report = ingest_rows(&mut lib, dir, &demo(), &rows);
    (lib, report)
}

fn asset(lib: &Library, id: &str) -> Asset {
    lib.store.resolve(id).unwrap()
}

fn names(a: &Asset) -> Vec<String> {
    a.description
        .inferred
        .as_ref()
        .map(|i| i.from.iter().map(|f| f.name.clone()).collect())
        .unwrap_or_default()
}

fn text_vector(lib: &Library, id: &str) -> Vec<f32> {
    let e = lib.text_embedder_id();
    lib.store
        .vector_of(&asset(lib, id).id, &e)
        .unwrap()
        .unwrap()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn a_raw_photo_borrows_from_the_five_described_photos_nearest_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, report) = library(dir.path(), &RAW, &DESCRIBED);
    assert_eq!(report.inferred, RAW.len());
    let skier = asset(&lib, SKIER);
    let inf = skier
        .description
        .inferred
        .as_ref()
        .expect("no inferred words");
    assert_eq!(inf.from.len(), inferred::NEIGHBOURS);
    let described: HashSet<&str> = DESCRIBED.into_iter().collect();
    assert!(
        inf.from.iter().all(|f| described.contains(f.name.as_str())),
        "{:?}",
        names(&skier)
    );
    assert!(
        inf.from
            .windows(2)
            .all(|w| w[0].similarity >= w[1].similarity),
        "not most similar first: {inf:?}"
    );
    assert!(inf.from.iter().all(|f| f.similarity <= 1.0 + 1e-3));
    assert!(inf.source.contains("not a caption"), "{}", inf.source);
    assert_eq!(inf.vectors, vec![lib.text_embedder_id().to_string()]);
}

#[test]
fn inferred_words_are_labels_the_neighbours_were_given() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    assert!(
        !asset(&lib, SKIER)
            .description
            .inferred
            .unwrap()
            .words
            .is_empty(),
        "the skier's neighbours agree on no label"
    );
    for id in RAW {
        let a = asset(&lib, id);
        let inf = a.description.inferred.as_ref().unwrap();
        let given: HashSet<String> = inf
            .from
            .iter()
            .flat_map(|f| {
                let r = row(&f.name, true);
                r["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            inf.words.iter().all(|w| given.contains(w)),
            "{id}: {:?} not among {given:?}",
            inf.words
        );
    }
}

#[test]
fn inferred_words_never_become_the_caption_or_the_indexed_document() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let skier = asset(&lib, SKIER);
    assert_eq!(skier.caption, None);
    assert!(skier.description.sources.text.is_empty());
    let doc = lib.store.document_of(&skier.id).unwrap().unwrap();
    assert!(!doc.contains("Similar"), "{doc}");
    assert!(
        !skier.description.description.contains("Similar"),
        "{}",
        skier.description.description
    );
}

#[test]
fn described_photos_borrow_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    for id in DESCRIBED {
        assert_eq!(asset(&lib, id).description.inferred, None, "{id}");
    }
}

#[test]
fn in_a_library_nobody_described_no_photo_borrows() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, report) = library(dir.path(), &[SKIER, APPLES, "coco-000000002473"], &[]);
    assert_eq!(report.inferred, 0);
    assert_eq!(asset(&lib, SKIER).description.inferred, None);
}

/// The skier's vector leans toward what its neighbours' text says: nearer to its nearest
/// neighbour's text vector than the same photo's vector in a library where nothing lends.
#[test]
fn borrowing_moves_the_vector_toward_the_neighbours_text() {
    let alone = tempfile::tempdir().unwrap();
    let (alone_lib, _) = library(alone.path(), &RAW, &[]);
    let with = tempfile::tempdir().unwrap();
    let (lib, _) = library(with.path(), &RAW, &DESCRIBED);
    let nearest = &asset(&lib, SKIER).description.inferred.unwrap().from[0];
    let lender = text_vector(&lib, &nearest.name);
    let before = dot(&text_vector(&alone_lib, SKIER), &lender);
    let after = dot(&text_vector(&lib, SKIER), &lender);
    assert!(after > before + 0.01, "{before} -> {after}");
}

#[test]
fn ingesting_the_same_folder_again_changes_no_borrowing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let before = (asset(&lib, SKIER), text_vector(&lib, SKIER));
    let rows: Vec<Value> = RAW
        .iter()
        .map(|id| row(id, false))
        .chain(DESCRIBED.iter().map(|id| row(id, true)))
        .collect();
    let again = ingest_rows(&mut lib, dir.path(), &demo(), &rows);
    assert_eq!(again.unchanged, rows.len());
    assert_eq!(again.inferred, 0);
    assert_eq!(asset(&lib, SKIER).description, before.0.description);
    assert_eq!(text_vector(&lib, SKIER), before.1);
}

#[test]
fn a_removed_neighbour_is_replaced_by_the_next_nearest() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let first = names(&asset(&lib, SKIER));
    let gone = asset(&lib, &first[0]).id;
    lib.store.remove(&[gone]).unwrap();
    let e = lib.text_embedder().unwrap();
    let r = inferred::refresh(&lib, e.as_ref()).unwrap();
    assert!(r.refreshed >= 1, "{r:?}");
    let now = names(&asset(&lib, SKIER));
    assert_eq!(now.len(), inferred::NEIGHBOURS);
    assert!(!now.contains(&first[0]), "{now:?} still names {}", first[0]);
    assert_eq!(now[..4], first[1..], "the others keep their order");
}

#[test]
fn a_photo_given_a_caption_stops_borrowing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    assert!(asset(&lib, SKIER).description.inferred.is_some());
    let report = ingest_rows(&mut lib, dir.path(), &demo(), &[row(SKIER, true)]);
    assert_eq!(report.updated, 1);
    assert_eq!(asset(&lib, SKIER).description.inferred, None);
}

/// A mirrored copy of `id`'s demo photo, written as PNG into `dir/images/`.
fn mirrored(dir: &Path, id: &str) -> String {
    let r = row(id, true);
    let img = image::open(demo().join(r["file"].as_str().unwrap())).unwrap();
    std::fs::create_dir_all(dir.join("images")).unwrap();
    let file = format!("images/{id}-mirrored.png");
    img.fliph().save(dir.join(&file)).unwrap();
    file
}

/// A described photo ingested later that looks more like the skier than any before (its
/// mirror image) becomes the skier's nearest neighbour in the next pass, through the
/// incremental path (the skier's stored neighbours are all still valid).
#[test]
fn a_nearer_described_photo_ingested_later_is_borrowed_from_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let before = names(&asset(&lib, SKIER));
    let extra = dir.path().join("extra");
    let file = mirrored(&extra, SKIER);
    let mirror = serde_json::json!({
        "id": "mirror", "file": file, "objective": "clicks", "node": "followers",
        "results": 0.01, "caption": "A skier on a snowy slope.", "labels": ["person", "skis"],
    });
    let report = ingest_rows(&mut lib, dir.path(), &extra, &[mirror]);
    assert_eq!(report.ingested, 1);
    assert!(report.inferred >= 1);
    let skier = asset(&lib, SKIER);
    let inf = skier.description.inferred.as_ref().unwrap();
    assert_eq!(inf.from[0].name, "mirror");
    assert!(inf.from[0].similarity > 0.8, "{}", inf.from[0].similarity);
    assert_eq!(names(&skier)[1..], before[..4]);
    assert!(inf.words.contains(&"skis".to_string()), "{:?}", inf.words);
}

/// Each raw photo's (description, vector) now, then after one pass from scratch (its stored
/// neighbours cleared and the pass's mark reset), asserted equal: neighbours, words, vector.
fn assert_a_pass_from_scratch_agrees(lib: &Library) {
    let e = lib.text_embedder().unwrap();
    let now: Vec<(Asset, Vec<f32>)> = RAW
        .iter()
        .map(|id| (asset(lib, id), text_vector(lib, id)))
        .collect();
    for (a, v) in &now {
        let mut d = a.description.clone();
        d.inferred = None;
        let doc = lib.store.source_of(&a.id, e.id()).unwrap().unwrap();
        lib.store
            .put_description_and_vector(&a.id, &a.description, &d, e.id(), v, &doc)
            .unwrap();
    }
    lib.store
        .set_mark("inferred-from-similar", e.id().as_str(), e.id(), 0, true)
        .unwrap();
    inferred::refresh(lib, e.as_ref()).unwrap();
    let ids = |i: &campaign_studio::domain::Inferred| -> Vec<String> {
        i.from.iter().map(|f| f.asset.clone()).collect()
    };
    for (id, (a, v)) in RAW.iter().zip(&now) {
        let scratch = asset(lib, id);
        let (x, y) = (
            a.description.inferred.as_ref().unwrap(),
            scratch.description.inferred.as_ref().unwrap(),
        );
        assert_eq!(ids(x), ids(y), "{id}");
        assert_eq!(x.words, y.words, "{id}");
        let fresh = text_vector(lib, id);
        let diff = common::largest_difference(v, &fresh);
        assert!(diff < 1e-4, "{id}: {diff}");
    }
}

/// After ingests and a removal, each photo's neighbours, words and vector are what one pass
/// over the library from scratch gives.
#[test]
fn incremental_passes_end_where_a_pass_from_scratch_does() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, _) = library(dir.path(), &RAW, &DESCRIBED[..3]);
    let rest: Vec<Value> = DESCRIBED[3..].iter().map(|id| row(id, true)).collect();
    ingest_rows(&mut lib, dir.path(), &demo(), &rest);
    let gone = asset(&lib, DESCRIBED[4]).id;
    lib.store.remove(&[gone]).unwrap();
    let e = lib.text_embedder().unwrap();
    inferred::refresh(&lib, e.as_ref()).unwrap();
    assert_a_pass_from_scratch_agrees(&lib);
}

/// An ingest hands the pass the documents' vectors it has just made (no second embedding):
/// what it writes is what a pass that embeds them again writes.
#[test]
fn an_ingest_writes_the_vectors_a_pass_from_scratch_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, report) = library(dir.path(), &RAW, &DESCRIBED);
    assert_eq!(report.inferred, RAW.len());
    assert_a_pass_from_scratch_agrees(&lib);
}

/// A neighbour whose caption changes lends its new text: the photo keeps its neighbours but
/// borrows again, as a pass from scratch would.
#[test]
fn a_neighbour_given_a_new_caption_is_borrowed_from_anew() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let before = asset(&lib, SKIER).description.inferred.unwrap();
    let vector = text_vector(&lib, SKIER);
    let nearest = &before.from[0];
    let mut recaptioned = row(&nearest.name, true);
    recaptioned["caption"] = "Two skiers racing down a snowy mountain slope.".into();
    let report = ingest_rows(&mut lib, dir.path(), &demo(), &[recaptioned]);
    assert_eq!(report.updated, 1);
    assert!(report.inferred >= 1, "{report:?}");
    let after = asset(&lib, SKIER).description.inferred.unwrap();
    assert_eq!(after.from[0].asset, nearest.asset);
    assert_ne!(after.from[0].text, nearest.text);
    assert!(common::largest_difference(&vector, &text_vector(&lib, SKIER)) > 1e-4);
    assert_a_pass_from_scratch_agrees(&lib);
}

/// What the pass derived is written only over the description it was derived from: a photo
/// described by another write meanwhile is left as that write made it.
#[test]
fn a_photo_changed_meanwhile_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let e = lib.text_embedder_id();
    let a = asset(&lib, SKIER);
    let doc = lib.store.source_of(&a.id, &e).unwrap().unwrap();
    let mut stale = a.description.clone();
    stale.description = "what the pass read before another write".into();
    let mut derived = a.description.clone();
    derived.inferred = None;
    let wrote = lib
        .store
        .put_description_and_vector(&a.id, &stale, &derived, &e, &[0.0; 384], &doc)
        .unwrap();
    assert!(!wrote);
    assert_eq!(asset(&lib, SKIER).description, a.description);
    assert_ne!(text_vector(&lib, SKIER), vec![0.0; 384]);
}

#[test]
fn library_show_says_what_similar_images_show_and_that_it_is_inferred() {
    let (env, report) = cli_library();
    assert_eq!(report["inferred"].as_u64(), Some(RAW.len() as u64));
    let out = env.run(&["library", "show", SKIER]);
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    let line = shown
        .lines()
        .find(|l| l.starts_with("inferred"))
        .unwrap_or_else(|| panic!("no inferred line: {shown}"));
    assert!(line.contains("(inferred from coco-"), "{line}");
    assert!(line.contains("not a caption"), "{line}");
    let json = env.json(&["library", "show", SKIER, "--json"]);
    assert_eq!(
        json["description"]["inferred"]["from"]
            .as_array()
            .map(Vec::len),
        Some(inferred::NEIGHBOURS)
    );
}

/// The binary's library with `RAW` photos raw and `DESCRIBED` described, and its ingest report.
fn cli_library() -> (common::Env, Value) {
    let env = common::Env::new();
    let rows: Vec<String> = RAW
        .iter()
        .map(|id| row(id, false))
        .chain(DESCRIBED.iter().map(|id| row(id, true)))
        .map(|r| r.to_string())
        .collect();
    let manifest = env.dir.path().join("m.jsonl");
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    let report = env.ingest(&demo(), &manifest);
    (env, report)
}

#[test]
fn library_stats_prints_how_many_photos_borrow_words() {
    let (env, _) = cli_library();
    let out = env.run(&["library", "stats"]);
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    let line = shown
        .lines()
        .find(|l| l.starts_with("borrowing"))
        .unwrap_or_else(|| panic!("no borrowing line: {shown}"));
    assert!(
        line.contains("nobody described borrow words from similar described photos"),
        "{line}"
    );
}

/// `library reindex` with another text embedder gives its vectors the same neighbours: the
/// photo's borrowing then holds for both embedders.
#[test]
fn reindexing_with_another_embedder_borrows_for_its_vectors_too() {
    use campaign_studio::engine::reindex::reindex;
    use campaign_studio::services::local::minilm;
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let before = asset(&lib, SKIER).description.inferred.unwrap();
    let m = lib.embedder_for(minilm::EMBEDDER_ID).unwrap();
    let report = reindex(&lib, m.as_ref(), &mut |_, _| {}).unwrap();
    assert_eq!(report.inferred, RAW.len());
    let after = asset(&lib, SKIER).description.inferred.unwrap();
    assert_eq!(after.from, before.from);
    let mut both = vec![
        lib.text_embedder_id().to_string(),
        minilm::EMBEDDER_ID.to_string(),
    ];
    both.sort();
    assert_eq!(after.vectors, both);
}

#[test]
fn library_stats_count_the_photos_that_borrow() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let with_words = RAW
        .iter()
        .filter(|id| {
            asset(&lib, id)
                .description
                .inferred
                .is_some_and(|i| !i.words.is_empty())
        })
        .count();
    assert!(with_words > 0);
    assert_eq!(lib.store.stats().unwrap().borrowing, with_words as u64);
}

/// A campaign's export carries what a chosen raw reference borrowed, marked as inferred.
#[test]
fn an_export_marks_a_references_borrowed_words_as_inferred() {
    let (dir, _lib) = skier_export();
    let out = dir.path().join("export");
    let mut rdr = csv::Reader::from_path(out.join("references.csv")).unwrap();
    let header = rdr.headers().unwrap().clone();
    let col = header
        .iter()
        .position(|h| h == "inferred_from_similar_images")
        .expect("no inferred column");
    let rec = rdr.records().next().unwrap().unwrap();
    assert!(rec[col].contains("not a caption"), "{:?}", &rec[col]);
}

/// An export leaves the library: its CSV and page name the borrowed words, not the library
/// photos they came from (those stay in `campaign.json`, for provenance).
#[test]
fn an_exported_csv_names_no_lending_photo() {
    let (dir, lib) = skier_export();
    let out = dir.path().join("export");
    let csv = std::fs::read_to_string(out.join("references.csv")).unwrap();
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    for lender in names(&asset(&lib, SKIER)) {
        assert!(!csv.contains(&lender), "{lender} in {csv}");
        assert!(!html.contains(&lender), "{lender} in the page");
    }
}

#[test]
fn an_exported_campaign_json_carries_the_borrowed_words_and_their_lenders() {
    let (dir, lib) = skier_export();
    let out = dir.path().join("export");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("campaign.json")).unwrap()).unwrap();
    let inferred = &doc["references"][0]["inferred"];
    let stored = asset(&lib, SKIER).description.inferred.unwrap();
    assert_eq!(inferred["words"], serde_json::json!(stored.words));
    let lenders: Vec<&str> = inferred["from"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(lenders, names(&asset(&lib, SKIER)));
}

/// A library, the skier's campaign and its export in `<dir>/export`.
fn skier_export() -> (tempfile::TempDir, Library) {
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let c = skier_campaign(&lib);
    let out = dir.path().join("export");
    campaign_studio::engine::export::export(&lib, &c, &out, None).unwrap();
    (dir, lib)
}

/// A campaign with the raw skier as its one chosen reference.
fn skier_campaign(lib: &Library) -> campaign_studio::domain::Campaign {
    use campaign_studio::engine::campaign::{NewCampaign, create, select};
    let c = create(
        lib,
        NewCampaign {
            name: "Winter".into(),
            brief: "Skiing holidays for families".into(),
            objective: "clicks".into(),
            node: "followers".into(),
            brand: None,
        },
    )
    .unwrap();
    select(lib, &c, &[SKIER.to_string()]).unwrap();
    lib.store.campaign(&c.id).unwrap().unwrap()
}

#[test]
fn the_prompt_writer_gets_a_raw_references_borrowed_words() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path(), &RAW, &DESCRIBED);
    let c = skier_campaign(&lib);
    let refs = campaign_studio::engine::prompt::references_for(&lib, &c).unwrap();
    let words = asset(&lib, SKIER).description.inferred.unwrap().words;
    assert!(!words.is_empty());
    assert_eq!(refs[0].inferred, words);
}
