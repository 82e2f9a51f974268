//! The embedded index's snapshot (engine::live, services::local::snapshot): a reopened
//! snapshot answers exactly as the index rebuilt from the store; every way a snapshot can be
//! wrong is detected and the index rebuilt (never trusted); the changes made after it are
//! applied incrementally and equal a rebuild; a session sees another process's changes without
//! reopening. Vectors are seeded random unit vectors written straight into the store (no
//! models), in fresh temp dirs.
use std::path::PathBuf;

use campaign_studio::config::{Config, VectorStorage};
use campaign_studio::domain::asset::Asset;
use campaign_studio::domain::{EmbedderId, SearchFilter};
use campaign_studio::engine::Library;
use campaign_studio::paths::Paths;
use campaign_studio::services::VectorIndex;
use campaign_studio::services::local::snapshot;

const EMBEDDER: &str = "test/seeded-48d-v1";
const DIM: usize = 48;
const OBJECTIVES: [&str; 3] = ["clicks", "likes", "awareness"];
const NODES: [&str; 3] = ["followers", "customers", "new_customers"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn unit(&mut self) -> f32 {
        (self.next() % 1_000_000) as f32 / 500_000.0 - 1.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn vector(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIM).map(|_| self.unit()).collect();
        campaign_studio::services::normalize(&mut v);
        v
    }
}

fn embedder() -> EmbedderId {
    EmbedderId::new(EMBEDDER)
}

fn asset_id(i: u64) -> String {
    format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn asset(i: u64, objective: &str, node: &str) -> Asset {
    Asset {
        id: asset_id(i),
        external_id: None,
        file: format!("{i}.png"),
        stored_path: String::new(),
        thumbnail_path: String::new(),
        byte_size: 1,
        format: "png".into(),
        width: 1,
        height: 1,
        phash: String::new(),
        objective: objective.into(),
        node: node.into(),
        kpi: (!i.is_multiple_of(5)).then_some(i as f64 / 100.0),
        caption: None,
        description: Default::default(),
        model_labels: Vec::new(),
        licence: None,
        attribution: None,
        metadata: serde_json::Value::Null,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    config: Config,
}

impl Fixture {
    fn new(storage: VectorStorage) -> Self {
        let mut config = Config::defaults();
        config.search.storage = storage;
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            config,
        }
    }

    fn paths(&self) -> Paths {
        let d = self.dir.path();
        Paths::for_dirs(&d.join("config"), &d.join("data"), &d.join("cache"))
    }

    /// The library as a new process opens it.
    fn open(&self) -> Library {
        Library::open(self.paths(), self.config.clone()).unwrap()
    }

    fn database(&self) -> PathBuf {
        self.paths().database()
    }
}

fn add(lib: &mut Library, i: u64, rng: &mut Rng) {
    let a = asset(
        i,
        OBJECTIVES[rng.below(3) as usize],
        NODES[rng.below(3) as usize],
    );
    lib.store
        .put_asset(&a, "", &[(embedder(), rng.vector(), "doc".into())], None)
        .unwrap();
}

/// A library of `n` assets whose snapshot has been written.
fn with_snapshot(f: &Fixture, n: u64) -> PathBuf {
    let mut lib = f.open();
    let mut rng = Rng(7);
    for i in 0..n {
        add(&mut lib, i, &mut rng);
    }
    lib.embedded_index(&embedder()).unwrap();
    lib.finish_index_writes();
    let path = lib.snapshot_path(&embedder());
    assert!(path.exists(), "the first open writes a snapshot");
    path
}

fn filters() -> Vec<SearchFilter> {
    vec![
        SearchFilter::default(),
        SearchFilter {
            objective: Some("clicks".into()),
            node: None,
        },
        SearchFilter {
            objective: Some("likes".into()),
            node: Some("customers".into()),
        },
    ]
}

/// Both indexes answer every query and filter alike (ids and similarities), and agree on
/// counts, KPI percentiles and the digest.
fn assert_same_answers(got: &dyn VectorIndex, want: &dyn VectorIndex) {
    let mut rng = Rng(99);
    for f in filters() {
        assert_eq!(got.count(&f).unwrap(), want.count(&f).unwrap(), "{f:?}");
        let kpis = [Some(0.3), Some(1.0), None];
        assert_eq!(
            got.kpi_percentiles(&f, &kpis).unwrap(),
            want.kpi_percentiles(&f, &kpis).unwrap()
        );
        for _ in 0..8 {
            let q = rng.vector();
            for exact in [false, true] {
                let (a, b) = if exact {
                    (
                        got.search_exact(&q, &f, 10).unwrap(),
                        want.search_exact(&q, &f, 10).unwrap(),
                    )
                } else {
                    (
                        got.search(&q, &f, 10).unwrap(),
                        want.search(&q, &f, 10).unwrap(),
                    )
                };
                let ids = |v: &[campaign_studio::services::Neighbour]| {
                    v.iter().map(|n| n.id.clone()).collect::<Vec<_>>()
                };
                assert_eq!(ids(&a), ids(&b), "{f:?} exact={exact}");
                for (x, y) in a.iter().zip(&b) {
                    assert!((x.similarity - y.similarity).abs() < 1e-6);
                }
            }
        }
    }
    assert_eq!(got.digest().unwrap(), want.digest().unwrap());
}

fn round_trip(storage: VectorStorage) {
    let f = Fixture::new(storage);
    with_snapshot(&f, 300);
    let lib = f.open();
    let ix = lib.embedded_index(&embedder()).unwrap();
    assert!(
        ix.read().unwrap().base().is_mapped(),
        "opened from the file"
    );
    assert_eq!(ix.read().unwrap().storage(), storage);
    let rebuilt = lib.load_index(&embedder()).unwrap();
    assert_same_answers(&ix, &rebuilt);
}

#[test]
fn a_reopened_f32_snapshot_answers_as_the_index_rebuilt_from_the_store() {
    round_trip(VectorStorage::F32);
}

#[test]
fn a_reopened_int8_snapshot_answers_as_the_index_rebuilt_from_the_store() {
    round_trip(VectorStorage::Int8);
}

#[test]
fn a_reopened_sketch_snapshot_answers_as_the_index_rebuilt_from_the_store() {
    round_trip(VectorStorage::Sketch);
}

/// The storage `auto` writes for 150 vectors of DIM dimensions above an exact maximum of 100,
/// with these int8 maximum and sketch minimum dimension.
fn auto_storage_written(int8_max_vectors: usize, sketch_min_dim: usize) -> VectorStorage {
    let mut f = Fixture::new(VectorStorage::Auto);
    f.config.search.exact_max_vectors = 100;
    f.config.search.int8_max_vectors = int8_max_vectors;
    f.config.search.sketch_min_dim = sketch_min_dim;
    let path = with_snapshot(&f, 150);
    snapshot::read_header(&path).unwrap().storage
}

#[test]
fn auto_storage_writes_a_sketch_above_int8_max_vectors_for_long_vectors() {
    assert_eq!(auto_storage_written(120, DIM), VectorStorage::Sketch);
}

#[test]
fn auto_storage_writes_int8_between_exact_and_int8_max_vectors_for_long_vectors() {
    assert_eq!(auto_storage_written(200, DIM), VectorStorage::Int8);
}

#[test]
fn auto_storage_writes_int8_above_exact_max_vectors_for_short_vectors() {
    assert_eq!(auto_storage_written(120, DIM + 1), VectorStorage::Int8);
}

/// Opens the library after `damage` and checks that the snapshot was not used, the answers
/// equal a rebuild, and a sound snapshot replaced the damaged one.
fn assert_rebuilt_after(f: &Fixture, path: &std::path::Path, damage: impl FnOnce()) {
    damage();
    let lib = f.open();
    let ix = lib.embedded_index(&embedder()).unwrap();
    assert!(
        !ix.read().unwrap().base().is_mapped(),
        "a damaged snapshot must not be used"
    );
    assert_same_answers(&ix, &lib.load_index(&embedder()).unwrap());
    lib.finish_index_writes();
    drop(ix);
    drop(lib);
    let lib = f.open();
    let ix = lib.embedded_index(&embedder()).unwrap();
    assert!(
        ix.read().unwrap().base().is_mapped(),
        "the rebuilt snapshot at {} is used by the next session",
        path.display()
    );
    assert_same_answers(&ix, &lib.load_index(&embedder()).unwrap());
}

fn flip_byte(path: &std::path::Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn section(path: &std::path::Path, name: &str) -> snapshot::Section {
    snapshot::read_header(path)
        .unwrap()
        .sections
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
}

#[test]
fn a_truncated_snapshot_is_rebuilt() {
    let f = Fixture::new(VectorStorage::Sketch);
    let path = with_snapshot(&f, 200);
    assert_rebuilt_after(&f, &path, || {
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len / 2).unwrap();
    });
}

#[test]
fn a_flipped_byte_in_the_vectors_left_on_disk_is_rebuilt() {
    let f = Fixture::new(VectorStorage::Sketch);
    let path = with_snapshot(&f, 200);
    let s = section(&path, "vectors");
    assert_rebuilt_after(&f, &path, || flip_byte(&path, s.offset + s.len / 2));
}

#[test]
fn a_flipped_byte_in_the_mapped_sketches_is_rebuilt() {
    let f = Fixture::new(VectorStorage::Sketch);
    let path = with_snapshot(&f, 200);
    let s = section(&path, "sketch");
    assert_rebuilt_after(&f, &path, || flip_byte(&path, s.offset + 3));
}

#[test]
fn a_flipped_byte_in_the_ids_is_rebuilt() {
    let f = Fixture::new(VectorStorage::F32);
    let path = with_snapshot(&f, 200);
    let s = section(&path, "id_bytes");
    assert_rebuilt_after(&f, &path, || flip_byte(&path, s.offset + 10));
}

#[test]
fn a_flipped_byte_in_the_header_is_rebuilt() {
    let f = Fixture::new(VectorStorage::F32);
    let path = with_snapshot(&f, 200);
    assert_rebuilt_after(&f, &path, || flip_byte(&path, 40));
}

#[test]
fn a_snapshot_of_an_older_format_is_rebuilt() {
    let f = Fixture::new(VectorStorage::F32);
    let path = with_snapshot(&f, 200);
    assert_rebuilt_after(&f, &path, || {
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8..12].copy_from_slice(&(snapshot::FORMAT - 1).to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
    });
}

#[test]
fn another_embedders_snapshot_in_this_embedders_place_is_rebuilt() {
    let f = Fixture::new(VectorStorage::F32);
    let path = with_snapshot(&f, 200);
    // A second embedder in the same library, and its snapshot copied over the first's.
    let other = EmbedderId::new("test/other-48d-v1");
    {
        let lib = f.open();
        let mut rng = Rng(3);
        for i in 0..200 {
            lib.store
                .put_vector(&asset_id(i), &other, &rng.vector(), "doc")
                .unwrap();
        }
        lib.embedded_index(&other).unwrap();
        lib.finish_index_writes();
    }
    let other_path = f.open().snapshot_path(&other);
    assert_rebuilt_after(&f, &path, || {
        std::fs::copy(&other_path, &path).unwrap();
    });
}

#[test]
fn another_librarys_snapshot_is_rebuilt() {
    let f = Fixture::new(VectorStorage::F32);
    let path = with_snapshot(&f, 200);
    // The same assets in another library (its own random id): its snapshot is not ours.
    let g = Fixture::new(VectorStorage::F32);
    let theirs = with_snapshot(&g, 200);
    assert_rebuilt_after(&f, &path, || {
        std::fs::copy(&theirs, &path).unwrap();
    });
}

#[test]
fn a_snapshot_newer_than_a_restored_database_is_rebuilt() {
    let f = Fixture::new(VectorStorage::F32);
    let path = with_snapshot(&f, 100);
    let backup = f.dir.path().join("backup.db");
    std::fs::copy(f.database(), &backup).unwrap();
    {
        // More assets, and the snapshot that holds them.
        let mut lib = f.open();
        let mut rng = Rng(11);
        for i in 100..130 {
            add(&mut lib, i, &mut rng);
        }
        drop(lib);
        let mut cfg = f.config.clone();
        cfg.search.snapshot_rewrite_after = 0;
        let lib = Library::open(f.paths(), cfg).unwrap();
        lib.embedded_index(&embedder()).unwrap();
        lib.finish_index_writes();
        assert_eq!(snapshot::read_header(&path).unwrap().count, 130);
    }
    assert_rebuilt_after(&f, &path, || {
        std::fs::copy(&backup, f.database()).unwrap();
    });
    assert_eq!(
        f.open()
            .embedded_index(&embedder())
            .unwrap()
            .read()
            .unwrap()
            .len(),
        100
    );
}

#[test]
fn a_new_session_applies_the_changes_made_after_the_snapshot() {
    let f = Fixture::new(VectorStorage::Sketch);
    with_snapshot(&f, 200);
    {
        let mut lib = f.open();
        let mut rng = Rng(5);
        for i in 200..230 {
            add(&mut lib, i, &mut rng);
        }
        lib.store.remove(&[asset_id(3), asset_id(4)]).unwrap();
    }
    let mut cfg = f.config.clone();
    cfg.search.snapshot_rewrite_after = 1_000;
    let lib = Library::open(f.paths(), cfg).unwrap();
    let ix = lib.embedded_index(&embedder()).unwrap();
    {
        let live = ix.read().unwrap();
        assert!(live.base().is_mapped());
        assert_eq!((live.tail(), live.len()), (32, 228));
    }
    assert_same_answers(&ix, &lib.load_index(&embedder()).unwrap());
}

#[test]
fn catching_up_after_random_ingests_removals_and_edits_equals_a_rebuild() {
    let f = Fixture::new(VectorStorage::Sketch);
    with_snapshot(&f, 250);
    let mut cfg = f.config.clone();
    cfg.search.snapshot_rewrite_after = 100_000; // no rewrite: every change stays in the tail
    let session = Library::open(f.paths(), cfg).unwrap();
    let ix = session.embedded_index(&embedder()).unwrap();
    let mut other = f.open(); // another process
    let mut rng = Rng(2024);
    let mut next = 250;
    let mut alive: Vec<u64> = (0..250).collect();
    for round in 0..4 {
        for _ in 0..25 {
            add(&mut other, next, &mut rng);
            alive.push(next);
            next += 1;
        }
        for _ in 0..10 {
            let i = alive.swap_remove(rng.below(alive.len() as u64) as usize);
            other.store.remove(&[asset_id(i)]).unwrap();
        }
        for _ in 0..10 {
            // A re-embedded asset, and one whose objective and node changed.
            let i = alive[rng.below(alive.len() as u64) as usize];
            other
                .store
                .put_vector(&asset_id(i), &embedder(), &rng.vector(), "doc")
                .unwrap();
            let j = alive[rng.below(alive.len() as u64) as usize];
            let mut a = asset(j, OBJECTIVES[round % 3], NODES[(round + 1) % 3]);
            a.kpi = Some(rng.below(1000) as f64 / 1000.0);
            other.store.put_asset(&a, "edited", &[], None).unwrap();
        }
        let ix2 = session.embedded_index(&embedder()).unwrap();
        assert_eq!(ix2.read().unwrap().len(), alive.len(), "round {round}");
        assert_same_answers(&ix2, &session.load_index(&embedder()).unwrap());
    }
    assert_eq!(session.index_opens(), 1, "caught up, never reopened");
    assert!(ix.read().unwrap().base().is_mapped());
}

#[test]
fn a_session_sees_another_processs_ingest_without_reopening() {
    let f = Fixture::new(VectorStorage::F32);
    with_snapshot(&f, 50);
    let session = f.open();
    let before = session.embedded_index(&embedder()).unwrap();
    let mut cli = f.open();
    let v = Rng(1).vector();
    cli.store
        .put_asset(
            &asset(500, "clicks", "followers"),
            "",
            &[(embedder(), v.clone(), "doc".into())],
            None,
        )
        .unwrap();
    let after = session.embedded_index(&embedder()).unwrap();
    let top = after.search(&v, &SearchFilter::default(), 1).unwrap();
    assert_eq!(top[0].id, asset_id(500));
    assert_eq!(session.index_opens(), 1);
    assert_eq!(
        before.read().unwrap().len(),
        51,
        "the same index, caught up"
    );
}

#[test]
fn the_snapshot_is_rewritten_once_its_tail_passes_the_threshold() {
    let f = Fixture::new(VectorStorage::F32);
    let path = with_snapshot(&f, 100);
    let first = snapshot::read_header(&path).unwrap().seq;
    let mut cfg = f.config.clone();
    cfg.search.snapshot_rewrite_after = 5;
    let mut session = Library::open(f.paths(), cfg).unwrap();
    session.embedded_index(&embedder()).unwrap();
    let mut rng = Rng(8);
    for i in 100..104 {
        add(&mut session, i, &mut rng);
    }
    session.embedded_index(&embedder()).unwrap();
    session.finish_index_writes();
    assert_eq!(
        snapshot::read_header(&path).unwrap().seq,
        first,
        "4 changes: below the threshold"
    );
    for i in 104..110 {
        add(&mut session, i, &mut rng);
    }
    session.embedded_index(&embedder()).unwrap();
    session.finish_index_writes();
    let h = snapshot::read_header(&path).unwrap();
    assert_eq!((h.count, h.seq), (110, session.store.feed_head().unwrap()));
}

#[test]
fn a_session_moves_onto_the_snapshot_it_wrote() {
    let f = Fixture::new(VectorStorage::F32);
    let mut lib = f.open();
    let mut rng = Rng(4);
    for i in 0..60 {
        add(&mut lib, i, &mut rng);
    }
    let ix = lib.embedded_index(&embedder()).unwrap();
    assert!(
        !ix.read().unwrap().base().is_mapped(),
        "built from the store"
    );
    lib.finish_index_writes();
    // The writer is done: the next search moves onto the file.
    let mut lib2 = f.open();
    add(&mut lib2, 60, &mut rng);
    drop(lib2);
    let ix = lib.embedded_index(&embedder()).unwrap();
    let live = ix.read().unwrap();
    assert!(live.base().is_mapped());
    assert_eq!((live.len(), live.tail()), (61, 1));
}

#[test]
fn an_empty_library_searches_empty_and_then_sees_its_first_ingest() {
    let f = Fixture::new(VectorStorage::Auto);
    let mut lib = f.open();
    let ix = lib.embedded_index(&embedder()).unwrap();
    assert_eq!(ix.count(&SearchFilter::default()).unwrap(), 0);
    let mut rng = Rng(6);
    add(&mut lib, 1, &mut rng);
    let ix = lib.embedded_index(&embedder()).unwrap();
    assert_eq!(ix.count(&SearchFilter::default()).unwrap(), 1);
}

#[test]
fn library_stats_say_whether_the_snapshot_is_missing_current_behind_or_unusable() {
    let f = Fixture::new(VectorStorage::F32);
    let mut lib = f.open();
    let mut rng = Rng(9);
    for i in 0..20 {
        add(&mut lib, i, &mut rng);
    }
    let state = |lib: &Library| lib.snapshot_status().unwrap()[0].state.clone();
    assert_eq!(state(&lib), "missing");
    lib.embedded_index(&embedder()).unwrap();
    lib.finish_index_writes();
    assert_eq!(state(&lib), "current");
    add(&mut lib, 20, &mut rng);
    assert_eq!(state(&lib), "behind");
    assert_eq!(lib.snapshot_status().unwrap()[0].behind_by, Some(1));
    flip_byte(&lib.snapshot_path(&embedder()), 30);
    let s = &lib.snapshot_status().unwrap()[0];
    assert_eq!(s.state, "unusable");
    assert!(
        s.reason.as_deref().unwrap_or("").contains("checksum"),
        "{:?}",
        s.reason
    );
}

#[test]
fn a_dead_writers_temporary_file_is_removed_and_never_read() {
    let f = Fixture::new(VectorStorage::F32);
    let path = with_snapshot(&f, 30);
    let dir = path.parent().unwrap().to_path_buf();
    let leftover = dir.join(format!(
        ".{}.tmp-1-1",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&leftover, b"half a snapshot").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let lib = f.open();
    assert!(
        lib.embedded_index(&embedder())
            .unwrap()
            .read()
            .unwrap()
            .base()
            .is_mapped()
    );
    assert!(!leftover.exists());
}
