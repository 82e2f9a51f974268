//! The OpenSearch backend on a live node beside the embedded index, in one run, on the same
//! data and queries: bulk load (vectors/s, through the backend's own batched, bounded bulk
//! writes), search latency p50/p99, recall@10 against the exact f32 scan, and the share of
//! queries that got min(k, matches) hits, unfiltered and with filters matching 50 %, 8 % and
//! 1 %. The vectors are the index bench's (clustered, low-rank, fixed seed).
//!
//! `OPENSEARCH_URL=... cargo bench --bench opensearch` (start a node with
//! `scripts/opensearch-node.sh start`); OS_BENCH_N sets the size (default 100000), OS_BENCH_DIM
//! the dimension (default 1024), OS_BENCH_EF / OS_BENCH_M / OS_BENCH_CONCURRENCY override the
//! HNSW parameters and bulk requests in flight. Without OPENSEARCH_URL it says so and does
//! nothing.
use std::time::Instant;

use campaign_studio::config::{Config, VectorStorage};
use campaign_studio::domain::{EmbedderId, SearchFilter};
use campaign_studio::services::local::exact_index::ExactIndex;
use campaign_studio::services::opensearch::OpenSearch;
use campaign_studio::services::{IndexSpec, VectorBackend, VectorIndex, VectorMeta, VectorRecord};

mod common;
use common::{dataset, filters, percentile, queries};

struct Row {
    engine: String,
    filter: &'static str,
    p50: f64,
    p99: f64,
    recall: f64,
    returned_k: f64,
}

fn measure(
    engine: &str,
    ix: &dyn VectorIndex,
    exact: &ExactIndex,
    queries: &[Vec<f32>],
    metas: &[VectorMeta],
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, f) in filters() {
        let matches = metas.iter().filter(|m| matches(m, &f)).count();
        let mut times = Vec::new();
        let (mut recall, mut full) = (0.0, 0usize);
        for q in queries {
            let t = Instant::now();
            let got = ix.search(q, &f, 10).expect("search");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            let want = exact.search(q, &f, 10).expect("exact");
            let hit = got
                .iter()
                .filter(|g| want.iter().any(|w| w.id == g.id))
                .count();
            recall += hit as f64 / want.len().max(1) as f64;
            if got.len() == matches.min(10) {
                full += 1;
            }
        }
        times.sort_by(f64::total_cmp);
        rows.push(Row {
            engine: engine.to_string(),
            filter: name,
            p50: percentile(&times, 0.5),
            p99: percentile(&times, 0.99),
            recall: recall / queries.len() as f64,
            returned_k: full as f64 / queries.len() as f64,
        });
    }
    rows
}

fn matches(m: &VectorMeta, f: &SearchFilter) -> bool {
    f.objective.as_ref().is_none_or(|o| *o == m.objective)
        && f.node.as_ref().is_none_or(|n| *n == m.node)
}

fn main() {
    let Some(url) = std::env::var("OPENSEARCH_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: OPENSEARCH_URL not set (scripts/opensearch-node.sh start prints one)");
        return;
    };
    let n: usize = std::env::var("OS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dim: usize = std::env::var("OS_BENCH_DIM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let (vecs, metas) = dataset(n, dim, 42 + dim as u64);
    let queries = queries(&vecs, 200);
    let records: Vec<VectorRecord> = vecs
        .iter()
        .zip(&metas)
        .enumerate()
        .map(|(i, (v, m))| VectorRecord {
            id: format!("{:02x}{i:08}", i % 256),
            vector: v.clone(),
            meta: m.clone(),
            version: i as i64 + 1,
        })
        .collect();
    let embedder = EmbedderId::new("bench/opensearch");

    // The embedded index, as the studio builds it (auto storage), and the exact truth.
    let build = |storage: VectorStorage, threads: usize| {
        let mut ix = ExactIndex::new(embedder.clone(), dim, storage, threads);
        ix.reserve(n);
        for r in &records {
            ix.put(&r.id, &r.vector, r.meta.clone(), r.version)
                .expect("put");
        }
        ix.rebuild_sketches();
        ix
    };
    let exact = build(VectorStorage::F32, 1);
    let cfg = Config::defaults();
    let auto = cfg.search.storage_for(n, dim);
    let t = Instant::now();
    let embedded = build(auto, cfg.search.threads);
    let embedded_load = t.elapsed().as_secs_f64();

    // The live node, through the backend.
    let mut icfg = cfg.index.clone();
    icfg.backend = "opensearch".into();
    icfg.namespace = format!("cs-bench-{}", std::process::id());
    icfg.opensearch.url = url.clone();
    if let Some(ef) = std::env::var("OS_BENCH_EF")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        icfg.opensearch.ef_construction = ef;
    }
    if let Some(m) = std::env::var("OS_BENCH_M")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        icfg.opensearch.m = m;
    }
    if let Some(c) = std::env::var("OS_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        icfg.opensearch.max_concurrency = c;
    }
    let backend = OpenSearch::new(&icfg).expect("client");
    let spec = IndexSpec {
        embedder: embedder.clone(),
        dim,
        library_id: "bench".into(),
    };
    let mut server = backend.open(&spec, true).expect("open");
    let t = Instant::now();
    for chunk in records.chunks(icfg.batch_size) {
        let w = server.upsert(chunk).expect("bulk");
        assert!(w.failed.is_empty(), "{:?}", w.failed.first());
    }
    server.flush().expect("refresh");
    let bulk_secs = t.elapsed().as_secs_f64();
    let count = server.count(&SearchFilter::default()).expect("count");
    assert_eq!(count, n);

    let mut rows = measure(
        &format!("embedded-{auto:?}-{}t", cfg.search.threads).to_lowercase(),
        &embedded,
        &exact,
        &queries,
        &metas,
    );
    rows.extend(measure(
        &format!("opensearch-{}", icfg.opensearch.engine),
        server.as_ref(),
        &exact,
        &queries,
        &metas,
    ));
    eprintln!(
        "{n} x {dim}: OpenSearch bulk load {:.0} vectors/s ({bulk_secs:.1} s, batches of {}, {} in flight, engine {}, m {}, ef_construction {}); embedded index built in {embedded_load:.2} s",
        n as f64 / bulk_secs,
        icfg.batch_size,
        icfg.opensearch.max_concurrency,
        icfg.opensearch.engine,
        icfg.opensearch.m,
        icfg.opensearch.ef_construction
    );
    eprintln!(
        "{:<26} {:<10} {:>8} {:>8} {:>9} {:>10}",
        "engine", "filter", "p50 ms", "p99 ms", "recall10", "returned_k"
    );
    let mut csv = String::from("n,dim,engine,filter,p50_ms,p99_ms,recall10,returned_k\n");
    for r in &rows {
        eprintln!(
            "{:<26} {:<10} {:>8.2} {:>8.2} {:>9.4} {:>10.3}",
            r.engine, r.filter, r.p50, r.p99, r.recall, r.returned_k
        );
        csv.push_str(&format!(
            "{n},{dim},{},{},{:.3},{:.3},{:.4},{:.3}\n",
            r.engine, r.filter, r.p50, r.p99, r.recall, r.returned_k
        ));
    }
    if let Ok(path) = std::env::var("OS_BENCH_CSV") {
        std::fs::write(&path, csv).expect("csv");
    }
    for i in backend.indexes().unwrap_or_default() {
        let _ = backend.delete_index(&i.name);
    }
}
