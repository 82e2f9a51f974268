//! `library sync` against the fake vector server (no node needed): the mark never moves past a
//! vector the server refused, a later sync resumes from it, inline sync after an ingest, drift
//! made on the server is found and repaired, and a search on a server index that lags the
//! catalog still returns k hits that the catalog knows. The same flows run on a live OpenSearch
//! node in tests/opensearch_engine.rs.
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use campaign_studio::config::Config;
use campaign_studio::domain::{EmbedderId, SearchFilter};
use campaign_studio::engine::Library;
use campaign_studio::engine::ingest::{IngestOptions, ingest};
use campaign_studio::engine::search::{SearchRequest, search_vector};
use campaign_studio::engine::sync::{SyncOptions, sync, unsynced};
use campaign_studio::paths::Paths;
use campaign_studio::services::fake::{FakeAnalyser, FakeEmbedder, FakeServer};
use campaign_studio::services::{Embedder, TextRole, Tombstone, VectorBackend, VectorIndex};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::json;

const EMBEDDER: &str = "fake/bag-of-words/64";

fn png(i: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(32, 24, |x, y| {
        Rgb([(i * 41 % 256) as u8, (x * 7 + i) as u8, (y * 9) as u8])
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    bytes
}

fn library(dir: &Path, n: u32, sync_mode: &str) -> (Library, Arc<FakeServer>) {
    let root = dir.join("photos");
    std::fs::create_dir_all(&root).unwrap();
    let mut rows = Vec::new();
    for i in 0..n {
        std::fs::write(root.join(format!("{i}.png")), png(i)).unwrap();
        rows.push(
            json!({"id": format!("a{i:03}"), "file": format!("{i}.png"),
            "caption": format!("photo {i} of a dog on a beach {}", ["sunny", "misty", "calm"][i as usize % 3]),
            "objective": "likes", "node": if i % 2 == 0 { "followers" } else { "customers" },
            "results": (i % 7) as f64 / 10.0})
            .to_string(),
        );
    }
    std::fs::write(root.join("manifest.jsonl"), rows.join("\n")).unwrap();
    let mut cfg = Config::defaults();
    cfg.index.sync = sync_mode.into();
    let paths = Paths::for_dirs(&dir.join("config"), &dir.join("data"), &dir.join("cache"));
    let mut lib = Library::with_services(
        paths,
        cfg,
        Arc::new(FakeEmbedder::new(64)),
        Arc::new(FakeAnalyser::default()),
    )
    .unwrap();
    let server = Arc::new(FakeServer::new("sync"));
    lib.use_vector_backend(server.clone()).unwrap();
    let r = ingest(
        &mut lib,
        &IngestOptions {
            manifest: Some(root.join("manifest.jsonl")),
            root,
            jobs: 1,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.ingested, n as usize, "{r:?}");
    (lib, server)
}

fn embedder() -> EmbedderId {
    EmbedderId::new(EMBEDDER)
}

/// A default sync of the test embedder's vectors to `server`.
fn sync_all(lib: &Library, server: &Arc<FakeServer>) -> campaign_studio::engine::sync::SyncReport {
    sync(
        lib,
        server.as_ref(),
        &embedder(),
        &SyncOptions::default(),
        &mut |_, _| {},
    )
    .unwrap()
}

fn server_index(lib: &Library, server: &FakeServer) -> Box<dyn VectorIndex> {
    let spec = campaign_studio::engine::sync::spec(lib, &embedder()).unwrap();
    server.open(&spec, false).unwrap()
}

#[test]
fn inline_sync_pushes_an_ingest_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, server) = library(dir.path(), 8, "inline");
    assert_eq!(
        server_index(&lib, &server)
            .count(&SearchFilter::default())
            .unwrap(),
        8
    );
    assert_eq!(
        unsynced(&lib, server.as_ref()).unwrap(),
        vec![(EMBEDDER.to_string(), 0)]
    );
}

#[test]
fn manual_sync_leaves_changes_unsynced_until_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, server) = library(dir.path(), 6, "manual");
    assert_eq!(
        unsynced(&lib, server.as_ref()).unwrap(),
        vec![(EMBEDDER.to_string(), 6)]
    );
    let r = sync_all(&lib, &server);
    assert_eq!((r.pushed, r.unsynced), (6, 0), "{r:?}");
    let again = sync_all(&lib, &server);
    assert_eq!(
        (again.pushed, again.stale),
        (0, 0),
        "nothing pushed twice: {again:?}"
    );
}

#[test]
fn the_mark_never_moves_past_a_vector_the_server_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, server) = library(dir.path(), 6, "manual");
    // A vector the server refuses (not finite), written after the six good ones.
    let bad = lib.store.resolve("a002").unwrap();
    let mut v = vec![0.125f32; 64];
    v[5] = f32::NAN;
    lib.store
        .put_vector(&bad.id, &embedder(), &v, "doc")
        .unwrap();
    let more = lib.store.resolve("a004").unwrap();
    let mut w = vec![0.0f32; 64];
    w[1] = 1.0;
    lib.store
        .put_vector(&more.id, &embedder(), &w, "doc")
        .unwrap();
    let r = sync_all(&lib, &server);
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert_eq!(r.failed[0].item, bad.id);
    assert!(
        r.failed[0].reason.contains(&bad.id),
        "{}",
        r.failed[0].reason
    );
    // The vectors after the refused one were pushed all the same...
    assert_eq!(
        server_index(&lib, &server)
            .states_in(&campaign_studio::domain::index::bucket_of(&more.id))
            .unwrap()
            .iter()
            .find(|s| s.id == more.id)
            .map(|s| s.version),
        lib.store
            .record(&embedder(), &more.id)
            .unwrap()
            .map(|r| r.version)
    );
    // ...but the mark stays before the refused one: it is still unsynced.
    assert_eq!(r.unsynced, 2, "{r:?}");
    // Fixed in the library, the next sync takes it and catches up.
    let mut ok = vec![0.0f32; 64];
    ok[2] = 1.0;
    lib.store
        .put_vector(&bad.id, &embedder(), &ok, "doc")
        .unwrap();
    let fixed = sync_all(&lib, &server);
    assert!(fixed.failed.is_empty(), "{fixed:?}");
    assert_eq!(fixed.unsynced, 0);
}

#[test]
fn drift_on_the_server_is_found_by_check_and_repaired_by_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, server) = library(dir.path(), 10, "inline");
    let mut ix = server_index(&lib, &server);
    let gone = lib.store.resolve("a003").unwrap().id;
    ix.remove(&[Tombstone {
        id: gone.clone(),
        version: i64::MAX,
    }])
    .unwrap();
    let check = sync(
        &lib,
        server.as_ref(),
        &embedder(),
        &SyncOptions {
            check: true,
            rebuild: false,
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(check.drift.missing, vec![gone.clone()]);
    let fixed = sync_all(&lib, &server);
    assert!(fixed.drift_after.is_empty(), "{fixed:?}");
    assert_eq!(fixed.unsynced, 0);
    assert_eq!(ix.count(&SearchFilter::default()).unwrap(), 10);
}

#[test]
fn a_search_on_a_lagging_server_index_still_returns_k_known_hits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, server) = library(dir.path(), 12, "manual");
    sync_all(&lib, &server);
    // Removed from the library, not yet from the server: enough that one retry is not enough.
    let ids: Vec<String> = ["a000", "a001", "a002", "a003", "a004"]
        .iter()
        .map(|k| lib.store.resolve(k).unwrap().id)
        .collect();
    lib.store.remove(&ids).unwrap();
    let ix = server_index(&lib, &server);
    let q = FakeEmbedder::new(64)
        .embed_texts(&["a dog on a beach".into()], TextRole::Query)
        .unwrap()
        .pop()
        .unwrap();
    let req = SearchRequest {
        query: "a dog on a beach".into(),
        filter: SearchFilter::default(),
        k: 7,
        kpi_weight: 0.25,
        rerank_pool: 7,
    };
    let hits = search_vector(&lib.store, ix.as_ref(), &q, &req)
        .unwrap()
        .hits;
    assert_eq!(hits.len(), 7, "k hits whenever k match in the catalog");
    assert!(hits.iter().all(|h| !ids.contains(&h.asset_id)));
}

#[test]
fn a_rebuild_twice_over_keeps_the_live_index_until_the_new_one_is_made_current() {
    let dir = tempfile::tempdir().unwrap();
    let (lib, server) = library(dir.path(), 5, "inline");
    for round in 2..=3 {
        let r = sync(
            &lib,
            server.as_ref(),
            &embedder(),
            &SyncOptions {
                check: false,
                rebuild: true,
            },
            &mut |_, _| {},
        )
        .unwrap();
        assert!(r.index.ends_with(&format!("-v{round}")), "{r:?}");
        assert_eq!(
            server_index(&lib, &server)
                .count(&SearchFilter::default())
                .unwrap(),
            5
        );
    }
}

#[test]
fn duplicates_and_foreign_documents_under_their_own_ids_are_repaired() {
    use campaign_studio::services::{VectorMeta, VectorRecord};
    let dir = tempfile::tempdir().unwrap();
    let (lib, server) = library(dir.path(), 6, "inline");
    let mut ix = server_index(&lib, &server);
    // A document the library never wrote.
    ix.upsert(&[VectorRecord {
        id: "ffforeign".into(),
        vector: vec![0.125; 64],
        meta: VectorMeta {
            objective: "likes".into(),
            node: "followers".into(),
            kpi: None,
        },
        version: 3,
    }])
    .unwrap();
    let fixed = sync_all(&lib, &server);
    assert_eq!(fixed.drift.extra, vec!["ffforeign".to_string()]);
    assert!(fixed.drift_after.is_empty(), "{fixed:?}");
}
