//! Service traits the engine works over, and their implementations: `local` (the embedded
//! default), `fake` (deterministic, for tests; never selectable from config). Services never
//! touch the terminal.
pub mod aws;
pub mod bedrock;
pub mod built_once;
pub mod cancel;
pub mod element_fit;

/// How a generator's note starts when the job was cancelled after some images were made.
pub const CANCELLED_NOTE: &str = "cancelled";
pub mod fake;
pub mod import_source;
pub mod language;
pub mod language_offset;
pub mod local;
pub mod meter;
pub mod opensearch;
pub mod query_cache;
pub mod s3vectors;
pub mod templates;
pub mod translate;

use crate::Result;
use crate::domain::{Description, EmbedderId, Label, PaletteColor, SearchFilter};

/// Whether a text is a search query or a library document (some models embed them differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRole {
    Query,
    Document,
}

/// Turns text (and, for multimodal models, images) into L2-normalised vectors.
pub trait Embedder: Send + Sync {
    fn id(&self) -> &EmbedderId;
    fn dim(&self) -> usize;
    fn embed_texts(&self, texts: &[String], role: TextRole) -> Result<Vec<Vec<f32>>>;
    /// Multimodal embedders embed library images directly; text-only ones return `None`, and
    /// the library embeds the image's description document instead.
    fn embed_image(&self, _image: &image::DynamicImage) -> Option<Result<Vec<f32>>> {
        None
    }
    /// Whether `embed_image` embeds images (then library vectors are image vectors).
    fn embeds_images(&self) -> bool {
        false
    }
    /// Whether its text side is English only (a brief in another language is then searched as
    /// an English description of it).
    fn english_only_text(&self) -> bool {
        false
    }
    /// Whether several texts in one `embed_texts` call cost less each than one call per text
    /// (a local model's batched forward pass); ingest then embeds documents in groups. Remote
    /// embedders say no: their calls are metered item by item.
    fn batches_texts(&self) -> bool {
        false
    }
    /// The z-score from which a reference's element counts as fitting a brief
    /// (`element_fit`), measured for this model on the dev briefs, for an English brief or
    /// one in another language; `None` when unmeasured or when the model cannot read the
    /// brief's language (then the offline composer cannot judge elements and says so).
    fn element_fit_threshold(&self, _english_brief: bool) -> Option<f32> {
        None
    }
    /// Where a text search hit counts as a strong or fair match, in standard deviations above
    /// the query's mean similarity to the library (`engine::search`'s background), measured
    /// for this model on the dev queries; `None` when unmeasured (hits then carry their z and
    /// percentile but no word), or for a query in a language the model cannot read.
    fn strength_thresholds(&self, _english_query: bool) -> Option<StrengthThresholds> {
        None
    }
    /// Whether an image nobody described is indexed by its classifier labels' class vectors
    /// (`local::label_space`), and if so the distance from the class mean at which those
    /// vectors are placed: the mean distance of a photo's description document from it,
    /// measured for the model. A thousand class documents are embedded once, so only local
    /// models say yes (e5 and MiniLM).
    fn label_space(&self) -> Option<f32> {
        None
    }
    /// Whether a query in another language is moved toward English text by that language's
    /// offset (`language_offset`): multilingual local models, whose documents are English.
    fn language_offsets(&self) -> bool {
        false
    }
    /// Whether a query in another language is searched as its English translation where a
    /// translator is installed (`translate`): local models whose documents are English.
    fn translates_queries(&self) -> bool {
        false
    }
    /// The embedder under a cache (`query_cache`), for texts that would only crowd a cache of
    /// user queries out (the parallel sentences of `language_offset`); `None` for an embedder
    /// that caches nothing.
    fn uncached(&self) -> Option<&dyn Embedder> {
        None
    }
}

/// `Embedder::strength_thresholds`: a hit is strong at `strong_z` or more, fair at `fair_z` or
/// more, else weak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrengthThresholds {
    pub strong_z: f32,
    pub fair_z: f32,
}

/// What an image classifier sees in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageAnalysis {
    /// Top labels with probabilities, best first.
    pub labels: Vec<Label>,
    /// Pooled features for image-to-image similarity (L2-normalised).
    pub features: Vec<f32>,
    /// Which model produced them, e.g. "local/efficientnet-lite0".
    pub model: String,
    /// The calibrated probability that the image shows people, where the analyser has a score
    /// for it (`local::people`).
    pub people: Option<f32>,
}

pub trait ImageAnalyser: Send + Sync {
    fn analyse(&self, image: &image::DynamicImage) -> Result<ImageAnalysis>;
    /// The embedder id of `features` vectors.
    fn features_id(&self) -> &EmbedderId;
}

/// Everything a describer may use about one asset.
#[derive(Debug, Clone, Default)]
pub struct DescribeInput {
    pub caption: Option<String>,
    pub human_description: Option<String>,
    /// Who wrote `human_description` and `human_labels` when not people (an imported
    /// description); None: the manifest's people.
    pub description_source: Option<String>,
    pub campaign: Option<String>,
    pub human_labels: Vec<String>,
    pub model_labels: Vec<Label>,
    pub palette: Vec<PaletteColor>,
    pub width: u32,
    pub height: u32,
    /// Mean luma 0..1.
    pub brightness: f32,
    /// The analyser's probability that the image shows people, when it has one.
    pub people: Option<f32>,
}

pub trait Describer: Send + Sync {
    fn describe(&self, input: &DescribeInput) -> Result<Description>;
}

/// What a vision model says an image shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDescription {
    pub description: String,
    pub elements: Vec<String>,
}

/// A model that looks at the image itself (cloud); its words replace the local description's
/// text and elements, the local facts (palette, size, brightness) stay.
pub trait ImageDescriber: Send + Sync {
    fn model(&self) -> &str;
    fn describe_image(
        &self,
        bytes: &[u8],
        format: &str,
        input: &DescribeInput,
    ) -> Result<ImageDescription>;
}

pub use crate::domain::index::{
    Change, DigestBucket, DocState, Neighbour, Tombstone, VectorMeta, VectorRecord, WriteFailure,
    WriteReport,
};

/// A k-NN index over the vectors of one embedder: the embedded exact index, or a server's.
/// Inner product on L2-normalised vectors everywhere. Filters apply during the search: when at
/// least k vectors match the filter, exactly k come back, best first. Writes are batches of
/// versioned records from the library's change feed; an index keeps the newest version of each
/// id and reports older ones as stale. Synchronous: server clients own a small runtime.
pub trait VectorIndex: Send + Sync {
    fn embedder(&self) -> &EmbedderId;
    fn dim(&self) -> usize;
    /// Writes records (idempotent); a record not newer than the index's copy is stale, a bad
    /// one (wrong dimension, NaN) fails by name; the rest of the batch goes on.
    fn upsert(&mut self, records: &[VectorRecord]) -> Result<WriteReport>;
    /// Removes ids whose stored version is older than the tombstone's.
    fn remove(&mut self, tombstones: &[Tombstone]) -> Result<WriteReport>;
    /// Removes documents by the index's own ids (`DocState::doc`, else the asset id), whatever
    /// their version: the repair of documents the library does not know, or of duplicates.
    fn remove_documents(&mut self, docs: &[String]) -> Result<WriteReport> {
        let tombstones: Vec<Tombstone> = docs
            .iter()
            .map(|d| Tombstone {
                id: d.clone(),
                version: i64::MAX,
            })
            .collect();
        self.remove(&tombstones)
    }
    /// Makes every write so far visible to searches.
    fn flush(&mut self) -> Result<()>;
    /// How many vectors match `filter`.
    fn count(&self, filter: &SearchFilter) -> Result<usize>;
    fn search(&self, query: &[f32], filter: &SearchFilter, k: usize) -> Result<Vec<Neighbour>>;
    /// The same, by an exact scan (for when the approximate path returned too few).
    fn search_exact(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
    ) -> Result<Vec<Neighbour>> {
        self.search(query, filter, k)
    }
    /// The percentile rank (ties count half) of each KPI within the KPIs of the vectors that
    /// match `filter`, in one round trip; an unknown KPI ranks 0.
    fn kpi_percentiles(&self, filter: &SearchFilter, kpis: &[Option<f64>]) -> Result<Vec<f32>>;
    /// Count and version sum/max per id bucket, sorted by bucket (drift checks).
    fn digest(&self) -> Result<Vec<DigestBucket>>;
    /// The state of every vector in a digest bucket, sorted by id; an id held twice (a server
    /// that assigns its own document ids) appears twice.
    fn states_in(&self, bucket: &str) -> Result<Vec<DocState>>;
}

/// What a backend is, as `doctor` shows it (never a credential).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackendInfo {
    /// "embedded" or "opensearch".
    pub kind: String,
    pub endpoint: String,
    pub auth: String,
    pub engine: String,
    pub namespace: String,
}

/// One index a backend holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndexInfo {
    pub name: String,
    pub embedder: String,
    pub dim: usize,
    pub library_id: String,
    pub count: u64,
}

/// What an index is for: checked against what a server index says it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub embedder: EmbedderId,
    pub dim: usize,
    /// The library's random id: two libraries never share an index.
    pub library_id: String,
}

/// Where indexes live: the embedded exact index, or a server (OpenSearch).
pub trait VectorBackend: Send + Sync {
    fn info(&self) -> BackendInfo;
    /// The name an embedder's index is found under (an alias on clusters).
    fn index_name(&self, embedder: &EmbedderId) -> String;
    /// The index of `spec.embedder`; created when absent and `create`. An index that holds
    /// another embedder, dimension or library is an error naming both values and the fix.
    fn open(&self, spec: &IndexSpec, create: bool) -> Result<Box<dyn VectorIndex>>;
    /// A new, empty index for `spec`, not yet the one `open` finds (a rebuild fills it, then
    /// `promote` makes it current).
    fn open_fresh(&self, spec: &IndexSpec) -> Result<(String, Box<dyn VectorIndex>)>;
    /// Makes the index `name` (from `open_fresh`) the one `open` finds, and drops the old one.
    fn promote(&self, spec: &IndexSpec, name: &str) -> Result<()>;
    /// The indexes of this backend's namespace.
    fn indexes(&self) -> Result<Vec<IndexInfo>>;
    /// Server version, plugins, status: one line each.
    fn health(&self) -> Result<Vec<(String, String)>>;
}

/// L2-normalises in place; a zero vector stays zero.
/// An error's text followed by each of its sources' (an SDK's or HTTP client's own text is
/// often terse, "response error"; its sources say what happened).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        text.push_str(": ");
        text.push_str(&s.to_string());
        src = s.source();
    }
    text
}

pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// A streamed piece of a prompt writer's output.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptEvent {
    /// Scratchpad text (the writer's reasoning), in order.
    Reasoning(String),
    /// Answer text, in order.
    Answer(String),
}

/// One chosen reference, as the prompt writer sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReferenceForPrompt {
    pub asset_id: String,
    /// The manifest id, else the file name: what the reasoning cites.
    pub label: String,
    pub description: String,
    pub elements: Vec<String>,
    /// Words borrowed from similar described photos when nobody described this one
    /// (`Description::inferred`): a guess, shown to the LLM prompt writer as one, and never
    /// taken by the offline composer, which uses only what the image itself shows.
    pub inferred: Vec<String>,
    pub palette: Vec<PaletteColor>,
    pub brightness: f32,
    pub kpi: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptInput {
    pub brief: String,
    pub objective: String,
    pub node: String,
    pub references: Vec<ReferenceForPrompt>,
    pub brand: Option<crate::domain::BrandKit>,
    /// The re-run instruction, if any.
    pub instruction: Option<String>,
    /// The prompt the instruction changes, if any.
    pub previous_prompt: Option<String>,
    /// The generator's prompt limit.
    pub max_chars: usize,
    /// How well each reference element fits the brief, by the offline text embedder; `None`
    /// when it could not be measured.
    pub element_fit: Option<element_fit::ElementFit>,
    /// Set when `brief` is the English translation of the campaign's brief, made for a writer
    /// that cannot translate (`PromptWriter::wants_english_brief`, `translate`).
    pub translated_from: Option<translate::Translation>,
    /// Why a brief that wanted translating was not translated (Apertium missing, or its
    /// translation failed: `translate::why_not_translated`); `None` otherwise.
    pub not_translated: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct PromptResult {
    pub reasoning: String,
    pub prompt: String,
    pub negative_prompt: String,
    /// What wrote it, and what kind of thing that is.
    pub model: String,
    pub flags: Vec<String>,
    /// Tokens the call used (cloud models).
    pub usage: Option<TokenUsage>,
}

pub use crate::domain::TokenUsage;

/// An embedder id as a server-side name part: lowercase letters and digits, any other run of
/// characters one '-', at most `max` characters, no '-' at either end; and the first 8 hex
/// digits of the id's SHA-256, which keeps two ids that slug alike apart. OpenSearch and
/// S3 Vectors name their indexes `<namespace>-<slug>-<hash>`.
pub(crate) fn embedder_slug(embedder: &str, max: usize) -> (String, String) {
    use sha2::{Digest, Sha256};
    let mut slug = String::new();
    for c in embedder.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(max).collect();
    let hash = hex::encode(Sha256::digest(embedder.as_bytes()));
    (
        slug.trim_end_matches('-').to_string(),
        hash.chars().take(8).collect(),
    )
}

/// Writes a text-to-image prompt, streaming reasoning and answer as they are produced.
pub trait PromptWriter: Send + Sync {
    fn model(&self) -> &str;
    /// Whether it needs `PromptInput::element_fit` (a writer that does not understand the
    /// brief itself: the offline composer); language models judge the references themselves.
    fn wants_element_fit(&self) -> bool {
        false
    }
    /// Whether a brief in another language is better given to it as its English translation
    /// where a translator is installed (`translate`): a writer that cannot translate (the
    /// offline composer); language models read the brief themselves.
    fn wants_english_brief(&self) -> bool {
        false
    }
    fn write(
        &self,
        input: &PromptInput,
        on_event: &mut dyn FnMut(PromptEvent),
    ) -> Result<PromptResult>;
}

/// The size rules of a generator model.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeRules {
    pub min_side: u32,
    pub max_side: u32,
    pub multiple_of: u32,
    pub max_pixels: u64,
    /// Longest side / shortest side.
    pub max_aspect: f32,
}

/// What a generator model can do, and its parameter limits.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorCaps {
    pub model: String,
    pub tasks: Vec<crate::domain::TaskType>,
    pub max_count: u32,
    pub max_prompt_chars: usize,
    pub sizes: SizeRules,
    pub cfg_range: (f32, f32),
    pub seed_max: u32,
    pub max_reference_images: usize,
    pub max_colours: usize,
    /// Longest negative prompt; 0 = the model takes none.
    pub max_negative_chars: usize,
    /// Shown wherever the model is offered (e.g. "legacy: end-of-life on Bedrock ...").
    pub notice: Option<String>,
}

impl GeneratorCaps {
    /// The seed of the i-th image of a request that makes one image per call: `seed + i`,
    /// wrapped within 1..=seed_max (0 asks these models for a random seed, so it is skipped).
    pub fn nth_seed(&self, seed: u32, i: u32) -> u32 {
        if i == 0 {
            return seed;
        }
        let max = self.seed_max.max(1) as u64;
        let s = seed as u64 + i as u64;
        if s <= max {
            s as u32
        } else {
            (1 + (s - 1) % max) as u32
        }
    }
}

impl GeneratorCaps {
    /// Checks a request against the model's rules; the error names the field and the rule.
    pub fn validate(&self, r: &crate::domain::GenerationRequest) -> Result<()> {
        use crate::Error::Invalid;
        let p = &r.params;
        let bad = |msg: String| Err(Invalid(format!("{}: {msg}", self.model)));
        if !self.tasks.contains(&p.task) {
            return bad(format!(
                "task {:?} is not supported (supported: {:?})",
                p.task, self.tasks
            ));
        }
        if p.count == 0 || p.count > self.max_count {
            return bad(format!(
                "count {} is outside 1..={}",
                p.count, self.max_count
            ));
        }
        let n = r.prompt.chars().count();
        if n == 0 || n > self.max_prompt_chars {
            return bad(format!(
                "prompt has {n} characters; it must have 1..={}",
                self.max_prompt_chars
            ));
        }
        let neg = r.negative_prompt.trim().chars().count();
        if neg > self.max_negative_chars {
            return bad(format!(
                "negative prompt has {neg} characters; the model takes at most {} (shorten it in the Prompt pane or with --negative)",
                self.max_negative_chars
            ));
        }
        let s = &self.sizes;
        for (name, v) in [("width", p.width), ("height", p.height)] {
            if v < s.min_side || v > s.max_side {
                return bad(format!(
                    "{name} {v} is outside {}..={}",
                    s.min_side, s.max_side
                ));
            }
            if v % s.multiple_of != 0 {
                return bad(format!("{name} {v} is not a multiple of {}", s.multiple_of));
            }
        }
        if p.width as u64 * p.height as u64 > s.max_pixels {
            return bad(format!(
                "{}x{} has more than {} pixels",
                p.width, p.height, s.max_pixels
            ));
        }
        let aspect = p.width.max(p.height) as f32 / p.width.min(p.height) as f32;
        if aspect > s.max_aspect {
            return bad(format!("aspect ratio {aspect:.2} is over {}", s.max_aspect));
        }
        if p.cfg_scale < self.cfg_range.0 || p.cfg_scale > self.cfg_range.1 {
            return bad(format!(
                "cfg {} is outside {}..={}",
                p.cfg_scale, self.cfg_range.0, self.cfg_range.1
            ));
        }
        if p.seed > self.seed_max {
            return bad(format!("seed {} is over {}", p.seed, self.seed_max));
        }
        match p.task {
            crate::domain::TaskType::Variation => {
                if r.reference_images.is_empty() {
                    return bad("a variation needs at least one selected reference image".into());
                }
                if r.reference_images.len() > self.max_reference_images {
                    return bad(format!(
                        "at most {} reference images",
                        self.max_reference_images
                    ));
                }
                if let Some(st) = p.similarity_strength
                    && !(0.2..=1.0).contains(&st)
                {
                    return bad(format!("similarity strength {st} is outside 0.2..=1.0"));
                }
            }
            crate::domain::TaskType::ColorGuided => {
                if r.colours.is_empty() || r.colours.len() > self.max_colours {
                    return bad(format!(
                        "colour-guided generation needs 1..={} colours",
                        self.max_colours
                    ));
                }
            }
            crate::domain::TaskType::Text => {}
        }
        Ok(())
    }

    /// The largest valid size with roughly this aspect ratio (e.g. "16:9").
    pub fn size_for_aspect(&self, aspect: &str) -> Result<(u32, u32)> {
        let (a, b) = aspect
            .split_once(':')
            .and_then(|(a, b)| Some((a.trim().parse::<f32>().ok()?, b.trim().parse::<f32>().ok()?)))
            .filter(|(a, b)| *a > 0.0 && *b > 0.0)
            .ok_or_else(|| crate::Error::Invalid(format!("aspect '{aspect}' is not like 16:9")))?;
        let s = &self.sizes;
        let ratio = a / b;
        if ratio.max(1.0 / ratio) > s.max_aspect {
            return Err(crate::Error::Invalid(format!(
                "{}: aspect {aspect} is over {}",
                self.model, s.max_aspect
            )));
        }
        let m = s.multiple_of as f32;
        let h = ((s.max_pixels as f32 / ratio).sqrt() / m).floor() * m;
        let w = ((h * ratio) / m).floor() * m;
        let clamp =
            |v: f32| (v as u32).clamp(s.min_side, s.max_side) / s.multiple_of * s.multiple_of;
        Ok((clamp(w), clamp(h)))
    }
}

/// One image a generator returned.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedPng {
    pub png: Vec<u8>,
    pub seed: u32,
}

/// A text-to-image model. It declares what it can do and validates requests before any call.
pub trait ImageGenerator: Send + Sync {
    fn caps(&self) -> &GeneratorCaps;
    fn validate(&self, request: &crate::domain::GenerationRequest) -> Result<()> {
        self.caps().validate(request)
    }
    fn generate(&self, request: &crate::domain::GenerationRequest) -> Result<Vec<GeneratedPng>>;
    /// The images, and a note for each one the model withheld (content filter): withheld
    /// images are reported, never saved.
    fn generate_reporting(
        &self,
        request: &crate::domain::GenerationRequest,
    ) -> Result<(Vec<GeneratedPng>, Vec<String>)> {
        Ok((self.generate(request)?, Vec::new()))
    }
}

/// The configured generator, with the Bedrock client `client` gives (made only if needed);
/// None for "none" (offline there is none).
pub fn generator_using(
    cfg: &crate::config::Config,
    client: &dyn Fn() -> Result<std::sync::Arc<bedrock::Bedrock>>,
) -> Result<Option<Box<dyn ImageGenerator>>> {
    let backend = cfg.generator.backend.as_str();
    if backend == "none" {
        return Ok(None);
    }
    let client = client()?;
    Ok(Some(match backend {
        "bedrock/stability" => {
            let route = client.route("stability", &cfg.bedrock.models.stability)?;
            Box::new(bedrock::stability::Stability::new(client, route))
        }
        _ => {
            let route = client.route("canvas", &cfg.bedrock.models.canvas)?;
            Box::new(bedrock::canvas::NovaCanvas::new(client, route))
        }
    }))
}
