//! The engine on a live OpenSearch node: a library is ingested, synced, and searched on both
//! sides; every write path reaches the server; an unreachable server leaves work unsynced
//! until a later sync; drift made behind the library's back is found and repaired; two syncs
//! at once converge. Needs OPENSEARCH_URL (`scripts/opensearch-node.sh start`); without it each
//! test prints `skipped:` and passes, unless CAMPAIGN_STUDIO_REQUIRE_SERVERS names opensearch
//! (CI), where it fails. The library uses the deterministic fake embedder and analyser (the
//! parity under test is between indexes, not models). Each test uses a fresh namespace and
//! deletes only the indexes it made.
mod common;

use common::ingest_folder;

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use campaign_studio::config::Config;
use campaign_studio::domain::{EmbedderId, SearchFilter};
use campaign_studio::engine::Library;
use campaign_studio::engine::search::{SearchRequest, search_vector};
use campaign_studio::engine::sync::{SyncOptions, drift, sync};
use campaign_studio::paths::Paths;
use campaign_studio::services::fake::{FakeAnalyser, FakeEmbedder};
use campaign_studio::services::opensearch::OpenSearch;
use campaign_studio::services::{Embedder, TextRole, VectorBackend, VectorIndex};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::json;

const EMBEDDER: &str = "fake/bag-of-words/64";

fn node() -> Option<String> {
    common::opensearch_url()
}

fn namespace() -> String {
    common::unique_name("cs-engine")
}

fn png(i: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(48, 40, |x, y| {
        Rgb([
            (i * 37 % 256) as u8,
            (x * 5 + i) as u8,
            (y * 3 + i * 7) as u8,
        ])
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    bytes
}

const THEMES: [&str; 6] = [
    "dog running on a sunny beach",
    "family dinner in a warm kitchen",
    "red car on a mountain road",
    "friends surfing big waves",
    "coffee cup on a wooden table",
    "runners crossing a forest bridge",
];
const WORDS: [&str; 12] = [
    "bright", "calm", "early", "golden", "quiet", "urban", "rural", "soft", "bold", "misty",
    "crisp", "vivid",
];

/// A folder of `n` images with a manifest spreading them over every objective and node.
fn photos(dir: &Path, n: u32) -> std::path::PathBuf {
    let root = dir.join("photos");
    std::fs::create_dir_all(&root).unwrap();
    let c = Config::defaults();
    let mut rows = Vec::new();
    for i in 0..n {
        std::fs::write(root.join(format!("{i}.png")), png(i)).unwrap();
        let o = &c.taxonomy.objectives[i as usize % c.taxonomy.objectives.len()];
        let nd = &c.taxonomy.nodes[(i as usize / 4) % c.taxonomy.nodes.len()];
        rows.push(
            json!({"id": format!("a{i:03}"), "file": format!("{i}.png"),
            "caption": format!("{} {} {}", THEMES[i as usize % 6], WORDS[i as usize % 12], i),
            "objective": o, "node": nd, "results": (i * 7 % 23) as f64 / 100.0})
            .to_string(),
        );
    }
    std::fs::write(root.join("manifest.jsonl"), rows.join("\n")).unwrap();
    root
}

struct Live {
    lib: Library,
    backend: Arc<OpenSearch>,
    dir: tempfile::TempDir,
}

impl Drop for Live {
    fn drop(&mut self) {
        for i in self.backend.indexes().unwrap_or_default() {
            let _ = self.backend.delete_index(&i.name);
        }
    }
}

fn config(url: &str, ns: &str) -> Config {
    let mut c = Config::defaults();
    c.index.backend = "opensearch".into();
    c.index.namespace = ns.into();
    c.index.opensearch.url = url.into();
    c.index.opensearch.initial_backoff_ms = 5;
    c
}

fn library_at(dir: &Path, cfg: Config) -> Library {
    let paths = Paths::for_dirs(&dir.join("config"), &dir.join("data"), &dir.join("cache"));
    Library::with_services(
        paths,
        cfg,
        Arc::new(FakeEmbedder::new(64)),
        Arc::new(FakeAnalyser::default()),
    )
    .unwrap()
}

/// A library with a live backend and inline sync, and `n` images ingested.
fn live(url: &str, n: u32) -> Live {
    let dir = tempfile::tempdir().unwrap();
    let ns = namespace();
    let cfg = config(url, &ns);
    let backend = Arc::new(OpenSearch::new(&cfg.index).unwrap());
    let mut lib = library_at(dir.path(), cfg);
    lib.use_vector_backend(backend.clone()).unwrap();
    let root = photos(dir.path(), n);
    let r = ingest_folder(&mut lib, &root);
    assert_eq!(r.ingested, n as usize, "{r:?}");
    assert!(r.unsynced.is_none(), "{r:?}");
    Live { lib, backend, dir }
}

fn server_index(l: &Live) -> Box<dyn VectorIndex> {
    let spec = campaign_studio::engine::sync::spec(&l.lib, &EmbedderId::new(EMBEDDER)).unwrap();
    l.backend.open(&spec, false).unwrap()
}

fn in_step(l: &Live) -> bool {
    drift(&l.lib, server_index(l).as_ref(), &EmbedderId::new(EMBEDDER))
        .unwrap()
        .is_empty()
}

#[test]
fn opensearch_engine_search_equals_the_embedded_search_for_every_filter_and_k() {
    let Some(url) = node() else { return };
    let l = live(&url, 72);
    let embedded = l.lib.load_index(&EmbedderId::new(EMBEDDER)).unwrap();
    let server = server_index(&l);
    let e = FakeEmbedder::new(64);
    let c = Config::defaults();
    let mut filters = vec![SearchFilter::default()];
    for o in &c.taxonomy.objectives {
        for n in &c.taxonomy.nodes {
            filters.push(SearchFilter {
                objective: Some(o.clone()),
                node: Some(n.clone()),
            });
        }
    }
    let mut compared = 0;
    for brief in [
        "a dog on a sunny beach",
        "surfers on big waves at golden hour",
        "a quiet coffee table",
    ] {
        let q = e
            .embed_texts(&[brief.to_string()], TextRole::Query)
            .unwrap()
            .pop()
            .unwrap();
        for f in &filters {
            for k in [3, 5, 36] {
                let req = SearchRequest {
                    query: brief.into(),
                    filter: f.clone(),
                    k,
                    kpi_weight: 0.25,
                    rerank_pool: 2 * k,
                };
                let a = search_vector(&l.lib.store, &embedded, &q, &req)
                    .unwrap()
                    .hits;
                let b = search_vector(&l.lib.store, server.as_ref(), &q, &req)
                    .unwrap()
                    .hits;
                assert_eq!(a.len(), b.len(), "{brief} {f:?} k {k}");
                for (x, y) in a.iter().zip(&b) {
                    assert!(
                        (x.similarity - y.similarity).abs() < 1e-5
                            && (x.score - y.score).abs() < 1e-5,
                        "{brief} {f:?} k {k}: {} {} vs {} {}",
                        x.asset_id,
                        x.score,
                        y.asset_id,
                        y.score
                    );
                }
                // Ids in the same order, except among hits whose scores tie.
                let key = |h: &campaign_studio::domain::ReferenceHit| {
                    ((h.score * 1e4).round() as i64, h.asset_id.clone())
                };
                let mut ka: Vec<_> = a.iter().map(key).collect();
                let mut kb: Vec<_> = b.iter().map(key).collect();
                ka.sort();
                kb.sort();
                assert_eq!(ka, kb, "{brief} {f:?} k {k}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 3 * 13 * 3);
}

#[test]
fn opensearch_engine_metadata_only_reingest_reaches_the_server() {
    let Some(url) = node() else { return };
    let mut l = live(&url, 12);
    let root = l.dir.path().join("photos");
    let manifest = std::fs::read_to_string(root.join("manifest.jsonl")).unwrap();
    // a000's objective and node change: same bytes.
    let changed = manifest.replacen("\"node\":\"followers\"", "\"node\":\"customers\"", 1);
    std::fs::write(root.join("manifest.jsonl"), changed).unwrap();
    let r = ingest_folder(&mut l.lib, &root);
    assert_eq!(r.updated, 1, "{r:?}");
    assert!(in_step(&l));
    let a = l.lib.store.resolve("a000").unwrap();
    let hits = server_index(&l)
        .search(
            &l.lib
                .store
                .record(&EmbedderId::new(EMBEDDER), &a.id)
                .unwrap()
                .unwrap()
                .vector,
            &SearchFilter {
                objective: None,
                node: Some("customers".into()),
            },
            1,
        )
        .unwrap();
    assert_eq!(hits[0].id, a.id, "the server filters it under its new node");
}

#[test]
fn opensearch_engine_new_bytes_for_a_manifest_id_replace_the_old_vector() {
    let Some(url) = node() else { return };
    let mut l = live(&url, 12);
    let root = l.dir.path().join("photos");
    let old = l.lib.store.resolve("a003").unwrap().id;
    std::fs::write(root.join("3.png"), png(1003)).unwrap();
    let r = ingest_folder(&mut l.lib, &root);
    assert_eq!(r.updated, 1, "{r:?}");
    let new = l.lib.store.resolve("a003").unwrap().id;
    assert_ne!(old, new);
    assert!(in_step(&l));
    let ix = server_index(&l);
    let ids: Vec<String> = ix
        .states_in(&campaign_studio::domain::index::bucket_of(&old))
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(!ids.contains(&old), "the replaced vector left the server");
    assert_eq!(ix.count(&SearchFilter::default()).unwrap(), 12);
}

#[test]
fn opensearch_engine_remove_reaches_the_server() {
    let Some(url) = node() else { return };
    let mut l = live(&url, 10);
    let gone = l.lib.store.resolve("a004").unwrap().id;
    l.lib.store.remove(std::slice::from_ref(&gone)).unwrap();
    assert!(l.lib.sync_inline().is_none());
    assert!(in_step(&l));
    assert_eq!(server_index(&l).count(&SearchFilter::default()).unwrap(), 9);
}

#[test]
fn opensearch_engine_reindex_reaches_the_server() {
    let Some(url) = node() else { return };
    let l = live(&url, 8);
    // A second embedder's vectors, pushed by `library sync --embedder`.
    let other = FakeEmbedder::new(32);
    let r = campaign_studio::engine::reindex::reindex(&l.lib, &other, &mut |_, _| {}).unwrap();
    assert_eq!(r.embedded, 8);
    assert!(r.unsynced.is_none(), "{r:?}");
    // Inline: the reindex pushed the new embedder's index itself.
    let spec = campaign_studio::engine::sync::spec(&l.lib, other.id()).unwrap();
    let ix = l.backend.open(&spec, false).unwrap();
    assert_eq!(ix.count(&SearchFilter::default()).unwrap(), 8);
    assert!(
        drift(&l.lib, ix.as_ref(), other.id()).unwrap().is_empty(),
        "in step"
    );
}

#[test]
fn opensearch_engine_promote_reaches_the_server() {
    let Some(url) = node() else { return };
    let mut l = live(&url, 8);
    // A generated image with results, promoted into the library.
    let c = campaign_studio::engine::campaign::create(
        &l.lib,
        campaign_studio::engine::campaign::NewCampaign {
            name: "promo".into(),
            brief: "a dog on a beach".into(),
            objective: "likes".into(),
            node: "followers".into(),
            brand: None,
        },
    )
    .unwrap();
    campaign_studio::engine::prompt::edit(&l.lib, &c, "a dog on a beach, golden light", None)
        .unwrap();
    let generator = campaign_studio::services::fake::FakeGenerator::default();
    let images = campaign_studio::engine::generate::generate(
        &mut l.lib,
        &c,
        &generator,
        &campaign_studio::engine::generate::GenerateOptions {
            seed: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    campaign_studio::engine::campaign::record_results(&l.lib, &c, &images[0].id, 0.5).unwrap();
    let r = campaign_studio::engine::campaign::promote(&mut l.lib, &images[0].id).unwrap();
    assert_eq!(r.ingested, 1, "{r:?}");
    assert!(r.unsynced.is_none(), "{r:?}");
    assert!(in_step(&l));
    assert_eq!(server_index(&l).count(&SearchFilter::default()).unwrap(), 9);
}

#[test]
fn opensearch_engine_unreachable_server_leaves_work_unsynced_until_a_later_sync() {
    let Some(url) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ns = namespace();
    // A closed loopback port: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut down_cfg = config(&format!("http://127.0.0.1:{closed}"), &ns);
    down_cfg.index.opensearch.max_attempts = 1;
    let mut lib = library_at(dir.path(), down_cfg.clone());
    lib.use_vector_backend(Arc::new(OpenSearch::new(&down_cfg.index).unwrap()))
        .unwrap();
    let root = photos(dir.path(), 6);
    let r = ingest_folder(&mut lib, &root);
    assert_eq!(r.ingested, 6, "the ingest itself succeeds");
    let why = r.unsynced.clone().unwrap_or_default();
    assert!(why.contains("library sync"), "{why}");
    drop(lib);
    // The server is back: a sync pushes all of it.
    let up = config(&url, &ns);
    let backend = Arc::new(OpenSearch::new(&up.index).unwrap());
    let l = Live {
        lib: library_at(dir.path(), up),
        backend: backend.clone(),
        dir,
    };
    l.lib.use_vector_backend(backend.clone()).unwrap();
    let before = campaign_studio::engine::sync::unsynced(&l.lib, backend.as_ref()).unwrap();
    assert!(
        before.iter().any(|(e, n)| e == EMBEDDER && *n == 6),
        "{before:?}"
    );
    let s = sync(
        &l.lib,
        backend.as_ref(),
        &EmbedderId::new(EMBEDDER),
        &SyncOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((s.pushed, s.unsynced), (6, 0), "{s:?}");
}

#[test]
fn opensearch_engine_drift_behind_the_librarys_back_is_found_then_repaired() {
    let Some(url) = node() else { return };
    let l = live(&url, 16);
    let embedder = EmbedderId::new(EMBEDDER);
    let ix_name = {
        let a = campaign_studio::services::opensearch::bodies::index_name(
            &l.lib.config.index.namespace,
            EMBEDDER,
        );
        format!("{a}-v1")
    };
    let http = |m: &str, p: &str, body: Option<serde_json::Value>| {
        let mut c = std::process::Command::new("curl");
        c.args([
            "-s",
            "-X",
            m,
            &format!("{url}{p}"),
            "-H",
            "content-type: application/json",
        ]);
        if let Some(b) = body {
            c.args(["-d", &b.to_string()]);
        }
        let out = c.output().expect("curl");
        assert!(out.status.success());
    };
    let deleted = l.lib.store.resolve("a001").unwrap().id;
    let moved = l.lib.store.resolve("a002").unwrap().id;
    // A document deleted, a foreign one added, a node changed: directly on the server.
    http(
        "DELETE",
        &format!("/{ix_name}/_doc/{deleted}?refresh=true"),
        None,
    );
    // A foreign document under its own id, and a second copy of an asset under another id.
    http(
        "PUT",
        &format!("/{ix_name}/_doc/some-other-id?refresh=true"),
        Some(
            json!({"asset_id": "ffforeign", "objective": "likes", "node": "followers",
            "bucket": "ff", "kpi": 0.1, "version": 3, "vector": vec![0.125f32; 64]}),
        ),
    );
    let copied = l.lib.store.resolve("a005").unwrap().id;
    let rec = l.lib.store.record(&embedder, &copied).unwrap().unwrap();
    http(
        "PUT",
        &format!("/{ix_name}/_doc/copy-of-a005?refresh=true"),
        Some(
            json!({"asset_id": copied, "objective": rec.meta.objective, "node": rec.meta.node,
            "bucket": campaign_studio::domain::index::bucket_of(&copied), "kpi": rec.meta.kpi,
            "version": rec.version, "vector": rec.vector}),
        ),
    );
    http(
        "POST",
        &format!("/{ix_name}/_update/{moved}?refresh=true"),
        Some(json!({"doc": {"node": "new_customers"}})),
    );
    let check = sync(
        &l.lib,
        l.backend.as_ref(),
        &embedder,
        &SyncOptions {
            check: true,
            rebuild: false,
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(check.drift.missing, vec![deleted.clone()]);
    assert_eq!(check.drift.extra, vec!["ffforeign".to_string()]);
    assert_eq!(check.drift.version, vec![moved.clone()]);
    assert_eq!(check.drift.duplicate, vec![copied.clone()]);
    // The same through the command line: exit 1, the assets named.
    let env = common::Env::without_models();
    let out = env
        .cmd()
        .env("CAMPAIGN_STUDIO_DATA_DIR", l.dir.path().join("data"))
        .env("CAMPAIGN_STUDIO_INDEX__BACKEND", "opensearch")
        .env(
            "CAMPAIGN_STUDIO_INDEX__NAMESPACE",
            &l.lib.config.index.namespace,
        )
        .env("CAMPAIGN_STUDIO_INDEX__OPENSEARCH__URL", &url)
        .args(["library", "sync", "--embedder", EMBEDDER, "--check"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&deleted) && text.contains("ffforeign") && text.contains(&moved),
        "{text}"
    );
    let fixed = sync(
        &l.lib,
        l.backend.as_ref(),
        &embedder,
        &SyncOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(fixed.drift_after.is_empty(), "{fixed:?}");
    assert!(in_step(&l));
    let again = sync(
        &l.lib,
        l.backend.as_ref(),
        &embedder,
        &SyncOptions {
            check: true,
            rebuild: false,
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert!(again.drift.is_empty(), "{again:?}");
    // The moved asset is back under its node in the library.
    let hits = server_index(&l)
        .search(
            &l.lib
                .store
                .record(&embedder, &moved)
                .unwrap()
                .unwrap()
                .vector,
            &SearchFilter {
                objective: None,
                node: Some("new_customers".into()),
            },
            16,
        )
        .unwrap();
    assert!(hits.iter().all(|h| h.id != moved));
}

#[test]
fn opensearch_engine_two_syncs_at_once_end_with_equal_digests() {
    let Some(url) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ns = namespace();
    let mut cfg = config(&url, &ns);
    cfg.index.sync = "manual".into();
    let mut lib = library_at(dir.path(), cfg.clone());
    let root = photos(dir.path(), 40);
    ingest_folder(&mut lib, &root);
    drop(lib);
    let a = Arc::new(OpenSearch::new(&cfg.index).unwrap());
    let embedder = EmbedderId::new(EMBEDDER);
    // Two processes' worth: each thread opens the library and its own client.
    let run = |client: Arc<OpenSearch>| {
        let (cfg, path, embedder) = (cfg.clone(), dir.path().to_path_buf(), embedder.clone());
        std::thread::spawn(move || {
            let lib = library_at(&path, cfg);
            sync(
                &lib,
                client.as_ref(),
                &embedder,
                &SyncOptions::default(),
                &mut |_, _| {},
            )
            .unwrap()
        })
    };
    let one = run(a.clone());
    let two = run(Arc::new(OpenSearch::new(&cfg.index).unwrap()));
    let (one, two) = (one.join().unwrap(), two.join().unwrap());
    assert_eq!(one.failed.len() + two.failed.len(), 0);
    let l = Live {
        lib: library_at(dir.path(), cfg),
        backend: a,
        dir,
    };
    assert_eq!(
        l.lib.store.digest(&embedder).unwrap(),
        server_index(&l).digest().unwrap()
    );
}

#[test]
fn opensearch_engine_rebuild_fills_a_new_index_and_swaps_the_alias() {
    let Some(url) = node() else { return };
    let l = live(&url, 10);
    let s = sync(
        &l.lib,
        l.backend.as_ref(),
        &EmbedderId::new(EMBEDDER),
        &SyncOptions {
            check: false,
            rebuild: true,
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert!(s.index.ends_with("-v2"), "{s:?}");
    let names: Vec<String> = l
        .backend
        .indexes()
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec![s.index.clone()], "the old generation is gone");
    assert!(in_step(&l));
}
