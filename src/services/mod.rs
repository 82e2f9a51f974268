//! Service traits the engine works over, and their implementations: `local` (the embedded
//! default), `fake` (deterministic, for tests; never selectable from config). Services never
//! touch the terminal.
pub mod fake;
pub mod local;

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
    pub campaign: Option<String>,
    pub human_labels: Vec<String>,
    pub model_labels: Vec<Label>,
    pub palette: Vec<PaletteColor>,
    pub width: u32,
    pub height: u32,
    /// Mean luma 0..1.
    pub brightness: f32,
}

pub trait Describer: Send + Sync {
    fn describe(&self, input: &DescribeInput) -> Result<Description>;
}

/// Per-vector data the index filters and ranks on.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMeta {
    pub objective: String,
    pub node: String,
    pub kpi: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub id: String,
    pub similarity: f32,
}

/// A k-NN index over the vectors of one embedder. Filters apply during the search: when at
/// least k vectors match the filter, exactly k come back, best first.
pub trait VectorIndex: Send + Sync {
    fn embedder(&self) -> &EmbedderId;
    fn dim(&self) -> usize;
    fn upsert(&mut self, id: &str, vector: &[f32], meta: VectorMeta) -> Result<()>;
    fn remove(&mut self, id: &str) -> bool;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn search(&self, query: &[f32], filter: &SearchFilter, k: usize) -> Result<Vec<Neighbour>>;
    /// KPIs of every vector matching `filter` (unknown KPIs left out), sorted ascending.
    fn filtered_kpis(&self, filter: &SearchFilter) -> Vec<f64>;
}

/// L2-normalises in place; a zero vector stays zero.
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
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct PromptResult {
    pub reasoning: String,
    pub prompt: String,
    pub negative_prompt: String,
    /// What wrote it, and what kind of thing that is.
    pub model: String,
    pub flags: Vec<String>,
}

/// Writes a text-to-image prompt, streaming reasoning and answer as they are produced.
pub trait PromptWriter: Send + Sync {
    fn model(&self) -> &str;
    fn write(
        &self,
        input: &PromptInput,
        on_event: &mut dyn FnMut(PromptEvent),
    ) -> Result<PromptResult>;
}
