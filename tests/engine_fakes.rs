//! Engine behaviour with the deterministic fakes (no models): ingest, the filter contract,
//! KPI blending, embedder mismatch.
use std::io::Cursor;
use std::sync::Arc;

use campaign_studio::config::Config;
use campaign_studio::domain::{EmbedderId, SearchFilter};
use campaign_studio::engine::Library;
use campaign_studio::engine::ingest::{IngestOptions, ingest};
use campaign_studio::engine::search::{SearchRequest, search};
use campaign_studio::paths::Paths;
use campaign_studio::services::fake::{FakeAnalyser, FakeEmbedder};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::json;

const OBJECTIVES: [&str; 3] = ["clicks", "likes", "awareness"];
const NODES: [&str; 3] = ["followers", "customers", "new_customers"];
const THEMES: [&str; 4] = [
    "red sports car on a mountain road",
    "family dinner with pasta",
    "dog running on a beach",
    "laptop on an office desk",
];

fn library(dir: &std::path::Path) -> (Library, IngestOptions) {
    library_of(dir, 36)
}

/// A library of `n` generated images, captions cycling through `THEMES`.
fn library_of(dir: &std::path::Path, n: u32) -> (Library, IngestOptions) {
    let root = dir.join("lib");
    std::fs::create_dir_all(&root).unwrap();
    let mut rows = Vec::new();
    for i in 0..n {
        let img = RgbImage::from_fn(24, 16, |x, y| {
            Rgb([(i * 7) as u8, (x * 5 + i) as u8, (y * 9) as u8])
        });
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        std::fs::write(root.join(format!("{i}.png")), bytes).unwrap();
        rows.push(
            json!({
                "id": format!("a{i:02}"),
                "file": format!("{i}.png"),
                "caption": format!("{} number {i}", THEMES[i as usize % 4]),
                "objective": OBJECTIVES[i as usize % 3],
                "node": NODES[(i / 3) as usize % 3],
                "results": (i as f64) / 100.0,
            })
            .to_string(),
        );
    }
    std::fs::write(root.join("manifest.jsonl"), rows.join("\n")).unwrap();
    let paths = Paths::for_dirs(&dir.join("config"), &dir.join("data"), &dir.join("cache"));
    let lib = Library::with_services(
        paths,
        Config::defaults(),
        Arc::new(FakeEmbedder::new(64)),
        Arc::new(FakeAnalyser::default()),
    )
    .unwrap();
    let opts = IngestOptions {
        manifest: Some(root.join("manifest.jsonl")),
        root,
        jobs: 2,
        ..Default::default()
    };
    (lib, opts)
}

fn req(
    query: &str,
    objective: Option<&str>,
    node: Option<&str>,
    k: usize,
    w: f32,
) -> SearchRequest {
    SearchRequest {
        query: query.into(),
        filter: SearchFilter {
            objective: objective.map(Into::into),
            node: node.map(Into::into),
        },
        k,
        kpi_weight: w,
        rerank_pool: k * 2,
    }
}

#[test]
fn ingest_then_filtered_search_returns_exactly_k_matching_hits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, opts) = library(dir.path());
    let mut events = 0;
    let r = ingest(&mut lib, &opts, &mut |_| events += 1).unwrap();
    assert_eq!((r.ingested, r.failed.len()), (36, 0));
    assert_eq!(events, 37); // planned + one per item
    let again = ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    assert_eq!(again.unchanged, 36);

    let embedder = FakeEmbedder::new(64);
    let index = lib.load_index(&embedder.id).unwrap();
    // 36 assets, 3 objectives x 3 nodes: 4 per (objective, node) pair.
    let res = search(
        &lib.store,
        &index,
        &embedder,
        &req("dog on a beach", Some("likes"), Some("customers"), 3, 0.0),
    )
    .unwrap();
    assert_eq!(res.hits.len(), 3);
    assert!(
        res.hits
            .iter()
            .all(|h| h.objective == "likes" && h.node == "customers")
    );
    let res = search(
        &lib.store,
        &index,
        &embedder,
        &req("dog on a beach", Some("likes"), Some("customers"), 10, 0.0),
    )
    .unwrap();
    assert_eq!(res.hits.len(), 4);
    // Without a filter the best hits are the dog captions.
    let res = search(
        &lib.store,
        &index,
        &embedder,
        &req("dog running on a beach", None, None, 5, 0.0),
    )
    .unwrap();
    assert!(
        res.hits
            .iter()
            .all(|h| h.description.starts_with("dog running")),
        "{:?}",
        res.hits
    );
    // Default weight: relevance leads (similarity rescaled in the pool), so the most similar
    // asset is first and every score is (1-w)*relevance + w*percentile.
    let res = search(
        &lib.store,
        &index,
        &embedder,
        &req("dog running on a beach", None, None, 5, 0.25),
    )
    .unwrap();
    let best = res
        .hits
        .iter()
        .map(|h| h.similarity)
        .fold(f32::MIN, f32::max);
    assert_eq!(res.hits[0].similarity, best);
    assert!((res.hits[0].score - (0.75 + 0.25 * res.hits[0].kpi_percentile)).abs() < 1e-5);
    // With the KPI weighted fully, the pool is ordered by KPI percentile.
    let res = search(
        &lib.store,
        &index,
        &embedder,
        &req("dog running on a beach", None, None, 5, 1.0),
    )
    .unwrap();
    let kpis: Vec<f64> = res.hits.iter().map(|h| h.kpi.unwrap()).collect();
    assert!(kpis.windows(2).all(|w| w[0] >= w[1]), "{kpis:?}");
    assert!(
        res.hits
            .iter()
            .all(|h| (h.score - h.kpi_percentile).abs() < 1e-6)
    );
}

#[test]
fn an_index_of_another_embedder_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, opts) = library(dir.path());
    ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    let err = lib
        .load_index(&EmbedderId::new("local/other/desc-v1"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'local/other/desc-v1'") && err.contains("models.text_embedder"),
        "{err}"
    );
    assert!(err.contains("fake/bag-of-words/64 (36)"), "{err}");
    assert!(
        err.contains("library reindex --embedder local/other/desc-v1"),
        "{err}"
    );
}

#[test]
fn reindex_gives_every_asset_a_vector_of_another_embedder_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, opts) = library(dir.path());
    ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    let other = FakeEmbedder::new(32);
    let mut seen = Vec::new();
    let r = campaign_studio::engine::reindex::reindex(&lib, &other, &mut |d, t| seen.push((d, t)))
        .unwrap();
    assert_eq!((r.embedded, r.skipped, r.failed.len()), (36, 0, 0));
    assert_eq!(seen.last(), Some(&(36, 36)));
    let ix = lib.load_index(&other.id).unwrap();
    assert_eq!(ix.len(), 36);
    // Again: nothing to do (resumable, nothing embedded twice).
    let r = campaign_studio::engine::reindex::reindex(&lib, &other, &mut |_, _| {}).unwrap();
    assert_eq!((r.embedded, r.skipped), (0, 36));
    // The new vectors embed the same description documents as the old ones did.
    let a = &lib.store.list(&SearchFilter::default(), 1, 0).unwrap()[0];
    let doc = lib.store.document_of(&a.id).unwrap().unwrap();
    assert!(!doc.is_empty() && doc != "image");
    // Search with the new embedder works.
    let hits = search(
        &lib.store,
        &ix,
        &other,
        &req("dog running on a beach", None, None, 5, 0.25),
    )
    .unwrap();
    assert_eq!(hits.hits.len(), 5);
}

#[test]
fn large_indexes_switch_to_sketches_and_keep_the_filter_contract() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, opts) = library(dir.path());
    let mut config = Config::defaults();
    config.search.exact_max_vectors = 10; // 36 assets: above it
    config.search.int8_max_vectors = 10; // and above this: sketches
    config.search.sketch_min_dim = 64; // the fake embedder's vectors: sketched
    let paths = lib.paths.clone();
    drop(lib);
    let mut lib = Library::with_services(
        paths,
        config,
        Arc::new(FakeEmbedder::new(64)),
        Arc::new(FakeAnalyser::default()),
    )
    .unwrap();
    ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    let embedder = FakeEmbedder::new(64);
    let index = lib.load_index(&embedder.id).unwrap();
    assert_eq!(
        index.storage(),
        campaign_studio::config::VectorStorage::Sketch
    );
    let res = search(
        &lib.store,
        &index,
        &embedder,
        &req("family dinner", Some("clicks"), None, 5, 0.0),
    )
    .unwrap();
    assert_eq!(res.hits.len(), 5);
    assert!(res.hits.iter().all(|h| h.objective == "clicks"));
    assert!(
        res.hits[0].description.starts_with("family dinner"),
        "{:?}",
        res.hits[0]
    );
}

/// The library of `library()` ingested, then the vectors of 10 of its 36 assets removed, as a
/// reindex stopped after 26 leaves them.
fn half_indexed(dir: &std::path::Path) -> Library {
    let (mut lib, opts) = library(dir);
    ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    let db = rusqlite::Connection::open(lib.paths.database()).unwrap();
    let removed = db
        .execute(
            "DELETE FROM embeddings WHERE embedder = ?1 AND asset_id IN \
             (SELECT asset_id FROM embeddings WHERE embedder = ?1 ORDER BY asset_id LIMIT 10)",
            [FakeEmbedder::new(64).id.as_str()],
        )
        .unwrap();
    assert_eq!(removed, 10);
    lib
}

#[test]
fn search_refuses_an_index_that_covers_part_of_the_library_naming_reindex() {
    let dir = tempfile::tempdir().unwrap();
    let lib = half_indexed(dir.path());
    let id = FakeEmbedder::new(64).id;
    let err = match lib.search_index(&id) {
        Ok(_) => panic!("a partial index was searched silently"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cover 26 of its 36 assets"), "{err}");
    assert!(
        err.contains(&format!("library reindex --embedder {id}")),
        "{err}"
    );
    assert!(err.contains("--allow-partial-index"), "{err}");
}

#[test]
fn search_of_a_partial_index_runs_when_allowed_and_reports_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut lib = half_indexed(dir.path());
    lib.config.search.allow_partial_index = true;
    let embedder = FakeEmbedder::new(64);
    let index = lib.search_index(&embedder.id).unwrap();
    let hits = search(
        &lib.store,
        index.as_ref(),
        &embedder,
        &req("dog", None, None, 50, 0.0),
    )
    .unwrap();
    assert_eq!(hits.hits.len(), 26);
    let gap = lib
        .index_coverage(&embedder.id)
        .unwrap()
        .map(|e| e.to_string());
    assert!(gap.is_some_and(|g| g.contains("26 of its 36")));
}

#[test]
fn a_fully_indexed_library_reports_no_coverage_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, opts) = library(dir.path());
    ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    assert!(
        lib.index_coverage(&FakeEmbedder::new(64).id)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_running_ingest_job_of_a_live_process_is_not_marked_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path());
    // Another ingest, holding its lock (flock is per open file, so this stands for a second
    // process).
    let (id, _held) = lib
        .store
        .start_ingest_job_with("/elsewhere", None, |id| {
            campaign_studio::engine::ingest::JobLock::acquire(&lib, id)
        })
        .unwrap();
    let marked = campaign_studio::engine::ingest::mark_dead_ingest_jobs(&lib).unwrap();
    assert_eq!(marked, 0);
    assert_eq!(
        lib.store.ingest_job_status(id).unwrap().as_deref(),
        Some("running")
    );
}

#[test]
fn a_running_ingest_job_whose_process_is_gone_is_marked_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, _) = library(dir.path());
    let (id, held) = lib
        .store
        .start_ingest_job_with("/elsewhere", None, |id| {
            campaign_studio::engine::ingest::JobLock::acquire(&lib, id)
        })
        .unwrap();
    drop(held); // the process died: the OS released its lock
    let marked = campaign_studio::engine::ingest::mark_dead_ingest_jobs(&lib).unwrap();
    assert_eq!(marked, 1);
    assert_eq!(
        lib.store.ingest_job_status(id).unwrap().as_deref(),
        Some("interrupted")
    );
}

#[test]
fn an_ingest_beside_a_live_one_leaves_the_live_job_running() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, opts) = library(dir.path());
    let (id, _held) = lib
        .store
        .start_ingest_job_with("/elsewhere", None, |id| {
            campaign_studio::engine::ingest::JobLock::acquire(&lib, id)
        })
        .unwrap();
    ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    assert_eq!(
        lib.store.ingest_job_status(id).unwrap().as_deref(),
        Some("running")
    );
}

/// 10 000 photos in one folder (no manifest, the campaign facts from flags): each ingested
/// once, and a second run changes nothing.
#[test]
fn ten_thousand_files_in_one_folder_are_each_ingested_once() {
    const N: u32 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flat");
    std::fs::create_dir_all(&root).unwrap();
    for i in 0..N {
        let img = RgbImage::from_pixel(4, 4, Rgb([(i % 256) as u8, (i / 256) as u8, 7]));
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        std::fs::write(root.join(format!("p{i:05}.png")), bytes).unwrap();
    }
    let paths = Paths::for_dirs(
        &dir.path().join("config"),
        &dir.path().join("data"),
        &dir.path().join("cache"),
    );
    let mut lib = Library::with_services(
        paths,
        Config::defaults(),
        Arc::new(FakeEmbedder::new(16)),
        Arc::new(FakeAnalyser::default()),
    )
    .unwrap();
    let opts = IngestOptions {
        root,
        jobs: 2,
        objective: Some("likes".into()),
        node: Some("followers".into()),
        kpi: Some(0.01),
        ..Default::default()
    };
    let first = ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    assert_eq!((first.ingested, first.failed.len()), (N as usize, 0));
    let again = ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    assert_eq!((again.ingested, again.unchanged), (0, N as usize));
    assert_eq!(lib.store.count().unwrap(), N as u64);
}

#[test]
fn more_like_an_asset_without_image_features_names_it_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, opts) = library(dir.path());
    ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    let features = lib.image_features_id();
    let asset = lib.store.resolve("a05").unwrap();
    let db = rusqlite::Connection::open(lib.paths.database()).unwrap();
    db.execute(
        "DELETE FROM embeddings WHERE embedder = ?1 AND asset_id = ?2",
        [features.as_str(), asset.id.as_str()],
    )
    .unwrap();
    let index = lib.load_index(&features).unwrap();
    let err = campaign_studio::engine::search::similar_to(
        &lib.store,
        &index,
        &features,
        &asset,
        &req("images like a05", None, None, 5, 0.0),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("a05") && err.contains("no image features"),
        "{err}"
    );
    assert!(err.contains("library ingest"), "{err}");
}

#[test]
fn more_like_an_asset_ranks_the_rest_by_image_similarity_alone_at_kpi_weight_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, opts) = library(dir.path());
    ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    let features = lib.image_features_id();
    let asset = lib.store.resolve("a05").unwrap();
    let index = lib.load_index(&features).unwrap();
    let got = campaign_studio::engine::search::similar_to(
        &lib.store,
        &index,
        &features,
        &asset,
        &req("images like a05", None, None, 5, 0.0),
    )
    .unwrap();
    let q = lib.store.vector_of(&asset.id, &features).unwrap().unwrap();
    let mut want: Vec<(f32, String)> = lib
        .store
        .vectors(&features)
        .unwrap()
        .into_iter()
        .filter(|v| v.asset_id != asset.id)
        .map(|v| {
            (
                q.iter().zip(&v.vector).map(|(a, b)| a * b).sum(),
                v.asset_id,
            )
        })
        .collect();
    want.sort_by(|a, b| b.0.total_cmp(&a.0));
    let want: Vec<String> = want.into_iter().take(5).map(|x| x.1).collect();
    let got: Vec<String> = got.hits.into_iter().map(|h| h.asset_id).collect();
    assert_eq!(got, want);
}

/// An unfiltered search for "dog on a beach" (k 3) in a fresh library of `n` generated images.
fn searched_in_library_of(n: u32) -> campaign_studio::engine::search::SearchResult {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, opts) = library_of(dir.path(), n);
    ingest(&mut lib, &opts, &mut |_| {}).unwrap();
    let embedder = FakeEmbedder::new(64);
    let index = lib.load_index(&embedder.id).unwrap();
    search(
        &lib.store,
        &index,
        &embedder,
        &req("dog on a beach", None, None, 3, 0.0),
    )
    .unwrap()
}

#[test]
fn hits_of_an_embedder_without_measured_thresholds_carry_z_and_percentile_but_no_word() {
    let res = searched_in_library_of(36);
    let s = res.hits[0].strength.expect("judged against 36 vectors");
    assert_eq!(s.level, None);
    assert!(s.z > 0.0 && (0.0..=1.0).contains(&s.percentile), "{s:?}");
}

#[test]
fn a_library_below_the_background_minimum_leaves_hits_unjudged() {
    let res = searched_in_library_of(campaign_studio::engine::search::MIN_BACKGROUND as u32 - 1);
    assert!(res.hits.iter().all(|h| h.strength.is_none()));
}
