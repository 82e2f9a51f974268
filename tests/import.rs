//! `library import` of a deployment of the original AWS sample. Its S3 Vectors index is the
//! loopback fake of tests/common/s3vectors.rs (the documented shapes, not a recording) holding
//! records of the sample's shape (../shared/seed/reference-implementation.md §2.1.4); its
//! images are real photos of the demo library served by the fake S3 of tests/common/s3.rs.
//! The older version's OpenSearch index is written on the live node (§2.1.3 mapping and
//! documents) and read by the import with the OpenSearch backend's client; without
//! OPENSEARCH_URL those tests print `skipped:` and pass, unless CAMPAIGN_STUDIO_REQUIRE_SERVERS
//! names opensearch (CI), where they fail. The library uses the deterministic fake embedder
//! and analyser (what is under test is the import, not the models), except the CLI test.
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use campaign_studio::config::Config;
use campaign_studio::domain::{EmbedderId, SearchFilter};
use campaign_studio::engine::Library;
use campaign_studio::engine::import::{
    DESCRIPTION_SOURCE, ImportOptions, ImportReport, S3Location, SourceUri, TITAN_ID, import,
    open_objects, open_source, staging_dir,
};
use campaign_studio::engine::search::{SearchRequest, search_vector};
use campaign_studio::paths::Paths;
use campaign_studio::services::fake::{FakeAnalyser, FakeEmbedder};
use common::s3::FakeS3;
use common::s3vectors::{FakeIndex, FakeS3Vectors};
use serde_json::{Value, json};

const VECTOR_BUCKET: &str = "pace-vectors";
const INDEX: &str = "pace-index";
const IMAGES: &str = "pace-images";
/// Records in the fake deployment (real photos of the demo library).
const N: usize = 8;

fn credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("AKIDIMPORTTEST", "import-secret", None, None, "test")
}

/// A unit vector of seed `i` (a fixed LCG, 1024-d like Titan's).
fn titan_vector(i: usize) -> Vec<f32> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut v: Vec<f32> = (0..1024)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.iter_mut().for_each(|a| *a /= n);
    v
}

/// One demo photo: (stem, file name, bytes, objective, node, results).
struct Photo {
    stem: String,
    file: String,
    bytes: Vec<u8>,
    objective: String,
    node: String,
    results: f64,
}

fn photos() -> Vec<Photo> {
    let root = common::demo_library();
    let text = std::fs::read_to_string(root.join("manifest.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(N)
        .map(|l| {
            let row: Value = serde_json::from_str(l).unwrap();
            let file = row["file"].as_str().unwrap().to_string();
            let path = root.join(&file);
            let name = Path::new(&file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            Photo {
                stem: Path::new(&name)
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                file: name,
                bytes: std::fs::read(path).unwrap(),
                objective: row["objective"].as_str().unwrap().to_string(),
                node: row["node"].as_str().unwrap().to_string(),
                results: row["results"].as_f64().unwrap_or(0.0),
            }
        })
        .collect()
}

/// The sample's metadata of photo `i` (Nova Pro's words are made up here, per photo).
fn sample_metadata(p: &Photo, i: usize) -> Value {
    json!({
        "results": p.results,
        "node": p.node,
        "objective": p.objective,
        "image_s3_uri": format!("s3://{IMAGES}/images/{}", p.file),
        "image_description": format!("Nova Pro saw photo number {i} with warm light"),
        "img_element_list": format!("element{i}, shared element,scene {i}"),
    })
}

/// A deployment of the sample: its S3 Vectors index and its image bucket, both fakes.
struct Deployment {
    vectors: FakeS3Vectors,
    s3: FakeS3,
    photos: Vec<Photo>,
}

impl Deployment {
    fn new() -> Self {
        let vectors = FakeS3Vectors::start(VECTOR_BUCKET);
        let s3 = FakeS3::start();
        let photos = photos();
        let mut ix = FakeIndex {
            arn: format!(
                "arn:aws:s3vectors:eu-west-1:123456789012:bucket/{VECTOR_BUCKET}/index/{INDEX}"
            ),
            dim: 1024,
            metric: "cosine".into(),
            data_type: "float32".into(),
            mode: "ENHANCED".into(),
            non_filterable: vec![
                "image_s3_uri".into(),
                "image_description".into(),
                "img_element_list".into(),
            ],
            ..FakeIndex::default()
        };
        for (i, p) in photos.iter().enumerate() {
            ix.vectors
                .insert(p.stem.clone(), (titan_vector(i), sample_metadata(p, i)));
            s3.put(IMAGES, &format!("images/{}", p.file), p.bytes.clone());
        }
        vectors.with(|st| {
            st.indexes.insert(INDEX.into(), ix);
        });
        Deployment {
            vectors,
            s3,
            photos,
        }
    }

    fn config(&self) -> Config {
        let mut c = Config::defaults();
        c.index.s3vectors.region = common::s3vectors::REGION.into();
        c.index.s3vectors.endpoint_url = self.vectors.uri();
        c.index.s3vectors.max_attempts = 1;
        c.import.region = common::s3::REGION.into();
        c.import.s3_endpoint_url = self.s3.uri();
        c.import.max_attempts = 1;
        c
    }

    fn set_metadata(&self, key: &str, field: &str, value: Value) {
        self.vectors.with(|st| {
            let ix = st.indexes.get_mut(INDEX).unwrap();
            ix.vectors.get_mut(key).unwrap().1[field] = value;
        });
    }

    fn set_vector(&self, key: &str, v: Vec<f32>) {
        self.vectors.with(|st| {
            st.indexes
                .get_mut(INDEX)
                .unwrap()
                .vectors
                .get_mut(key)
                .unwrap()
                .0 = v;
        });
    }
}

fn library(dir: &Path, config: Config) -> Library {
    let paths = Paths::for_dirs(&dir.join("config"), &dir.join("data"), &dir.join("cache"));
    Library::with_services(
        paths,
        config,
        Arc::new(FakeEmbedder::new(64)),
        Arc::new(FakeAnalyser::default()),
    )
    .unwrap()
}

fn options() -> ImportOptions {
    ImportOptions {
        images: S3Location::parse(&format!("s3://{IMAGES}/images")).unwrap(),
        map_objective: Default::default(),
        map_node: Default::default(),
        dry_run: false,
        jobs: 1,
    }
}

fn run(lib: &mut Library, from: &str, opts: &ImportOptions) -> ImportReport {
    let config = lib.config.clone();
    let source = open_source(
        &config,
        &SourceUri::parse(from).unwrap(),
        Some(credentials()),
        None,
    )
    .unwrap();
    let objects = open_objects(&config, Some(credentials())).unwrap();
    import(
        lib,
        source.as_ref(),
        &objects,
        opts,
        &|_, _| {},
        &mut |_| {},
    )
    .unwrap()
}

fn s3vectors_from() -> String {
    format!("s3vectors://{VECTOR_BUCKET}/{INDEX}")
}

fn import_all(d: &Deployment) -> (tempfile::TempDir, Library, ImportReport) {
    let dir = tempfile::tempdir().unwrap();
    let mut lib = library(dir.path(), d.config());
    let report = run(&mut lib, &s3vectors_from(), &options());
    (dir, lib, report)
}

fn asset_of(lib: &Library, key: &str) -> campaign_studio::domain::Asset {
    let (id, _) = lib.store.by_external_id(key).unwrap().expect("imported");
    lib.store.asset(&id).unwrap().unwrap()
}

fn failure<'a>(r: &'a ImportReport, item: &str) -> &'a str {
    &r.failed
        .iter()
        .find(|f| f.item == item)
        .unwrap_or_else(|| panic!("no failure for {item}: {:?}", r.failed))
        .reason
}

#[test]
fn import_s3vectors_brings_every_record_in() {
    let d = Deployment::new();
    let (_dir, lib, r) = import_all(&d);
    assert_eq!(r.failed, vec![]);
    assert_eq!((r.records, r.imported, r.unchanged), (N, N, 0));
    assert_eq!(lib.store.count().unwrap(), N as u64);
}

#[test]
fn import_keeps_the_objective_node_and_kpi_of_each_record() {
    let d = Deployment::new();
    let (_dir, lib, _) = import_all(&d);
    for p in &d.photos {
        let a = asset_of(&lib, &p.stem);
        assert_eq!(
            (a.objective.as_str(), a.node.as_str(), a.kpi),
            (p.objective.as_str(), p.node.as_str(), Some(p.results)),
            "{}",
            p.stem
        );
    }
}

#[test]
fn import_keeps_nova_pros_description_and_elements_with_their_source() {
    let d = Deployment::new();
    let (_dir, lib, _) = import_all(&d);
    let a = asset_of(&lib, &d.photos[3].stem);
    assert!(
        a.description
            .description
            .contains("Nova Pro saw photo number 3 with warm light"),
        "{}",
        a.description.description
    );
    for e in ["element3", "shared element", "scene 3"] {
        assert!(
            a.description.elements.contains(&e.to_string()),
            "{e}: {:?}",
            a.description.elements
        );
    }
    assert_eq!(a.description.sources.text[0], DESCRIPTION_SOURCE);
    assert_eq!(a.description.sources.elements[0], DESCRIPTION_SOURCE);
}

#[test]
fn import_records_where_each_image_came_from() {
    let d = Deployment::new();
    let (_dir, lib, _) = import_all(&d);
    let p = &d.photos[0];
    let a = asset_of(&lib, &p.stem);
    assert_eq!(
        a.metadata["source_uri"],
        json!(format!("s3://{IMAGES}/images/{}", p.file))
    );
    assert_eq!(a.byte_size, p.bytes.len() as u64);
}

#[test]
fn import_filters_find_the_imported_assets() {
    let d = Deployment::new();
    let (_dir, lib, _) = import_all(&d);
    let p = &d.photos[0];
    let filter = SearchFilter {
        objective: Some(p.objective.clone()),
        node: Some(p.node.clone()),
    };
    let want = d
        .photos
        .iter()
        .filter(|q| q.objective == p.objective && q.node == p.node)
        .count();
    assert_eq!(lib.store.list(&filter, 100, 0).unwrap().len(), want);
}

#[test]
fn import_stores_each_titan_vector_bit_for_bit() {
    let d = Deployment::new();
    let (_dir, lib, r) = import_all(&d);
    assert_eq!((r.vectors, r.vectors_scaled), (N, 0));
    let titan = EmbedderId::new(TITAN_ID);
    for (i, p) in d.photos.iter().enumerate() {
        let a = asset_of(&lib, &p.stem);
        let got = lib.store.vector_of(&a.id, &titan).unwrap().unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&titan_vector(i)), "{}", p.stem);
    }
}

/// A Titan query embedding stand-in: between photos 2 and 5, nearer 2.
fn titan_query() -> Vec<f32> {
    let (a, b) = (titan_vector(2), titan_vector(5));
    let mut q: Vec<f32> = a.iter().zip(&b).map(|(x, y)| 0.7 * x + 0.3 * y).collect();
    campaign_studio::services::normalize(&mut q);
    q
}

/// The source's ranking of its records passing `keep`: cosine over its vectors, as its cosine
/// index searches (before the sample re-sorts its k by KPI).
fn source_ranking(d: &Deployment, q: &[f32], keep: impl Fn(&Photo) -> bool) -> Vec<(String, f32)> {
    let mut ranked: Vec<(String, f32)> = d
        .photos
        .iter()
        .enumerate()
        .filter(|(_, p)| keep(p))
        .map(|(i, p)| {
            let v = titan_vector(i);
            let dot: f32 = v.iter().zip(q).map(|(x, y)| x * y).sum();
            (p.stem.clone(), dot)
        })
        .collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1));
    ranked
}

/// The engine's search over the imported Titan vectors, similarity only (KPI weight 0).
fn our_ranking(lib: &Library, q: &[f32], filter: SearchFilter) -> Vec<(String, f32)> {
    let index = lib.load_index(&EmbedderId::new(TITAN_ID)).unwrap();
    let req = SearchRequest {
        query: "titan query".into(),
        filter,
        k: N,
        kpi_weight: 0.0,
        rerank_pool: N,
    };
    search_vector(&lib.store, &index, q, &req)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| (h.external_id.unwrap(), h.similarity))
        .collect()
}

fn assert_same_ranking(ours: &[(String, f32)], theirs: &[(String, f32)]) {
    let names = |r: &[(String, f32)]| r.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(ours), names(theirs));
    for ((n, a), (_, b)) in ours.iter().zip(theirs) {
        assert!(
            (a - b).abs() < 1e-5,
            "{n}: similarity {a} against the source's {b}"
        );
    }
}

#[test]
fn import_search_over_titan_vectors_ranks_as_the_source_did() {
    let d = Deployment::new();
    let (_dir, lib, _) = import_all(&d);
    let q = titan_query();
    assert_same_ranking(
        &our_ranking(&lib, &q, SearchFilter::default()),
        &source_ranking(&d, &q, |_| true),
    );
}

#[test]
fn import_filtered_search_over_titan_vectors_ranks_as_the_source_did() {
    let d = Deployment::new();
    let (_dir, lib, _) = import_all(&d);
    let q = titan_query();
    let objective = d.photos[2].objective.clone();
    let filter = SearchFilter {
        objective: Some(objective.clone()),
        node: None,
    };
    assert_same_ranking(
        &our_ranking(&lib, &q, filter),
        &source_ranking(&d, &q, |p| p.objective == objective),
    );
}

#[test]
fn import_a_rerun_imports_nothing_new_and_fetches_nothing() {
    let d = Deployment::new();
    let (_dir, mut lib, _) = import_all(&d);
    let gets = d.s3.gets().len();
    let again = run(&mut lib, &s3vectors_from(), &options());
    assert_eq!(
        (
            again.imported,
            again.unchanged,
            again.vectors,
            again.downloaded
        ),
        (0, N, 0, 0)
    );
    assert_eq!(d.s3.gets().len(), gets, "no GetObject on a re-run");
}

#[test]
fn import_a_download_cut_off_by_a_killed_run_is_fetched_again() {
    let d = Deployment::new();
    let dir = tempfile::tempdir().unwrap();
    let mut lib = library(dir.path(), d.config());
    // A killed run left one complete staged image and one partial download.
    let first = run(
        &mut lib,
        &s3vectors_from(),
        &ImportOptions {
            dry_run: true,
            ..options()
        },
    );
    assert_eq!(first.would_fetch, Some(N));
    let staging = staging_dir(&lib.paths.data_dir, &s3vectors_from());
    std::fs::create_dir_all(&staging).unwrap();
    let r = run(&mut lib, &s3vectors_from(), &options());
    assert_eq!(r.downloaded, N);
    let staged: Vec<PathBuf> = std::fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    let (whole, cut) = (&staged[0], &staged[1]);
    let bytes = std::fs::read(cut).unwrap();
    std::fs::remove_file(cut).unwrap();
    let mut part = cut.clone().into_os_string();
    part.push(".part");
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();
    let whole_before = std::fs::metadata(whole).unwrap().modified().unwrap();
    let gets = d.s3.gets().len();
    let again = run(&mut lib, &s3vectors_from(), &options());
    assert_eq!(
        again.downloaded, 1,
        "only the cut-off image is fetched again"
    );
    assert_eq!(d.s3.gets().len(), gets + 1);
    assert_eq!(std::fs::read(cut).unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(whole).unwrap().modified().unwrap(),
        whole_before
    );
    assert_eq!((again.imported, again.unchanged), (0, N));
}

#[test]
fn import_a_missing_image_fails_that_record_and_the_batch_goes_on() {
    let d = Deployment::new();
    let gone = &d.photos[1];
    d.s3.with(|s| {
        s.objects
            .remove(&(IMAGES.to_string(), format!("images/{}", gone.file)));
    });
    let (_dir, _lib, r) = import_all(&d);
    let why = failure(&r, &gone.stem);
    assert!(
        why.contains("does not exist") && why.contains("--images"),
        "{why}"
    );
    assert_eq!(r.imported, N - 1);
}

#[test]
fn import_access_denied_names_the_permission_needed() {
    let d = Deployment::new();
    let p = &d.photos[2];
    d.s3.with(|s| {
        s.denied.insert(format!("images/{}", p.file));
    });
    let (_dir, _lib, r) = import_all(&d);
    let why = failure(&r, &p.stem);
    assert!(
        why.contains("denied") && why.contains("s3:GetObject"),
        "{why}"
    );
    assert_eq!(r.imported, N - 1);
}

#[test]
fn import_a_file_that_is_not_an_image_fails_alone() {
    let d = Deployment::new();
    let p = &d.photos[4];
    d.s3.put(
        IMAGES,
        &format!("images/{}", p.file),
        b"not an image at all".to_vec(),
    );
    let (_dir, _lib, r) = import_all(&d);
    assert!(!failure(&r, &p.stem).is_empty());
    assert_eq!(r.imported, N - 1);
}

#[test]
fn import_an_unknown_objective_is_reported_with_the_allowed_values() {
    let d = Deployment::new();
    let p = &d.photos[0];
    d.set_metadata(&p.stem, "objective", json!("reach"));
    let (_dir, _lib, r) = import_all(&d);
    let why = failure(&r, &p.stem);
    assert!(
        why.contains("reach") && why.contains("awareness") && why.contains("--map-objective"),
        "{why}"
    );
    assert_eq!(r.imported, N - 1);
}

#[test]
fn import_map_objective_renames_a_value_of_the_source() {
    let d = Deployment::new();
    let p = &d.photos[0];
    d.set_metadata(&p.stem, "objective", json!("Reach"));
    let dir = tempfile::tempdir().unwrap();
    let mut lib = library(dir.path(), d.config());
    let mut opts = options();
    opts.map_objective
        .insert("reach".into(), "awareness".into());
    let r = run(&mut lib, &s3vectors_from(), &opts);
    assert_eq!(r.failed, vec![]);
    assert_eq!(asset_of(&lib, &p.stem).objective, "awareness");
}

#[test]
fn import_map_node_renames_a_value_of_the_source() {
    let d = Deployment::new();
    let p = &d.photos[0];
    d.set_metadata(&p.stem, "node", json!("fans"));
    let dir = tempfile::tempdir().unwrap();
    let mut lib = library(dir.path(), d.config());
    let mut opts = options();
    opts.map_node.insert("fans".into(), "followers".into());
    let r = run(&mut lib, &s3vectors_from(), &opts);
    assert_eq!(r.failed, vec![]);
    assert_eq!(asset_of(&lib, &p.stem).node, "followers");
}

#[test]
fn import_a_record_without_an_image_uri_is_reported() {
    let d = Deployment::new();
    let p = &d.photos[6];
    d.set_metadata(&p.stem, "image_s3_uri", Value::Null);
    let (_dir, _lib, r) = import_all(&d);
    assert!(failure(&r, &p.stem).contains("image_s3_uri"));
}

#[test]
fn import_an_image_outside_the_images_location_is_refused() {
    let d = Deployment::new();
    let p = &d.photos[5];
    d.set_metadata(&p.stem, "image_s3_uri", json!("s3://other-bucket/x.jpg"));
    let (_dir, _lib, r) = import_all(&d);
    let why = failure(&r, &p.stem);
    assert!(
        why.contains("s3://other-bucket/x.jpg") && why.contains("--images"),
        "{why}"
    );
}

#[test]
fn import_a_kpi_that_is_not_a_number_is_reported() {
    let d = Deployment::new();
    let p = &d.photos[7];
    d.set_metadata(&p.stem, "results", json!("lots"));
    let (_dir, _lib, r) = import_all(&d);
    assert!(failure(&r, &p.stem).contains("results"), "{:?}", r.failed);
    assert_eq!(r.imported, N - 1);
}

#[test]
fn import_a_vector_not_of_unit_length_is_scaled_and_counted() {
    let d = Deployment::new();
    let p = &d.photos[1];
    let long: Vec<f32> = titan_vector(1).iter().map(|x| x * 3.0).collect();
    d.set_vector(&p.stem, long);
    let (_dir, lib, r) = import_all(&d);
    assert_eq!(r.vectors_scaled, 1);
    let a = asset_of(&lib, &p.stem);
    let got = lib
        .store
        .vector_of(&a.id, &EmbedderId::new(TITAN_ID))
        .unwrap()
        .unwrap();
    assert!(common::largest_difference(&got, &titan_vector(1)) < 1e-6);
}

#[test]
fn import_a_vector_of_another_length_is_reported_and_the_image_kept() {
    let d = Deployment::new();
    let p = &d.photos[1];
    d.set_vector(&p.stem, vec![0.5; 12]);
    let (_dir, lib, r) = import_all(&d);
    assert!(failure(&r, &p.stem).contains("1024"));
    assert!(lib.store.by_external_id(&p.stem).unwrap().is_some());
    assert_eq!(r.vectors, N - 1);
}

#[test]
fn import_refuses_a_key_the_library_already_uses_for_another_image() {
    let d = Deployment::new();
    let dir = tempfile::tempdir().unwrap();
    let mut lib = library(dir.path(), d.config());
    // A local ingest already holds an asset with the first record's id.
    let local = dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    // Bytes of its own (the same bytes as an imported photo would be that asset again).
    let mine = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]));
    mine.save(local.join("mine.png")).unwrap();
    std::fs::write(
        local.join("manifest.jsonl"),
        json!({"id": d.photos[0].stem, "file": "mine.png", "objective": "clicks", "node": "followers"})
            .to_string(),
    )
    .unwrap();
    common::ingest_folder(&mut lib, &local);
    let r = run(&mut lib, &s3vectors_from(), &options());
    let why = failure(&r, &d.photos[0].stem);
    assert!(why.contains("already holds"), "{why}");
    assert_eq!(asset_of(&lib, &d.photos[0].stem).file, "mine.png");
}

#[test]
fn import_dry_run_counts_and_writes_nothing() {
    let d = Deployment::new();
    let p = &d.photos[0];
    d.set_metadata(&p.stem, "node", json!("everyone"));
    let dir = tempfile::tempdir().unwrap();
    let mut lib = library(dir.path(), d.config());
    let r = run(
        &mut lib,
        &s3vectors_from(),
        &ImportOptions {
            dry_run: true,
            ..options()
        },
    );
    assert_eq!(
        (r.records, r.would_import, r.would_fetch, r.failed.len()),
        (N, Some(N - 1), Some(N - 1), 1)
    );
    assert_eq!(lib.store.count().unwrap(), 0);
    assert!(d.s3.gets().is_empty());
}

#[test]
fn import_lists_the_source_with_signed_list_vectors_asking_for_data_and_metadata() {
    let d = Deployment::new();
    let _ = import_all(&d);
    let lists = d.vectors.bodies("ListVectors");
    assert!(!lists.is_empty());
    for b in &lists {
        assert_eq!(
            (&b["returnData"], &b["returnMetadata"], &b["indexName"]),
            (&json!(true), &json!(true), &json!(INDEX))
        );
    }
}

#[test]
fn import_fetches_each_image_once_with_signed_path_style_get_object() {
    let d = Deployment::new();
    let _ = import_all(&d);
    let mut gets = d.s3.gets();
    gets.sort();
    let mut want: Vec<(String, String)> = d
        .photos
        .iter()
        .map(|p| (IMAGES.to_string(), format!("images/{}", p.file)))
        .collect();
    want.sort();
    assert_eq!(gets, want);
}

#[test]
fn import_a_missing_source_index_is_named_with_the_fix() {
    let d = Deployment::new();
    let config = d.config();
    let err = open_source(
        &config,
        &SourceUri::parse(&format!("s3vectors://{VECTOR_BUCKET}/no-such-index")).unwrap(),
        Some(credentials()),
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("no-such-index") && err.contains("--from"),
        "{err}"
    );
}

#[test]
fn import_source_uris_are_parsed_or_refused_with_the_forms() {
    assert_eq!(
        SourceUri::parse("s3vectors://b/i").unwrap(),
        SourceUri::S3Vectors {
            bucket: "b".into(),
            index: "i".into()
        }
    );
    assert_eq!(
        SourceUri::parse("opensearch://search.example.com/idx").unwrap(),
        SourceUri::OpenSearch {
            url: "https://search.example.com".into(),
            index: "idx".into()
        }
    );
    let err = SourceUri::parse("ftp://x/y").unwrap_err();
    assert!(err.contains("s3vectors://BUCKET/INDEX"), "{err}");
}

// ---- the older version: an OpenSearch index on the live node ----

fn node() -> Option<String> {
    common::opensearch_url()
}

fn index_name() -> String {
    common::unique_name("cs-import")
}

/// HTTP to the node (the test writes the sample's index as the sample would), on a runtime of
/// its own; `content_type` defaults to JSON.
fn send(method: &str, url: &str, body: Option<String>, content_type: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(b) = body {
            req = req.header("content-type", content_type).body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {url}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    })
}

fn http(method: &str, url: &str, body: Option<&Value>) -> Value {
    send(method, url, body.map(Value::to_string), "application/json")
}

/// The sample's index (§2.1.3), on the lucene engine: nmslib and faiss are native libraries
/// the node from Maven Central does not carry (tests/opensearch-node/pom.xml), and the import
/// reads documents, not the graph, so the engine does not change what is tested.
fn sample_index(url: &str, name: &str) {
    http(
        "PUT",
        &format!("{url}/{name}"),
        Some(&json!({
            "mappings": {"properties": {
                "results": {"type": "float"},
                "node": {"type": "keyword"},
                "objective": {"type": "keyword"},
                "image_s3_uri": {"type": "text"},
                "image_description": {"type": "text"},
                "img_element_list": {"type": "text"},
                "embeddings": {"type": "knn_vector", "dimension": 1024,
                    "method": {"engine": "lucene", "space_type": "cosinesimil", "name": "hnsw",
                               "parameters": {"ef_construction": 512, "m": 16}}}
            }},
            "settings": {"index": {"number_of_shards": 2, "knn": true}}
        })),
    );
}

/// Indexes a document as the sample does: no explicit `_id`.
fn sample_document(url: &str, name: &str, doc: &Value) {
    http("POST", &format!("{url}/{name}/_doc"), Some(doc));
}

fn opensearch_from(url: &str, name: &str) -> String {
    format!(
        "opensearch://{}/{name}",
        url.trim_start_matches("http://").trim_end_matches('/')
    )
}

/// Deletes the test's index when the test ends, however it ends.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                if let Ok(c) = reqwest::Client::builder().no_proxy().build() {
                    let _ = c.delete(&self.0).send().await;
                }
            });
        }
    }
}

#[test]
fn import_opensearch_brings_every_record_with_vectors_bit_for_bit() {
    let Some(url) = node() else { return };
    let d = Deployment::new();
    let name = index_name();
    let _cleanup = Cleanup(format!("{url}/{name}"));
    sample_index(&url, &name);
    for (i, p) in d.photos.iter().enumerate() {
        let mut doc = sample_metadata(p, i);
        doc["id"] = json!(p.stem);
        doc["embeddings"] = json!(titan_vector(i));
        sample_document(&url, &name, &doc);
    }
    http("POST", &format!("{url}/{name}/_refresh"), None);
    let dir = tempfile::tempdir().unwrap();
    let mut lib = library(dir.path(), d.config());
    let r = run(&mut lib, &opensearch_from(&url, &name), &options());
    assert_eq!(r.failed, vec![]);
    assert_eq!((r.records, r.imported, r.vectors), (N, N, N));
    let titan = EmbedderId::new(TITAN_ID);
    for (i, p) in d.photos.iter().enumerate() {
        let a = asset_of(&lib, &p.stem);
        assert_eq!(
            (a.objective.as_str(), a.kpi),
            (p.objective.as_str(), Some(p.results))
        );
        assert_eq!(a.description.sources.text[0], DESCRIPTION_SOURCE);
        let got = lib.store.vector_of(&a.id, &titan).unwrap().unwrap();
        assert!(
            got.iter()
                .zip(titan_vector(i))
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{}",
            p.stem
        );
    }
}

#[test]
fn import_opensearch_counts_a_re_indexed_image_once() {
    let Some(url) = node() else { return };
    let d = Deployment::new();
    let name = index_name();
    let _cleanup = Cleanup(format!("{url}/{name}"));
    sample_index(&url, &name);
    for (i, p) in d.photos.iter().enumerate().take(3) {
        let mut doc = sample_metadata(p, i);
        doc["id"] = json!(p.stem);
        doc["embeddings"] = json!(titan_vector(i));
        sample_document(&url, &name, &doc);
        if i == 0 {
            // The sample indexes an image again on every upload, without an _id.
            sample_document(&url, &name, &doc);
        }
    }
    http("POST", &format!("{url}/{name}/_refresh"), None);
    let dir = tempfile::tempdir().unwrap();
    let mut lib = library(dir.path(), d.config());
    let r = run(&mut lib, &opensearch_from(&url, &name), &options());
    assert_eq!((r.records, r.imported, r.duplicates), (4, 3, 1));
    assert_eq!(r.failed, vec![]);
}

#[test]
fn import_opensearch_pages_through_every_document() {
    let Some(url) = node() else { return };
    let name = index_name();
    let _cleanup = Cleanup(format!("{url}/{name}"));
    sample_index(&url, &name);
    // More than two pages of 200, over two shards; a dry run reads and checks them all.
    let total = 450;
    let mut bulk = String::new();
    for i in 0..total {
        bulk.push_str(&json!({"index": {"_index": name}}).to_string());
        bulk.push('\n');
        bulk.push_str(
            &json!({"id": format!("img-{i:04}"), "results": 0.01, "node": "followers",
                    "objective": "clicks",
                    "image_s3_uri": format!("s3://{IMAGES}/images/img-{i:04}.jpg"),
                    "image_description": "d", "img_element_list": "e",
                    "embeddings": titan_vector(i)})
            .to_string(),
        );
        bulk.push('\n');
    }
    let answer = send(
        "POST",
        &format!("{url}/_bulk?refresh=true"),
        Some(bulk),
        "application/x-ndjson",
    );
    assert_eq!(answer["errors"], json!(false));
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.import.region = common::s3::REGION.into();
    let mut lib = library(dir.path(), config);
    let r = run(
        &mut lib,
        &opensearch_from(&url, &name),
        &ImportOptions {
            dry_run: true,
            ..options()
        },
    );
    assert_eq!(
        (r.records, r.would_fetch, r.duplicates, r.failed.len()),
        (total, Some(total), 0, 0)
    );
}

// ---- the command line ----

#[test]
fn import_cli_prints_the_json_summary_and_a_rerun_imports_nothing() {
    let d = Deployment::new();
    let env = common::Env::new();
    let config_dir = env.dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "[index.s3vectors]\nregion = \"{}\"\nendpoint_url = \"{}\"\nmax_attempts = 1\n\n[import]\nregion = \"{}\"\ns3_endpoint_url = \"{}\"\nmax_attempts = 1\n",
            common::s3vectors::REGION,
            d.vectors.uri(),
            common::s3::REGION,
            d.s3.uri()
        ),
    )
    .unwrap();
    let args = [
        "library",
        "import",
        "--from",
        &s3vectors_from(),
        "--images",
        &format!("s3://{IMAGES}/images"),
        "--json",
    ];
    let with_keys = |env: &common::Env| {
        let out = env
            .cmd()
            .env("AWS_ACCESS_KEY_ID", "AKIDIMPORTTEST")
            .env("AWS_SECRET_ACCESS_KEY", "import-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!String::from_utf8_lossy(&out.stderr).contains("import-secret"));
        v
    };
    let first = with_keys(&env);
    assert_eq!(
        (&first["imported"], &first["failed"]),
        (&json!(N), &json!([]))
    );
    let again = with_keys(&env);
    assert_eq!(
        (&again["imported"], &again["unchanged"]),
        (&json!(0), &json!(N))
    );
}
