//! `library import`: brings a deployment of the original AWS sample into the library in one
//! command, keeping what it already paid for. No model is called for it (S3 and vector-store
//! reads only); the local models run as in any ingest.
//!
//! The sample keeps one record per image in an S3 Vectors index (or, in its older version, an
//! OpenSearch Serverless index with the same fields): the Titan Multimodal vector (1024-d,
//! cosine), `objective`, `node`, `results` (its KPI), `image_s3_uri`, Nova Pro's
//! `image_description` and `img_element_list` (elements joined with ','). An import:
//! 1. reads every record (`RecordSource`);
//! 2. checks each: objective and node mapped (`--map-objective old=new`) and allowed, the image
//!    URI inside `--images`, one record per key; a bad record is a per-item failure and the
//!    batch goes on;
//! 3. downloads each image once into a staging folder under the data dir (`ObjectSource`: S3
//!    GetObject, bounded concurrency, the size checked against `library.max_file_bytes` before
//!    the body is kept); a file already staged is not fetched again, so a killed run resumes
//!    where it stopped and a re-run fetches nothing;
//! 4. writes a JSONL manifest of the staged files (id = the record's key; description and
//!    elements with their source, "imported: Nova Pro via the original deployment") and runs
//!    the normal ingest over it: content-hash ids, thumbnails, palette, phash, features, local
//!    embedders, `library.max_pixels` checked before decoding, unchanged items skipped; a
//!    cloud image describer is not called for these items (their description is imported);
//! 5. stores each record's Titan vector under `bedrock/amazon.titan-embed-image-v1/1024` when
//!    the source index is 1024-d cosine (or says nothing and the vector is 1024 long), so a
//!    team that configures Titan searches at once without re-embedding. A unit-length vector
//!    is kept bit for bit; another is scaled to unit length (cosine, which the sample
//!    searched with, equals the dot product the library searches with only for unit vectors).
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::Library;
use crate::engine::ingest::{IngestEvent, IngestOptions, ItemFailure, ingest};
pub use crate::services::import_source::{ObjectSource, RecordSource, SampleRecord};
use crate::{Error, Result};

/// Where the description and elements of an imported asset came from.
pub const DESCRIPTION_SOURCE: &str = "imported: Nova Pro via the original deployment";
/// The embedder id the sample's vectors are stored under.
pub const TITAN_ID: &str = "bedrock/amazon.titan-embed-image-v1/1024";
const TITAN_DIM: usize = 1024;
/// How far from 1 a vector's length may be and still count as unit length (f32 rounding of
/// a normalised 1024-d vector stays well within it).
const UNIT_TOLERANCE: f32 = 1e-4;

/// `s3://bucket[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| format!("'{s}' is not an s3:// location (s3://BUCKET[/PREFIX])"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("'{s}' names no bucket (s3://BUCKET[/PREFIX])"));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The key of `uri` when it lies inside this location.
    pub fn key_of(&self, uri: &str) -> Option<String> {
        let at = S3Location::parse(uri).ok()?;
        if at.bucket != self.bucket || at.prefix.is_empty() {
            return None;
        }
        let inside = self.prefix.is_empty() || at.prefix.starts_with(&format!("{}/", self.prefix));
        inside.then_some(at.prefix)
    }
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub images: S3Location,
    /// Source value -> ours, lower-cased keys.
    pub map_objective: BTreeMap<String, String>,
    pub map_node: BTreeMap<String, String>,
    pub dry_run: bool,
    pub jobs: usize,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ImportReport {
    /// Records read from the source.
    pub records: usize,
    /// Assets new or changed by this run.
    pub imported: usize,
    /// Records already in the library as they are.
    pub unchanged: usize,
    pub failed: Vec<ItemFailure>,
    /// Records repeating an earlier record's key and image (the sample's OpenSearch version
    /// indexes an image again on every upload): imported once.
    pub duplicates: usize,
    /// Titan vectors stored (new or changed).
    pub vectors: usize,
    /// Of those, vectors that were not unit length and were scaled to it.
    pub vectors_scaled: usize,
    /// Why no Titan vector was stored, when none could be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors_skipped: Option<String>,
    /// S3 GetObject calls made by this run (the rest were staged by an earlier run).
    pub downloaded: usize,
    /// With `--dry-run`: records that would be fetched (not staged yet) and would be new to
    /// the library.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_fetch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_import: Option<usize>,
    /// With a server index and inline sync: why the changes are not on the server yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsynced: Option<String>,
}

impl ImportReport {
    /// Non-zero exit only when nothing could be imported at all.
    pub fn nothing_succeeded(&self) -> bool {
        !self.failed.is_empty() && self.imported + self.unchanged + self.duplicates == 0
    }
}

/// A record that passed the checks.
struct Ready {
    rec: SampleRecord,
    objective: String,
    node: String,
    uri: String,
    key: String,
    file: String,
}

/// The staging folder of a source: one per source, under the data dir.
pub fn staging_dir(data_dir: &Path, source: &str) -> PathBuf {
    let h = hex::encode(Sha256::digest(source.as_bytes()));
    data_dir.join("import").join(&h[..16])
}

/// The staged file name of an object key: its hash (keys may hold any character) and its
/// extension (ingest sniffs the format; the extension is a hint).
fn staged_name(key: &str) -> String {
    let h = hex::encode(Sha256::digest(key.as_bytes()));
    let ext = Path::new(key)
        .extension()
        .and_then(|e| e.to_str())
        .filter(|e| e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_else(|| "img".into());
    format!("{}.{ext}", &h[..32])
}

fn mapped(value: &str, map: &BTreeMap<String, String>) -> String {
    let v = value.trim().to_lowercase();
    map.get(&v).cloned().unwrap_or(v)
}

fn check(
    lib: &Library,
    rec: &SampleRecord,
    opts: &ImportOptions,
) -> std::result::Result<Ready, String> {
    let objective = rec
        .objective
        .as_deref()
        .ok_or("the record has no objective; give it one in the source")?;
    let objective = lib
        .config
        .check_objective(&mapped(objective, &opts.map_objective))
        .map_err(|e| format!("{e}; or map it with --map-objective OLD=NEW"))?;
    let node = rec
        .node
        .as_deref()
        .ok_or("the record has no node; give it one in the source")?;
    let node = lib
        .config
        .check_node(&mapped(node, &opts.map_node))
        .map_err(|e| format!("{e}; or map it with --map-node OLD=NEW"))?;
    let uri = rec
        .image_s3_uri
        .as_deref()
        .ok_or("the record has no image_s3_uri, so there is no image to import")?;
    let key = opts.images.key_of(uri).ok_or_else(|| {
        let at = &opts.images;
        format!(
            "its image {uri} is not inside s3://{}/{}; point --images at the bucket (and prefix) that holds it",
            at.bucket, at.prefix
        )
    })?;
    Ok(Ready {
        rec: rec.clone(),
        objective,
        node,
        uri: uri.to_string(),
        file: staged_name(&key),
        key,
    })
}

/// The manifest row of a ready record.
fn manifest_row(r: &Ready) -> serde_json::Value {
    let elements: Vec<String> = r
        .rec
        .elements
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    let mut row = serde_json::json!({
        "id": r.rec.key,
        "file": r.file,
        "objective": r.objective,
        "node": r.node,
        "source_uri": r.uri,
    });
    if let Some(k) = &r.rec.results {
        row["results"] = k.clone();
    }
    let description = r
        .rec
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty());
    if let Some(d) = description {
        row["description"] = serde_json::json!(d);
    }
    if !elements.is_empty() {
        row["labels"] = serde_json::json!(elements);
    }
    if description.is_some() || !elements.is_empty() {
        row["description_source"] = serde_json::json!(DESCRIPTION_SOURCE);
    }
    row
}

/// Whether the library already holds `key` from another image (another source, or a local
/// ingest with the same id): importing over it would replace that asset.
fn taken_by_other(lib: &Library, key: &str, uri: &str) -> Result<Option<String>> {
    let Some((asset, _)) = lib.store.by_external_id(key)? else {
        return Ok(None);
    };
    let Some(a) = lib.store.asset(&asset)? else {
        return Ok(None);
    };
    let from = a.metadata.get("source_uri").and_then(|v| v.as_str());
    if from == Some(uri) {
        return Ok(None);
    }
    Ok(Some(format!(
        "the library already holds an asset with id '{key}' ({}) that did not come from {uri}; remove it (`library remove {key}`) or import into another library (--data-dir)",
        from.unwrap_or(&a.file)
    )))
}

/// The vector to store for a record: unit length as it is, else scaled (None: unusable).
fn titan_vector(v: &[f32]) -> Option<(Vec<f32>, bool)> {
    if v.len() != TITAN_DIM || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm.is_nan() || norm <= 0.0 {
        return None;
    }
    if (norm - 1.0).abs() <= UNIT_TOLERANCE {
        return Some((v.to_vec(), false));
    }
    Some((v.iter().map(|x| x / norm).collect(), true))
}

/// Imports every record of `source`, its images through `objects`. `fetched(done, total)`
/// follows the downloads, `progress` the ingest.
pub fn import(
    lib: &mut Library,
    source: &dyn RecordSource,
    objects: &dyn ObjectSource,
    opts: &ImportOptions,
    fetched: &(dyn Fn(usize, usize) + Sync),
    progress: &mut dyn FnMut(IngestEvent),
) -> Result<ImportReport> {
    let records = source.records()?;
    let mut report = ImportReport {
        records: records.len(),
        ..Default::default()
    };
    let mut ready: Vec<Ready> = Vec::new();
    let mut first_uri: HashMap<String, Option<String>> = HashMap::new();
    for rec in &records {
        if let Some(uri) = first_uri.get(&rec.key) {
            if *uri == rec.image_s3_uri {
                report.duplicates += 1;
            } else {
                report.failed.push(ItemFailure {
                    item: rec.key.clone(),
                    reason: format!(
                        "the source holds the key twice with different images ({} and {}); the first is imported, rename the other in the source",
                        uri.as_deref().unwrap_or("none"),
                        rec.image_s3_uri.as_deref().unwrap_or("none")
                    ),
                });
            }
            continue;
        }
        first_uri.insert(rec.key.clone(), rec.image_s3_uri.clone());
        let checked =
            check(lib, rec, opts).and_then(|r| match taken_by_other(lib, &r.rec.key, &r.uri) {
                Ok(None) => Ok(r),
                Ok(Some(why)) => Err(why),
                Err(e) => Err(e.to_string()),
            });
        match checked {
            Ok(r) => ready.push(r),
            Err(reason) => report.failed.push(ItemFailure {
                item: rec.key.clone(),
                reason,
            }),
        }
    }
    let staging = staging_dir(&lib.paths.data_dir, &source.name());
    // One download per object, however many records name it.
    let mut asked = std::collections::HashSet::new();
    let to_fetch: Vec<(String, PathBuf)> = ready
        .iter()
        .filter(|r| !staging.join(&r.file).is_file() && asked.insert(r.key.clone()))
        .map(|r| (r.key.clone(), staging.join(&r.file)))
        .collect();
    if opts.dry_run {
        report.would_fetch = Some(to_fetch.len());
        let mut new = 0;
        for r in &ready {
            if lib.store.by_external_id(&r.rec.key)?.is_none() {
                new += 1;
            }
        }
        report.would_import = Some(new);
        return Ok(report);
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let total = to_fetch.len();
    let got = objects.fetch_all(
        &opts.images.bucket,
        &to_fetch,
        lib.config.library.max_file_bytes,
        &|done| fetched(done, total),
    );
    let mut missing = std::collections::HashSet::new();
    for ((key, _), got) in to_fetch.iter().zip(got) {
        match got {
            Ok(()) => report.downloaded += 1,
            Err(reason) => {
                missing.insert(key.clone());
                for r in ready.iter().filter(|r| &r.key == key) {
                    report.failed.push(ItemFailure {
                        item: r.rec.key.clone(),
                        reason: reason.clone(),
                    });
                }
            }
        }
    }
    ready.retain(|r| !missing.contains(&r.key));
    let manifest = staging.join("manifest.jsonl");
    let mut text = String::new();
    for r in &ready {
        text.push_str(&manifest_row(r).to_string());
        text.push('\n');
    }
    crate::engine::ingest::write_atomic(&manifest, text.as_bytes())?;
    let ingested = ingest(
        lib,
        &IngestOptions {
            root: staging.clone(),
            manifest: Some(manifest),
            jobs: opts.jobs.max(1),
            ..Default::default()
        },
        progress,
    )?;
    report.imported = ingested.ingested + ingested.updated;
    report.unchanged = ingested.unchanged;
    report.failed.extend(ingested.failed);
    report.unsynced = ingested.unsynced;
    let titan = crate::domain::EmbedderId::new(TITAN_ID);
    match source.vectors_comparable() {
        Some((dim, cosine)) if dim != TITAN_DIM || !cosine => {
            report.vectors_skipped = Some(format!(
                "the source index holds {dim}-d {} vectors, not Titan Multimodal's 1024-d cosine; configure a Titan embedder and run `library reindex` to embed the images",
                if cosine { "cosine" } else { "non-cosine" }
            ));
            return Ok(report);
        }
        _ => {}
    }
    for r in &ready {
        let Some((asset, _)) = lib.store.by_external_id(&r.rec.key)? else {
            continue; // failed at ingest: already reported
        };
        let Some(raw) = r.rec.vector.as_ref() else {
            continue;
        };
        let Some((v, scaled)) = titan_vector(raw) else {
            report.failed.push(ItemFailure {
                item: r.rec.key.clone(),
                reason: format!(
                    "its vector ({} values) is not a usable 1024-d Titan vector (wrong length, a value that is not a number, or all zeros); the image was imported, run `library reindex` with a Titan embedder to embed it",
                    raw.len()
                ),
            });
            continue;
        };
        if lib.store.vector_of(&asset, &titan)?.as_deref() == Some(v.as_slice()) {
            continue;
        }
        lib.store.put_vector(&asset, &titan, &v, "image")?;
        report.vectors += 1;
        report.vectors_scaled += usize::from(scaled);
    }
    if report.vectors > 0 && report.unsynced.is_none() {
        report.unsynced = lib.sync_inline_for(&titan);
    }
    Ok(report)
}

/// Where `--from` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUri {
    /// `s3vectors://BUCKET/INDEX`
    S3Vectors { bucket: String, index: String },
    /// `opensearch://HOST[:PORT]/INDEX`: https, or http on this machine's loopback.
    OpenSearch { url: String, index: String },
}

impl SourceUri {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let usage = "give s3vectors://BUCKET/INDEX or opensearch://HOST[:PORT]/INDEX";
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("--from '{s}': {usage}"))?;
        let (host, index) = rest
            .split_once('/')
            .ok_or_else(|| format!("--from '{s}' names no index: {usage}"))?;
        let index = index.trim_end_matches('/');
        if host.is_empty() || index.is_empty() || index.contains('/') {
            return Err(format!("--from '{s}': {usage}"));
        }
        match scheme {
            "s3vectors" => Ok(SourceUri::S3Vectors {
                bucket: host.to_string(),
                index: index.to_string(),
            }),
            "opensearch" => {
                let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
                let scheme = if crate::config::is_loopback_host(bare) {
                    "http"
                } else {
                    "https"
                };
                Ok(SourceUri::OpenSearch {
                    url: format!("{scheme}://{host}"),
                    index: index.to_string(),
                })
            }
            other => Err(format!(
                "--from '{s}': '{other}://' is not a source; {usage}"
            )),
        }
    }
}

/// Opens the records of `from` with the library's settings: `[index.s3vectors]` (region,
/// profile, endpoint, retries; `import.region` first when set) or `[index.opensearch]` (auth,
/// SigV4 service `aoss` for Serverless, CA file). `credentials`: fixed AWS credentials
/// (tests, programs embedding the library), else the default chain; `password`: the
/// OpenSearch basic-auth password.
pub fn open_source(
    config: &crate::config::Config,
    from: &SourceUri,
    credentials: Option<aws_credential_types::Credentials>,
    password: Option<String>,
) -> Result<Box<dyn RecordSource>> {
    let mut cfg = config.index.clone();
    match from {
        SourceUri::S3Vectors { bucket, index } => {
            cfg.s3vectors.bucket = bucket.clone();
            if !config.import.region.is_empty() {
                cfg.s3vectors.region = config.import.region.clone();
            }
            if !config.import.profile.is_empty() {
                cfg.s3vectors.profile = config.import.profile.clone();
            }
            let client = match credentials {
                Some(c) => crate::services::s3vectors::S3Vectors::with_credentials(&cfg, c)?,
                None => crate::services::s3vectors::S3Vectors::new(&cfg)?,
            };
            Ok(Box::new(client.sample_index(index)?))
        }
        SourceUri::OpenSearch { url, index } => {
            cfg.opensearch.url = url.clone();
            let client = crate::services::opensearch::OpenSearch::connect(&cfg, password, None)?;
            let uri = format!(
                "opensearch://{}/{index}",
                url.split_once("://").map_or(url.as_str(), |(_, h)| h)
            );
            Ok(Box::new(client.sample_index(index, &uri)?))
        }
    }
}

/// The S3 reader of `[import]`.
pub fn open_objects(
    config: &crate::config::Config,
    credentials: Option<aws_credential_types::Credentials>,
) -> Result<crate::services::aws::s3::S3Objects> {
    crate::services::aws::s3::S3Objects::new(&config.import, credentials)
}
