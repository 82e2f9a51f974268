//! The S3 Vectors backend's requests, through the real SDK, against the loopback fake of
//! tests/common/s3vectors.rs (written from AWS's documentation, which it cites; nothing here
//! was recorded from the service): what it sends (insta snapshots of the JSON bodies, the
//! SigV4 scope `<region>/s3vectors`), the service's limits, versions resolved on our side,
//! and how errors read. Every test has `s3vectors` in its name (`cargo test s3vectors`).
//! Credentials are test values given to the SDK, never set in this process's environment.
mod common;

use campaign_studio::config::{Config, IndexConfig};
use campaign_studio::domain::{EmbedderId, SearchFilter};
use campaign_studio::services::local::exact_index::{ExactIndex, dot};
use campaign_studio::services::s3vectors::{S3Vectors, index_name};
use campaign_studio::services::{
    IndexSpec, Tombstone, VectorBackend, VectorIndex, VectorMeta, VectorRecord, normalize,
};
use common::s3vectors::{FakeS3Vectors, REGION, stored};
use serde_json::{Value, json};

const BUCKET: &str = "campaign-vectors";
const EMBEDDER: &str = "bedrock/amazon.titan-embed-image-v1/1024";
const LIBRARY: &str = "0123456789abcdef";
const DIM: usize = 8;

fn config(fake: &FakeS3Vectors) -> IndexConfig {
    let mut c = Config::defaults().index;
    c.backend = "s3vectors".into();
    c.namespace = "campaign-studio".into();
    c.s3vectors.bucket = BUCKET.into();
    c.s3vectors.region = REGION.into();
    c.s3vectors.endpoint_url = fake.uri();
    c.s3vectors.max_attempts = 1;
    c.s3vectors.initial_backoff_ms = 1;
    c
}

fn backend(cfg: &IndexConfig) -> S3Vectors {
    S3Vectors::with_credentials(
        cfg,
        aws_credential_types::Credentials::new("AKIDWIRETEST", "wire-secret", None, None, "test"),
    )
    .unwrap()
}

fn spec() -> IndexSpec {
    IndexSpec {
        embedder: EmbedderId::new(EMBEDDER),
        dim: DIM,
        library_id: LIBRARY.into(),
    }
}

fn name() -> String {
    index_name("campaign-studio", EMBEDDER)
}

fn open(fake: &FakeS3Vectors) -> Box<dyn VectorIndex> {
    backend(&config(fake)).open(&spec(), true).unwrap()
}

/// A unit vector of seed `i`.
fn unit(i: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM)
        .map(|d| {
            (((i * 7 + d * 13) % 17) as f32 - 8.0) / 8.0 + if d == i % DIM { 1.0 } else { 0.0 }
        })
        .collect();
    normalize(&mut v);
    v
}

fn record(id: &str, i: usize, version: i64) -> VectorRecord {
    VectorRecord {
        id: id.into(),
        vector: unit(i),
        meta: VectorMeta {
            objective: if i.is_multiple_of(2) {
                "clicks"
            } else {
                "awareness"
            }
            .into(),
            node: "followers".into(),
            kpi: Some(0.25 + i as f64 / 100.0),
        },
        version,
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

#[test]
fn s3vectors_wire_creates_a_float32_cosine_index_tagged_with_embedder_and_library() {
    let fake = FakeS3Vectors::start(BUCKET);
    drop(open(&fake));
    let body = fake.bodies("CreateIndex").pop().unwrap();
    insta::assert_snapshot!(pretty(&body));
}

#[test]
fn s3vectors_wire_index_names_keep_to_the_service_rules() {
    let n = index_name("campaign_studio", &format!("local/{}/384", "x".repeat(80)));
    assert!(n.len() <= 63, "{n}");
    assert!(
        n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{n}"
    );
    assert!(!n.ends_with('-') && !n.starts_with('-'), "{n}");
}

#[test]
fn s3vectors_wire_requests_are_signed_for_s3vectors_in_the_region() {
    let fake = FakeS3Vectors::start(BUCKET);
    drop(open(&fake));
    let reqs = fake.requests();
    assert!(!reqs.is_empty());
    for r in reqs {
        let auth = r
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            auth.contains(&format!("/{REGION}/s3vectors/aws4_request")),
            "{} signed as {auth}",
            r.url.path()
        );
        assert!(!auth.contains("wire-secret"), "the secret never travels");
    }
}

#[test]
fn s3vectors_wire_put_vectors_sends_keys_data_and_filterable_metadata() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    let r = ix.upsert(&[record("a1", 1, 7)]).unwrap();
    assert_eq!(r.written, 1);
    let mut body = fake.bodies("PutVectors").pop().unwrap();
    // The floats' last digits are the SDK's; the snapshot keeps their count.
    let data = body["vectors"][0]["data"]["float32"].take();
    assert_eq!(data.as_array().unwrap().len(), DIM);
    insta::assert_snapshot!(pretty(&body));
}

#[test]
fn s3vectors_wire_put_vectors_keeps_within_500_vectors_a_call() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut cfg = config(&fake);
    cfg.batch_size = 10_000;
    let mut ix = backend(&cfg).open(&spec(), true).unwrap();
    let records: Vec<VectorRecord> = (0..1_200)
        .map(|i| record(&format!("k{i:05}"), i, 3))
        .collect();
    assert_eq!(ix.upsert(&records).unwrap().written, 1_200);
    let sizes: Vec<usize> = fake
        .bodies("PutVectors")
        .iter()
        .map(|b| b["vectors"].as_array().unwrap().len())
        .collect();
    assert!(sizes.iter().all(|&n| n <= 500), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 1_200);
}

#[test]
fn s3vectors_wire_version_reads_ask_for_at_most_100_keys() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    let records: Vec<VectorRecord> = (0..250)
        .map(|i| record(&format!("k{i:05}"), i, 3))
        .collect();
    ix.upsert(&records).unwrap();
    let sizes: Vec<usize> = fake
        .bodies("GetVectors")
        .iter()
        .map(|b| b["keys"].as_array().unwrap().len())
        .collect();
    assert!(sizes.iter().all(|&n| n <= 100), "{sizes:?}");
    assert!(
        fake.bodies("GetVectors")
            .iter()
            .all(|b| b["returnMetadata"] == json!(true))
    );
}

#[test]
fn s3vectors_wire_an_older_version_is_never_pushed_over_a_newer_one() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    ix.upsert(&[record("a1", 1, 10)]).unwrap();
    let puts = fake.bodies("PutVectors").len();
    let r = ix.upsert(&[record("a1", 2, 5)]).unwrap();
    assert_eq!(r.written, 0);
    assert_eq!(r.stale, vec!["a1".to_string()]);
    assert_eq!(fake.bodies("PutVectors").len(), puts, "nothing was sent");
    assert_eq!(stored(&fake, &name())["a1"]["version"], json!(10));
}

#[test]
fn s3vectors_wire_a_newer_version_replaces_the_stored_one() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    ix.upsert(&[record("a1", 1, 10)]).unwrap();
    let r = ix.upsert(&[record("a1", 2, 11)]).unwrap();
    assert_eq!(r.written, 1);
    assert_eq!(stored(&fake, &name())["a1"]["version"], json!(11));
}

#[test]
fn s3vectors_wire_a_tombstone_deletes_only_an_older_vector() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    ix.upsert(&[record("old", 1, 4), record("new", 2, 9)])
        .unwrap();
    let r = ix
        .remove(&[
            Tombstone {
                id: "old".into(),
                version: 5,
            },
            Tombstone {
                id: "new".into(),
                version: 5,
            },
        ])
        .unwrap();
    assert_eq!(r.written, 1);
    assert_eq!(r.stale, vec!["new".to_string()]);
    let left = stored(&fake, &name());
    assert!(!left.contains_key("old") && left.contains_key("new"));
}

#[test]
fn s3vectors_wire_a_filtered_query_asks_for_enhanced_mode_with_the_filter_language() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    ix.upsert(&[record("a1", 1, 1), record("a2", 2, 1)])
        .unwrap();
    let f = SearchFilter {
        objective: Some("clicks".into()),
        node: Some("followers".into()),
    };
    ix.search(&unit(2), &f, 5).unwrap();
    let mut body = fake.bodies("QueryVectors").pop().unwrap();
    body["queryVector"]["float32"].take();
    insta::assert_snapshot!(pretty(&body));
}

#[test]
fn s3vectors_wire_an_unfiltered_query_leaves_the_mode_to_the_index() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    ix.upsert(&[record("a1", 1, 1)]).unwrap();
    ix.search(&unit(1), &SearchFilter::default(), 5).unwrap();
    let body = fake.bodies("QueryVectors").pop().unwrap();
    assert!(body.get("queryMode").is_none(), "{body}");
    assert!(body.get("filter").is_none(), "{body}");
}

#[test]
fn s3vectors_wire_query_mode_index_sends_no_mode() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut cfg = config(&fake);
    cfg.s3vectors.query_mode = "index".into();
    let mut ix = backend(&cfg).open(&spec(), true).unwrap();
    ix.upsert(&[record("a1", 1, 1)]).unwrap();
    let f = SearchFilter {
        objective: Some("awareness".into()),
        node: None,
    };
    ix.search(&unit(1), &f, 5).unwrap();
    let body = fake.bodies("QueryVectors").pop().unwrap();
    assert!(body.get("queryMode").is_none(), "{body}");
    assert_eq!(body["filter"], json!({"objective": {"$eq": "awareness"}}));
}

#[test]
fn s3vectors_wire_a_query_follows_next_token_until_k() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    let records: Vec<VectorRecord> = (0..100)
        .map(|i| record(&format!("k{i:03}"), i, 1))
        .collect();
    ix.upsert(&records).unwrap();
    let hits = ix.search(&unit(3), &SearchFilter::default(), 70).unwrap();
    assert_eq!(hits.len(), 70);
    let pages = fake.bodies("QueryVectors");
    assert_eq!(pages.len(), 3, "30 + 30 + 10 with the fake's page of 30");
    assert!(pages[1]["nextToken"].is_string());
}

#[test]
fn s3vectors_wire_similarity_equals_the_embedded_index_within_1e_4() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    let records: Vec<VectorRecord> = (0..40).map(|i| record(&format!("k{i:03}"), i, 1)).collect();
    ix.upsert(&records).unwrap();
    let mut local = ExactIndex::new(
        EmbedderId::new(EMBEDDER),
        DIM,
        campaign_studio::config::VectorStorage::F32,
        1,
    );
    local.upsert(&records).unwrap();
    let q = unit(5);
    let remote = ix.search(&q, &SearchFilter::default(), 10).unwrap();
    let mine = local.search(&q, &SearchFilter::default(), 10).unwrap();
    assert_eq!(
        remote.iter().map(|n| &n.id).collect::<Vec<_>>(),
        mine.iter().map(|n| &n.id).collect::<Vec<_>>()
    );
    for (a, b) in remote.iter().zip(&mine) {
        assert!((a.similarity - b.similarity).abs() < 1e-4, "{a:?} vs {b:?}");
        let r = records.iter().find(|r| r.id == a.id).unwrap();
        assert!((a.similarity - dot(&r.vector, &q)).abs() < 1e-4);
    }
}

#[test]
fn s3vectors_wire_a_zero_vector_is_refused_by_name_and_the_batch_goes_on() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    let mut zero = record("zero", 1, 1);
    zero.vector = vec![0.0; DIM];
    let r = ix.upsert(&[zero, record("fine", 2, 1)]).unwrap();
    assert_eq!(r.written, 1);
    assert_eq!(r.failed.len(), 1);
    assert!(
        r.failed[0].reason.contains("zero") && r.failed[0].id == "zero",
        "{:?}",
        r.failed
    );
}

#[test]
fn s3vectors_wire_listing_reads_parallel_segments() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut ix = open(&fake);
    let records: Vec<VectorRecord> = (0..60).map(|i| record(&format!("k{i:03}"), i, 1)).collect();
    ix.upsert(&records).unwrap();
    assert_eq!(
        ix.digest().unwrap().iter().map(|b| b.count).sum::<u64>(),
        60
    );
    let mut segments: Vec<i64> = fake
        .bodies("ListVectors")
        .iter()
        .map(|b| b["segmentIndex"].as_i64().unwrap())
        .collect();
    segments.sort();
    assert_eq!(
        segments,
        vec![0, 1, 2, 3],
        "max_concurrency 4: four segments"
    );
}

#[test]
fn s3vectors_wire_access_denied_names_the_missing_action() {
    let fake = FakeS3Vectors::start(BUCKET);
    fake.with(|s| s.fail_next.push((403, "AccessDeniedException".into())));
    let e = backend(&config(&fake))
        .open(&spec(), true)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("s3vectors:GetIndex") && e.contains("AccessDeniedException"),
        "{e}"
    );
}

#[test]
fn s3vectors_wire_throttling_is_retried_then_succeeds() {
    let fake = FakeS3Vectors::start(BUCKET);
    let mut cfg = config(&fake);
    cfg.s3vectors.max_attempts = 3;
    fake.with(|s| s.fail_next.push((429, "TooManyRequestsException".into())));
    assert!(backend(&cfg).open(&spec(), true).is_ok());
    let gets = fake.with(|s| s.seen.iter().filter(|p| *p == "/GetIndex").count());
    assert!(gets >= 2, "the throttled GetIndex was sent again");
}

#[test]
fn s3vectors_wire_throttling_past_every_attempt_says_what_to_lower() {
    let fake = FakeS3Vectors::start(BUCKET);
    fake.with(|s| s.fail_next.push((429, "TooManyRequestsException".into())));
    let e = backend(&config(&fake))
        .open(&spec(), true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("max_concurrency"), "{e}");
}

#[test]
fn s3vectors_wire_a_validation_error_carries_the_service_message() {
    let fake = FakeS3Vectors::start(BUCKET);
    fake.with(|s| s.fail_next.push((400, "ValidationException".into())));
    let e = backend(&config(&fake))
        .open(&spec(), true)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("ValidationException") && e.contains("injected by the test"),
        "{e}"
    );
}

#[test]
fn s3vectors_wire_a_missing_bucket_is_named_with_the_fix() {
    let fake = FakeS3Vectors::start("another-bucket");
    let e = backend(&config(&fake))
        .open(&spec(), true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("index.s3vectors.bucket"), "{e}");
}

#[test]
fn s3vectors_wire_another_librarys_index_is_refused_naming_both() {
    let fake = FakeS3Vectors::start(BUCKET);
    drop(open(&fake));
    let mut other = spec();
    other.library_id = "fedcba9876543210".into();
    let e = backend(&config(&fake))
        .open(&other, true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(LIBRARY) && e.contains("fedcba9876543210"), "{e}");
}

#[test]
fn s3vectors_wire_a_euclidean_index_of_the_same_name_is_refused() {
    let fake = FakeS3Vectors::start(BUCKET);
    drop(open(&fake));
    fake.with(|s| {
        if let Some(i) = s.indexes.get_mut(&name()) {
            i.metric = "euclidean".into();
        }
    });
    let e = backend(&config(&fake))
        .open(&spec(), true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("euclidean") && e.contains("cosine"), "{e}");
}

#[test]
fn s3vectors_wire_doctor_lists_the_buckets_indexes_and_counts() {
    let fake = FakeS3Vectors::start(BUCKET);
    let b = backend(&config(&fake));
    let mut ix = b.open(&spec(), true).unwrap();
    ix.upsert(&[record("a1", 1, 1), record("a2", 2, 1)])
        .unwrap();
    let list = b.indexes().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].embedder, EMBEDDER);
    assert_eq!(list[0].dim, DIM);
    assert_eq!(list[0].library_id, LIBRARY);
    assert_eq!(list[0].count, 2);
}
