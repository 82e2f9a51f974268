//! Ingest a folder of images (with a manifest, or metadata from flags) into the library.
//!
//! Every item ends in exactly one of: ingested, updated, unchanged, failed (with a reason
//! naming the item). Each asset is written in one transaction after its files are in place, so
//! a process killed at any point leaves every asset either fully present or absent, and a
//! re-run completes the rest. Content is addressed by sha256, so nothing is indexed twice.
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::OriginalsMode;
use crate::domain::{Asset, EmbedderId};
use crate::engine::Library;
use crate::engine::manifest::{self, ManifestRow};
use crate::paths::Paths;
use crate::services::local::{imaging, label_space};
use crate::services::{DescribeInput, Describer, TextRole};
use crate::store::now;
use crate::{Error, Result};

/// Bumped when the description document recipe changes, so assets are re-described (on their
/// next ingest, by the metadata path: from the stored labels, no image model). "+kinds": the
/// WordNet kinds of the classifier's labels joined the document; the vectors stay comparable
/// (same model, same kind of text), so the embedder id keeps "desc-v1". "+labels-v1": an asset
/// without human text is indexed by its labels' class vectors (`local::label_space`).
const DOC_RECIPE: &str = "desc-v1+kinds+labels-v1";

#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    pub root: PathBuf,
    pub manifest: Option<PathBuf>,
    /// Worker threads (each runs the models on one thread).
    pub jobs: usize,
    /// Defaults for rows (or folder files) that do not give them.
    pub objective: Option<String>,
    pub node: Option<String>,
    pub kpi: Option<f64>,
    pub campaign: Option<String>,
    /// Set from another thread to stop after the items in flight (the studio's Esc); what was
    /// written stays, and a later run picks up the rest.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ItemFailure {
    pub item: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub ingested: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: Vec<ItemFailure>,
    /// Stopped early on request; the items not reached are neither failed nor ingested.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// Photos nobody described whose borrowed neighbours changed (`engine::inferred`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inferred: usize,
    /// With a server index and inline sync: why the changes are not on the server yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsynced: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl IngestReport {
    /// Non-zero exit only when nothing could be ingested at all.
    pub fn nothing_succeeded(&self) -> bool {
        self.ingested + self.updated + self.unchanged == 0 && !self.failed.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ingested,
    Updated,
    Unchanged,
    Failed(String),
}

/// Progress, reported to the caller (which owns the terminal).
#[derive(Debug, Clone, PartialEq)]
pub enum IngestEvent {
    /// Items found (after reading the manifest or scanning the folder).
    Planned {
        total: usize,
        to_process: usize,
    },
    Item {
        item: String,
        outcome: Outcome,
    },
}

/// One validated item, ready to process.
#[derive(Debug, Clone)]
struct Item {
    item: String,
    external_id: Option<String>,
    file: String,
    path: PathBuf,
    objective: String,
    node: String,
    kpi: Option<f64>,
    caption: Option<String>,
    description: Option<String>,
    description_source: Option<String>,
    campaign: Option<String>,
    labels: Vec<String>,
    licence: Option<String>,
    attribution: Option<String>,
    extra: serde_json::Map<String, Value>,
}

impl Item {
    fn meta_hash(&self) -> String {
        let mut v = json!([
            DOC_RECIPE,
            self.external_id,
            self.file,
            self.objective,
            self.node,
            self.kpi,
            self.caption,
            self.description,
            self.campaign,
            self.labels,
            self.licence,
            self.attribution,
            self.extra,
        ]);
        // Appended only when given, so the hashes of items without it stay as they were.
        if let (Some(s), Some(a)) = (&self.description_source, v.as_array_mut()) {
            a.push(json!(s));
        }
        hex::encode(Sha256::digest(v.to_string().as_bytes()))
    }

    fn describe_input(&self) -> DescribeInput {
        DescribeInput {
            caption: self.caption.clone(),
            human_description: self.description.clone(),
            description_source: self.description_source.clone(),
            campaign: self.campaign.clone(),
            human_labels: self.labels.clone(),
            ..Default::default()
        }
    }

    fn metadata(&self) -> Value {
        let mut m = self.extra.clone();
        if !self.labels.is_empty() {
            m.insert("labels".into(), json!(self.labels));
        }
        if let Some(c) = &self.campaign {
            m.insert("campaign".into(), json!(c));
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        if let Some(s) = &self.description_source {
            m.insert("description_source".into(), json!(s));
        }
        Value::Object(m)
    }
}

/// Resolves `rel` inside `root` (canonical). Refuses absolute paths, `..`, and symlinks that
/// lead outside the root.
pub fn resolve_in_root(root: &Path, rel: &str) -> std::result::Result<PathBuf, String> {
    let p = Path::new(rel);
    if p.is_absolute() {
        return Err(format!(
            "absolute path '{rel}' is not allowed: files must be inside the library root"
        ));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("path '{rel}' escapes the library root ('..')"));
    }
    let joined = root.join(p);
    match joined.canonicalize() {
        Ok(c) if c.starts_with(root) => {
            if c.is_file() {
                Ok(c)
            } else {
                Err(format!("'{rel}' is not a regular file"))
            }
        }
        Ok(c) => Err(format!(
            "path '{rel}' resolves outside the library root (to {})",
            c.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if joined.symlink_metadata().is_ok() {
                Err(format!("'{rel}' is a broken symlink"))
            } else {
                Err(format!("file not found: {rel}"))
            }
        }
        Err(e) => Err(format!("cannot open '{rel}': {e}")),
    }
}

fn has_image_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .is_some_and(|e| {
            imaging::SUPPORTED_EXTENSIONS.contains(&e.as_str())
                || imaging::UNSUPPORTED_IMAGE_EXTENSIONS.contains(&e.as_str())
        })
}

/// Image files under `root` (recursive, hidden entries skipped), as sorted relative paths.
fn scan_folder(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for entry in rd.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let p = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if (ft.is_file() || ft.is_symlink())
                && has_image_extension(&p)
                && let Ok(rel) = p.strip_prefix(root)
            {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn parse_kpi(v: &Value) -> std::result::Result<f64, String> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("KPI 'results' = {v} is not a number"))?;
    if !x.is_finite() {
        return Err(format!("KPI 'results' = {v} is not a finite number"));
    }
    if x < 0.0 {
        return Err(format!("KPI 'results' = {x} is negative"));
    }
    Ok(x)
}

fn validate(
    lib: &Library,
    opts: &IngestOptions,
    root: &Path,
    row: ManifestRow,
    seen_ids: &mut HashMap<String, usize>,
) -> std::result::Result<Item, ItemFailure> {
    let item = row.item();
    let fail = |reason: String| ItemFailure {
        item: item.clone(),
        reason,
    };
    if let Some(id) = &row.id {
        if let Some(first) = seen_ids.get(id) {
            return Err(fail(format!(
                "duplicate id '{id}' (first used on line {first}); this row is skipped"
            )));
        }
        seen_ids.insert(id.clone(), row.line);
    }
    let objective = row
        .objective
        .clone()
        .or_else(|| opts.objective.clone())
        .ok_or_else(|| fail("no objective (give it in the manifest or with --objective)".into()))?;
    let objective = lib
        .config
        .check_objective(&objective)
        .map_err(|e| fail(e.to_string()))?;
    let node = row
        .node
        .clone()
        .or_else(|| opts.node.clone())
        .ok_or_else(|| fail("no audience node (give it in the manifest or with --node)".into()))?;
    let node = lib
        .config
        .check_node(&node)
        .map_err(|e| fail(e.to_string()))?;
    let kpi = match &row.results {
        Some(v) => Some(parse_kpi(v).map_err(&fail)?),
        None => opts.kpi,
    };
    let path = resolve_in_root(root, &row.file).map_err(&fail)?;
    Ok(Item {
        item: item.clone(),
        external_id: row.id,
        file: row.file,
        path,
        objective,
        node,
        kpi,
        caption: row.caption,
        description: row.description,
        description_source: row.description_source,
        campaign: row.campaign.or_else(|| opts.campaign.clone()),
        labels: row.labels,
        licence: row.licence,
        attribution: row.attribution,
        extra: row.extra,
    })
}

/// What to do with a valid item once its bytes are hashed.
enum Plan {
    Unchanged,
    /// Same bytes as a stored asset; only metadata (and so the description) changed.
    Metadata {
        asset: Box<Asset>,
    },
    /// New bytes: full processing. `replaces` is the stored asset with the same manifest id.
    Full {
        replaces: Option<String>,
    },
}

struct Work {
    item: Item,
    sha: String,
    bytes_len: u64,
    meta_hash: String,
    plan: Plan,
}

/// Writes `bytes` to `path` through a temp file and a rename, unless it is already there.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.metadata().is_ok_and(|m| m.len() == bytes.len() as u64) {
        return Ok(());
    }
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.{}.{:?}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    Ok(())
}

struct Processed {
    asset: Asset,
    vectors: Vec<(EmbedderId, Vec<f32>, String)>,
    /// For a photo without human text: its description document's own vector, before the
    /// label space, so borrowing from similar photos (`engine::inferred`) need not embed the
    /// document again.
    document: Option<Vec<f32>>,
}

/// What the worker threads share (the store stays on the writing thread).
struct WorkerCtx<'a> {
    config: &'a crate::config::Config,
    paths: &'a Paths,
    describer: &'a crate::services::local::describer::LocalDescriber,
    embedder: std::sync::Arc<dyn crate::services::Embedder>,
    analyser: std::sync::Arc<dyn crate::services::ImageAnalyser>,
    image_describer: Option<std::sync::Arc<dyn crate::services::ImageDescriber>>,
    meter: std::sync::Arc<crate::services::meter::Meter>,
}

/// An item whose image work is done; its description document may still need embedding.
struct Prepared {
    asset: Asset,
    features: Vec<f32>,
    text: TextVector,
}

enum TextVector {
    /// The embedder embedded the image itself (a multimodal embedder).
    Image(Vec<f32>),
    /// The description document, to embed with the others of its group.
    Document(String),
}

/// Items a worker takes at a time: their description documents are embedded in one forward
/// pass, which costs e5 about a quarter less CPU per document than one pass each (measured
/// with documents of the reference library, 32 tokens on average: 29 -> 21.5 ms on one thread,
/// then padded to the longest; unpadded since). Ingest of the reference library with groups of
/// 4: 37.6-40.6 images/s in four runs; of 8: 36.9-38.7 in three. Results are still written item
/// by item.
const GROUP: usize = 4;

type ItemResult = (
    std::result::Result<Processed, String>,
    Vec<crate::domain::ModelCall>,
);

/// The borrowing pass (`engine::inferred`) when the text embedder's vectors changed since it
/// last ran.
fn borrow_from_similar(
    lib: &Library,
    text_id: &EmbedderId,
    documents: &HashMap<String, Vec<f32>>,
) -> Result<crate::engine::inferred::InferredReport> {
    if !crate::engine::inferred::pending(lib, text_id)? {
        return Ok(Default::default());
    }
    let embedder = lib.text_embedder()?;
    crate::engine::inferred::refresh_with(lib, embedder.as_ref(), documents)
}

/// Decode, thumbnail, hash, palette, labels and features, description, embedding, for a group
/// of items: the image work item by item, then the documents in one call. When that call
/// fails, each document is embedded alone, so one bad item fails alone. Each result comes with
/// the paid calls made for it (a group of more than one item is only formed for an embedder
/// that batches locally, so the group's embedding call is not a paid one). A cancel stops it
/// before the next item: the items not started get no result, as when a worker stops.
fn process_group(
    lib: &WorkerCtx<'_>,
    items: &[&Work],
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> Vec<ItemResult> {
    let mut calls = Vec::with_capacity(items.len());
    let mut prepared = Vec::with_capacity(items.len());
    for w in items {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            break;
        }
        prepared.push(prepare(lib, w));
        calls.push(lib.meter.take_this_thread());
    }
    let docs: Vec<String> = prepared
        .iter()
        .filter_map(|p| match p {
            Ok(Prepared {
                text: TextVector::Document(d),
                ..
            }) => Some(d.clone()),
            _ => None,
        })
        .collect();
    let embed_one = |doc: &String| -> std::result::Result<Vec<f32>, String> {
        lib.embedder
            .embed_texts(std::slice::from_ref(doc), TextRole::Document)
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| "the text embedder returned no vector".to_string())
    };
    let mut together = match docs.len() {
        0 | 1 => None,
        n => lib
            .embedder
            .embed_texts(&docs, TextRole::Document)
            .ok()
            .filter(|v| v.len() == n)
            .map(|v| v.into_iter()),
    };
    let mut made = |p: std::result::Result<Prepared, String>| {
        let p = p?;
        let mut document = None;
        let (vector, source) = match p.text {
            TextVector::Image(v) => (v, "image".to_string()),
            TextVector::Document(doc) => {
                let v = match together.as_mut().and_then(Iterator::next) {
                    Some(v) => v,
                    None => embed_one(&doc)?,
                };
                if p.asset.description.sources.text.is_empty() {
                    document = Some(v.clone());
                }
                let v = label_space::indexed_vector(
                    lib.embedder.as_ref(),
                    &p.asset.description,
                    &p.asset.model_labels,
                    v,
                );
                (v, doc)
            }
        };
        Ok(Processed {
            vectors: vec![
                (lib.embedder.id().clone(), vector, source),
                (
                    lib.analyser.features_id().clone(),
                    p.features,
                    "image".into(),
                ),
            ],
            asset: p.asset,
            document,
        })
    };
    prepared
        .into_iter()
        .zip(calls)
        .map(|(p, mut calls)| {
            let r = made(p);
            calls.extend(lib.meter.take_this_thread());
            (r, calls)
        })
        .collect()
}

/// Decode, thumbnail, hash, palette, labels and features, description; the image embedding
/// when the embedder embeds images, else the document to embed.
fn prepare(lib: &WorkerCtx<'_>, w: &Work) -> std::result::Result<Prepared, String> {
    let bytes = std::fs::read(&w.item.path).map_err(|e| format!("cannot read file: {e}"))?;
    if hex::encode(Sha256::digest(&bytes)) != w.sha {
        return Err("the file changed while it was being ingested; run ingest again".into());
    }
    let ext = w
        .item
        .path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_string();
    let dec =
        imaging::decode(&bytes, &ext, lib.config.library.max_pixels).map_err(|e| e.to_string())?;
    let format = imaging::format_name(dec.format).to_string();
    let thumb = imaging::thumbnail_jpeg(&dec.image, lib.config.library.thumbnail_px)
        .map_err(|e| format!("thumbnail: {e}"))?;
    let thumb_path = Paths::content_path(&lib.paths.thumbnails_dir(), &w.sha, "jpg");
    write_atomic(&thumb_path, &thumb).map_err(|e| e.to_string())?;
    let stored_path = match lib.config.library.originals {
        OriginalsMode::Copy => {
            let p = Paths::content_path(&lib.paths.originals_dir(), &w.sha, &format);
            write_atomic(&p, &bytes).map_err(|e| e.to_string())?;
            p
        }
        OriginalsMode::Reference => w.item.path.clone(),
    };
    let analyser = &lib.analyser;
    let analysis = analyser.analyse(&dec.image).map_err(|e| e.to_string())?;
    let mut input = w.item.describe_input();
    input.model_labels = analysis.labels.clone();
    input.palette = imaging::palette(&dec.image, 5);
    input.width = dec.width;
    input.height = dec.height;
    input.brightness = imaging::brightness(&dec.image);
    input.people = analysis.people;
    let mut description = lib.describer.describe(&input).map_err(|e| e.to_string())?;
    // An imported description was paid for once already: no cloud model looks again.
    if let Some(d) = lib
        .image_describer
        .as_ref()
        .filter(|_| w.item.description_source.is_none())
    {
        let seen = d
            .describe_image(&bytes, &format, &input)
            .map_err(|e| e.to_string())?;
        description.description = seen.description;
        description.elements = seen.elements;
        description.sources.text = vec![format!("bedrock/{} (looked at the image)", d.model())];
        description.sources.elements = vec![format!("bedrock/{}", d.model())];
    }
    let text = match lib.embedder.embed_image(&dec.image) {
        Some(v) => TextVector::Image(v.map_err(|e| e.to_string())?),
        None => TextVector::Document(lib.describer.document(&input, &description)),
    };
    let ts = now();
    let asset = Asset {
        id: w.sha.clone(),
        external_id: w.item.external_id.clone(),
        file: w.item.file.clone(),
        stored_path: stored_path.to_string_lossy().into_owned(),
        thumbnail_path: thumb_path.to_string_lossy().into_owned(),
        byte_size: w.bytes_len,
        format,
        width: dec.width,
        height: dec.height,
        phash: imaging::phash(&dec.image),
        objective: w.item.objective.clone(),
        node: w.item.node.clone(),
        kpi: w.item.kpi,
        caption: w.item.caption.clone(),
        description,
        model_labels: analysis.labels,
        licence: w.item.licence.clone(),
        attribution: w.item.attribution.clone(),
        metadata: w.item.metadata(),
        created_at: ts.clone(),
        updated_at: ts,
    };
    Ok(Prepared {
        asset,
        features: analysis.features,
        text,
    })
}

/// Same bytes, new metadata: re-describe from the stored labels and palette, re-embed the
/// description document. No image model runs.
fn process_metadata(lib: &Library, w: &Work, old: &Asset) -> Result<Processed> {
    let mut input = w.item.describe_input();
    input.model_labels = old.model_labels.clone();
    input.palette = old.description.palette.clone();
    input.width = old.width;
    input.height = old.height;
    input.brightness = old.description.brightness;
    input.people = old.description.people;
    let mut description = lib.describer.describe(&input)?;
    // A description a vision model made from the image stays: new metadata does not change
    // what the image shows.
    if old
        .description
        .sources
        .text
        .iter()
        .any(|s| s.contains("(looked at the image)"))
    {
        description.description = old.description.description.clone();
        description.elements = old.description.elements.clone();
        description.sources.text = old.description.sources.text.clone();
        description.sources.elements = old.description.sources.elements.clone();
    }
    let embedder = lib.text_embedder()?;
    let mut vectors = Vec::new();
    if !embedder.embeds_images() {
        let doc = lib.describer.document(&input, &description);
        let v = embedder
            .embed_texts(std::slice::from_ref(&doc), TextRole::Document)?
            .pop()
            .ok_or_else(|| Error::Inference("the text embedder returned no vector".into()))?;
        let v =
            label_space::indexed_vector(embedder.as_ref(), &description, &input.model_labels, v);
        vectors.push((embedder.id().clone(), v, doc));
    }
    let mut asset = old.clone();
    asset.external_id = w.item.external_id.clone();
    asset.file = w.item.file.clone();
    asset.objective = w.item.objective.clone();
    asset.node = w.item.node.clone();
    asset.kpi = w.item.kpi;
    asset.caption = w.item.caption.clone();
    asset.description = description;
    asset.licence = w.item.licence.clone();
    asset.attribution = w.item.attribution.clone();
    asset.metadata = w.item.metadata();
    asset.updated_at = now();
    Ok(Processed {
        asset,
        vectors,
        document: None,
    })
}

/// The lock an ingest job holds for as long as its process lives: an exclusive OS file lock
/// (flock) on `<data dir>/jobs/ingest-<id>.lock`, which the OS releases when the process dies
/// however it dies. Another process (the studio and a CLI ingest at the same time) can so
/// tell a job that is still running from one whose process is gone.
pub struct JobLock {
    path: std::path::PathBuf,
    _file: std::fs::File,
}

impl JobLock {
    fn path(lib: &Library, id: i64) -> std::path::PathBuf {
        lib.paths
            .data_dir
            .join("jobs")
            .join(format!("ingest-{id}.lock"))
    }

    /// Takes job `id`'s lock (the job's row is not yet visible to others).
    pub fn acquire(lib: &Library, id: i64) -> Result<Self> {
        let path = Self::path(lib, id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        file.try_lock().map_err(|e| {
            Error::Invalid(format!(
                "{}: cannot lock this ingest job's file ({e}); is the data dir on a file system without locks?",
                path.display()
            ))
        })?;
        Ok(Self { path, _file: file })
    }

    /// True when job `id`'s lock is held by a live process.
    fn held(lib: &Library, id: i64) -> bool {
        let Ok(file) = std::fs::File::open(Self::path(lib, id)) else {
            return false; // no lock file: a job of a process that is gone
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        // The job's row is final by now (or the process is failing): nothing reads the file.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes files under the originals and thumbnails folders that no asset holds (temp files
/// and copies of a run killed before its commit). Call only when no ingest is running.
pub fn sweep_orphans(lib: &Library) -> Result<usize> {
    // By file name (the content hash and extension), not full path: a data dir that was moved
    // keeps its old paths in the catalog and must not lose its files.
    let held: std::collections::HashSet<String> = lib
        .store
        .asset_file_paths()?
        .iter()
        .filter_map(|p| {
            Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .collect();
    let mut removed = 0;
    for dir in [lib.paths.originals_dir(), lib.paths.thumbnails_dir()] {
        let Ok(shards) = std::fs::read_dir(&dir) else {
            continue; // nothing ingested yet
        };
        for shard in shards.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else {
                continue;
            };
            for f in files.flatten() {
                let p = f.path();
                if f.file_type().is_ok_and(|t| t.is_file())
                    && !held.contains(f.file_name().to_string_lossy().as_ref())
                    && std::fs::remove_file(&p).is_ok()
                {
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

/// Marks `running` ingest jobs whose process is gone (their lock is free) as interrupted; jobs
/// still running in another process are left alone. Returns how many were marked.
pub fn mark_dead_ingest_jobs(lib: &Library) -> Result<usize> {
    let mut marked = 0;
    for (id, _, _) in lib.store.unfinished_ingest_jobs()? {
        if !JobLock::held(lib, id) && lib.store.mark_ingest_job_interrupted(id)? {
            let _ = std::fs::remove_file(JobLock::path(lib, id));
            marked += 1;
        }
    }
    Ok(marked)
}

pub fn ingest(
    lib: &mut Library,
    opts: &IngestOptions,
    progress: &mut dyn FnMut(IngestEvent),
) -> Result<IngestReport> {
    let root = opts
        .root
        .canonicalize()
        .map_err(|e| Error::io(&opts.root, e))?;
    if !root.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is not a folder",
            opts.root.display()
        )));
    }
    let rows: Vec<std::result::Result<ManifestRow, manifest::RowError>> = match &opts.manifest {
        Some(m) => manifest::read(m)?,
        None => scan_folder(&root)?
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                Ok(ManifestRow {
                    line: i + 1,
                    file: f,
                    ..Default::default()
                })
            })
            .collect(),
    };
    let interrupted = mark_dead_ingest_jobs(lib)?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "earlier ingest runs did not finish; this run completes them"
        );
    }
    // With no other ingest alive, what a killed run left behind (temp files, copies whose
    // asset was never committed) belongs to nobody.
    if lib.store.unfinished_ingest_jobs()?.is_empty() {
        let swept = sweep_orphans(lib)?;
        if swept > 0 {
            tracing::info!(swept, "removed files an interrupted ingest left behind");
        }
    }
    let (job, _alive) = lib.store.start_ingest_job_with(
        &root.to_string_lossy(),
        opts.manifest
            .as_ref()
            .map(|m| m.to_string_lossy())
            .as_deref(),
        |id| JobLock::acquire(lib, id),
    )?;
    let mut report = IngestReport::default();
    let fail = |report: &mut IngestReport,
                progress: &mut dyn FnMut(IngestEvent),
                item: String,
                reason: String| {
        tracing::warn!(%item, %reason, "ingest item failed");
        progress(IngestEvent::Item {
            item: item.clone(),
            outcome: Outcome::Failed(reason.clone()),
        });
        report.failed.push(ItemFailure { item, reason });
    };

    // 1. Validate rows; hash each file; decide what each needs.
    let total = rows.len();
    let mut seen_ids = HashMap::new();
    let mut seen_content: HashMap<String, String> = HashMap::new();
    let text_id = lib.text_embedder_id();
    let features_id = lib.image_features_id();
    let mut work = Vec::new();
    // Failures found while planning, reported after `Planned` so progress counts add up.
    let mut pending_failures: Vec<(String, String)> = Vec::new();
    for row in rows {
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                pending_failures.push((e.item, e.reason));
                continue;
            }
        };
        let item = match validate(lib, opts, &root, row, &mut seen_ids) {
            Ok(i) => i,
            Err(f) => {
                pending_failures.push((f.item, f.reason));
                continue;
            }
        };
        let len = match std::fs::metadata(&item.path) {
            Ok(m) => m.len(),
            Err(e) => {
                pending_failures.push((item.item, format!("cannot read file: {e}")));
                continue;
            }
        };
        if len == 0 {
            pending_failures.push((item.item, imaging::DecodeError::Empty.to_string()));
            continue;
        }
        if len > lib.config.library.max_file_bytes {
            pending_failures.push((
                item.item,
                format!(
                    "file is {len} bytes, over the limit of {} (library.max_file_bytes)",
                    lib.config.library.max_file_bytes
                ),
            ));
            continue;
        }
        let sha = match std::fs::read(&item.path) {
            Ok(b) => hex::encode(Sha256::digest(&b)),
            Err(e) => {
                pending_failures.push((item.item, format!("cannot read file: {e}")));
                continue;
            }
        };
        if let Some(first) = seen_content.get(&sha) {
            pending_failures.push((item.item, format!("same image content as item '{first}' in this run; skipped so it is not indexed twice")));
            continue;
        }
        seen_content.insert(sha.clone(), item.item.clone());
        let meta_hash = item.meta_hash();
        let plan = match lib.store.by_content(&sha)? {
            Some((_, stored_hash)) => {
                let embedders = lib.store.embedders_of(&sha)?;
                let complete = embedders.contains(&text_id.0) && embedders.contains(&features_id.0);
                if stored_hash == meta_hash && complete {
                    Plan::Unchanged
                } else if !embedders.contains(&features_id.0) {
                    Plan::Full { replaces: None }
                } else {
                    let asset = lib
                        .store
                        .asset(&sha)?
                        .ok_or_else(|| Error::NotFound(sha.clone()))?;
                    Plan::Metadata {
                        asset: Box::new(asset),
                    }
                }
            }
            None => {
                let replaces = match &item.external_id {
                    Some(ext) => lib.store.by_external_id(ext)?.map(|(id, _)| id),
                    None => None,
                };
                Plan::Full { replaces }
            }
        };
        work.push(Work {
            item,
            sha,
            bytes_len: len,
            meta_hash,
            plan,
        });
    }
    let to_process = work
        .iter()
        .filter(|w| !matches!(w.plan, Plan::Unchanged))
        .count();
    progress(IngestEvent::Planned { total, to_process });
    for (item, reason) in pending_failures {
        fail(&mut report, progress, item, reason);
    }

    // 2. Unchanged and metadata-only items, on this thread (no image model needed).
    let mut full = Vec::new();
    for w in work {
        match &w.plan {
            Plan::Unchanged => {
                report.unchanged += 1;
                progress(IngestEvent::Item {
                    item: w.item.item.clone(),
                    outcome: Outcome::Unchanged,
                });
            }
            Plan::Metadata { asset } => {
                let made = process_metadata(lib, &w, asset);
                // The paid calls it made, whatever its outcome.
                lib.store_model_calls(None, &format!("ingest {}", w.item.item))?;
                match made {
                    Ok(p) => {
                        lib.store
                            .put_asset(&p.asset, &w.meta_hash, &p.vectors, None)?;
                        report.updated += 1;
                        progress(IngestEvent::Item {
                            item: w.item.item.clone(),
                            outcome: Outcome::Updated,
                        });
                    }
                    Err(e @ Error::ModelMissing { .. }) => return Err(e),
                    Err(e) => fail(&mut report, progress, w.item.item.clone(), e.to_string()),
                }
            }
            Plan::Full { .. } => full.push(w),
        }
    }

    // 3. New content on worker threads; results written here, one transaction per asset.
    let mut documents: HashMap<String, Vec<f32>> = HashMap::new();
    if !full.is_empty() {
        // Load the models once, before the workers start, so a missing model is one clear
        // error rather than one per item.
        let ctx = WorkerCtx {
            embedder: lib.text_embedder()?,
            analyser: lib.analyser()?,
            image_describer: lib.image_describer()?,
            meter: lib.meter.clone(),
            config: &lib.config,
            paths: &lib.paths,
            describer: &lib.describer,
        };
        let store = &mut lib.store;
        let jobs = opts.jobs.max(1).min(full.len());
        let next = AtomicUsize::new(0);
        // Groups only where batching pays, and never so large that a worker sits idle.
        let group_size = if ctx.embedder.batches_texts() {
            GROUP.min(full.len().div_ceil(jobs)).max(1)
        } else {
            1
        };
        type Made = (
            usize,
            std::result::Result<Processed, String>,
            Vec<crate::domain::ModelCall>,
        );
        let (tx, rx) = mpsc::channel::<Made>();
        let (ctx_ref, full_ref) = (&ctx, &full);
        let cancel = opts.cancel.as_deref();
        let mut write_error = None;
        let documents = &mut documents;
        std::thread::scope(|s| {
            for _ in 0..jobs {
                let tx = tx.clone();
                let next = &next;
                s.spawn(move || {
                    loop {
                        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                            break;
                        }
                        let first = next.fetch_add(group_size, Ordering::Relaxed);
                        let group: Vec<&Work> =
                            full_ref.iter().skip(first).take(group_size).collect();
                        if group.is_empty() {
                            break;
                        }
                        // Each item with the paid calls it made, whatever its outcome.
                        for (k, (r, calls)) in process_group(ctx_ref, &group, cancel)
                            .into_iter()
                            .enumerate()
                        {
                            if tx.send((first + k, r, calls)).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
            drop(tx);
            // Written as results arrive, so progress is durable item by item.
            for (i, r, calls) in rx {
                let w = &full_ref[i];
                if !calls.is_empty()
                    && let Err(e) =
                        store.insert_model_calls(None, &format!("ingest {}", w.item.item), &calls)
                {
                    write_error.get_or_insert(e);
                }
                if write_error.is_some() {
                    continue;
                }
                match r {
                    Ok(p) => {
                        let replaces = match &w.plan {
                            Plan::Full { replaces } => replaces.clone(),
                            _ => None,
                        };
                        match store.put_asset(
                            &p.asset,
                            &w.meta_hash,
                            &p.vectors,
                            replaces.as_deref(),
                        ) {
                            Ok(()) => {
                                if let Some(d) = p.document {
                                    documents.insert(p.asset.id.clone(), d);
                                }
                                let outcome = if replaces.is_some() {
                                    report.updated += 1;
                                    Outcome::Updated
                                } else {
                                    report.ingested += 1;
                                    Outcome::Ingested
                                };
                                progress(IngestEvent::Item {
                                    item: w.item.item.clone(),
                                    outcome,
                                });
                            }
                            Err(e) => write_error = Some(e),
                        }
                    }
                    Err(reason) => fail(&mut report, progress, w.item.item.clone(), reason),
                }
            }
        });
        if let Some(e) = write_error {
            lib.store.finish_ingest_job(job, "failed", &report)?;
            return Err(e);
        }
    }
    report.failed.sort_by(|a, b| a.item.cmp(&b.item));
    report.cancelled = opts
        .cancel
        .as_deref()
        .is_some_and(|c| c.load(Ordering::Relaxed));
    let status = if report.cancelled {
        "cancelled"
    } else {
        "done"
    };
    // Undescribed photos borrow from the described ones now here (a cancelled run leaves it
    // to the next: the mark stays where it was). What this pass cannot do fails alone: the
    // items are written, and the next ingest tries again.
    if !report.cancelled {
        match borrow_from_similar(lib, &text_id, &documents) {
            Ok(r) => {
                report.inferred = r.refreshed;
                for f in r.failed {
                    report.failed.push(ItemFailure {
                        item: f.item,
                        reason: format!(
                            "could not borrow words from similar images ({}); it keeps its own labels' vector until the next ingest",
                            f.reason
                        ),
                    });
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "borrowing from similar images failed");
                report.failed.push(ItemFailure {
                    item: "(photos without human text)".into(),
                    reason: format!(
                        "could not borrow words from similar images: {e}; they keep their own labels' vectors until the next ingest"
                    ),
                });
            }
        }
        report.failed.sort_by(|a, b| a.item.cmp(&b.item));
    }
    lib.store.finish_ingest_job(job, status, &report)?;
    if report.ingested + report.updated + report.inferred > 0 {
        report.unsynced = lib.sync_inline();
    }
    Ok(report)
}
