//! OpenSearch as a vector backend: a self-managed cluster, an Amazon OpenSearch Service domain
//! (SigV4 `es`) or a Serverless vector collection (SigV4 `aoss`), through the `opensearch`
//! crate (rustls). One index per embedder id, named from the namespace and the id and reached
//! through an alias (clusters), with the embedder, dimension, library id and mapping version in
//! its mapping's `_meta`, checked on open. The library's change feed fills it: each document's
//! external version is the feed's sequence number, so a re-push, a crash between commit and
//! push, or two syncs at once never duplicate or roll back anything. Serverless refuses custom
//! `_id`s and has no refresh or aliases: there each record replaces its asset's documents in
//! one `_bulk`, searches drop duplicate assets keeping the newest version, and `flush` waits
//! until the writes are visible. The client owns a small tokio runtime; the trait stays
//! synchronous. Credentials never reach logs or errors.
pub mod bodies;
pub mod sample;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opensearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use opensearch::http::request::JsonBody;
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::http::{Method, Url};
use serde_json::{Value, json};

use crate::config::{IndexConfig, OpenSearchConfig};
use crate::domain::index::{check_vector, percentile_from_counts};
use crate::domain::{EmbedderId, SearchFilter};
use crate::services::{
    BackendInfo, DigestBucket, DocState, IndexInfo, IndexSpec, Neighbour, Tombstone, VectorBackend,
    VectorIndex, VectorRecord, WriteFailure, WriteReport,
};
use crate::{Error, Result};

/// The lowest OpenSearch with the lucene engine's inner product (2.13).
const MIN_VERSION: (u64, u64) = (2, 13);
/// Documents per page when listing a bucket.
const PAGE: usize = 1000;

/// One request, as the retry loop sends it.
#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    NdJson(String),
}

/// The client and what every request needs; cheap to clone into concurrent bulk requests.
#[derive(Clone)]
struct Conn {
    client: opensearch::OpenSearch,
    cfg: Arc<OpenSearchConfig>,
    endpoint: String,
}

/// An answer: status and JSON body (Null when it had none).
struct Answer {
    status: u16,
    body: Value,
}

impl Conn {
    /// Sends a request, retrying connection failures, 429 and 5xx with exponential backoff
    /// and jitter; other answers come back as they are.
    async fn send(&self, op: &str, method: Method, path: &str, body: &Body) -> Result<Answer> {
        let attempts = self.cfg.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(self.cfg.initial_backoff_ms, attempt)).await;
            }
            let timeout = Some(Duration::from_secs(self.cfg.timeout_secs));
            let mut headers = HeaderMap::new();
            let sent = match body {
                Body::None => {
                    self.client
                        .send::<(), ()>(method, path, headers, None, None, timeout)
                        .await
                }
                Body::Json(v) => {
                    self.client
                        .send::<JsonBody<Value>, ()>(
                            method,
                            path,
                            headers,
                            None,
                            Some(JsonBody::new(v.clone())),
                            timeout,
                        )
                        .await
                }
                Body::NdJson(s) => {
                    headers.insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/x-ndjson"),
                    );
                    self.client
                        .send::<String, ()>(method, path, headers, None, Some(s.clone()), timeout)
                        .await
                }
            };
            let response = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = if e.is_timeout() {
                        format!(
                            "no answer within index.opensearch.timeout_secs ({}s)",
                            self.cfg.timeout_secs
                        )
                    } else {
                        format!(
                            "cannot reach {} ({})",
                            self.endpoint,
                            crate::services::error_chain(&e)
                        )
                    };
                    tracing::warn!(op, attempt, error = %last, "opensearch request failed");
                    continue;
                }
            };
            let status = response.status_code().as_u16();
            let text = response.text().await.unwrap_or_default();
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                match serde_json::from_str(&text) {
                    Ok(v) => v,
                    Err(_) if status >= 500 || status == 429 => Value::String(text),
                    Err(e) => {
                        return Err(Error::Cloud(format!(
                            "opensearch {op}: the answer ({status}) is not JSON ({e}): {}",
                            text.chars().take(200).collect::<String>()
                        )));
                    }
                }
            };
            if status == 429 || status >= 500 {
                last = describe_error(op, status, &body);
                tracing::warn!(op, attempt, status, "opensearch busy or failing; retrying");
                continue;
            }
            return Ok(Answer { status, body });
        }
        Err(Error::Cloud(format!(
            "opensearch {op}: {last} (after {attempts} attempt(s)); check that the server is up and reachable, then run `campaign-studio library sync`"
        )))
    }

    /// `send`, and an error for anything but 2xx.
    async fn ok(&self, op: &str, method: Method, path: &str, body: &Body) -> Result<Value> {
        let a = self.send(op, method, path, body).await?;
        if (200..300).contains(&a.status) {
            Ok(a.body)
        } else {
            Err(Error::Cloud(describe_error(op, a.status, &a.body)))
        }
    }
}

/// Exponential backoff with up to 50 % jitter, capped at 10 s.
fn backoff(initial_ms: u64, attempt: u32) -> Duration {
    let base = initial_ms
        .saturating_mul(1u64 << attempt.min(10))
        .min(10_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

/// The cluster's `error.type` and `reason`, and what to do.
pub fn describe_error(op: &str, status: u16, body: &Value) -> String {
    let err = body.get("error");
    let kind = err
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("error");
    let reason = err
        .and_then(|e| e.get("reason"))
        .and_then(Value::as_str)
        .or_else(|| err.and_then(Value::as_str))
        .or_else(|| body.get("message").and_then(Value::as_str))
        .or_else(|| body.as_str())
        .unwrap_or("");
    let reason: String = redact_token(reason).chars().take(500).collect();
    let advice = match (status, kind) {
        (401, _) => {
            "the server refused the credentials: check index.opensearch.auth and user, and OPENSEARCH_PASSWORD (basic) or the AWS credentials (sigv4)"
        }
        (403, _) => {
            "the credentials may not do this: allow it in the cluster's roles or the IAM / data access policy"
        }
        (404, "index_not_found_exception") => {
            "the index is not there: run `campaign-studio library sync` to create and fill it"
        }
        (429, _) => {
            "the server is busy: try again later, or lower index.opensearch.max_concurrency"
        }
        (s, _) if s >= 500 => {
            "the server failed: try again; if it persists, check the cluster's health"
        }
        (400, "mapper_parsing_exception") | (400, "illegal_argument_exception") => {
            "the server refused the request's shape: check the OpenSearch version (2.13 or later) and the k-NN plugin"
        }
        _ => "see the server's reason",
    };
    format!("opensearch {op}: {status} {kind}: {reason}; {advice}")
}

/// An AWS signature error may echo the canonical request: its session-token line is blanked.
fn redact_token(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.to_lowercase()
                .trim_start()
                .starts_with("x-amz-security-token")
            {
                "x-amz-security-token:** redacted **"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Numbers of a version string ("2.19.1" -> (2, 19)).
fn major_minor(v: &str) -> Option<(u64, u64)> {
    let mut it = v.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The OpenSearch backend: one client per library.
pub struct OpenSearch {
    /// Shared with the indexes it opens, which outlive it.
    rt: Arc<tokio::runtime::Runtime>,
    conn: Conn,
    namespace: String,
    batch_size: usize,
    serverless: bool,
    checked: Mutex<bool>,
}

impl OpenSearch {
    /// A client for `[index.opensearch]`: the basic-auth password from OPENSEARCH_PASSWORD,
    /// SigV4 credentials from the AWS default chain. Nothing is sent until the first call.
    pub fn new(cfg: &IndexConfig) -> Result<Self> {
        Self::connect(cfg, std::env::var("OPENSEARCH_PASSWORD").ok(), None)
    }

    /// As `new`, with the secrets given (tests, and programs embedding the library): the
    /// basic-auth password, and the AWS SDK config SigV4 signs with (else the default chain is
    /// loaded with `region` and `profile`).
    pub fn connect(
        cfg: &IndexConfig,
        password: Option<String>,
        aws: Option<aws_config::SdkConfig>,
    ) -> Result<Self> {
        let o = &cfg.opensearch;
        crate::config::check_opensearch_url(&o.url)
            .map_err(|why| Error::Config(format!("key 'index.opensearch.url': {why}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("opensearch")
            .build()
            .map_err(|e| Error::Cloud(format!("opensearch: cannot start its runtime: {e}")))?;
        let url = Url::parse(&o.url)
            .map_err(|e| Error::Config(format!("key 'index.opensearch.url': '{}': {e}", o.url)))?;
        let loopback = crate::config::is_loopback_host(url.host_str().unwrap_or(""));
        let mut tb = TransportBuilder::new(SingleNodeConnectionPool::new(url.clone()))
            .timeout(Duration::from_secs(o.timeout_secs));
        if loopback {
            tb = tb.disable_proxy();
        }
        match o.auth.as_str() {
            "basic" => {
                let password = password.ok_or_else(|| {
                    Error::Config(
                        "index.opensearch.auth = \"basic\" needs the password in the OPENSEARCH_PASSWORD environment variable (never in the config file)".into(),
                    )
                })?;
                tb = tb.auth(opensearch::auth::Credentials::Basic(
                    o.user.clone(),
                    password,
                ));
            }
            "sigv4" => {
                let sdk = match aws {
                    Some(s) => s,
                    None => rt.block_on(async {
                        let mut l = aws_config::defaults(aws_config::BehaviorVersion::latest());
                        if !o.region.is_empty() {
                            l = l.region(aws_config::Region::new(o.region.clone()));
                        }
                        if !o.profile.is_empty() {
                            l = l.profile_name(&o.profile);
                        }
                        l.load().await
                    }),
                };
                let creds = opensearch::auth::Credentials::try_from(&sdk).map_err(|e| {
                    Error::Config(format!(
                        "index.opensearch.auth = \"sigv4\": {e}; set index.opensearch.region (or AWS_REGION) and AWS credentials"
                    ))
                })?;
                tb = tb.auth(creds).service_name(&o.service);
            }
            _ => {}
        }
        if !o.ca_file.is_empty() {
            let pem = std::fs::read(&o.ca_file).map_err(|e| Error::io(&o.ca_file, e))?;
            let cert = opensearch::cert::Certificate::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "key 'index.opensearch.ca_file': {} is not a PEM certificate: {e}",
                    o.ca_file
                ))
            })?;
            tb = tb.cert_validation(opensearch::cert::CertificateValidation::Full(cert));
        }
        let transport = tb
            .build()
            .map_err(|e| Error::Config(format!("index.opensearch: {e}")))?;
        Ok(OpenSearch {
            rt: Arc::new(rt),
            conn: Conn {
                client: opensearch::OpenSearch::new(transport),
                cfg: Arc::new(o.clone()),
                endpoint: o.url.clone(),
            },
            namespace: cfg.namespace.clone(),
            batch_size: cfg.batch_size,
            serverless: o.auth == "sigv4" && o.service == "aoss",
            checked: Mutex::new(false),
        })
    }

    fn call(&self, op: &str, method: Method, path: &str, body: Body) -> Result<Value> {
        self.rt.block_on(self.conn.ok(op, method, path, &body))
    }

    fn send(&self, op: &str, method: Method, path: &str, body: Body) -> Result<Answer> {
        self.rt.block_on(self.conn.send(op, method, path, &body))
    }

    /// OpenSearch 2.13 or later with the k-NN plugin (not checkable on Serverless, which has
    /// neither endpoint). Once per client.
    fn check_server(&self) -> Result<()> {
        if self.serverless {
            return Ok(());
        }
        let mut done = self.checked.lock().map_err(|_| poisoned())?;
        if *done {
            return Ok(());
        }
        let root = self.call("version check", Method::Get, "/", Body::None)?;
        let mut version = root["version"]["number"].as_str().unwrap_or("").to_string();
        let mut distribution = root["version"]["distribution"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if distribution != "opensearch" {
            // A domain in compatibility mode answers "/" as Elasticsearch 7.10.2; the node
            // info says what it runs.
            if let Ok(nodes) = self.call(
                "version check",
                Method::Get,
                "/_nodes/_local?filter_path=nodes.*.version,nodes.*.build_type",
                Body::None,
            ) && let Some(v) = nodes["nodes"]
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|n| n["version"].as_str())
            {
                version = v.to_string();
                distribution = "opensearch".into();
            }
        }
        match major_minor(&version) {
            Some(v) if v >= MIN_VERSION && distribution == "opensearch" => {}
            _ => {
                return Err(Error::Cloud(format!(
                    "opensearch at {}: version '{version}' ({distribution}); the k-NN index needs OpenSearch 2.13 or later (inner product on the lucene engine)",
                    self.conn.endpoint
                )));
            }
        }
        let plugins = self.call(
            "plugin check",
            Method::Get,
            "/_cat/plugins?format=json",
            Body::None,
        )?;
        let has_knn = plugins.as_array().is_some_and(|ps| {
            ps.iter().any(|p| {
                p["component"]
                    .as_str()
                    .is_some_and(|c| c.to_lowercase().contains("knn"))
            })
        });
        if !has_knn {
            return Err(Error::Cloud(format!(
                "opensearch at {}: the k-NN plugin (opensearch-knn) is not installed",
                self.conn.endpoint
            )));
        }
        *done = true;
        Ok(())
    }

    /// The concrete indexes behind an alias (clusters), or the index itself (Serverless).
    fn resolve(&self, alias: &str) -> Result<Vec<String>> {
        if self.serverless {
            // No aliases there: the index itself, if it exists.
            let i = self.send(
                "index lookup",
                Method::Get,
                &format!("/{alias}/_mapping"),
                Body::None,
            )?;
            return Ok(if i.status == 200 {
                vec![alias.to_string()]
            } else {
                Vec::new()
            });
        }
        let a = self.send(
            "alias lookup",
            Method::Get,
            &format!("/_alias/{alias}"),
            Body::None,
        )?;
        match a.status {
            200 => Ok(a
                .body
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()),
            404 => {
                // An index of that very name (Serverless, or a cluster index made by hand).
                let i = self.send(
                    "index lookup",
                    Method::Get,
                    &format!("/{alias}/_mapping"),
                    Body::None,
                )?;
                Ok(if i.status == 200 {
                    vec![alias.to_string()]
                } else {
                    Vec::new()
                })
            }
            s => Err(Error::Cloud(describe_error("alias lookup", s, &a.body))),
        }
    }

    fn create(&self, name: &str, spec: &IndexSpec, alias: Option<&str>) -> Result<()> {
        let o = &self.conn.cfg;
        let meta = bodies::Meta {
            embedder: spec.embedder.to_string(),
            dim: spec.dim,
            library_id: spec.library_id.clone(),
            mapping_version: bodies::MAPPING_VERSION,
        };
        let body = bodies::create_index(&bodies::MappingParams {
            meta: &meta,
            engine: &o.engine,
            m: o.m,
            ef_construction: o.ef_construction,
            shards: (!self.serverless).then_some(o.shards),
            replicas: (!self.serverless).then_some(o.replicas),
            alias,
        });
        let a = self.send(
            "create index",
            Method::Put,
            &format!("/{name}"),
            Body::Json(body),
        )?;
        match a.status {
            200..=299 => Ok(()),
            // Made at the same moment by another sync: fine, its mapping is checked next.
            400 if a.body["error"]["type"] == "resource_already_exists_exception" => Ok(()),
            s => Err(Error::Cloud(describe_error("create index", s, &a.body))),
        }
    }

    /// Checks what an index holds against what it is opened for.
    fn check_meta(&self, name: &str, spec: &IndexSpec) -> Result<()> {
        let m = self.call(
            "read mapping",
            Method::Get,
            &format!("/{name}/_mapping"),
            Body::None,
        )?;
        let Some(meta) = bodies::meta_from_mapping(&m) else {
            return Err(Error::Cloud(format!(
                "opensearch index {name} has no campaign-studio _meta (another program's index?); choose another index.namespace, or delete that index yourself"
            )));
        };
        if meta.library_id != spec.library_id {
            return Err(Error::Cloud(format!(
                "opensearch index {name} belongs to another library (library id {}, this one is {}); choose another index.namespace for this library (the other library's index is left alone)",
                meta.library_id, spec.library_id
            )));
        }
        let fix = "choose another index.namespace, or run `campaign-studio library sync --rebuild` to build this library's own";
        if meta.embedder != spec.embedder.as_str() {
            return Err(Error::Cloud(format!(
                "opensearch index {name} holds vectors of embedder '{}', not '{}'; {fix}",
                meta.embedder, spec.embedder
            )));
        }
        if meta.dim != spec.dim {
            return Err(Error::Cloud(format!(
                "opensearch index {name} holds {}-dimensional vectors, the embedder makes {}; {fix}",
                meta.dim, spec.dim
            )));
        }
        if meta.mapping_version != bodies::MAPPING_VERSION {
            return Err(Error::Cloud(format!(
                "opensearch index {name} has mapping version {}, this program writes {}; run `campaign-studio library sync --rebuild`",
                meta.mapping_version,
                bodies::MAPPING_VERSION
            )));
        }
        Ok(())
    }

    /// The library id an index records, if it can be read.
    fn library_of(&self, name: &str) -> Option<String> {
        let a = self
            .send(
                "read mapping",
                Method::Get,
                &format!("/{name}/_mapping"),
                Body::None,
            )
            .ok()?;
        if a.status != 200 {
            return None;
        }
        bodies::meta_from_mapping(&a.body).map(|m| m.library_id)
    }

    /// Refuses to delete an index another library (or program) wrote.
    fn check_owner(&self, name: &str, spec: &IndexSpec) -> Result<()> {
        match self.library_of(name) {
            Some(l) if l == spec.library_id => Ok(()),
            Some(l) => Err(Error::Cloud(format!(
                "opensearch index {name} belongs to another library (library id {l}, this one is {}); it is left alone: choose another index.namespace",
                spec.library_id
            ))),
            None => Err(Error::Cloud(format!(
                "opensearch index {name} was not written by campaign-studio (no readable _meta); it is left alone: choose another index.namespace"
            ))),
        }
    }

    fn index(&self, spec: &IndexSpec, alias: String, write: String) -> OpenSearchIndex {
        OpenSearchIndex {
            conn: self.conn.clone(),
            rt: self.rt.clone(),
            embedder: spec.embedder.clone(),
            dim: spec.dim,
            alias,
            write,
            batch_size: self.batch_size,
            serverless: self.serverless,
            pending: Mutex::new(Vec::new()),
            via_alias: false,
        }
    }

    /// Generations `<alias>-v<n>` that exist (clusters).
    fn generations(&self, alias: &str) -> Result<Vec<(u64, String)>> {
        let a = self.send(
            "list indexes",
            Method::Get,
            &format!("/_cat/indices/{alias}-v*?format=json&h=index"),
            Body::None,
        )?;
        if a.status == 404 {
            return Ok(Vec::new());
        }
        let mut out: Vec<(u64, String)> = a
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["index"].as_str())
            .filter_map(|n| {
                n.strip_prefix(&format!("{alias}-v"))
                    .and_then(|g| g.parse().ok())
                    .map(|g| (g, n.to_string()))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Deletes an index this backend made (tests clean up their namespace with it).
    pub fn delete_index(&self, name: &str) -> Result<()> {
        let a = self.send(
            "delete index",
            Method::Delete,
            &format!("/{name}"),
            Body::None,
        )?;
        if (200..300).contains(&a.status) || a.status == 404 {
            Ok(())
        } else {
            Err(Error::Cloud(describe_error(
                "delete index",
                a.status,
                &a.body,
            )))
        }
    }

    /// The backend's key in the library's index marks ("opensearch <endpoint>").
    pub fn key(&self) -> String {
        format!("opensearch {}", self.conn.endpoint)
    }
}

fn poisoned() -> Error {
    Error::Cloud("opensearch: a thread panicked while holding the client".into())
}

impl VectorBackend for OpenSearch {
    fn info(&self) -> BackendInfo {
        let o = &self.conn.cfg;
        BackendInfo {
            kind: "opensearch".into(),
            endpoint: o.url.clone(),
            auth: match o.auth.as_str() {
                "sigv4" => format!("sigv4 ({})", o.service),
                "basic" => format!("basic (user {})", o.user),
                other => other.to_string(),
            },
            engine: o.engine.clone(),
            namespace: self.namespace.clone(),
        }
    }

    fn index_name(&self, embedder: &EmbedderId) -> String {
        bodies::index_name(&self.namespace, embedder.as_str())
    }

    fn open(&self, spec: &IndexSpec, create: bool) -> Result<Box<dyn VectorIndex>> {
        self.check_server()?;
        let alias = bodies::index_name(&self.namespace, spec.embedder.as_str());
        let mut found = self.resolve(&alias)?;
        if found.is_empty() {
            if !create {
                return Err(Error::NotFound(format!(
                    "no OpenSearch index for embedder '{}' at {} (alias {alias}); run `campaign-studio library sync` to create and fill it",
                    spec.embedder, self.conn.endpoint
                )));
            }
            if self.serverless {
                self.create(&alias, spec, None)?;
            } else {
                self.create(&format!("{alias}-v1"), spec, Some(&alias))?;
            }
            found = self.resolve(&alias)?;
        }
        let write = match found.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(Error::Cloud(format!(
                    "opensearch: index {alias} was created but cannot be found"
                )));
            }
            many => {
                return Err(Error::Cloud(format!(
                    "opensearch alias {alias} points at {} indexes ({}); run `campaign-studio library sync --rebuild`",
                    many.len(),
                    many.join(", ")
                )));
            }
        };
        self.check_meta(&write, spec)?;
        if self.serverless || write == alias {
            return Ok(Box::new(self.index(spec, alias, write)));
        }
        let mut ix = self.index(spec, alias.clone(), alias);
        ix.via_alias = true;
        Ok(Box::new(ix))
    }

    fn open_fresh(&self, spec: &IndexSpec) -> Result<(String, Box<dyn VectorIndex>)> {
        self.check_server()?;
        let alias = bodies::index_name(&self.namespace, spec.embedder.as_str());
        if self.serverless {
            // No aliases on Serverless: the index is rebuilt in place (searches see it empty
            // until the rebuild has refilled it). Never another library's.
            if !self.resolve(&alias)?.is_empty() {
                self.check_owner(&alias, spec)?;
                self.delete_index(&alias)?;
            }
            self.create(&alias, spec, None)?;
            return Ok((
                alias.clone(),
                Box::new(self.index(spec, alias.clone(), alias)),
            ));
        }
        let next = self
            .generations(&alias)?
            .last()
            .map_or(1, |(g, _)| g.saturating_add(1));
        let name = format!("{alias}-v{next}");
        self.create(&name, spec, None)?;
        Ok((name.clone(), Box::new(self.index(spec, name.clone(), name))))
    }

    fn promote(&self, spec: &IndexSpec, name: &str) -> Result<()> {
        if self.serverless {
            return Ok(());
        }
        let alias = bodies::index_name(&self.namespace, spec.embedder.as_str());
        let old: Vec<String> = self
            .resolve(&alias)?
            .into_iter()
            .filter(|n| n != name && n != &alias)
            .collect();
        for o in &old {
            self.check_owner(o, spec)?;
        }
        let mut actions = vec![json!({"add": {"index": name, "alias": alias}})];
        for o in &old {
            actions.push(json!({"remove": {"index": o, "alias": alias}}));
        }
        self.call(
            "swap alias",
            Method::Post,
            "/_aliases",
            Body::Json(json!({ "actions": actions })),
        )?;
        for o in old {
            self.delete_index(&o)?;
        }
        Ok(())
    }

    fn indexes(&self) -> Result<Vec<IndexInfo>> {
        let a = self.send(
            "list indexes",
            Method::Get,
            &format!("/{}-*/_mapping", self.namespace),
            Body::None,
        )?;
        if a.status == 404 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (name, m) in a.body.as_object().into_iter().flatten() {
            let Some(meta) = bodies::meta_from_mapping(&json!({ name.clone(): m })) else {
                continue;
            };
            let count = self
                .call(
                    "count",
                    Method::Post,
                    &format!("/{name}/_count"),
                    Body::Json(json!({})),
                )
                .ok()
                .and_then(|c| c["count"].as_u64())
                .unwrap_or(0);
            out.push(IndexInfo {
                name: name.clone(),
                embedder: meta.embedder,
                dim: meta.dim,
                library_id: meta.library_id,
                count,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn health(&self) -> Result<Vec<(String, String)>> {
        if self.serverless {
            return Ok(vec![(
                "server".into(),
                "OpenSearch Serverless (no version or plugin endpoints)".into(),
            )]);
        }
        let root = self.call("version", Method::Get, "/", Body::None)?;
        let health = self.call("health", Method::Get, "/_cluster/health", Body::None)?;
        let plugins = self.call(
            "plugins",
            Method::Get,
            "/_cat/plugins?format=json",
            Body::None,
        )?;
        let knn = plugins
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["component"].as_str())
            .find(|c| c.to_lowercase().contains("knn"))
            .unwrap_or("missing")
            .to_string();
        Ok(vec![
            (
                "version".into(),
                format!(
                    "{} {}",
                    root["version"]["distribution"].as_str().unwrap_or("?"),
                    root["version"]["number"].as_str().unwrap_or("?")
                ),
            ),
            (
                "cluster health".into(),
                health["status"].as_str().unwrap_or("?").to_string(),
            ),
            ("k-NN plugin".into(), knn),
        ])
    }
}

/// One embedder's index on the server.
pub struct OpenSearchIndex {
    conn: Conn,
    rt: Arc<tokio::runtime::Runtime>,
    embedder: EmbedderId,
    dim: usize,
    /// What searches read (the alias on clusters).
    alias: String,
    /// What writes go to (the concrete index).
    write: String,
    batch_size: usize,
    serverless: bool,
    /// Serverless: recent writes `flush` waits to see (id, version; None for a delete).
    pending: Mutex<Vec<(String, Option<i64>)>>,
    /// Writes go through the alias (`require_alias`), so a generation another sync deleted is
    /// never silently recreated without its mapping.
    via_alias: bool,
}

impl OpenSearchIndex {
    fn call(&self, op: &str, method: Method, path: &str, body: Body) -> Result<Value> {
        self.rt.block_on(self.conn.ok(op, method, path, &body))
    }

    /// NDJSON chunks within the batch size and the byte limit.
    fn chunks(&self, lines: Vec<(usize, String)>) -> Vec<(Vec<usize>, String)> {
        let max_bytes = self.conn.cfg.bulk_max_bytes;
        let mut out: Vec<(Vec<usize>, String)> = Vec::new();
        for (item, text) in lines {
            let start_new = out.last().is_none_or(|(items, body)| {
                items.len() >= self.batch_size
                    || (!body.is_empty() && body.len().saturating_add(text.len()) > max_bytes)
            });
            if start_new {
                out.push((Vec::new(), String::new()));
            }
            if let Some((items, body)) = out.last_mut() {
                items.push(item);
                body.push_str(&text);
            }
        }
        out
    }

    /// Sends bulk chunks, at most `max_concurrency` at once; the `items` of each answer, in the
    /// order of the chunk's actions.
    fn bulk(&self, op: &str, chunks: Vec<(Vec<usize>, String)>) -> Result<Vec<(usize, Value)>> {
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.conn.cfg.max_concurrency.max(1),
        ));
        let op = op.to_string();
        let results = self.rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for (items, body) in chunks {
                let conn = self.conn.clone();
                let limit = limit.clone();
                let op = op.clone();
                set.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    let a = conn
                        .ok(&op, Method::Post, "/_bulk", &Body::NdJson(body))
                        .await;
                    (items, a)
                });
            }
            let mut out = Vec::new();
            while let Some(r) = set.join_next().await {
                out.push(r);
            }
            out
        });
        let mut out = Vec::new();
        for r in results {
            let (items, answer) =
                r.map_err(|e| Error::Cloud(format!("opensearch {op}: a bulk task failed: {e}")))?;
            let answer = answer?;
            let got = answer["items"].as_array().cloned().unwrap_or_default();
            if got.len() != items.len() {
                return Err(Error::Cloud(format!(
                    "opensearch {op}: the bulk answer has {} items for {} actions",
                    got.len(),
                    items.len()
                )));
            }
            out.extend(items.into_iter().zip(got));
        }
        Ok(out)
    }

    /// Serverless: the documents (`_id`, version) each asset has.
    fn docs_of(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<(String, i64)>>> {
        let mut out: std::collections::HashMap<String, Vec<(String, i64)>> = Default::default();
        for chunk in ids.chunks(500) {
            let a = self.call(
                "look up documents",
                Method::Post,
                &format!("/{}/_search", self.alias),
                Body::Json(bodies::docs_of(chunk)),
            )?;
            for h in a["hits"]["hits"].as_array().into_iter().flatten() {
                let (Some(doc), Some(asset)) =
                    (h["_id"].as_str(), h["_source"]["asset_id"].as_str())
                else {
                    continue;
                };
                let v = h["_source"]["version"].as_i64().unwrap_or(0);
                out.entry(asset.to_string())
                    .or_default()
                    .push((doc.to_string(), v));
            }
        }
        Ok(out)
    }

    fn neighbours(&self, answer: &Value) -> Vec<Neighbour> {
        let mut out: Vec<(Neighbour, i64)> = Vec::new();
        for h in answer["hits"]["hits"].as_array().into_iter().flatten() {
            let Some(id) = h["_source"]["asset_id"].as_str() else {
                continue;
            };
            let Some(score) = h["_score"].as_f64() else {
                continue;
            };
            let version = h["_source"]["version"].as_i64().unwrap_or(0);
            // Serverless may hold an asset twice for a moment: keep its newest version.
            if let Some(seen) = out.iter_mut().find(|(n, _)| n.id == id) {
                if version > seen.1 {
                    seen.0.similarity = bodies::score_to_dot(score);
                    seen.1 = version;
                }
                continue;
            }
            out.push((
                Neighbour {
                    id: id.to_string(),
                    similarity: bodies::score_to_dot(score),
                },
                version,
            ));
        }
        let mut out: Vec<Neighbour> = out.into_iter().map(|(n, _)| n).collect();
        out.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.id.cmp(&b.id)));
        out
    }

    fn search_with(&self, body: Value, op: &str) -> Result<Vec<Neighbour>> {
        let a = self.call(
            op,
            Method::Post,
            &format!("/{}/_search", self.alias),
            Body::Json(body),
        )?;
        Ok(self.neighbours(&a))
    }

    fn upsert_serverless(&mut self, records: &[&VectorRecord]) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let existing = self.docs_of(&ids)?;
        let mut lines = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let have = existing.get(&r.id).map(Vec::as_slice).unwrap_or(&[]);
            if have.iter().any(|(_, v)| *v >= r.version) {
                report.stale.push(r.id.clone());
                continue;
            }
            let mut text = String::new();
            for (doc, _) in have {
                text.push_str(&bodies::bulk_delete_doc(&self.write, doc));
            }
            text.push_str(&bodies::bulk_index_auto_id(&self.write, r));
            lines.push((i, text, have.len() + 1));
        }
        // Each record's actions stay in one chunk (its deletes, then its index).
        let mut chunks: Vec<(Vec<usize>, String)> = Vec::new();
        for (i, text, actions) in lines {
            let new = chunks.last().is_none_or(|(items, body)| {
                items.len() >= self.batch_size
                    || body.len().saturating_add(text.len()) > self.conn.cfg.bulk_max_bytes
            });
            if new {
                chunks.push((Vec::new(), String::new()));
            }
            if let Some((items, body)) = chunks.last_mut() {
                items.extend(std::iter::repeat_n(i, actions));
                body.push_str(&text);
            }
        }
        let mut failed: std::collections::BTreeMap<usize, String> = Default::default();
        let mut written: Vec<usize> = Vec::new();
        for (i, item) in self.bulk("upsert", chunks)? {
            let (action, v) = item
                .as_object()
                .and_then(|o| o.iter().next())
                .map(|(k, v)| (k.clone(), v.clone()))
                .unwrap_or_default();
            let status = v["status"].as_u64().unwrap_or(0);
            if action == "index" && (200..300).contains(&status) {
                report.written += 1;
                written.push(i);
            } else if !((200..300).contains(&status) || action == "delete" && status == 404) {
                failed.entry(i).or_insert_with(|| item_reason(&v));
            }
        }
        for (i, reason) in failed {
            report.failed.push(WriteFailure {
                id: records[i].id.clone(),
                reason,
            });
        }
        // Only what the collection took is waited for by `flush`.
        if let Ok(mut p) = self.pending.lock() {
            p.extend(
                written
                    .iter()
                    .map(|&i| (records[i].id.clone(), Some(records[i].version))),
            );
        }
        Ok(report)
    }
}

/// An item's error, as the cluster gave it.
fn item_reason(v: &Value) -> String {
    format!(
        "{} {}: {}",
        v["status"].as_u64().unwrap_or(0),
        v["error"]["type"].as_str().unwrap_or("error"),
        v["error"]["reason"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(300)
            .collect::<String>()
    )
}

impl VectorIndex for OpenSearchIndex {
    fn embedder(&self) -> &EmbedderId {
        &self.embedder
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn upsert(&mut self, records: &[VectorRecord]) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        let mut good: Vec<&VectorRecord> = Vec::with_capacity(records.len());
        for r in records {
            match check_vector(&r.id, &r.vector, self.dim) {
                Ok(()) => good.push(r),
                Err(reason) => report.failed.push(WriteFailure {
                    id: r.id.clone(),
                    reason,
                }),
            }
        }
        if good.is_empty() {
            return Ok(report);
        }
        if self.serverless {
            report.merge(self.upsert_serverless(&good)?);
            return Ok(report);
        }
        // Items the cluster answered 429 are sent again, with backoff, up to max_attempts.
        let mut todo: Vec<usize> = (0..good.len()).collect();
        for attempt in 0..self.conn.cfg.max_attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(backoff(self.conn.cfg.initial_backoff_ms, attempt));
            }
            let lines: Vec<(usize, String)> = todo
                .iter()
                .map(|&i| (i, bodies::bulk_index(&self.write, self.via_alias, good[i])))
                .collect();
            let mut again = Vec::new();
            for (i, item) in self.bulk("upsert", self.chunks(lines))? {
                let v = &item["index"];
                match v["status"].as_u64().unwrap_or(0) {
                    200..=299 => report.written += 1,
                    409 => report.stale.push(good[i].id.clone()),
                    429 => again.push(i),
                    _ => report.failed.push(WriteFailure {
                        id: good[i].id.clone(),
                        reason: item_reason(v),
                    }),
                }
            }
            todo = again;
            if todo.is_empty() {
                break;
            }
        }
        for i in todo {
            report.failed.push(WriteFailure {
                id: good[i].id.clone(),
                reason: "429: the cluster kept rejecting it (busy); run `campaign-studio library sync` again".into(),
            });
        }
        Ok(report)
    }

    fn remove(&mut self, tombstones: &[Tombstone]) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        if tombstones.is_empty() {
            return Ok(report);
        }
        if self.serverless {
            let ids: Vec<&str> = tombstones.iter().map(|t| t.id.as_str()).collect();
            let existing = self.docs_of(&ids)?;
            let mut lines = Vec::new();
            for (i, t) in tombstones.iter().enumerate() {
                let have = existing.get(&t.id).map(Vec::as_slice).unwrap_or(&[]);
                if have.iter().any(|(_, v)| *v >= t.version) {
                    report.stale.push(t.id.clone());
                    continue;
                }
                for (doc, _) in have {
                    lines.push((i, bodies::bulk_delete_doc(&self.write, doc)));
                }
            }
            let mut gone: Vec<usize> = Vec::new();
            for (i, item) in self.bulk("remove", self.chunks(lines))? {
                let v = &item["delete"];
                match v["status"].as_u64().unwrap_or(0) {
                    200..=299 | 404 => {
                        report.written += 1;
                        gone.push(i);
                    }
                    _ => report.failed.push(WriteFailure {
                        id: tombstones[i].id.clone(),
                        reason: item_reason(v),
                    }),
                }
            }
            if let Ok(mut p) = self.pending.lock() {
                gone.sort_unstable();
                gone.dedup();
                p.extend(gone.iter().map(|&i| (tombstones[i].id.clone(), None)));
            }
            return Ok(report);
        }
        let lines: Vec<(usize, String)> = tombstones
            .iter()
            .enumerate()
            .map(|(i, t)| (i, bodies::bulk_delete(&self.write, t)))
            .collect();
        let chunks = self.chunks(lines);
        for (i, item) in self.bulk("remove", chunks)? {
            let v = &item["delete"];
            match v["status"].as_u64().unwrap_or(0) {
                200..=299 => report.written += 1,
                // Not there: nothing to remove.
                404 => {}
                409 => report.stale.push(tombstones[i].id.clone()),
                _ => report.failed.push(WriteFailure {
                    id: tombstones[i].id.clone(),
                    reason: item_reason(v),
                }),
            }
        }
        Ok(report)
    }

    fn remove_documents(&mut self, docs: &[String]) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        let lines: Vec<(usize, String)> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (i, bodies::bulk_delete_doc(&self.write, d)))
            .collect();
        for (i, item) in self.bulk("remove documents", self.chunks(lines))? {
            let v = &item["delete"];
            match v["status"].as_u64().unwrap_or(0) {
                200..=299 => report.written += 1,
                404 => {}
                _ => report.failed.push(WriteFailure {
                    id: docs[i].clone(),
                    reason: item_reason(v),
                }),
            }
        }
        Ok(report)
    }

    fn flush(&mut self) -> Result<()> {
        if !self.serverless {
            self.call(
                "refresh",
                Method::Post,
                &format!("/{}/_refresh", self.write),
                Body::None,
            )?;
            return Ok(());
        }
        // Serverless has no refresh: wait until the last writes are visible.
        let pending: Vec<(String, Option<i64>)> = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Err(poisoned()),
        };
        if pending.is_empty() {
            return Ok(());
        }
        let deadline =
            std::time::Instant::now() + Duration::from_secs(self.conn.cfg.visibility_timeout_secs);
        let sample: Vec<&(String, Option<i64>)> = pending.iter().rev().take(200).collect();
        loop {
            let ids: Vec<&str> = sample.iter().map(|(id, _)| id.as_str()).collect();
            let seen = self.docs_of(&ids)?;
            let visible = sample.iter().all(|(id, v)| match v {
                Some(v) => seen.get(id).is_some_and(|d| d.iter().any(|(_, x)| x == v)),
                None => !seen.contains_key(id),
            });
            if visible {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(Error::Cloud(format!(
                    "opensearch: writes to {} not visible after {} s (index.opensearch.visibility_timeout_secs); searches may miss them for a while",
                    self.alias, self.conn.cfg.visibility_timeout_secs
                )));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn count(&self, filter: &SearchFilter) -> Result<usize> {
        let a = self.call(
            "count",
            Method::Post,
            &format!("/{}/_count", self.alias),
            Body::Json(bodies::count(filter)),
        )?;
        a["count"]
            .as_u64()
            .and_then(|c| usize::try_from(c).ok())
            .ok_or_else(|| Error::Cloud("opensearch count: the answer has no count".into()))
    }

    fn search(&self, query: &[f32], filter: &SearchFilter, k: usize) -> Result<Vec<Neighbour>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        check_vector("(query)", query, self.dim).map_err(Error::Invalid)?;
        // OpenSearch's k-NN query takes k up to 10,000.
        let k = k.min(10_000);
        self.search_with(
            bodies::knn_search(query, filter, k, self.conn.cfg.candidates.min(10_000)),
            "k-NN search",
        )
    }

    fn search_exact(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
    ) -> Result<Vec<Neighbour>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        check_vector("(query)", query, self.dim).map_err(Error::Invalid)?;
        self.search_with(
            bodies::exact_search(query, filter, k.min(10_000)),
            "exact search",
        )
    }

    fn kpi_percentiles(&self, filter: &SearchFilter, kpis: &[Option<f64>]) -> Result<Vec<f32>> {
        let asked: Vec<f64> = kpis.iter().filter_map(|k| *k).collect();
        let a = self.call(
            "KPI percentiles",
            Method::Post,
            &format!("/{}/_search", self.alias),
            Body::Json(bodies::kpi_counts(filter, &asked)),
        )?;
        let (known, counts) = bodies::kpi_counts_answer(&a, asked.len()).ok_or_else(|| {
            Error::Cloud("opensearch KPI percentiles: the answer lacks its aggregations".into())
        })?;
        let mut it = counts.into_iter();
        Ok(kpis
            .iter()
            .map(|k| match k {
                None => 0.0,
                Some(_) => it.next().map_or(0.0, |(lt, le)| {
                    percentile_from_counts(lt, le.saturating_sub(lt), known)
                }),
            })
            .collect())
    }

    fn digest(&self) -> Result<Vec<DigestBucket>> {
        let a = self.call(
            "digest",
            Method::Post,
            &format!("/{}/_search", self.alias),
            Body::Json(bodies::digest()),
        )?;
        let terms = |v: &Value| -> Vec<(String, u64)> {
            let mut t: Vec<(String, u64)> = v["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| Some((b["key"].as_str()?.to_string(), b["doc_count"].as_u64()?)))
                .collect();
            t.sort();
            t
        };
        let mut out: Vec<DigestBucket> = a["aggregations"]["buckets"]["buckets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| {
                Some(DigestBucket {
                    bucket: b["key"].as_str()?.to_string(),
                    count: b["doc_count"].as_u64()?,
                    version_sum: b["version_sum"]["value"].as_f64()? as i64,
                    version_max: b["version_max"]["value"].as_f64()? as i64,
                    kpi_sum: crate::domain::index::kpi_units(
                        b["kpi_sum"]["value"].as_f64().unwrap_or(0.0),
                    ),
                    objectives: terms(&b["objectives"]),
                    nodes: terms(&b["nodes"]),
                })
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn states_in(&self, bucket: &str) -> Result<Vec<DocState>> {
        let mut out = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let a = self.call(
                "list bucket",
                Method::Post,
                &format!("/{}/_search", self.alias),
                Body::Json(bodies::bucket_page(bucket, PAGE, after.as_ref())),
            )?;
            let hits = a["hits"]["hits"].as_array().cloned().unwrap_or_default();
            for h in &hits {
                let src = &h["_source"];
                if let Some(id) = src["asset_id"].as_str() {
                    out.push(DocState {
                        doc: h["_id"].as_str().filter(|d| *d != id).map(str::to_string),
                        id: id.to_string(),
                        version: src["version"].as_i64().unwrap_or(0),
                        objective: src["objective"].as_str().unwrap_or("").to_string(),
                        node: src["node"].as_str().unwrap_or("").to_string(),
                        kpi: src["kpi"].as_f64(),
                    });
                }
            }
            if hits.len() < PAGE {
                break;
            }
            after = hits.last().map(|h| h["sort"].clone());
        }
        out.sort_by(|a, b| a.id.cmp(&b.id).then(a.version.cmp(&b.version)));
        Ok(out)
    }
}
