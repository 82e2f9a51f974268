//! Vector index: load (build) time, query latency p50/p99 unfiltered and with filters matching
//! 50 %, 8 % and 1 % of the assets, recall@10 of int8 storage against the plain f32 scan, and
//! memory per vector. Synthetic vectors are clustered and low-rank (like real embeddings), from
//! a fixed seed. Sizes: 10k and 100k vectors of 384-d and 1024-d.
//!
//! `cargo bench --bench index` (set CS_BENCH_QUICK=1 for 10k only).
use std::time::Instant;

use campaign_studio::config::VectorStorage;
use campaign_studio::domain::EmbedderId;
use campaign_studio::services::local::exact_index::ExactIndex;
use campaign_studio::services::{VectorIndex, VectorMeta};
use criterion::Criterion;
use std::hint::black_box;

mod common;
use common::{dataset, filters, percentile, queries};

fn build(
    vecs: &[Vec<f32>],
    metas: &[VectorMeta],
    storage: VectorStorage,
    threads: usize,
) -> ExactIndex {
    let mut ix = ExactIndex::new(EmbedderId::new("bench"), vecs[0].len(), storage, threads);
    ix.reserve(vecs.len());
    for (i, (v, m)) in vecs.iter().zip(metas).enumerate() {
        ix.put(&format!("{i:08}"), v, m.clone(), i as i64 + 1)
            .unwrap();
    }
    ix.rebuild_sketches();
    ix
}

fn report(n: usize, dim: usize) {
    let (vecs, metas) = dataset(n, dim, 42 + dim as u64);
    let queries = queries(&vecs, 200);
    let t = Instant::now();
    let exact = build(&vecs, &metas, VectorStorage::F32, 1);
    let load_f32 = t.elapsed().as_secs_f64() * 1e3;
    for (storage, threads) in [
        (VectorStorage::F32, 1),
        (VectorStorage::F32, 2),
        (VectorStorage::Int8, 2),
        (VectorStorage::Sketch, 1),
        (VectorStorage::Sketch, 2),
    ] {
        let t = Instant::now();
        let ix = build(&vecs, &metas, storage, threads);
        let load = t.elapsed().as_secs_f64() * 1e3;
        for (name, f) in filters() {
            let mut times = Vec::new();
            let mut recall = 0.0;
            for q in &queries {
                let t = Instant::now();
                let got = ix.search(q, &f, 10).unwrap();
                times.push(t.elapsed().as_secs_f64() * 1e3);
                let want = exact.search(q, &f, 10).unwrap();
                let hit = got
                    .iter()
                    .filter(|g| want.iter().any(|w| w.id == g.id))
                    .count();
                recall += hit as f64 / want.len().max(1) as f64;
            }
            times.sort_by(f64::total_cmp);
            eprintln!(
                "{n:>6} x {dim:<4} {storage:?} threads {threads}  load {load:7.1} ms  {name:<10} p50 {:6.2} ms  p99 {:6.2} ms  recall@10 {:.4}  ({} B/vector)",
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                recall / queries.len() as f64,
                ix.bytes_per_vector()
            );
        }
    }
    eprintln!("{n:>6} x {dim:<4} (f32 single-thread build for reference: {load_f32:.1} ms)");
}

/// Start-up path: the index of one embedder loaded from the library's SQLite store
/// (`Library::load_index`, which also builds the sketches when the size calls for them).
fn load_from_store(n: usize, dim: usize) {
    use campaign_studio::config::Config;
    use campaign_studio::engine::Library;
    use campaign_studio::paths::Paths;
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = Paths::for_dirs(
        &dir.path().join("c"),
        &dir.path().join("d"),
        &dir.path().join("m"),
    );
    let lib = Library::open(paths.clone(), Config::defaults()).expect("library");
    drop(lib);
    let (vecs, metas) = dataset(n, dim, 5);
    {
        let mut conn = rusqlite::Connection::open(paths.database()).expect("db");
        let tx = conn.transaction().expect("tx");
        for (i, (v, m)) in vecs.iter().zip(&metas).enumerate() {
            let id = format!("{i:064x}");
            tx.execute(
                "INSERT INTO assets (id, file, stored_path, thumbnail_path, byte_size, format, width, height, phash, objective, node, kpi, description, model_labels, metadata, meta_hash, created_at, updated_at)
                 VALUES (?1, ?1, '', '', 0, 'jpg', 1, 1, '', ?2, ?3, ?4, '{}', '[]', '{}', '', '', '')",
                rusqlite::params![id, m.objective, m.node, m.kpi],
            )
            .expect("asset");
            tx.execute(
                "INSERT INTO embeddings (asset_id, embedder, dim, vector, source) VALUES (?1, 'bench', ?2, ?3, '')",
                rusqlite::params![id, dim as i64, campaign_studio::store::vector_to_blob(v)],
            )
            .expect("vector");
        }
        tx.commit().expect("commit");
    }
    let lib = Library::open(paths, Config::defaults()).expect("library");
    let t = Instant::now();
    let raw = lib.store.vectors(&EmbedderId::new("bench")).expect("read");
    eprintln!(
        "{n:>6} x {dim:<4} SQLite read alone: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    drop(raw);
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let ix = lib.load_index(&EmbedderId::new("bench")).expect("load");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(ix.len(), n);
        eprintln!(
            "{n:>6} x {dim:<4} load from SQLite ({:?} storage): {:.0} ms",
            ix.storage(),
            times.last().unwrap_or(&0.0)
        );
    }
}

fn main() {
    if std::env::var_os("CS_BENCH_LOAD").is_some() {
        for dim in [384, 1024] {
            load_from_store(100_000, dim);
        }
        return;
    }
    let quick = std::env::var_os("CS_BENCH_QUICK").is_some();
    let sizes: Vec<usize> = match std::env::var("CS_BENCH_N") {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) if quick => vec![10_000],
        Err(_) => vec![10_000, 100_000],
    };
    for &n in &sizes {
        for dim in [384, 1024] {
            report(n, dim);
        }
    }
    // Criterion timing of the headline case.
    let n = *sizes.last().unwrap_or(&10_000);
    let (vecs, metas) = dataset(n, 1024, 99);
    let ix = build(&vecs, &metas, VectorStorage::Sketch, 2);
    let mut c = Criterion::default().configure_from_args().sample_size(30);
    for (name, f) in filters() {
        c.bench_function(&format!("search {n}x1024 sketch 2 threads {name}"), |b| {
            b.iter(|| ix.search(black_box(&vecs[17]), &f, 10).unwrap())
        });
    }
    c.final_summary();
}
