//! The OpenSearch backend's requests, through the real client, against a fake server on
//! 127.0.0.1 (wiremock): what it sends (insta snapshots of mappings, bulk NDJSON, searches,
//! counts, aggregations; SigV4 scopes for `es` and `aoss`; basic auth) and how it reads what
//! comes back. No node is needed; the live node runs the same backend in
//! tests/index_contract.rs and tests/opensearch_engine.rs. Every replayed answer is written
//! from OpenSearch 2.19's documentation and sources (the shapes of `_bulk`, `_search`,
//! `_count`, aggregations and errors), as each test says; none was recorded from a server.
use std::sync::Arc;

use campaign_studio::config::{Config, IndexConfig};
use campaign_studio::domain::{EmbedderId, SearchFilter};
use campaign_studio::services::opensearch::{OpenSearch, bodies};
use campaign_studio::services::{
    IndexSpec, Tombstone, VectorBackend, VectorIndex, VectorMeta, VectorRecord,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const EMBEDDER: &str = "local/multilingual-e5-small-q4/desc-v1";
const LIBRARY: &str = "0123456789abcdef";

struct Fake {
    rt: tokio::runtime::Runtime,
    server: MockServer,
}

impl Fake {
    fn start() -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(MockServer::start());
        Fake { rt, server }
    }
    fn on(&self, m: &str, p: &str, answer: ResponseTemplate) {
        self.rt.block_on(
            Mock::given(method(m))
                .and(path(p))
                .respond_with(answer)
                .mount(&self.server),
        );
    }
    fn first(&self, m: &str, p: &str, n: u64, answer: ResponseTemplate) {
        self.rt.block_on(
            Mock::given(method(m))
                .and(path(p))
                .respond_with(answer)
                .up_to_n_times(n)
                .with_priority(1)
                .mount(&self.server),
        );
    }
    fn requests(&self) -> Vec<Request> {
        self.rt
            .block_on(self.server.received_requests())
            .unwrap_or_default()
    }
    fn bodies(&self, m: &str, p: &str) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.method.as_str() == m && r.url.path() == p)
            .map(|r| String::from_utf8_lossy(&r.body).to_string())
            .collect()
    }
    fn json(&self, m: &str, p: &str) -> Vec<Value> {
        self.bodies(m, p)
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

fn ok(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .set_body_json(v)
}

fn config(fake: &Fake) -> IndexConfig {
    let mut c = Config::defaults().index;
    c.backend = "opensearch".into();
    c.namespace = "wire".into();
    c.opensearch.url = fake.server.uri();
    c.opensearch.initial_backoff_ms = 1;
    c.opensearch.max_attempts = 3;
    c
}

fn alias() -> String {
    bodies::index_name("wire", EMBEDDER)
}

fn spec() -> IndexSpec {
    IndexSpec {
        embedder: EmbedderId::new(EMBEDDER),
        dim: 4,
        library_id: LIBRARY.into(),
    }
}

fn meta_answer(index: &str, embedder: &str, dim: usize, library: &str) -> Value {
    // GET <index>/_mapping, as the mapping API answers (documentation: mapping-parameters/meta).
    json!({ index: { "mappings": {
        "_meta": {"embedder": embedder, "dim": dim, "library_id": library, "mapping_version": bodies::MAPPING_VERSION},
        "properties": {}
    }}})
}

/// A cluster that holds the embedder's index already: version, plugins, alias, mapping.
fn mount_cluster(fake: &Fake, version: &str) {
    // GET / as OpenSearch 2.19 answers it (the root API).
    fake.on(
        "GET",
        "/",
        ok(json!({"name": "n", "cluster_name": "c", "version": {"distribution": "opensearch", "number": version}})),
    );
    // GET _cat/plugins?format=json (cat API, JSON format).
    fake.on(
        "GET",
        "/_cat/plugins",
        ok(json!([{"name": "n", "component": "opensearch-knn", "version": "2.19.1.0"}])),
    );
    let a = alias();
    let concrete = format!("{a}-v1");
    // GET _alias/<alias> (alias API).
    fake.on(
        "GET",
        &format!("/_alias/{a}"),
        ok(json!({ concrete.clone(): {"aliases": { a.clone(): {}}}})),
    );
    fake.on(
        "GET",
        &format!("/{concrete}/_mapping"),
        ok(meta_answer(&concrete, EMBEDDER, 4, LIBRARY)),
    );
}

fn backend(cfg: &IndexConfig) -> OpenSearch {
    OpenSearch::connect(cfg, None, None).unwrap()
}

fn open(fake: &Fake) -> Box<dyn VectorIndex> {
    mount_cluster(fake, "2.19.1");
    backend(&config(fake)).open(&spec(), false).unwrap()
}

fn record(id: &str, version: i64) -> VectorRecord {
    VectorRecord {
        id: id.into(),
        vector: vec![0.5, 0.5, 0.5, 0.5],
        meta: VectorMeta {
            objective: "likes".into(),
            node: "followers".into(),
            kpi: Some(0.25),
        },
        version,
    }
}

fn filter() -> SearchFilter {
    SearchFilter {
        objective: Some("likes".into()),
        node: Some("followers".into()),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

// ---------------------------------------------------------------------------------------
// Creating an index.

/// A cluster without the index: the alias and the index are not found until created.
fn mount_empty_cluster(fake: &Fake) {
    mount_cluster(fake, "2.19.1");
    let a = alias();
    // Error answers as the REST layer writes them: {"error": {"type", "reason"}, "status"}.
    let missing = ResponseTemplate::new(404).set_body_json(json!({
        "error": {"type": "index_not_found_exception", "reason": format!("no such index [{a}]")},
        "status": 404
    }));
    fake.first("GET", &format!("/_alias/{a}"), 1, missing.clone());
    fake.first("GET", &format!("/{a}/_mapping"), 1, missing);
    fake.on(
        "PUT",
        &format!("/{a}-v1"),
        ok(json!({"acknowledged": true, "shards_acknowledged": true, "index": format!("{a}-v1")})),
    );
    fake.on(
        "PUT",
        &format!("/{a}"),
        ok(json!({"acknowledged": true, "shards_acknowledged": true, "index": a})),
    );
    mount_our_mapping(fake, &a);
}

/// The index behind alias `a` answers its mapping with our library's `_meta` (4 dimensions).
fn mount_our_mapping(fake: &Fake, a: &str) {
    fake.on(
        "GET",
        &format!("/{a}/_mapping"),
        ok(meta_answer(a, EMBEDDER, 4, LIBRARY)),
    );
}

#[test]
fn opensearch_wire_creates_a_lucene_index_with_its_meta_behind_an_alias() {
    let fake = Fake::start();
    mount_empty_cluster(&fake);
    backend(&config(&fake)).open(&spec(), true).unwrap();
    let created = fake.json("PUT", &format!("/{}-v1", alias()));
    assert_eq!(created.len(), 1);
    insta::assert_snapshot!(pretty(&created[0]));
}

#[test]
fn opensearch_wire_creates_a_faiss_index() {
    let fake = Fake::start();
    mount_empty_cluster(&fake);
    let mut cfg = config(&fake);
    cfg.opensearch.engine = "faiss".into();
    backend(&cfg).open(&spec(), true).unwrap();
    let created = &fake.json("PUT", &format!("/{}-v1", alias()))[0];
    insta::assert_snapshot!(pretty(&created["mappings"]["properties"]["vector"]));
}

fn aws(region: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "AKIDOPENSEARCHTEST",
                    "opensearch-test-secret",
                    None,
                    None,
                    "wire-test",
                ),
            ),
        )
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

fn header(r: &Request, k: &str) -> String {
    r.headers
        .get(k)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn opensearch_wire_serverless_index_has_no_shards_alias_or_version_check_and_signs_for_aoss() {
    let fake = Fake::start();
    mount_empty_cluster(&fake);
    let mut cfg = config(&fake);
    cfg.opensearch.auth = "sigv4".into();
    cfg.opensearch.service = "aoss".into();
    cfg.opensearch.engine = "faiss".into();
    OpenSearch::connect(&cfg, None, Some(aws("us-east-1")))
        .unwrap()
        .open(&spec(), true)
        .unwrap();
    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .all(|r| r.url.path() != "/" && r.url.path() != "/_cat/plugins"),
        "Serverless has no version or plugin endpoints"
    );
    let put = reqs
        .iter()
        .find(|r| r.method.as_str() == "PUT")
        .expect("the index is created");
    assert_eq!(
        put.url.path(),
        format!("/{}", alias()),
        "no alias generation"
    );
    let auth = header(put, "authorization");
    assert!(
        auth.contains("/us-east-1/aoss/aws4_request"),
        "SigV4 scope: {auth}"
    );
    assert!(!header(put, "x-amz-content-sha256").is_empty());
    assert!(!auth.contains("opensearch-test-secret"));
    let body: Value = serde_json::from_slice(&put.body).unwrap();
    insta::assert_snapshot!(pretty(&body));
}

#[test]
fn opensearch_wire_service_domain_requests_are_signed_for_es() {
    let fake = Fake::start();
    mount_cluster(&fake, "2.19.1");
    let mut cfg = config(&fake);
    cfg.opensearch.auth = "sigv4".into();
    cfg.opensearch.service = "es".into();
    OpenSearch::connect(&cfg, None, Some(aws("eu-west-1")))
        .unwrap()
        .open(&spec(), false)
        .unwrap();
    let r = &fake.requests()[0];
    let auth = header(r, "authorization");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDOPENSEARCHTEST/")
            && auth.contains("/eu-west-1/es/aws4_request"),
        "{auth}"
    );
}

#[test]
fn opensearch_wire_basic_auth_sends_the_user_and_password() {
    let fake = Fake::start();
    mount_cluster(&fake, "2.19.1");
    let mut cfg = config(&fake);
    cfg.opensearch.auth = "basic".into();
    cfg.opensearch.user = "studio".into();
    OpenSearch::connect(&cfg, Some("s3cret".into()), None)
        .unwrap()
        .open(&spec(), false)
        .unwrap();
    use base64::Engine;
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("studio:s3cret")
    );
    assert_eq!(header(&fake.requests()[0], "authorization"), want);
}

#[test]
fn opensearch_wire_basic_auth_without_a_password_is_refused_naming_the_variable() {
    let fake = Fake::start();
    let mut cfg = config(&fake);
    cfg.opensearch.auth = "basic".into();
    cfg.opensearch.user = "studio".into();
    let e = OpenSearch::connect(&cfg, None, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("OPENSEARCH_PASSWORD"), "{e}");
}

#[test]
fn opensearch_wire_foreign_meta_is_refused_naming_the_fix() {
    let fake = Fake::start();
    mount_cluster(&fake, "2.19.1");
    let a = alias();
    let concrete = format!("{a}-v1");
    fake.first(
        "GET",
        &format!("/{concrete}/_mapping"),
        1,
        ok(meta_answer(&concrete, "someone/else", 4, "another-library")),
    );
    let e = backend(&config(&fake))
        .open(&spec(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("another-library") && e.contains(LIBRARY) && e.contains("index.namespace"),
        "{e}"
    );
}

#[test]
fn opensearch_wire_a_version_before_2_13_is_refused() {
    let fake = Fake::start();
    mount_cluster(&fake, "2.11.0");
    let e = backend(&config(&fake))
        .open(&spec(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("2.11.0") && e.contains("2.13"), "{e}");
}

#[test]
fn opensearch_wire_plain_http_off_loopback_is_refused() {
    let e = campaign_studio::config::check_opensearch_url("http://search.example.com:9200")
        .unwrap_err();
    assert!(e.contains("loopback") && e.contains("https"), "{e}");
}

// ---------------------------------------------------------------------------------------
// Writing.

fn bulk_answer(items: Vec<Value>) -> ResponseTemplate {
    // _bulk answers: {"took", "errors", "items": [{"<action>": {..., "status"}}]} (bulk API).
    ok(
        json!({"took": 3, "errors": items.iter().any(|i| i.to_string().contains("\"error\"")), "items": items}),
    )
}

#[test]
fn opensearch_wire_bulk_sends_external_versions() {
    let fake = Fake::start();
    let mut ix = open(&fake);
    fake.on(
        "POST",
        "/_bulk",
        bulk_answer(vec![
            json!({"index": {"_index": "x", "_id": "a1", "status": 201, "result": "created"}}),
            json!({"index": {"_index": "x", "_id": "b2", "status": 201, "result": "created"}}),
        ]),
    );
    ix.upsert(&[record("a1", 7), record("b2", 9)]).unwrap();
    let sent = fake.bodies("POST", "/_bulk");
    assert_eq!(sent.len(), 1);
    let r = &fake
        .requests()
        .into_iter()
        .find(|r| r.url.path() == "/_bulk")
        .unwrap();
    assert_eq!(header(r, "content-type"), "application/x-ndjson");
    insta::assert_snapshot!(sent[0]);
}

#[test]
fn opensearch_wire_bulk_answer_with_a_mapping_error_a_conflict_and_a_success() {
    let fake = Fake::start();
    let mut ix = open(&fake);
    fake.on(
        "POST",
        "/_bulk",
        bulk_answer(vec![
            json!({"index": {"_index": "x", "_id": "a1", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [kpi] of type [double]"}}}),
            json!({"index": {"_index": "x", "_id": "b2", "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "[b2]: version conflict, current version [9] is higher or equal to the one provided [9]"}}}),
            json!({"index": {"_index": "x", "_id": "c3", "status": 201, "result": "created"}}),
        ]),
    );
    let r = ix
        .upsert(&[record("a1", 7), record("b2", 9), record("c3", 10)])
        .unwrap();
    assert_eq!(r.written, 1);
    assert_eq!(r.stale, vec!["b2".to_string()]);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].id, "a1");
    assert!(
        r.failed[0].reason.contains("mapper_parsing_exception")
            && r.failed[0].reason.contains("kpi"),
        "{}",
        r.failed[0].reason
    );
}

#[test]
fn opensearch_wire_bulk_is_split_by_count() {
    let fake = Fake::start();
    mount_cluster(&fake, "2.19.1");
    let mut cfg = config(&fake);
    cfg.batch_size = 2;
    let mut ix = backend(&cfg).open(&spec(), false).unwrap();
    // One created item per action of the request.
    fake.rt.block_on(
        Mock::given(method("POST"))
            .and(path("/_bulk"))
            .respond_with(|r: &Request| {
                let actions = String::from_utf8_lossy(&r.body).lines().count() / 2;
                bulk_answer(vec![json!({"index": {"status": 201}}); actions])
            })
            .mount(&fake.server),
    );
    let r = ix
        .upsert(&[record("a1", 1), record("b2", 2), record("c3", 3)])
        .unwrap();
    assert_eq!(r.written, 3);
    let mut sizes: Vec<usize> = fake
        .bodies("POST", "/_bulk")
        .iter()
        .map(|b| b.lines().count() / 2)
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![1, 2]);
}

#[test]
fn opensearch_wire_tombstones_delete_with_external_versions() {
    let fake = Fake::start();
    let mut ix = open(&fake);
    fake.on(
        "POST",
        "/_bulk",
        bulk_answer(vec![
            json!({"delete": {"_index": "x", "_id": "a1", "status": 200, "result": "deleted"}}),
            json!({"delete": {"_index": "x", "_id": "b2", "status": 404, "result": "not_found"}}),
        ]),
    );
    let r = ix
        .remove(&[
            Tombstone {
                id: "a1".into(),
                version: 12,
            },
            Tombstone {
                id: "b2".into(),
                version: 13,
            },
        ])
        .unwrap();
    assert_eq!((r.written, r.failed.len()), (1, 0));
    insta::assert_snapshot!(fake.bodies("POST", "/_bulk")[0]);
}

#[test]
fn opensearch_wire_serverless_upsert_looks_up_deletes_and_indexes_in_one_bulk() {
    let fake = Fake::start();
    let a = alias();
    mount_our_mapping(&fake, &a);
    fake.on(
        "GET",
        &format!("/_alias/{a}"),
        ResponseTemplate::new(404)
            .set_body_json(json!({"error": "alias not found", "status": 404})),
    );
    // The asset's current documents, under ids the collection chose.
    fake.on(
        "POST",
        &format!("/{a}/_search"),
        ok(json!({"hits": {"hits": [
            {"_id": "1%3A0%3AxY", "_score": 1.0, "_source": {"asset_id": "a1", "version": 3}}
        ]}})),
    );
    fake.on(
        "POST",
        "/_bulk",
        bulk_answer(vec![
            json!({"delete": {"_id": "1%3A0%3AxY", "status": 200, "result": "deleted"}}),
            json!({"index": {"_id": "1%3A0%3AzZ", "status": 201, "result": "created"}}),
        ]),
    );
    let mut cfg = config(&fake);
    cfg.opensearch.auth = "sigv4".into();
    cfg.opensearch.service = "aoss".into();
    cfg.opensearch.engine = "faiss".into();
    let mut ix = OpenSearch::connect(&cfg, None, Some(aws("us-east-1")))
        .unwrap()
        .open(&spec(), false)
        .unwrap();
    let r = ix.upsert(&[record("a1", 7)]).unwrap();
    assert_eq!(r.written, 1, "{r:?}");
    let lookup = &fake.json("POST", &format!("/{a}/_search"))[0];
    assert_eq!(lookup["query"]["terms"]["asset_id"], json!(["a1"]));
    insta::assert_snapshot!(fake.bodies("POST", "/_bulk")[0]);
}

#[test]
fn opensearch_wire_throttled_bulk_is_retried() {
    let fake = Fake::start();
    let mut ix = open(&fake);
    fake.first(
        "POST",
        "/_bulk",
        1,
        // 429 as the REST layer answers a rejected execution.
        ResponseTemplate::new(429).set_body_json(json!({
            "error": {"type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation"},
            "status": 429
        })),
    );
    fake.on(
        "POST",
        "/_bulk",
        bulk_answer(vec![json!({"index": {"_id": "a1", "status": 201}})]),
    );
    assert_eq!(ix.upsert(&[record("a1", 1)]).unwrap().written, 1);
    assert_eq!(fake.bodies("POST", "/_bulk").len(), 2);
}

#[test]
fn opensearch_wire_server_errors_until_the_attempts_run_out_say_so() {
    let fake = Fake::start();
    let mut ix = open(&fake);
    fake.on(
        "POST",
        "/_bulk",
        ResponseTemplate::new(503).set_body_json(json!({
            "error": {"type": "cluster_block_exception", "reason": "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];"},
            "status": 503
        })),
    );
    let e = ix.upsert(&[record("a1", 1)]).unwrap_err().to_string();
    assert!(
        e.contains("after 3 attempt(s)") && e.contains("cluster_block_exception"),
        "{e}"
    );
    assert_eq!(fake.bodies("POST", "/_bulk").len(), 3);
}

// ---------------------------------------------------------------------------------------
// Reading.

fn search_path() -> String {
    format!("/{}/_search", alias())
}

#[test]
fn opensearch_wire_filtered_search_puts_the_filter_inside_knn() {
    let fake = Fake::start();
    let ix = open(&fake);
    fake.on("POST", &search_path(), ok(json!({"hits": {"hits": []}})));
    ix.search(&[0.1, 0.2, 0.3, 0.4], &filter(), 5).unwrap();
    insta::assert_snapshot!(pretty(&fake.json("POST", &search_path())[0]));
}

#[test]
fn opensearch_wire_unfiltered_search_has_no_filter() {
    let fake = Fake::start();
    let ix = open(&fake);
    fake.on("POST", &search_path(), ok(json!({"hits": {"hits": []}})));
    ix.search(&[0.1, 0.2, 0.3, 0.4], &SearchFilter::default(), 5)
        .unwrap();
    let body = &fake.json("POST", &search_path())[0];
    assert!(body["query"]["knn"]["vector"].get("filter").is_none());
    assert!(body.get("post_filter").is_none());
}

#[test]
fn opensearch_wire_scores_convert_back_to_the_dot_product() {
    let fake = Fake::start();
    let ix = open(&fake);
    // Inner-product scores as the k-NN plugin gives them: ip + 1 for ip > 0, 1 / (1 - ip) else.
    fake.on(
        "POST",
        &search_path(),
        ok(json!({"hits": {"hits": [
            {"_id": "a1", "_score": 1.8, "_source": {"asset_id": "a1", "version": 4}},
            {"_id": "b2", "_score": 1.0, "_source": {"asset_id": "b2", "version": 5}},
            {"_id": "c3", "_score": 0.5, "_source": {"asset_id": "c3", "version": 6}}
        ]}})),
    );
    let hits = ix
        .search(&[0.1, 0.2, 0.3, 0.4], &SearchFilter::default(), 3)
        .unwrap();
    let got: Vec<(String, f32)> = hits.into_iter().map(|n| (n.id, n.similarity)).collect();
    assert_eq!(
        got,
        vec![("a1".into(), 0.8), ("b2".into(), 0.0), ("c3".into(), -1.0)]
    );
}

#[test]
fn opensearch_wire_count_sends_the_filter() {
    let fake = Fake::start();
    let ix = open(&fake);
    let p = format!("/{}/_count", alias());
    // _count answers {"count", "_shards"} (count API).
    fake.on(
        "POST",
        &p,
        ok(json!({"count": 42, "_shards": {"total": 1, "successful": 1, "failed": 0}})),
    );
    assert_eq!(ix.count(&filter()).unwrap(), 42);
    insta::assert_snapshot!(pretty(&fake.json("POST", &p)[0]));
}

#[test]
fn opensearch_wire_kpi_percentiles_take_one_round_trip() {
    let fake = Fake::start();
    let ix = open(&fake);
    // A filters aggregation answers {"buckets": {"<name>": {"doc_count"}}} (aggregations API).
    fake.on(
        "POST",
        &search_path(),
        ok(json!({"hits": {"total": {"value": 20}}, "aggregations": {
            "known": {"doc_count": 16},
            "ranks": {"buckets": {
                "lt0": {"doc_count": 4}, "le0": {"doc_count": 6},
                "lt1": {"doc_count": 16}, "le1": {"doc_count": 16}
            }}
        }})),
    );
    let p = ix
        .kpi_percentiles(&filter(), &[Some(0.01), None, Some(9.0)])
        .unwrap();
    assert_eq!(p, vec![(4.0 + 1.0) / 16.0, 0.0, 1.0]);
    assert_eq!(fake.bodies("POST", &search_path()).len(), 1);
    insta::assert_snapshot!(pretty(&fake.json("POST", &search_path())[0]));
}

#[test]
fn opensearch_wire_digest_reads_the_terms_aggregation() {
    let fake = Fake::start();
    let ix = open(&fake);
    // A terms aggregation with sum and max sub-aggregations (aggregations API).
    fake.on(
        "POST",
        &search_path(),
        ok(json!({"aggregations": {"buckets": {"buckets": [
            {"key": "0a", "doc_count": 2, "version_sum": {"value": 17.0}, "version_max": {"value": 10.0}},
            {"key": "ff", "doc_count": 1, "version_sum": {"value": 3.0}, "version_max": {"value": 3.0}}
        ]}}})),
    );
    let d = ix.digest().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        (
            d[0].bucket.as_str(),
            d[0].count,
            d[0].version_sum,
            d[0].version_max
        ),
        ("0a", 2, 17, 10)
    );
    insta::assert_snapshot!(pretty(&fake.json("POST", &search_path())[0]));
}

#[test]
fn opensearch_wire_exact_search_uses_the_knn_scoring_script() {
    let fake = Fake::start();
    let ix = open(&fake);
    fake.on("POST", &search_path(), ok(json!({"hits": {"hits": []}})));
    ix.search_exact(&[0.1, 0.2, 0.3, 0.4], &filter(), 3)
        .unwrap();
    insta::assert_snapshot!(pretty(&fake.json("POST", &search_path())[0]));
}

#[test]
fn opensearch_wire_serverless_search_keeps_the_newest_of_duplicate_assets() {
    let fake = Fake::start();
    let a = alias();
    mount_our_mapping(&fake, &a);
    fake.on(
        "GET",
        &format!("/_alias/{a}"),
        ResponseTemplate::new(404)
            .set_body_json(json!({"error": "alias not found", "status": 404})),
    );
    fake.on(
        "POST",
        &format!("/{a}/_search"),
        ok(json!({"hits": {"hits": [
            {"_id": "x1", "_score": 1.5, "_source": {"asset_id": "a1", "version": 3}},
            {"_id": "x2", "_score": 1.4, "_source": {"asset_id": "a1", "version": 8}},
            {"_id": "x3", "_score": 1.2, "_source": {"asset_id": "b2", "version": 2}}
        ]}})),
    );
    let mut cfg = config(&fake);
    cfg.opensearch.auth = "sigv4".into();
    cfg.opensearch.service = "aoss".into();
    cfg.opensearch.engine = "faiss".into();
    let ix = OpenSearch::connect(&cfg, None, Some(aws("us-east-1")))
        .unwrap()
        .open(&spec(), false)
        .unwrap();
    let hits = ix
        .search(&[0.1, 0.2, 0.3, 0.4], &SearchFilter::default(), 3)
        .unwrap();
    let got: Vec<(String, f32)> = hits.into_iter().map(|n| (n.id, n.similarity)).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "a1");
    assert!(
        (got[0].1 - 0.4).abs() < 1e-6,
        "the newest copy's score: {got:?}"
    );
}

// The backend is shared as a trait object by the library.
#[test]
fn opensearch_wire_backend_reports_what_it_is_without_secrets() {
    let fake = Fake::start();
    let mut cfg = config(&fake);
    cfg.opensearch.auth = "basic".into();
    cfg.opensearch.user = "studio".into();
    let b: Arc<dyn VectorBackend> =
        Arc::new(OpenSearch::connect(&cfg, Some("s3cret".into()), None).unwrap());
    let info = b.info();
    assert_eq!(info.kind, "opensearch");
    assert!(info.auth.contains("studio") && !format!("{info:?}").contains("s3cret"));
}

#[test]
fn opensearch_wire_serverless_flush_waits_only_for_what_the_collection_took() {
    let fake = Fake::start();
    let a = alias();
    mount_our_mapping(&fake, &a);
    // Nothing there yet; the index action of the only record is refused.
    fake.on(
        "POST",
        &format!("/{a}/_search"),
        ok(json!({"hits": {"hits": []}})),
    );
    fake.on(
        "POST",
        "/_bulk",
        bulk_answer(vec![json!({"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad"}}})]),
    );
    let mut cfg = config(&fake);
    cfg.opensearch.auth = "sigv4".into();
    cfg.opensearch.service = "aoss".into();
    cfg.opensearch.engine = "faiss".into();
    cfg.opensearch.visibility_timeout_secs = 1;
    let mut ix = OpenSearch::connect(&cfg, None, Some(aws("us-east-1")))
        .unwrap()
        .open(&spec(), false)
        .unwrap();
    let r = ix.upsert(&[record("a1", 7)]).unwrap();
    assert_eq!((r.written, r.failed.len()), (0, 1));
    ix.flush().expect("nothing taken, nothing to wait for");
}
