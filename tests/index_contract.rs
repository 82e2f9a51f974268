//! One contract for every vector index backend: the same cases, instantiated per backend (the
//! embedded exact index in f32, int8 and sketch storage, the same as a session holds it over a
//! snapshot written and reopened at each flush, a fake server holding exact indexes,
//! and a real OpenSearch node with the k-NN plugin). Test names carry the backend
//! (`opensearch::filtered_knn_returns_min_k_and_matches_50_percent`), so `cargo test opensearch`
//! runs every OpenSearch test. The OpenSearch cases need OPENSEARCH_URL
//! (`scripts/opensearch-node.sh start` prints it); without it they print `skipped:` and pass,
//! unless CAMPAIGN_STUDIO_REQUIRE_SERVERS names opensearch (CI), where they fail. Each
//! OpenSearch test uses a fresh namespace and deletes only what it made.
//!
//! Thresholds: results must be exact where the index scans exactly (f32 storage and the fake
//! server: recall@10 >= 0.99 against brute force) and recall@10 >= 0.95 where it approximates
//! (int8 and sketch re-rank candidates; OpenSearch's HNSW graph), as the issue that asked for
//! this suite sets them.
mod common;

use std::sync::Arc;

use campaign_studio::config::{Config, VectorStorage};
use campaign_studio::domain::index::{DocState, bucket_of, digest_of};
use campaign_studio::domain::{EmbedderId, SearchFilter};
use campaign_studio::services::fake::FakeServer;
use campaign_studio::services::local::exact_index::{ExactIndex, dot};
use campaign_studio::services::local::live_index::LiveIndex;
use campaign_studio::services::local::snapshot;
use campaign_studio::services::opensearch::OpenSearch;
use campaign_studio::services::s3vectors::S3Vectors;
use campaign_studio::services::{
    IndexSpec, Tombstone, VectorBackend, VectorIndex, VectorMeta, VectorRecord, WriteReport,
    normalize,
};
use common::s3vectors::FakeS3Vectors;

// ---------------------------------------------------------------------------------------
// Harnesses.

trait Harness {
    /// A new index for `spec` (created on a server).
    fn open(&self, spec: &IndexSpec) -> Box<dyn VectorIndex>;
    /// The server, through the client the test opened indexes with; None for in-memory
    /// indexes.
    fn backend(&self) -> Option<Arc<dyn VectorBackend>> {
        None
    }
    /// The same server through a new client (another process, later).
    fn fresh_client(&self) -> Option<Arc<dyn VectorBackend>> {
        None
    }
    /// Whether searches scan exactly.
    fn exact(&self) -> bool;
}

struct Exact(VectorStorage);

impl Harness for Exact {
    fn open(&self, spec: &IndexSpec) -> Box<dyn VectorIndex> {
        Box::new(ExactIndex::new(spec.embedder.clone(), spec.dim, self.0, 2))
    }
    fn exact(&self) -> bool {
        self.0 == VectorStorage::F32
    }
}

/// The embedded index as a session holds it (engine::live): each flush writes the live rows
/// to a snapshot and reopens it mapped, so later writes land in the delta over a mapped base
/// and searches merge the two.
struct Snapshotted(VectorStorage);

struct Persisting {
    live: LiveIndex,
    storage: VectorStorage,
    dir: tempfile::TempDir,
}

impl Harness for Snapshotted {
    fn open(&self, spec: &IndexSpec) -> Box<dyn VectorIndex> {
        let base = ExactIndex::new(spec.embedder.clone(), spec.dim, self.0, 2);
        Box::new(Persisting {
            live: LiveIndex::new(base, 0),
            storage: self.0,
            dir: tempfile::tempdir().unwrap(),
        })
    }
    fn exact(&self) -> bool {
        self.0 == VectorStorage::F32
    }
}

impl VectorIndex for Persisting {
    fn embedder(&self) -> &EmbedderId {
        self.live.embedder()
    }
    fn dim(&self) -> usize {
        self.live.dim()
    }
    fn upsert(&mut self, records: &[VectorRecord]) -> campaign_studio::Result<WriteReport> {
        self.live.upsert(records)
    }
    fn remove(&mut self, tombstones: &[Tombstone]) -> campaign_studio::Result<WriteReport> {
        self.live.remove(tombstones)
    }
    fn flush(&mut self) -> campaign_studio::Result<()> {
        let embedder = self.live.embedder().clone();
        let path = snapshot::path_for(self.dir.path(), &embedder);
        self.live.write_snapshot(&path, "contract", self.storage)?;
        let expect = snapshot::Expect {
            embedder: &embedder,
            library_id: "contract",
            dim: Some(self.live.dim()),
        };
        let (base, header) = snapshot::open(&path, &expect, None)
            .map_err(|e| campaign_studio::Error::Invalid(e.to_string()))?;
        assert!(base.is_mapped());
        self.live = LiveIndex::new(base, header.seq);
        Ok(())
    }
    fn count(&self, filter: &SearchFilter) -> campaign_studio::Result<usize> {
        self.live.count(filter)
    }
    fn search(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
    ) -> campaign_studio::Result<Vec<campaign_studio::services::Neighbour>> {
        self.live.search(query, filter, k)
    }
    fn search_exact(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
    ) -> campaign_studio::Result<Vec<campaign_studio::services::Neighbour>> {
        self.live.search_exact(query, filter, k)
    }
    fn kpi_percentiles(
        &self,
        filter: &SearchFilter,
        kpis: &[Option<f64>],
    ) -> campaign_studio::Result<Vec<f32>> {
        self.live.kpi_percentiles(filter, kpis)
    }
    fn digest(&self) -> campaign_studio::Result<Vec<campaign_studio::domain::index::DigestBucket>> {
        self.live.digest()
    }
    fn states_in(&self, bucket: &str) -> campaign_studio::Result<Vec<DocState>> {
        self.live.states_in(bucket)
    }
}

struct Server {
    backend: Arc<dyn VectorBackend>,
    fresh: Box<dyn Fn() -> Arc<dyn VectorBackend>>,
    exact: bool,
    /// Deletes what the test made.
    cleanup: Option<Box<dyn Fn()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &self.cleanup {
            c();
        }
    }
}

impl Harness for Server {
    fn open(&self, spec: &IndexSpec) -> Box<dyn VectorIndex> {
        self.backend.open(spec, true).expect("open with create")
    }
    fn backend(&self) -> Option<Arc<dyn VectorBackend>> {
        Some(self.backend.clone())
    }
    fn fresh_client(&self) -> Option<Arc<dyn VectorBackend>> {
        Some((self.fresh)())
    }
    fn exact(&self) -> bool {
        self.exact
    }
}

fn fake_server() -> Option<Box<dyn Harness>> {
    let server = FakeServer::new("contract");
    let clients = server.clone();
    Some(Box::new(Server {
        backend: Arc::new(server),
        // A clone shares the server's state, as a second client of one server does.
        fresh: Box::new(move || Arc::new(clients.clone())),
        exact: true,
        cleanup: None,
    }))
}

fn opensearch() -> Option<Box<dyn Harness>> {
    let url = common::opensearch_url()?;
    let mut cfg = Config::defaults();
    cfg.index.backend = "opensearch".into();
    cfg.index.namespace = fresh_namespace();
    cfg.index.opensearch.url = url;
    cfg.index.batch_size = 200;
    let os = Arc::new(OpenSearch::new(&cfg.index).expect("OpenSearch client"));
    let cleanup_os = os.clone();
    let index_cfg = cfg.index.clone();
    Some(Box::new(Server {
        backend: os,
        fresh: Box::new(move || Arc::new(OpenSearch::new(&index_cfg).expect("a second client"))),
        exact: false,
        cleanup: Some(Box::new(move || {
            for i in cleanup_os.indexes().unwrap_or_default() {
                let _ = cleanup_os.delete_index(&i.name);
            }
        })),
    }))
}

/// The S3 Vectors backend through the real SDK against the loopback fake of
/// tests/common/s3vectors.rs (stores what it is sent, filters before searching as the ENHANCED
/// mode documents, searches exactly). What it proves is our client's side; the service's own
/// approximate recall is not modelled.
fn s3vectors_fake() -> Option<Box<dyn Harness>> {
    let fake = Arc::new(FakeS3Vectors::start("contract-bucket"));
    let mut cfg = Config::defaults();
    cfg.index.backend = "s3vectors".into();
    cfg.index.namespace = "cs-test".into();
    cfg.index.batch_size = 200;
    cfg.index.s3vectors.bucket = "contract-bucket".into();
    cfg.index.s3vectors.region = common::s3vectors::REGION.into();
    cfg.index.s3vectors.endpoint_url = fake.uri();
    cfg.index.s3vectors.max_attempts = 1;
    let client = |c: &campaign_studio::config::IndexConfig| {
        S3Vectors::with_credentials(
            c,
            aws_credential_types::Credentials::new(
                "AKIDCONTRACT",
                "contract-secret",
                None,
                None,
                "test",
            ),
        )
        .expect("S3 Vectors client")
    };
    let index_cfg = cfg.index.clone();
    Some(Box::new(Server {
        backend: Arc::new(client(&cfg.index)),
        fresh: Box::new(move || {
            let _keep = &fake;
            Arc::new(client(&index_cfg))
        }),
        exact: true,
        cleanup: None,
    }))
}

/// A namespace no other test uses (tests run in parallel against one node).
fn fresh_namespace() -> String {
    common::unique_name("cs-test")
}

// ---------------------------------------------------------------------------------------
// Data: seeded, clustered unit vectors with filter values of known sizes.

const DIM: usize = 32;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
    fn unit(&mut self, centre: &[f32]) -> Vec<f32> {
        let mut v: Vec<f32> = centre.iter().map(|c| c + self.next() * 0.6).collect();
        normalize(&mut v);
        v
    }
}

fn spec(embedder: &str) -> IndexSpec {
    IndexSpec {
        embedder: EmbedderId::new(embedder),
        dim: DIM,
        library_id: "contract-library".into(),
    }
}

/// An asset id in a hex bucket like the library's content-hash ids.
fn id(i: usize) -> String {
    format!("{:02x}{:06}", i % 256, i)
}

/// 1000 records: objective "half" on 50 %, "eight" on 8 %, "one" on 1 %, else "rest"; node
/// "k1"/"k10"/"k100" on exactly 1/10/100 records and "j10"/"j100" on 9/99 ("j1" on none).
fn library(seed: u64) -> Vec<VectorRecord> {
    let mut rng = Rng(seed);
    let centres: Vec<Vec<f32>> = (0..8)
        .map(|_| (0..DIM).map(|_| rng.next() * 2.0).collect())
        .collect();
    let mut node_of = vec!["rest".to_string(); 1000];
    let mut at = 0;
    for (name, n) in [
        ("k1", 1),
        ("k10", 10),
        ("k100", 100),
        ("j10", 9),
        ("j100", 99),
    ] {
        for slot in node_of.iter_mut().skip(at).take(n) {
            *slot = name.to_string();
        }
        at += n;
    }
    (0..1000)
        .map(|i| {
            let objective = if i % 2 == 0 {
                "half"
            } else if i % 25 == 1 || i % 25 == 3 {
                "eight"
            } else if i % 100 == 5 {
                "one"
            } else {
                "rest"
            };
            VectorRecord {
                id: id(i),
                vector: rng.unit(&centres[i % 8]),
                meta: VectorMeta {
                    objective: objective.into(),
                    node: node_of[i].clone(),
                    kpi: (i % 13 != 0).then_some((i % 97) as f64 / 10.0),
                },
                version: i as i64 + 1,
            }
        })
        .collect()
}

fn loaded(h: &dyn Harness, embedder: &str, records: &[VectorRecord]) -> Box<dyn VectorIndex> {
    let mut ix = h.open(&spec(embedder));
    let r = ix.upsert(records).unwrap();
    // A case that loads the same records twice finds them there already.
    assert_eq!(r.written + r.stale.len(), records.len(), "{r:?}");
    assert!(r.failed.is_empty(), "{r:?}");
    ix.flush().unwrap();
    ix
}

fn filter(objective: Option<&str>, node: Option<&str>) -> SearchFilter {
    SearchFilter {
        objective: objective.map(str::to_string),
        node: node.map(str::to_string),
    }
}

fn matches(r: &VectorRecord, f: &SearchFilter) -> bool {
    f.objective.as_ref().is_none_or(|o| *o == r.meta.objective)
        && f.node.as_ref().is_none_or(|n| *n == r.meta.node)
}

fn brute(records: &[VectorRecord], q: &[f32], f: &SearchFilter, k: usize) -> Vec<String> {
    let mut all: Vec<(f32, &str)> = records
        .iter()
        .filter(|r| matches(r, f))
        .map(|r| (dot(&r.vector, q), r.id.as_str()))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    all.into_iter().take(k).map(|x| x.1.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// The cases.

mod cases {
    use super::*;

    pub fn returns_min_k_and_every_hit_matches(h: &dyn Harness, f: SearchFilter, k: usize) {
        let records = library(7);
        let ix = loaded(h, "e/knn", &records);
        let mut rng = Rng(99);
        let q = rng.unit(&records[3].vector);
        let want = records.iter().filter(|r| matches(r, &f)).count().min(k);
        let hits = ix.search(&q, &f, k).unwrap();
        assert_eq!(hits.len(), want, "filter {f:?}, k {k}");
        for hit in &hits {
            let r = records.iter().find(|r| r.id == hit.id).unwrap();
            assert!(matches(r, &f), "{} does not match {f:?}", hit.id);
        }
    }

    pub fn similarity_is_the_dot_product_best_first(h: &dyn Harness) {
        let records = library(11);
        let ix = loaded(h, "e/sim", &records);
        let q = Rng(5).unit(&records[0].vector);
        let hits = ix.search(&q, &SearchFilter::default(), 50).unwrap();
        assert_eq!(hits.len(), 50);
        for hit in &hits {
            let r = records.iter().find(|r| r.id == hit.id).unwrap();
            assert!(
                (hit.similarity - dot(&r.vector, &q)).abs() < 1e-4,
                "{}: {} vs {}",
                hit.id,
                hit.similarity,
                dot(&r.vector, &q)
            );
        }
        assert!(hits.windows(2).all(|w| w[0].similarity >= w[1].similarity));
    }

    pub fn recall_at_10(h: &dyn Harness) {
        let records = library(13);
        let ix = loaded(h, "e/recall", &records);
        let mut rng = Rng(17);
        let mut recall = 0.0;
        let queries = 40;
        for i in 0..queries {
            let q = rng.unit(&records[i * 7].vector);
            for f in [
                filter(None, None),
                filter(Some("half"), None),
                filter(Some("eight"), None),
                filter(Some("one"), None),
            ] {
                let want = brute(&records, &q, &f, 10);
                let got: Vec<String> = ix
                    .search(&q, &f, 10)
                    .unwrap()
                    .into_iter()
                    .map(|n| n.id)
                    .collect();
                let hit = want.iter().filter(|w| got.contains(w)).count();
                recall += hit as f64 / want.len().max(1) as f64;
            }
        }
        let recall = recall / (queries * 4) as f64;
        let need = if h.exact() { 0.99 } else { 0.95 };
        assert!(recall >= need, "recall@10 {recall:.3} < {need}");
    }

    pub fn overwrite_keeps_one_copy(h: &dyn Harness) {
        let records = library(19);
        let mut ix = loaded(h, "e/overwrite", &records[..50]);
        let mut newer = records[3].clone();
        newer.vector = records[40].vector.clone();
        newer.version = 5000;
        assert_eq!(ix.upsert(&[newer.clone()]).unwrap().written, 1);
        ix.flush().unwrap();
        assert_eq!(ix.count(&SearchFilter::default()).unwrap(), 50);
        let top = ix
            .search(&newer.vector, &SearchFilter::default(), 2)
            .unwrap();
        let ids: Vec<&str> = top.iter().map(|n| n.id.as_str()).collect();
        assert!(ids.contains(&newer.id.as_str()), "{ids:?}");
    }

    pub fn metadata_change_moves_a_vector_between_filters(h: &dyn Harness) {
        let records = library(23);
        let mut ix = loaded(h, "e/meta", &records[..40]);
        let mut moved = records[0].clone();
        assert_eq!(moved.meta.objective, "half");
        moved.meta.objective = "one".into();
        moved.version = 9000;
        ix.upsert(&[moved.clone()]).unwrap();
        ix.flush().unwrap();
        let one = ix
            .search(&moved.vector, &filter(Some("one"), None), 5)
            .unwrap();
        assert!(one.iter().any(|n| n.id == moved.id));
        let half = ix
            .search(&moved.vector, &filter(Some("half"), None), 40)
            .unwrap();
        assert!(half.iter().all(|n| n.id != moved.id));
    }

    pub fn stale_versions_are_ignored(h: &dyn Harness) {
        let records = library(29);
        let mut ix = loaded(h, "e/stale", &records[..20]);
        let mut old = records[4].clone();
        old.vector = records[15].vector.clone();
        old.version = 1; // older than its stored version 5
        let again = records[6].clone(); // the same version again
        let r = ix.upsert(&[old.clone(), again.clone()]).unwrap();
        assert_eq!(r.written, 0);
        let mut stale = r.stale.clone();
        stale.sort();
        assert_eq!(stale, vec![old.id.clone(), again.id.clone()]);
        ix.flush().unwrap();
        let top = ix
            .search(&records[4].vector, &SearchFilter::default(), 1)
            .unwrap();
        assert_eq!(top[0].id, records[4].id, "the stored vector is unchanged");
    }

    pub fn tombstones_remove_only_older_versions(h: &dyn Harness) {
        let records = library(31);
        let mut ix = loaded(h, "e/tomb", &records[..30]);
        let r = ix
            .remove(&[
                Tombstone {
                    id: records[2].id.clone(),
                    version: 100,
                },
                Tombstone {
                    id: records[3].id.clone(),
                    version: 2, // older than its version 4: a newer write wins
                },
                Tombstone {
                    id: "ffnotthere".into(),
                    version: 100,
                },
            ])
            .unwrap();
        assert_eq!(r.written, 1, "{r:?}");
        assert_eq!(r.stale, vec![records[3].id.clone()]);
        ix.flush().unwrap();
        assert_eq!(ix.count(&SearchFilter::default()).unwrap(), 29);
        let all = ix
            .search(&records[2].vector, &SearchFilter::default(), 30)
            .unwrap();
        assert!(all.iter().all(|n| n.id != records[2].id));
        assert!(all.iter().any(|n| n.id == records[3].id));
    }

    pub fn two_embedders_stay_apart(h: &dyn Harness) {
        let records = library(37);
        let a = loaded(h, "e/first", &records[..10]);
        let b = loaded(h, "e/second", &records[10..25]);
        assert_eq!(a.count(&SearchFilter::default()).unwrap(), 10);
        assert_eq!(b.count(&SearchFilter::default()).unwrap(), 15);
        let hits = a
            .search(&records[12].vector, &SearchFilter::default(), 10)
            .unwrap();
        assert!(
            hits.iter()
                .all(|n| records[..10].iter().any(|r| r.id == n.id))
        );
    }

    pub fn bad_vectors_are_refused_by_name_and_the_batch_goes_on(h: &dyn Harness) {
        let records = library(41);
        let mut ix = h.open(&spec("e/bad"));
        let mut nan = records[0].clone();
        nan.vector[3] = f32::NAN;
        let mut inf = records[1].clone();
        inf.vector[0] = f32::INFINITY;
        let mut short = records[2].clone();
        short.vector.truncate(DIM - 1);
        let r = ix
            .upsert(&[nan.clone(), inf.clone(), short.clone(), records[3].clone()])
            .unwrap();
        assert_eq!(r.written, 1);
        let reasons: Vec<String> = r.failed.iter().map(|f| f.reason.clone()).collect();
        assert_eq!(r.failed.len(), 3, "{reasons:?}");
        for (f, want) in r.failed.iter().zip([&nan.id, &inf.id, &short.id]) {
            assert_eq!(&f.id, want);
            assert!(f.reason.contains(want.as_str()), "{}", f.reason);
        }
        assert!(
            reasons[2].contains(&format!("{}", DIM - 1)),
            "{}",
            reasons[2]
        );
    }

    pub fn kpi_percentiles_equal_the_in_memory_truth(h: &dyn Harness) {
        let records = library(43);
        let ix = loaded(h, "e/kpi", &records);
        let f = filter(Some("eight"), None);
        let mut known: Vec<f64> = records
            .iter()
            .filter(|r| matches(r, &f))
            .filter_map(|r| r.meta.kpi)
            .collect();
        known.sort_by(f64::total_cmp);
        let asked = [
            Some(0.0),
            Some(3.3),
            Some(9.6),
            None,
            Some(100.0),
            Some(known[5]),
        ];
        let got = ix.kpi_percentiles(&f, &asked).unwrap();
        let want: Vec<f32> = asked
            .iter()
            .map(|k| campaign_studio::domain::index::kpi_percentile(&known, *k))
            .collect();
        assert_eq!(got, want);
    }

    pub fn digest_equals_the_in_memory_truth(h: &dyn Harness) {
        let records = library(47);
        let ix = loaded(h, "e/digest", &records[..300]);
        let states: Vec<DocState> = records[..300]
            .iter()
            .map(|r| DocState {
                id: r.id.clone(),
                version: r.version,
                objective: r.meta.objective.clone(),
                node: r.meta.node.clone(),
                kpi: r.meta.kpi,
                doc: None,
            })
            .collect();
        assert_eq!(ix.digest().unwrap(), digest_of(&states));
        let b = bucket_of(&records[7].id);
        let listed = ix.states_in(&b).unwrap();
        let mut expect: Vec<&DocState> = states.iter().filter(|s| bucket_of(&s.id) == b).collect();
        expect.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(listed.len(), expect.len());
        for (got, want) in listed.iter().zip(expect) {
            assert!(got.same_as(want), "{got:?} vs {want:?}");
        }
    }

    pub fn the_exact_path_ranks_by_the_true_dot_product(h: &dyn Harness) {
        let records = library(67);
        let ix = loaded(h, "e/exact", &records);
        let q = Rng(71).unit(&records[11].vector);
        for f in [
            filter(None, None),
            filter(Some("eight"), None),
            filter(None, Some("j10")),
        ] {
            let got = ix.search_exact(&q, &f, 10).unwrap();
            assert_eq!(
                got.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
                brute(&records, &q, &f, 10),
                "{f:?}"
            );
            for n in &got {
                let r = records.iter().find(|r| r.id == n.id).unwrap();
                assert!((n.similarity - dot(&r.vector, &q)).abs() < 1e-4);
            }
        }
    }

    pub fn count_follows_the_filter(h: &dyn Harness) {
        let records = library(53);
        let ix = loaded(h, "e/count", &records);
        for f in [
            filter(None, None),
            filter(Some("half"), None),
            filter(Some("one"), Some("rest")),
            filter(None, Some("k100")),
            filter(Some("nothing"), None),
        ] {
            let want = records.iter().filter(|r| matches(r, &f)).count();
            assert_eq!(ix.count(&f).unwrap(), want, "{f:?}");
        }
    }

    // Server backends only.

    pub fn reopened_by_a_fresh_client_it_keeps_its_vectors(h: &dyn Harness) {
        let Some(fresh) = h.fresh_client() else {
            return;
        };
        let records = library(59);
        drop(loaded(h, "e/persist", &records[..60]));
        let again = fresh.open(&spec("e/persist"), false).unwrap();
        assert_eq!(again.count(&SearchFilter::default()).unwrap(), 60);
        assert_eq!(
            again
                .search(&records[9].vector, &SearchFilter::default(), 1)
                .unwrap()[0]
                .id,
            records[9].id
        );
    }

    pub fn another_dimension_is_refused_naming_both(h: &dyn Harness) {
        let Some(backend) = h.backend() else { return };
        drop(h.open(&spec("e/dims")));
        let mut other = spec("e/dims");
        other.dim = 48;
        let e = backend.open(&other, true).err().unwrap().to_string();
        assert!(e.contains("32") && e.contains("48"), "{e}");
    }

    pub fn another_library_is_refused_naming_both(h: &dyn Harness) {
        let Some(backend) = h.backend() else { return };
        drop(h.open(&spec("e/libs")));
        let mut other = spec("e/libs");
        other.library_id = "someone-else".into();
        let e = backend.open(&other, true).err().unwrap().to_string();
        assert!(
            e.contains("contract-library") && e.contains("someone-else"),
            "{e}"
        );
    }

    pub fn a_missing_index_is_not_created_when_only_reading(h: &dyn Harness) {
        let Some(backend) = h.backend() else { return };
        let e = backend
            .open(&spec("e/absent"), false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("library sync"), "{e}");
    }

    pub fn readers_search_during_a_bulk_write(h: &dyn Harness) {
        let Some(backend) = h.backend() else { return };
        let records = library(61);
        let mut writer = loaded(h, "e/concurrent", &records[..100]);
        let reader = backend.open(&spec("e/concurrent"), false).unwrap();
        std::thread::scope(|s| {
            let w = s.spawn(|| {
                for chunk in records[100..].chunks(150) {
                    writer.upsert(chunk).unwrap();
                }
                writer.flush().unwrap();
            });
            for r in &records[..20] {
                let hits = reader
                    .search(&r.vector, &SearchFilter::default(), 10)
                    .unwrap();
                assert_eq!(hits.len(), 10);
            }
            w.join().unwrap();
        });
        assert_eq!(reader.count(&SearchFilter::default()).unwrap(), 1000);
    }
}

// ---------------------------------------------------------------------------------------
// Instantiation: every case for every backend.

macro_rules! contract {
    ($name:ident, $harness:expr) => {
        mod $name {
            use super::*;

            fn with(case: impl FnOnce(&dyn Harness)) {
                let h: Option<Box<dyn Harness>> = $harness;
                if let Some(h) = h {
                    case(h.as_ref());
                }
            }

            #[test]
            fn filtered_knn_returns_min_k_and_matches_unfiltered() {
                with(|h| cases::returns_min_k_and_every_hit_matches(h, filter(None, None), 10));
            }
            #[test]
            fn filtered_knn_returns_min_k_and_matches_50_percent() {
                with(|h| {
                    for k in [1, 10, 100] {
                        cases::returns_min_k_and_every_hit_matches(h, filter(Some("half"), None), k)
                    }
                });
            }
            #[test]
            fn filtered_knn_returns_min_k_and_matches_8_percent() {
                with(|h| {
                    for k in [1, 10, 100] {
                        cases::returns_min_k_and_every_hit_matches(
                            h,
                            filter(Some("eight"), None),
                            k,
                        )
                    }
                });
            }
            #[test]
            fn filtered_knn_returns_min_k_and_matches_1_percent() {
                with(|h| {
                    for k in [1, 10, 100] {
                        cases::returns_min_k_and_every_hit_matches(h, filter(Some("one"), None), k)
                    }
                });
            }
            #[test]
            fn filtered_knn_returns_k_when_exactly_k_match() {
                with(|h| {
                    for (node, k) in [("k1", 1), ("k10", 10), ("k100", 100)] {
                        cases::returns_min_k_and_every_hit_matches(h, filter(None, Some(node)), k)
                    }
                });
            }
            #[test]
            fn filtered_knn_returns_all_when_k_minus_one_match() {
                with(|h| {
                    for (node, k) in [("j1", 1), ("j10", 10), ("j100", 100)] {
                        cases::returns_min_k_and_every_hit_matches(h, filter(None, Some(node)), k)
                    }
                });
            }
            #[test]
            fn filtered_knn_returns_nothing_when_nothing_matches() {
                with(|h| {
                    cases::returns_min_k_and_every_hit_matches(h, filter(Some("nothing"), None), 10)
                });
            }
            #[test]
            fn similarity_is_the_dot_product_best_first() {
                with(cases::similarity_is_the_dot_product_best_first);
            }
            #[test]
            fn recall_at_10_against_brute_force() {
                with(cases::recall_at_10);
            }
            #[test]
            fn overwrite_keeps_one_copy() {
                with(cases::overwrite_keeps_one_copy);
            }
            #[test]
            fn metadata_change_moves_a_vector_between_filters() {
                with(cases::metadata_change_moves_a_vector_between_filters);
            }
            #[test]
            fn stale_versions_are_ignored() {
                with(cases::stale_versions_are_ignored);
            }
            #[test]
            fn tombstones_remove_only_older_versions() {
                with(cases::tombstones_remove_only_older_versions);
            }
            #[test]
            fn two_embedders_stay_apart() {
                with(cases::two_embedders_stay_apart);
            }
            #[test]
            fn bad_vectors_are_refused_by_name_and_the_batch_goes_on() {
                with(cases::bad_vectors_are_refused_by_name_and_the_batch_goes_on);
            }
            #[test]
            fn kpi_percentiles_equal_the_in_memory_truth() {
                with(cases::kpi_percentiles_equal_the_in_memory_truth);
            }
            #[test]
            fn digest_equals_the_in_memory_truth() {
                with(cases::digest_equals_the_in_memory_truth);
            }
            #[test]
            fn count_follows_the_filter() {
                with(cases::count_follows_the_filter);
            }
            #[test]
            fn the_exact_path_ranks_by_the_true_dot_product() {
                with(cases::the_exact_path_ranks_by_the_true_dot_product);
            }
        }
    };
}

/// Cases that only a server backend has (a fresh client, checks on open, concurrent readers).
macro_rules! server_contract {
    ($name:ident, $harness:expr) => {
        mod $name {
            use super::*;

            fn with(case: impl FnOnce(&dyn Harness)) {
                let h: Option<Box<dyn Harness>> = $harness;
                if let Some(h) = h {
                    case(h.as_ref());
                }
            }

            #[test]
            fn reopened_by_a_fresh_client_it_keeps_its_vectors() {
                with(cases::reopened_by_a_fresh_client_it_keeps_its_vectors);
            }
            #[test]
            fn another_dimension_is_refused_naming_both() {
                with(cases::another_dimension_is_refused_naming_both);
            }
            #[test]
            fn another_library_is_refused_naming_both() {
                with(cases::another_library_is_refused_naming_both);
            }
            #[test]
            fn a_missing_index_is_not_created_when_only_reading() {
                with(cases::a_missing_index_is_not_created_when_only_reading);
            }
            #[test]
            fn readers_search_during_a_bulk_write() {
                with(cases::readers_search_during_a_bulk_write);
            }
        }
    };
}

contract!(exact_f32, Some(Box::new(Exact(VectorStorage::F32))));
contract!(exact_int8, Some(Box::new(Exact(VectorStorage::Int8))));
contract!(exact_sketch, Some(Box::new(Exact(VectorStorage::Sketch))));
contract!(
    snapshot_f32,
    Some(Box::new(Snapshotted(VectorStorage::F32)))
);
contract!(
    snapshot_int8,
    Some(Box::new(Snapshotted(VectorStorage::Int8)))
);
contract!(
    snapshot_sketch,
    Some(Box::new(Snapshotted(VectorStorage::Sketch)))
);
contract!(fake_server, fake_server());
contract!(opensearch, opensearch());
contract!(s3vectors_fake, s3vectors_fake());
server_contract!(fake_server_only, fake_server());
server_contract!(s3vectors_fake_server, s3vectors_fake());
server_contract!(opensearch_server, opensearch());
