//! Amazon S3 Vectors as a vector backend, through `aws-sdk-s3vectors` (SigV4 service
//! `s3vectors`, credentials from the AWS default chain). One index per embedder id in the
//! configured vector bucket, named from the namespace and the id, created `float32` with the
//! embedder's dimension and the cosine metric (S3 Vectors has no dot product: the vectors the
//! library sends are unit length, so similarity = cosine = 1 - distance). The embedder id,
//! dimension, library id and mapping version are the index's tags, checked on open.
//!
//! S3 Vectors has no external versioning: a `PutVectors` of a key replaces it whatever it
//! held. So every write first reads the stored versions (`GetVectors` with metadata, 100 keys a
//! call) and sends only records newer than what the index holds, and a tombstone deletes only
//! an older vector. Two syncs of one library at the very same moment could still interleave
//! between that read and the write; the library runs one sync at a time per data dir.
//!
//! Filtered queries ask for the `ENHANCED` query mode (filters applied before the vector
//! search) unless `index.s3vectors.query_mode` is "index": indexes in buckets made before
//! 2026-09-30 default to `CLASSIC`, which filters during the search and can return fewer than
//! k. Counts, KPI percentiles and digests have no server-side aggregation here: they read the
//! index's metadata with `ListVectors` (parallel segments) and keep it, updated by this
//! client's own writes and read again after `index.s3vectors.listing_ttl_secs`. The client
//! owns a small tokio runtime; the trait stays synchronous. Credentials never reach logs or
//! errors.

pub mod sample;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_sdk_s3vectors::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3vectors::types::{DataType, DistanceMetric, IndexMode, PutInputVector, VectorData};
use aws_smithy_types::Document;

use crate::config::{IndexConfig, S3VectorsConfig};
use crate::domain::index::{bucket_of, check_vector, digest_of, kpi_percentile};
use crate::domain::{EmbedderId, SearchFilter};
use crate::services::aws::{self, doc};
use crate::services::{
    BackendInfo, DigestBucket, DocState, IndexInfo, IndexSpec, Neighbour, Tombstone, VectorBackend,
    VectorIndex, VectorRecord, WriteFailure, WriteReport,
};
use crate::{Error, Result};

/// Bumped when what the index holds changes meaning (its tags record it).
pub const MAPPING_VERSION: u32 = 1;
/// Service limits (Amazon S3 User Guide, "Limitations and restrictions" of S3 Vectors).
pub const MAX_PUT: usize = 500;
pub const MAX_DELETE: usize = 500;
pub const MAX_GET: usize = 100;
pub const MAX_LIST_PAGE: i32 = 1000;
pub const MAX_SEGMENTS: usize = 16;
/// A request body stays under this (the service takes 20 MiB; JSON numbers vary in length).
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;
/// Index names: 3 to 63 characters.
const MAX_NAME: usize = 63;
/// Tag keys on each index.
const TAG_EMBEDDER: &str = "campaign-studio:embedder";
const TAG_DIM: &str = "campaign-studio:dim";
const TAG_LIBRARY: &str = "campaign-studio:library";
const TAG_MAPPING: &str = "campaign-studio:mapping-version";

/// The index of an embedder: `<namespace>-<slug>-<8 hex of sha256(id)>`, lowercase letters,
/// digits and hyphens, at most 63 characters (S3 Vectors' index name rules; the namespace's
/// '_' become '-').
pub fn index_name(namespace: &str, embedder: &str) -> String {
    // Namespaces may hold '_', which index names may not.
    let namespace = namespace.replace('_', "-");
    let room = MAX_NAME.saturating_sub(namespace.len() + 2 + 8);
    let (slug, hash) = crate::services::embedder_slug(embedder, room);
    if slug.is_empty() {
        format!("{namespace}-{hash}")
    } else {
        format!("{namespace}-{slug}-{hash}")
    }
}

/// One vector's metadata as the index stores it: `objective`, `node`, `kpi` (absent when
/// unknown) and `version`, all filterable.
pub fn metadata_of(r: &VectorRecord) -> Document {
    let mut m = HashMap::new();
    m.insert(
        "objective".to_string(),
        Document::String(r.meta.objective.clone()),
    );
    m.insert("node".to_string(), Document::String(r.meta.node.clone()));
    if let Some(k) = r.meta.kpi.filter(|k| k.is_finite()) {
        m.insert("kpi".to_string(), Document::from(k));
    }
    m.insert("version".to_string(), Document::from(r.version));
    Document::Object(m)
}

/// The state a vector's metadata describes; None when it lacks a version (a vector written
/// by something else).
pub fn state_of(key: &str, meta: Option<&Document>) -> Option<DocState> {
    let m = meta?.as_object()?;
    let version = doc::as_i64(m.get("version")?)?;
    Some(DocState {
        id: key.to_string(),
        version,
        objective: m
            .get("objective")
            .and_then(Document::as_string)
            .unwrap_or_default()
            .to_string(),
        node: m
            .get("node")
            .and_then(Document::as_string)
            .unwrap_or_default()
            .to_string(),
        kpi: m.get("kpi").and_then(doc::as_f64),
        doc: None,
    })
}

/// The filter language's form of a search filter: `{"objective": {"$eq": ...}}`, both
/// fields under `$and`; None for no filter.
pub fn filter_of(f: &SearchFilter) -> Option<Document> {
    let eq = |k: &str, v: &str| {
        let mut inner = HashMap::new();
        inner.insert("$eq".to_string(), Document::String(v.to_string()));
        let mut outer = HashMap::new();
        outer.insert(k.to_string(), Document::Object(inner));
        Document::Object(outer)
    };
    let mut parts = Vec::new();
    if let Some(o) = &f.objective {
        parts.push(eq("objective", o));
    }
    if let Some(n) = &f.node {
        parts.push(eq("node", n));
    }
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => {
            let mut and = HashMap::new();
            and.insert("$and".to_string(), Document::Array(parts));
            Some(Document::Object(and))
        }
    }
}

/// Whether a state passes a search filter.
fn matches(s: &DocState, f: &SearchFilter) -> bool {
    f.admits(&s.objective, &s.node)
}

/// The dot product of two unit vectors from a cosine distance (1 - cosine similarity).
pub fn similarity_of(distance: f32) -> f32 {
    1.0 - distance
}

/// About how many bytes a vector takes in a PutVectors body (JSON numbers of up to 16
/// characters, the key and metadata).
fn approx_bytes(r: &VectorRecord) -> usize {
    r.vector
        .len()
        .saturating_mul(16)
        .saturating_add(r.id.len())
        .saturating_add(r.meta.objective.len() + r.meta.node.len() + 128)
}

/// Why a record cannot go to a cosine index, by name; None when it can.
fn refuse(r: &VectorRecord, dim: usize) -> Option<String> {
    if let Err(why) = check_vector(&r.id, &r.vector, dim) {
        return Some(why);
    }
    if r.vector.iter().all(|x| *x == 0.0) {
        return Some(format!(
            "asset {}: vector is all zeros, which a cosine index refuses; re-embed it (`library reindex`)",
            r.id
        ));
    }
    if r.id.is_empty() || r.id.len() > 1024 {
        return Some(format!(
            "asset '{}': its id is {} bytes; S3 Vectors keys hold 1 to 1024",
            r.id.chars().take(40).collect::<String>(),
            r.id.len()
        ));
    }
    None
}

/// Turns an SDK error into a message naming the operation, the service's code and what to
/// do (never a credential: the SDK's errors carry none).
fn describe<E, R>(op: &str, what: &str, e: &SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let msg = match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("error");
            let text = err.message().unwrap_or("");
            let fix = match code {
                "AccessDeniedException" => format!(
                    "the credentials lack s3vectors:{op} on {what} (filters, metadata and listing with data also need s3vectors:GetVectors; the README lists every action)"
                ),
                "NotFoundException" => format!(
                    "{what} does not exist: check index.s3vectors.bucket and region, or run `campaign-studio library sync` to create the index"
                ),
                "TooManyRequestsException" | "ServiceUnavailableException" => {
                    "the service is throttling after every retry: lower index.s3vectors.max_concurrency or index.batch_size and run `campaign-studio library sync` again".to_string()
                }
                "ValidationException" => format!("the service refused the request for {what}"),
                "ServiceQuotaExceededException" => {
                    "a service quota is reached (indexes per bucket, vectors per index)".to_string()
                }
                _ => format!("{what}: try again; if it persists, check the service health"),
            };
            return Error::Cloud(format!("s3vectors {op}: {code}: {text}; {fix}"));
        }
        SdkError::TimeoutError(_) => format!(
            "no answer within index.s3vectors.timeout_secs for {what}; the network may be slow, try again or raise the timeout"
        ),
        SdkError::DispatchFailure(d) => format!(
            "could not reach S3 Vectors for {what} ({}); check the network, the region and index.s3vectors.endpoint_url",
            d.as_connector_error()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "connection failed".into())
        ),
        other => crate::services::error_chain(other),
    };
    tracing::warn!(op, error = %msg, "s3vectors call failed");
    Error::Cloud(format!("s3vectors {op}: {msg}"))
}

/// Whether an SDK error is the service's NotFoundException.
fn not_found<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(e, SdkError::ServiceError(se) if se.err().code() == Some("NotFoundException"))
}

/// The client and what every call needs.
#[derive(Clone)]
struct Conn {
    client: aws_sdk_s3vectors::Client,
    cfg: Arc<S3VectorsConfig>,
    region: String,
}

/// Amazon S3 Vectors: one vector bucket, an index per embedder.
pub struct S3Vectors {
    conn: Conn,
    rt: Arc<tokio::runtime::Runtime>,
    namespace: String,
    batch_size: usize,
}

impl S3Vectors {
    /// A client of `[index.s3vectors]`, credentials from the AWS default chain. Nothing is
    /// sent until the first call.
    pub fn new(cfg: &IndexConfig) -> Result<Self> {
        Self::build(cfg, None)
    }

    /// As `new`, with the credentials given (tests, and programs embedding the library).
    pub fn with_credentials(
        cfg: &IndexConfig,
        credentials: aws_credential_types::Credentials,
    ) -> Result<Self> {
        Self::build(cfg, Some(credentials))
    }

    fn build(
        cfg: &IndexConfig,
        credentials: Option<aws_credential_types::Credentials>,
    ) -> Result<Self> {
        let s = &cfg.s3vectors;
        if s.bucket.is_empty() {
            return Err(Error::Config(
                "key 'index.s3vectors.bucket' is empty: name the vector bucket (index.backend = \"s3vectors\")".into(),
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("s3vectors")
            .build()
            .map_err(|e| Error::Cloud(format!("s3vectors: cannot start its runtime: {e}")))?;
        let sdk = aws::load(
            &rt,
            aws::Settings {
                region: &s.region,
                profile: &s.profile,
                endpoint_url: &s.endpoint_url,
                retry: RetryConfig::standard(),
                max_attempts: s.max_attempts,
                initial_backoff_ms: s.initial_backoff_ms,
                connect_timeout_secs: s.connect_timeout_secs,
                timeout_secs: s.timeout_secs,
                credentials,
            },
        );
        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            return Err(Error::Config(
                "S3 Vectors needs a region: set index.s3vectors.region, AWS_REGION or the profile's region".into(),
            ));
        };
        let client = aws_sdk_s3vectors::Client::new(&sdk);
        Ok(S3Vectors {
            conn: Conn {
                client,
                cfg: Arc::new(s.clone()),
                region,
            },
            rt: Arc::new(rt),
            namespace: cfg.namespace.clone(),
            batch_size: cfg.batch_size.clamp(1, MAX_PUT),
        })
    }

    fn bucket(&self) -> &str {
        &self.conn.cfg.bucket
    }

    /// The index `name`, None when it does not exist.
    fn get_index(&self, name: &str) -> Result<Option<aws_sdk_s3vectors::types::Index>> {
        let what = format!("index {name} in vector bucket {}", self.bucket());
        let got = self.rt.block_on(
            self.conn
                .client
                .get_index()
                .vector_bucket_name(self.bucket())
                .index_name(name)
                .send(),
        );
        match got {
            Ok(o) => Ok(o.index().cloned()),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(describe("GetIndex", &what, &e)),
        }
    }

    fn tags(&self, arn: &str, name: &str) -> Result<HashMap<String, String>> {
        let what = format!("index {name}");
        self.rt
            .block_on(
                self.conn
                    .client
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send(),
            )
            .map(|o| o.tags().clone())
            .map_err(|e| describe("ListTagsForResource", &what, &e))
    }

    fn create(&self, name: &str, spec: &IndexSpec) -> Result<()> {
        let dim = i32::try_from(spec.dim)
            .ok()
            .filter(|d| (1..=4096).contains(d))
            .ok_or_else(|| {
                Error::Config(format!(
                    "embedder {} has {} dimensions; S3 Vectors holds 1 to 4096",
                    spec.embedder, spec.dim
                ))
            })?;
        for (k, v) in [
            (TAG_EMBEDDER, spec.embedder.as_str()),
            (TAG_LIBRARY, spec.library_id.as_str()),
        ] {
            if let Some(bad) = v.chars().find(|c| !tag_char(*c)) {
                return Err(Error::Config(format!(
                    "the {k} tag cannot hold '{v}' (the character '{bad}' is not allowed in S3 Vectors tags)"
                )));
            }
        }
        let what = format!("index {name} in vector bucket {}", self.bucket());
        self.rt
            .block_on(
                self.conn
                    .client
                    .create_index()
                    .vector_bucket_name(self.bucket())
                    .index_name(name)
                    .data_type(DataType::Float32)
                    .dimension(dim)
                    .distance_metric(DistanceMetric::Cosine)
                    .tags(TAG_EMBEDDER, spec.embedder.as_str())
                    .tags(TAG_DIM, spec.dim.to_string())
                    .tags(TAG_LIBRARY, spec.library_id.as_str())
                    .tags(TAG_MAPPING, MAPPING_VERSION.to_string())
                    .send(),
            )
            .map_err(|e| describe("CreateIndex", &what, &e))?;
        tracing::info!(index = name, dim, "created S3 Vectors index");
        Ok(())
    }

    /// Deletes the index `name` (tests clean up with it; a rebuild replaces an index).
    pub fn delete_index(&self, name: &str) -> Result<()> {
        let what = format!("index {name}");
        match self.rt.block_on(
            self.conn
                .client
                .delete_index()
                .vector_bucket_name(self.bucket())
                .index_name(name)
                .send(),
        ) {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(describe("DeleteIndex", &what, &e)),
        }
    }

    /// Checks an index against the spec: cosine float32 of the dimension, tagged with the
    /// embedder, dimension and library.
    fn check(&self, index: &aws_sdk_s3vectors::types::Index, spec: &IndexSpec) -> Result<()> {
        let name = &index.index_name;
        let fix = "set index.namespace to another prefix, or remove the index and run `campaign-studio library sync --rebuild`";
        if index.distance_metric != DistanceMetric::Cosine || index.data_type != DataType::Float32 {
            return Err(Error::Config(format!(
                "S3 Vectors index {name} is {} {}, not float32 cosine; {fix}",
                index.data_type.as_str(),
                index.distance_metric.as_str()
            )));
        }
        if usize::try_from(index.dimension).ok() != Some(spec.dim) {
            return Err(Error::Config(format!(
                "S3 Vectors index {name} holds {}-dimension vectors, embedder {} makes {}; {fix}",
                index.dimension, spec.embedder, spec.dim
            )));
        }
        let tags = self.tags(&index.index_arn, name)?;
        let got = |k: &str| tags.get(k).map(String::as_str).unwrap_or("(none)");
        if got(TAG_EMBEDDER) != spec.embedder.as_str() {
            return Err(Error::Config(format!(
                "S3 Vectors index {name} holds embedder '{}', not '{}'; {fix}",
                got(TAG_EMBEDDER),
                spec.embedder
            )));
        }
        if got(TAG_LIBRARY) != spec.library_id {
            return Err(Error::Config(format!(
                "S3 Vectors index {name} belongs to library {}, not this library ({}); {fix}",
                got(TAG_LIBRARY),
                spec.library_id
            )));
        }
        if got(TAG_MAPPING) != MAPPING_VERSION.to_string() {
            return Err(Error::Config(format!(
                "S3 Vectors index {name} was written with mapping version {}, this program writes {MAPPING_VERSION}; run `campaign-studio library sync --rebuild`",
                got(TAG_MAPPING)
            )));
        }
        Ok(())
    }

    fn index(&self, spec: &IndexSpec, name: String) -> S3VectorsIndex {
        S3VectorsIndex {
            conn: self.conn.clone(),
            rt: self.rt.clone(),
            embedder: spec.embedder.clone(),
            dim: spec.dim,
            name,
            batch_size: self.batch_size,
            listing: Mutex::new(None),
        }
    }

    /// The index `name` of this client's bucket as the original sample wrote it, to import
    /// from: its dimension and metric as the service reports them (no tags are expected).
    pub fn sample_index(&self, name: &str) -> Result<sample::SampleIndex> {
        let Some(found) = self.get_index(name)? else {
            return Err(Error::Config(format!(
                "S3 Vectors index {name} does not exist in vector bucket {}: check --from s3vectors://BUCKET/INDEX and the region (import.region, index.s3vectors.region or AWS_REGION)",
                self.bucket()
            )));
        };
        let dim = usize::try_from(found.dimension).unwrap_or(0);
        let ix = S3VectorsIndex {
            conn: self.conn.clone(),
            rt: self.rt.clone(),
            embedder: EmbedderId::new(sample::SOURCE_EMBEDDER),
            dim,
            name: name.to_string(),
            batch_size: self.batch_size,
            listing: Mutex::new(None),
        };
        Ok(sample::SampleIndex::new(
            ix,
            format!("s3vectors://{}/{name}", self.bucket()),
            dim,
            found.distance_metric == DistanceMetric::Cosine,
        ))
    }

    /// Every index name under the namespace.
    fn names(&self) -> Result<Vec<(String, String)>> {
        let prefix = format!("{}-", self.namespace.replace('_', "-"));
        let what = format!("vector bucket {}", self.bucket());
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .rt
                .block_on(
                    self.conn
                        .client
                        .list_indexes()
                        .vector_bucket_name(self.bucket())
                        .prefix(&prefix)
                        .set_next_token(token.clone())
                        .send(),
                )
                .map_err(|e| describe("ListIndexes", &what, &e))?;
            out.extend(
                page.indexes()
                    .iter()
                    .map(|i| (i.index_name.clone(), i.index_arn.clone())),
            );
            match page.next_token() {
                Some(t) if Some(t) != token.as_deref() && !t.is_empty() => {
                    token = Some(t.to_string())
                }
                _ => break,
            }
        }
        Ok(out)
    }
}

/// A character S3 Vectors allows in a tag value (letters, digits, spaces, `_ . : / = + - @`).
fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

impl VectorBackend for S3Vectors {
    fn info(&self) -> BackendInfo {
        let c = &self.conn.cfg;
        BackendInfo {
            kind: "s3vectors".into(),
            endpoint: if c.endpoint_url.is_empty() {
                format!("s3vectors://{} ({})", c.bucket, self.conn.region)
            } else {
                format!("s3vectors://{} via {}", c.bucket, c.endpoint_url)
            },
            auth: "sigv4 (s3vectors, AWS default credential chain)".into(),
            engine: format!("S3 Vectors, cosine, query mode {}", c.query_mode),
            namespace: self.namespace.clone(),
        }
    }

    fn index_name(&self, embedder: &EmbedderId) -> String {
        index_name(&self.namespace, embedder.as_str())
    }

    fn open(&self, spec: &IndexSpec, create: bool) -> Result<Box<dyn VectorIndex>> {
        let name = index_name(&self.namespace, spec.embedder.as_str());
        let found = match self.get_index(&name)? {
            Some(i) => i,
            None if create => {
                self.create(&name, spec)?;
                self.get_index(&name)?.ok_or_else(|| {
                    Error::Cloud(format!(
                        "s3vectors: index {name} was created but cannot be found"
                    ))
                })?
            }
            None => {
                return Err(Error::NotFound(format!(
                    "no S3 Vectors index for embedder '{}' in vector bucket {} (index {name}); run `campaign-studio library sync` to create and fill it",
                    spec.embedder,
                    self.bucket()
                )));
            }
        };
        self.check(&found, spec)?;
        Ok(Box::new(self.index(spec, name)))
    }

    fn open_fresh(&self, spec: &IndexSpec) -> Result<(String, Box<dyn VectorIndex>)> {
        // No aliases: the index is rebuilt in place (searches see it empty until the rebuild
        // has refilled it). Never another library's.
        let name = index_name(&self.namespace, spec.embedder.as_str());
        if let Some(old) = self.get_index(&name)? {
            let tags = self.tags(&old.index_arn, &name)?;
            let owner = tags
                .get(TAG_LIBRARY)
                .map(String::as_str)
                .unwrap_or("(none)");
            if owner != spec.library_id {
                return Err(Error::Config(format!(
                    "S3 Vectors index {name} belongs to library {owner}, not this library ({}); it was left as it is: set index.namespace to another prefix",
                    spec.library_id
                )));
            }
            self.delete_index(&name)?;
        }
        self.create(&name, spec)?;
        Ok((name.clone(), Box::new(self.index(spec, name))))
    }

    fn promote(&self, _spec: &IndexSpec, _name: &str) -> Result<()> {
        Ok(())
    }

    fn indexes(&self) -> Result<Vec<IndexInfo>> {
        let mut out = Vec::new();
        for (name, arn) in self.names()? {
            let tags = self.tags(&arn, &name)?;
            let Some(embedder) = tags.get(TAG_EMBEDDER) else {
                continue;
            };
            let ix = S3VectorsIndex {
                conn: self.conn.clone(),
                rt: self.rt.clone(),
                embedder: EmbedderId::new(embedder.clone()),
                dim: 0,
                name: name.clone(),
                batch_size: self.batch_size,
                listing: Mutex::new(None),
            };
            let count = ix.keys()?.len() as u64;
            out.push(IndexInfo {
                name,
                embedder: embedder.clone(),
                dim: tags.get(TAG_DIM).and_then(|d| d.parse().ok()).unwrap_or(0),
                library_id: tags.get(TAG_LIBRARY).cloned().unwrap_or_default(),
                count,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn health(&self) -> Result<Vec<(String, String)>> {
        let indexes = self.indexes()?;
        let mut lines = vec![
            (
                "vector bucket".into(),
                format!("{} in {}", self.bucket(), self.conn.region),
            ),
            (
                "indexes".into(),
                format!("{} under {}-", indexes.len(), self.namespace),
            ),
        ];
        for i in indexes {
            lines.push((
                format!("index {}", i.name),
                format!(
                    "{}, {} dimensions, {} vectors, library {}",
                    i.embedder, i.dim, i.count, i.library_id
                ),
            ));
        }
        lines.push((
            "query mode".into(),
            if self.conn.cfg.query_mode == "enhanced" {
                "ENHANCED per filtered query (filters before the search)".into()
            } else {
                "each index's own".into()
            },
        ));
        Ok(lines)
    }
}

/// A PutVectors batch: its ids and its vectors (or why they could not be built).
type PutBatch = (
    Vec<String>,
    std::result::Result<Vec<PutInputVector>, String>,
);

/// A write batch's ids and how it went.
type BatchOutcome = (Vec<String>, std::result::Result<(), String>);

/// The batches that failed, with their ids and reasons (a task that failed to run, with none:
/// its ids are unknown here, and the caller's re-read finds what was written).
fn failed_batches(
    op: &str,
    results: Vec<std::result::Result<BatchOutcome, String>>,
) -> Vec<(Vec<String>, String)> {
    results
        .into_iter()
        .filter_map(|r| match r {
            Ok((_, Ok(()))) => None,
            Ok((ids, Err(why))) => Some((ids, why)),
            Err(e) => Some((Vec::new(), format!("s3vectors {op}: task failed: {e}"))),
        })
        .collect()
}

/// Puts each failed batch's ids in `report.failed` with its reason; the ids lost.
fn record_failures(
    report: &mut WriteReport,
    failed: Vec<(Vec<String>, String)>,
) -> std::collections::HashSet<String> {
    let mut lost = std::collections::HashSet::new();
    for (ids, why) in failed {
        for id in ids {
            lost.insert(id.clone());
            report.failed.push(WriteFailure {
                id,
                reason: why.clone(),
            });
        }
    }
    lost
}

/// One listed vector: its key, with metadata its state, with data its vector.
type Listed = (String, Option<DocState>, Option<Vec<f32>>);
/// A listed vector as stored: key, metadata, data.
type RawListed = (String, Option<Document>, Option<Vec<f32>>);

/// What this client knows of an index's metadata: every state, by key, and when it was read.
struct Listing {
    states: HashMap<String, DocState>,
    read_at: Instant,
}

/// One embedder's index in the bucket.
pub struct S3VectorsIndex {
    conn: Conn,
    rt: Arc<tokio::runtime::Runtime>,
    embedder: EmbedderId,
    dim: usize,
    name: String,
    batch_size: usize,
    listing: Mutex<Option<Listing>>,
}

impl S3VectorsIndex {
    fn what(&self) -> String {
        format!(
            "index {} in vector bucket {}",
            self.name, self.conn.cfg.bucket
        )
    }

    /// Runs `call` on every batch on the client's runtime, at most `max_concurrency` at once
    /// (a future starts only once it holds a permit); the results in completion order, a task
    /// that failed to run as its error's text.
    fn fan_out<B, T, Fut>(
        &self,
        batches: Vec<B>,
        call: impl Fn(Conn, String, B) -> Fut,
    ) -> Vec<std::result::Result<T, String>>
    where
        T: Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        let calls = batches
            .into_iter()
            .map(|b| call(self.conn.clone(), self.name.clone(), b))
            .collect();
        aws::bounded(&self.rt, self.conn.cfg.max_concurrency, calls, |_| {})
    }

    /// The stored states of `keys` (absent keys are left out), `MAX_GET` keys a call, at
    /// most `max_concurrency` calls at once.
    fn stored(&self, keys: &[String]) -> Result<HashMap<String, DocState>> {
        let what = self.what();
        let chunks: Vec<Vec<String>> = keys.chunks(MAX_GET).map(<[String]>::to_vec).collect();
        let results = self.fan_out(chunks, |conn, name, chunk| async move {
            conn.client
                .get_vectors()
                .vector_bucket_name(&conn.cfg.bucket)
                .index_name(name)
                .set_keys(Some(chunk))
                .return_metadata(true)
                .send()
                .await
        });
        let mut out = HashMap::new();
        for r in results {
            let got = r
                .map_err(|e| Error::Cloud(format!("s3vectors GetVectors: task failed: {e}")))?
                .map_err(|e| describe("GetVectors", &what, &e))?;
            for v in got.vectors() {
                // A vector without a version (written by something else): any version of
                // ours is newer.
                let state = state_of(&v.key, v.metadata.as_ref()).unwrap_or(DocState {
                    id: v.key.clone(),
                    version: i64::MIN,
                    objective: String::new(),
                    node: String::new(),
                    kpi: None,
                    doc: None,
                });
                out.insert(v.key.clone(), state);
            }
        }
        Ok(out)
    }

    /// Sends PutVectors batches (within the vector count and payload limits), at most
    /// `max_concurrency` at once; the ids each failed batch held, with the reason.
    fn put(&self, records: &[&VectorRecord]) -> Vec<(Vec<String>, String)> {
        let mut batches: Vec<Vec<&VectorRecord>> = Vec::new();
        let mut bytes = 0usize;
        for r in records {
            let b = approx_bytes(r);
            let start_new = batches.last().is_none_or(|batch| {
                batch.len() >= self.batch_size
                    || (!batch.is_empty() && bytes.saturating_add(b) > MAX_PAYLOAD)
            });
            if start_new {
                batches.push(Vec::new());
                bytes = 0;
            }
            if let Some(batch) = batches.last_mut() {
                batch.push(r);
                bytes = bytes.saturating_add(b);
            }
        }
        let what = self.what();
        let batches: Vec<PutBatch> = batches
            .into_iter()
            .map(|batch| {
                let ids = batch.iter().map(|r| r.id.clone()).collect();
                let vectors = batch
                    .iter()
                    .map(|r| {
                        PutInputVector::builder()
                            .key(&r.id)
                            .data(VectorData::Float32(r.vector.clone()))
                            .metadata(metadata_of(r))
                            .build()
                            .map_err(|e| e.to_string())
                    })
                    .collect();
                (ids, vectors)
            })
            .collect();
        let results = self.fan_out(batches, |conn, name, (ids, vectors)| {
            let what = what.clone();
            async move {
                let vectors = match vectors {
                    Ok(v) => v,
                    Err(e) => return (ids, Err(e)),
                };
                let sent = conn
                    .client
                    .put_vectors()
                    .vector_bucket_name(&conn.cfg.bucket)
                    .index_name(name)
                    .set_vectors(Some(vectors))
                    .send()
                    .await;
                let sent = sent
                    .map(|_| ())
                    .map_err(|e| describe("PutVectors", &what, &e).to_string());
                (ids, sent)
            }
        });
        failed_batches("PutVectors", results)
    }

    /// Sends DeleteVectors batches; the ids each failed batch held, with the reason.
    fn delete(&self, keys: &[String]) -> Vec<(Vec<String>, String)> {
        let what = self.what();
        let chunks: Vec<Vec<String>> = keys.chunks(MAX_DELETE).map(<[String]>::to_vec).collect();
        let results = self.fan_out(chunks, |conn, name, chunk| {
            let what = what.clone();
            async move {
                let sent = conn
                    .client
                    .delete_vectors()
                    .vector_bucket_name(&conn.cfg.bucket)
                    .index_name(name)
                    .set_keys(Some(chunk.clone()))
                    .send()
                    .await;
                let sent = sent
                    .map(|_| ())
                    .map_err(|e| describe("DeleteVectors", &what, &e).to_string());
                (chunk, sent)
            }
        });
        failed_batches("DeleteVectors", results)
    }

    /// Every vector of the index through ListVectors, `segments` in parallel: key, and with
    /// `metadata` its state, with `data` its vector.
    fn list(&self, metadata: bool, data: bool) -> Result<Vec<Listed>> {
        Ok(self
            .list_raw(metadata, data)?
            .into_iter()
            .map(|(key, meta, vector)| {
                let state = meta.as_ref().and_then(|m| state_of(&key, Some(m)));
                (key, state, vector)
            })
            .collect())
    }

    /// Every vector of the index through ListVectors, `segments` in parallel, as stored: key,
    /// metadata (with `metadata`) and vector (with `data`). The import of a deployment of the
    /// original sample reads its records through this.
    pub(crate) fn list_raw(&self, metadata: bool, data: bool) -> Result<Vec<RawListed>> {
        let segments = self.conn.cfg.max_concurrency.clamp(1, MAX_SEGMENTS);
        let what = self.what();
        let results = self.fan_out((0..segments).collect(), |conn, name, segment| async move {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut req = conn
                    .client
                    .list_vectors()
                    .vector_bucket_name(&conn.cfg.bucket)
                    .index_name(&name)
                    .max_results(MAX_LIST_PAGE)
                    .return_metadata(metadata)
                    .return_data(data)
                    .set_next_token(token.clone());
                if segments > 1 {
                    req = req
                        .segment_count(segments as i32)
                        .segment_index(segment as i32);
                }
                let page = req.send().await?;
                for v in page.vectors() {
                    out.push((
                        v.key.clone(),
                        v.metadata.clone(),
                        v.data.as_ref().and_then(|d| d.as_float32().ok()).cloned(),
                    ));
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() && Some(t) != token.as_deref() => {
                        token = Some(t.to_string())
                    }
                    _ => break,
                }
            }
            Ok::<_, SdkError<aws_sdk_s3vectors::operation::list_vectors::ListVectorsError>>(out)
        });
        let mut all = Vec::new();
        for r in results {
            let part = r
                .map_err(|e| Error::Cloud(format!("s3vectors ListVectors: task failed: {e}")))?
                .map_err(|e| describe("ListVectors", &what, &e))?;
            all.extend(part);
        }
        Ok(all)
    }

    /// Every key of the index.
    fn keys(&self) -> Result<Vec<String>> {
        Ok(self
            .list(false, false)?
            .into_iter()
            .map(|(k, _, _)| k)
            .collect())
    }

    /// Runs `f` over every state of the index, read again when older than the TTL.
    fn with_states<T>(&self, f: impl FnOnce(&HashMap<String, DocState>) -> T) -> Result<T> {
        let ttl = Duration::from_secs(self.conn.cfg.listing_ttl_secs);
        let mut g = self
            .listing
            .lock()
            .map_err(|_| Error::Cloud("s3vectors: a listing lock was poisoned".into()))?;
        let fresh = g.as_ref().is_some_and(|l| l.read_at.elapsed() < ttl);
        if !fresh {
            let mut states = HashMap::new();
            for (key, state, _) in self.list(true, false)? {
                let s = state.unwrap_or(DocState {
                    id: key.clone(),
                    version: 0,
                    objective: String::new(),
                    node: String::new(),
                    kpi: None,
                    doc: None,
                });
                states.insert(key, s);
            }
            *g = Some(Listing {
                states,
                read_at: Instant::now(),
            });
        }
        let empty = HashMap::new();
        Ok(f(g.as_ref().map_or(&empty, |l| &l.states)))
    }

    /// Applies this client's own writes to the kept listing.
    fn note(&self, put: &[&VectorRecord], removed: &[String]) {
        if let Ok(mut g) = self.listing.lock()
            && let Some(l) = g.as_mut()
        {
            for r in put {
                l.states.insert(
                    r.id.clone(),
                    DocState {
                        id: r.id.clone(),
                        version: r.version,
                        objective: r.meta.objective.clone(),
                        node: r.meta.node.clone(),
                        kpi: r.meta.kpi,
                        doc: None,
                    },
                );
            }
            for k in removed {
                l.states.remove(k);
            }
        }
    }

    /// One QueryVectors search, following `nextToken` until k results.
    fn query(&self, query: &[f32], filter: &SearchFilter, k: usize) -> Result<Vec<Neighbour>> {
        let top_k = i32::try_from(k.min(10_000)).unwrap_or(10_000);
        let f = filter_of(filter);
        let enhanced = f.is_some() && self.conn.cfg.query_mode == "enhanced";
        let what = self.what();
        let mut out: Vec<Neighbour> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .conn
                .client
                .query_vectors()
                .vector_bucket_name(&self.conn.cfg.bucket)
                .index_name(&self.name)
                .top_k(top_k)
                .query_vector(VectorData::Float32(query.to_vec()))
                .return_distance(true)
                .set_filter(f.clone())
                .set_next_token(token.clone());
            if enhanced {
                req = req.query_mode(IndexMode::Enhanced);
            }
            let page = self
                .rt
                .block_on(req.send())
                .map_err(|e| describe("QueryVectors", &what, &e))?;
            for v in page.vectors() {
                let Some(d) = v.distance.filter(|d| d.is_finite()) else {
                    return Err(Error::Cloud(format!(
                        "s3vectors QueryVectors: {} came back without a distance",
                        v.key
                    )));
                };
                if !out.iter().any(|n| n.id == v.key) {
                    out.push(Neighbour {
                        id: v.key.clone(),
                        similarity: similarity_of(d),
                    });
                }
            }
            match page.next_token() {
                Some(t) if out.len() < k && !t.is_empty() && Some(t) != token.as_deref() => {
                    token = Some(t.to_string())
                }
                _ => break,
            }
        }
        out.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.id.cmp(&b.id)));
        out.truncate(k);
        Ok(out)
    }
}

impl VectorIndex for S3VectorsIndex {
    fn embedder(&self) -> &EmbedderId {
        &self.embedder
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn upsert(&mut self, records: &[VectorRecord]) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        let mut good: Vec<&VectorRecord> = Vec::new();
        for r in records {
            match refuse(r, self.dim) {
                Some(reason) => report.failed.push(WriteFailure {
                    id: r.id.clone(),
                    reason,
                }),
                None => good.push(r),
            }
        }
        // The newest record of each id in this batch.
        let mut newest: HashMap<&str, &VectorRecord> = HashMap::new();
        for r in good {
            match newest.get(r.id.as_str()) {
                Some(old) if old.version >= r.version => report.stale.push(r.id.clone()),
                Some(old) => {
                    report.stale.push(old.id.clone());
                    newest.insert(&r.id, r);
                }
                None => {
                    newest.insert(&r.id, r);
                }
            }
        }
        let keys: Vec<String> = newest.keys().map(|k| k.to_string()).collect();
        let stored = self.stored(&keys)?;
        let mut send: Vec<&VectorRecord> = Vec::new();
        for r in newest.into_values() {
            match stored.get(&r.id) {
                Some(s) if s.version >= r.version => report.stale.push(r.id.clone()),
                _ => send.push(r),
            }
        }
        send.sort_by(|a, b| a.id.cmp(&b.id));
        let lost = record_failures(&mut report, self.put(&send));
        let written: Vec<&VectorRecord> = send
            .iter()
            .copied()
            .filter(|r| !lost.contains(&r.id))
            .collect();
        report.written += written.len();
        self.note(&written, &[]);
        Ok(report)
    }

    fn remove(&mut self, tombstones: &[Tombstone]) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        let keys: Vec<String> = tombstones.iter().map(|t| t.id.clone()).collect();
        let stored = self.stored(&keys)?;
        let mut newest: HashMap<&str, i64> = HashMap::new();
        for t in tombstones {
            let v = newest.entry(&t.id).or_insert(t.version);
            *v = (*v).max(t.version);
        }
        let mut doomed = Vec::new();
        for (id, version) in newest {
            match stored.get(id) {
                Some(s) if s.version < version => doomed.push(id.to_string()),
                Some(_) => report.stale.push(id.to_string()),
                None => {}
            }
        }
        doomed.sort();
        let lost = record_failures(&mut report, self.delete(&doomed));
        let gone: Vec<String> = doomed.into_iter().filter(|k| !lost.contains(k)).collect();
        report.written += gone.len();
        self.note(&[], &gone);
        Ok(report)
    }

    fn remove_documents(&mut self, docs: &[String]) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        let lost = record_failures(&mut report, self.delete(docs));
        let gone: Vec<String> = docs
            .iter()
            .filter(|k| !lost.contains(*k))
            .cloned()
            .collect();
        report.written = gone.len();
        self.note(&[], &gone);
        Ok(report)
    }

    fn flush(&mut self) -> Result<()> {
        // Writes are visible to queries once acknowledged (strongly consistent).
        Ok(())
    }

    fn count(&self, filter: &SearchFilter) -> Result<usize> {
        self.with_states(|s| s.values().filter(|d| matches(d, filter)).count())
    }

    fn search(&self, query: &[f32], filter: &SearchFilter, k: usize) -> Result<Vec<Neighbour>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        check_vector("(query)", query, self.dim).map_err(Error::Invalid)?;
        self.query(query, filter, k)
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
        // No exact mode: every vector is read with its metadata (ListVectors) and scored here.
        let mut scored: Vec<Neighbour> = self
            .list(true, true)?
            .into_iter()
            .filter_map(|(key, state, data)| {
                let s = state?;
                let v = data?;
                matches(&s, filter).then(|| Neighbour {
                    id: key,
                    similarity: crate::services::local::exact_index::dot(&v, query),
                })
            })
            .collect();
        scored.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.id.cmp(&b.id)));
        scored.truncate(k);
        Ok(scored)
    }

    fn kpi_percentiles(&self, filter: &SearchFilter, kpis: &[Option<f64>]) -> Result<Vec<f32>> {
        self.with_states(|s| {
            let mut known: Vec<f64> = s
                .values()
                .filter(|d| matches(d, filter))
                .filter_map(|d| d.kpi)
                .collect();
            known.sort_by(f64::total_cmp);
            kpis.iter().map(|k| kpi_percentile(&known, *k)).collect()
        })
    }

    fn digest(&self) -> Result<Vec<DigestBucket>> {
        // Drift checks read the index as it is now, never the kept listing.
        self.drop_listing();
        self.with_states(|s| digest_of(s.values()))
    }

    fn states_in(&self, bucket: &str) -> Result<Vec<DocState>> {
        // Sync asks for a drifted bucket's states right after `digest`: they come from the
        // listing `digest` just read, so both compare the same view of the index.
        self.with_states(|s| {
            let mut v: Vec<DocState> = s
                .values()
                .filter(|d| bucket_of(&d.id) == bucket)
                .cloned()
                .collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            v
        })
    }
}

impl S3VectorsIndex {
    /// Forgets the kept listing: the next read lists the index again.
    fn drop_listing(&self) {
        if let Ok(mut g) = self.listing.lock() {
            *g = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::index::VectorMeta;

    fn record(kpi: Option<f64>) -> VectorRecord {
        VectorRecord {
            id: "a1".into(),
            vector: vec![1.0, 0.0],
            meta: VectorMeta {
                objective: "clicks".into(),
                node: "followers".into(),
                kpi,
            },
            version: 1_234_567_890_123,
        }
    }

    #[test]
    fn s3vectors_metadata_reads_back_as_the_same_state() {
        let r = record(Some(0.42));
        let s = state_of("a1", Some(&metadata_of(&r))).unwrap();
        assert_eq!(
            (s.version, s.objective.as_str(), s.node.as_str(), s.kpi),
            (r.version, "clicks", "followers", Some(0.42))
        );
    }

    #[test]
    fn s3vectors_an_unknown_kpi_is_left_out_of_the_metadata() {
        let m = metadata_of(&record(None));
        assert!(m.as_object().is_some_and(|o| !o.contains_key("kpi")));
    }

    #[test]
    fn s3vectors_metadata_without_a_version_is_not_ours() {
        let mut m = HashMap::new();
        m.insert("objective".to_string(), Document::from("clicks"));
        assert!(state_of("x", Some(&Document::Object(m))).is_none());
    }

    #[test]
    fn s3vectors_two_filter_fields_go_under_and() {
        let f = SearchFilter {
            objective: Some("clicks".into()),
            node: Some("customers".into()),
        };
        let json = doc::to_json(&filter_of(&f).unwrap());
        assert_eq!(
            json,
            serde_json::json!({"$and": [
                {"objective": {"$eq": "clicks"}},
                {"node": {"$eq": "customers"}}
            ]})
        );
    }

    #[test]
    fn s3vectors_no_filter_sends_none() {
        assert!(filter_of(&SearchFilter::default()).is_none());
    }

    #[test]
    fn s3vectors_similarity_is_one_minus_the_cosine_distance() {
        assert!((similarity_of(0.25) - 0.75).abs() < 1e-7);
        assert!((similarity_of(2.0) + 1.0).abs() < 1e-7);
    }

    #[test]
    fn s3vectors_index_names_are_short_and_lowercase() {
        let n = index_name("campaign-studio", "local/multilingual-e5-small-q4/desc-v1");
        assert!(n.len() <= 63, "{n}");
        assert!(n.starts_with("campaign-studio-local-multilingual"), "{n}");
    }

    #[test]
    fn s3vectors_tags_refuse_a_comma() {
        assert!(!tag_char(','));
        assert!(tag_char('/') && tag_char('-') && tag_char('.'));
    }
}
