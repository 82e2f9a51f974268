//! A fake Amazon S3 Vectors on 127.0.0.1 (wiremock) that stores what it is sent and answers
//! as the service documents, for the real SDK. Written from AWS's documentation (none of it
//! recorded from the service), read on 2026-12-03 from stored copies:
//! - operations, request and answer fields (`POST /<Operation>`, camelCase JSON; tags at
//!   `/tags/{resourceArn}`): https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_S3_Vectors.html
//! - limits (500 vectors per PutVectors and keys per DeleteVectors, 100 keys per GetVectors,
//!   1 000 per ListVectors page, 16 segments, dimension 1-4096):
//!   https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-limitations.html
//! - the filter language ($eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $and, $or; a
//!   bare value means $eq): https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-metadata-filtering.html
//! - query modes (ENHANCED filters before the search, CLASSIC during it):
//!   https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-index-mode.html
//! - errors (`x-amzn-errortype` and `{"message"}`; ValidationException 400, AccessDenied 403,
//!   NotFound 404, Conflict 409, TooManyRequests 429, ServiceUnavailable 503): the API
//!   reference's Errors sections.
//!
//! What the documentation leaves open, and this fake assumes (each a choice, not a fact): the
//! cosine `distance` is 1 - cosine similarity; a QueryVectors page holds QUERY_PAGE results
//! and continues with `nextToken` (the page size is not documented); the fake searches
//! exactly, so it stands for ENHANCED mode, and CLASSIC filtering-during-search recall is
//! not modelled. Every request must be SigV4-signed for service `s3vectors` in the fake's
//! region, or it is refused with 403 as the service would.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Results per QueryVectors page (not documented; small so tests cross pages).
pub const QUERY_PAGE: usize = 30;
pub const REGION: &str = "eu-west-1";
pub const ACCOUNT: &str = "123456789012";

#[derive(Clone, Default)]
pub struct FakeIndex {
    pub arn: String,
    pub dim: usize,
    pub metric: String,
    pub data_type: String,
    pub mode: String,
    pub tags: BTreeMap<String, String>,
    /// key -> (vector, metadata)
    pub vectors: BTreeMap<String, (Vec<f32>, Value)>,
    pub non_filterable: Vec<String>,
}

#[derive(Default)]
pub struct State {
    pub bucket: String,
    pub indexes: BTreeMap<String, FakeIndex>,
    /// Answers to give first, whatever the request (status, error type), for error tests.
    pub fail_next: Vec<(u16, String)>,
    /// Operations seen, in order.
    pub seen: Vec<String>,
    /// Every answer waits this long (latency of a real call).
    pub delay: std::time::Duration,
}

/// The fake service, with its own runtime (the backend under test is synchronous).
pub struct FakeS3Vectors {
    pub rt: tokio::runtime::Runtime,
    pub server: MockServer,
    pub state: Arc<Mutex<State>>,
}

impl FakeS3Vectors {
    pub fn start(bucket: &str) -> Self {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let server = rt.block_on(MockServer::start());
        let state = Arc::new(Mutex::new(State {
            bucket: bucket.to_string(),
            ..State::default()
        }));
        let s = state.clone();
        rt.block_on(
            Mock::given(wiremock::matchers::any())
                .respond_with(move |req: &Request| answer(&s, req))
                .mount(&server),
        );
        FakeS3Vectors { rt, server, state }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.rt
            .block_on(self.server.received_requests())
            .unwrap_or_default()
    }

    /// The JSON bodies sent to `POST /<op>`, in order.
    pub fn bodies(&self, op: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.url.path() == format!("/{op}"))
            .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
            .collect()
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut g = self.state.lock().expect("fake state");
        f(&mut g)
    }
}

fn error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-errortype", kind)
        .insert_header("content-type", "application/json")
        .set_body_json(json!({ "message": message }))
}

fn ok(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .set_body_json(v)
}

fn signed_for_s3vectors(req: &Request) -> bool {
    req.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.starts_with("AWS4-HMAC-SHA256 ")
                && a.contains(&format!("/{REGION}/s3vectors/aws4_request"))
        })
}

fn answer(state: &Arc<Mutex<State>>, req: &Request) -> ResponseTemplate {
    let Ok(mut st) = state.lock() else {
        return error(500, "InternalServerException", "fake state poisoned");
    };
    let delay = st.delay;
    answer_now(&mut st, req).set_delay(delay)
}

fn answer_now(st: &mut State, req: &Request) -> ResponseTemplate {
    let path = req.url.path().to_string();
    st.seen.push(path.clone());
    if !signed_for_s3vectors(req) {
        return error(
            403,
            "AccessDeniedException",
            "The request signature does not match (service s3vectors expected)",
        );
    }
    if !st.fail_next.is_empty() {
        let (status, kind) = st.fail_next.remove(0);
        return error(status, &kind, "injected by the test");
    }
    if let Some(arn) = path.strip_prefix("/tags/") {
        let arn = percent_encoding::percent_decode_str(arn)
            .decode_utf8_lossy()
            .to_string();
        return match st.indexes.values().find(|i| i.arn == arn) {
            Some(i) if req.method.as_str() == "GET" => ok(json!({ "tags": i.tags })),
            Some(_) => ok(json!({})),
            None => error(
                404,
                "NotFoundException",
                "The specified resource was not found",
            ),
        };
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    if req.method.as_str() != "POST" || !body.is_object() {
        return error(
            400,
            "ValidationException",
            "Expected a POST with a JSON body",
        );
    }
    let bucket = st.bucket.clone();
    if body["vectorBucketName"].as_str() != Some(bucket.as_str()) {
        return error(
            404,
            "NotFoundException",
            "The specified vector bucket could not be found",
        );
    }
    let name = body["indexName"].as_str().unwrap_or("").to_string();
    match path.as_str() {
        "/CreateIndex" => create_index(st, &bucket, &name, &body),
        "/ListIndexes" => {
            let prefix = body["prefix"].as_str().unwrap_or("");
            let list: Vec<Value> = st
                .indexes
                .iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .map(|(n, i)| {
                    json!({"vectorBucketName": bucket, "indexName": n, "indexArn": i.arn,
                           "creationTime": 1764720000})
                })
                .collect();
            ok(json!({ "indexes": list }))
        }
        op => {
            let Some(ix) = st.indexes.get_mut(&name) else {
                return error(
                    404,
                    "NotFoundException",
                    "The specified index could not be found",
                );
            };
            match op {
                "/GetIndex" => ok(json!({"index": {
                    "vectorBucketName": bucket, "indexName": name, "indexArn": ix.arn,
                    "creationTime": 1764720000, "dataType": ix.data_type,
                    "dimension": ix.dim, "distanceMetric": ix.metric, "indexMode": ix.mode,
                }})),
                "/DeleteIndex" => {
                    st.indexes.remove(&name);
                    ok(json!({}))
                }
                "/PutVectors" => put_vectors(ix, &body),
                "/GetVectors" => get_vectors(ix, &body),
                "/DeleteVectors" => {
                    let keys = body["keys"].as_array().cloned().unwrap_or_default();
                    if keys.is_empty() || keys.len() > 500 {
                        return error(400, "ValidationException", "keys: 1 to 500");
                    }
                    for k in keys {
                        if let Some(k) = k.as_str() {
                            ix.vectors.remove(k);
                        }
                    }
                    ok(json!({}))
                }
                "/ListVectors" => list_vectors(ix, &body),
                "/QueryVectors" => query_vectors(ix, &body),
                _ => error(400, "ValidationException", "Unknown operation"),
            }
        }
    }
}

fn create_index(st: &mut State, bucket: &str, name: &str, body: &Value) -> ResponseTemplate {
    if st.indexes.contains_key(name) {
        return error(
            409,
            "ConflictException",
            "An index with this name already exists",
        );
    }
    let dim = body["dimension"].as_u64().unwrap_or(0) as usize;
    if !(1..=4096).contains(&dim) {
        return error(400, "ValidationException", "dimension: 1 to 4096");
    }
    let metric = body["distanceMetric"].as_str().unwrap_or("").to_string();
    if !["cosine", "euclidean"].contains(&metric.as_str()) {
        return error(
            400,
            "ValidationException",
            "distanceMetric: cosine or euclidean",
        );
    }
    let tags: BTreeMap<String, String> = body["tags"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let arn = format!("arn:aws:s3vectors:{REGION}:{ACCOUNT}:bucket/{bucket}/index/{name}");
    st.indexes.insert(
        name.to_string(),
        FakeIndex {
            arn: arn.clone(),
            dim,
            metric,
            data_type: body["dataType"].as_str().unwrap_or("").to_string(),
            mode: "ENHANCED".into(),
            tags,
            vectors: BTreeMap::new(),
            non_filterable: body["metadataConfiguration"]["nonFilterableMetadataKeys"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        },
    );
    ok(json!({ "indexArn": arn }))
}

fn put_vectors(ix: &mut FakeIndex, body: &Value) -> ResponseTemplate {
    let vectors = body["vectors"].as_array().cloned().unwrap_or_default();
    if vectors.is_empty() || vectors.len() > 500 {
        return error(400, "ValidationException", "vectors: 1 to 500 per request");
    }
    let mut parsed = Vec::new();
    for v in &vectors {
        let key = v["key"].as_str().unwrap_or("").to_string();
        let data: Vec<f32> = v["data"]["float32"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                    .collect()
            })
            .unwrap_or_default();
        if data.len() != ix.dim {
            return error(
                400,
                "ValidationException",
                &format!(
                    "Invalid vector dimension for key {key}: expected {}",
                    ix.dim
                ),
            );
        }
        if ix.metric == "cosine" && data.iter().all(|x| *x == 0.0) {
            return error(
                400,
                "ValidationException",
                "Cosine indexes refuse zero vectors",
            );
        }
        parsed.push((key, data, v["metadata"].clone()));
    }
    for (key, data, meta) in parsed {
        ix.vectors.insert(key, (data, meta));
    }
    ok(json!({}))
}

fn vector_json(key: &str, data: &[f32], meta: &Value, body: &Value) -> Value {
    let mut v = json!({ "key": key });
    if body["returnData"].as_bool() == Some(true) {
        v["data"] = json!({ "float32": data });
    }
    if body["returnMetadata"].as_bool() == Some(true) {
        v["metadata"] = meta.clone();
    }
    v
}

fn get_vectors(ix: &FakeIndex, body: &Value) -> ResponseTemplate {
    let keys = body["keys"].as_array().cloned().unwrap_or_default();
    if keys.is_empty() || keys.len() > 100 {
        return error(400, "ValidationException", "keys: 1 to 100");
    }
    let out: Vec<Value> = keys
        .iter()
        .filter_map(|k| k.as_str())
        .filter_map(|k| ix.vectors.get(k).map(|(d, m)| vector_json(k, d, m, body)))
        .collect();
    ok(json!({ "vectors": out }))
}

fn segment_of(key: &str, count: u64) -> u64 {
    key.bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
        % count.max(1)
}

fn list_vectors(ix: &FakeIndex, body: &Value) -> ResponseTemplate {
    let max = body["maxResults"].as_u64().unwrap_or(500);
    if !(1..=1000).contains(&max) {
        return error(400, "ValidationException", "maxResults: 1 to 1000");
    }
    let count = body["segmentCount"].as_u64().unwrap_or(1);
    let index = body["segmentIndex"].as_u64().unwrap_or(0);
    if !(1..=16).contains(&count) || index >= count {
        return error(
            400,
            "ValidationException",
            "segmentIndex must be below segmentCount (1 to 16)",
        );
    }
    let from: usize = body["nextToken"]
        .as_str()
        .and_then(|t| t.strip_prefix("after-"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let in_segment: Vec<(&String, &(Vec<f32>, Value))> = ix
        .vectors
        .iter()
        .filter(|(k, _)| segment_of(k, count) == index)
        .collect();
    let page: Vec<Value> = in_segment
        .iter()
        .skip(from)
        .take(max as usize)
        .map(|(k, (d, m))| vector_json(k, d, m, body))
        .collect();
    let mut out = json!({ "vectors": page });
    if from + (max as usize) < in_segment.len() {
        out["nextToken"] = json!(format!("after-{}", from + max as usize));
    }
    ok(out)
}

/// Whether metadata passes a filter of the documented language.
pub fn passes(meta: &Value, filter: &Value) -> bool {
    let Some(obj) = filter.as_object() else {
        return false;
    };
    obj.iter().all(|(k, cond)| match k.as_str() {
        "$and" => cond
            .as_array()
            .is_some_and(|a| a.iter().all(|f| passes(meta, f))),
        "$or" => cond
            .as_array()
            .is_some_and(|a| a.iter().any(|f| passes(meta, f))),
        field => {
            let v = &meta[field];
            match cond.as_object() {
                Some(ops) => ops.iter().all(|(op, want)| match op.as_str() {
                    "$eq" => eq(v, want),
                    "$ne" => !eq(v, want),
                    "$in" => want.as_array().is_some_and(|a| a.iter().any(|w| eq(v, w))),
                    "$nin" => want.as_array().is_some_and(|a| !a.iter().any(|w| eq(v, w))),
                    "$exists" => want.as_bool() == Some(!v.is_null()),
                    "$gt" => cmp(v, want).is_some_and(|o| o.is_gt()),
                    "$gte" => cmp(v, want).is_some_and(|o| o.is_ge()),
                    "$lt" => cmp(v, want).is_some_and(|o| o.is_lt()),
                    "$lte" => cmp(v, want).is_some_and(|o| o.is_le()),
                    _ => false,
                }),
                None => eq(v, cond),
            }
        }
    })
}

fn eq(v: &Value, want: &Value) -> bool {
    match (v, want) {
        (Value::Array(a), w) => a.iter().any(|x| eq(x, w)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

fn cmp(v: &Value, want: &Value) -> Option<std::cmp::Ordering> {
    v.as_f64()?.partial_cmp(&want.as_f64()?)
}

fn query_vectors(ix: &FakeIndex, body: &Value) -> ResponseTemplate {
    let top_k = body["topK"].as_u64().unwrap_or(0) as usize;
    if !(1..=10_000).contains(&top_k) {
        return error(400, "ValidationException", "topK: 1 to 10000");
    }
    let q: Vec<f32> = body["queryVector"]["float32"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                .collect()
        })
        .unwrap_or_default();
    if q.len() != ix.dim {
        return error(
            400,
            "ValidationException",
            "Query vector dimension mismatch",
        );
    }
    if body["queryMode"].as_str() == Some("CLASSIC") && ix.mode == "ENHANCED" {
        return error(
            400,
            "ValidationException",
            "CLASSIC cannot be used on an ENHANCED index",
        );
    }
    let filter = &body["filter"];
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let qn = norm(&q);
    let mut hits: Vec<(f32, &String, &Value)> = ix
        .vectors
        .iter()
        .filter(|(_, (_, m))| filter.is_null() || passes(m, filter))
        .map(|(k, (d, m))| {
            let dot: f32 = d.iter().zip(&q).map(|(a, b)| a * b).sum();
            (1.0 - dot / (norm(d) * qn), k, m)
        })
        .collect();
    hits.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    hits.truncate(top_k);
    let from: usize = body["nextToken"]
        .as_str()
        .and_then(|t| t.strip_prefix("q-"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = hits
        .iter()
        .skip(from)
        .take(QUERY_PAGE)
        .map(|(d, k, m)| {
            let mut v = json!({ "key": k });
            if body["returnDistance"].as_bool() == Some(true) {
                v["distance"] = json!(d);
            }
            if body["returnMetadata"].as_bool() == Some(true) {
                v["metadata"] = (*m).clone();
            }
            v
        })
        .collect();
    let mut out = json!({ "vectors": page, "distanceMetric": ix.metric });
    if from + QUERY_PAGE < hits.len() {
        out["nextToken"] = json!(format!("q-{}", from + QUERY_PAGE));
    }
    ok(out)
}

/// Index `name`'s stored vectors (key -> metadata), for assertions.
pub fn stored(fake: &FakeS3Vectors, name: &str) -> HashMap<String, Value> {
    fake.with(|s| {
        s.indexes
            .get(name)
            .map(|i| {
                i.vectors
                    .iter()
                    .map(|(k, (_, m))| (k.clone(), m.clone()))
                    .collect()
            })
            .unwrap_or_default()
    })
}
