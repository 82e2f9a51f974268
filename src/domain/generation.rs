use serde::{Deserialize, Serialize};

/// What a generator is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskType {
    /// Text to image.
    Text,
    /// Variations of the selected reference images.
    Variation,
    /// Text to image guided by a colour palette (references' and brand kit's).
    ColorGuided,
}

impl TaskType {
    pub fn parse(s: &str) -> Option<TaskType> {
        match s {
            "text" => Some(TaskType::Text),
            "variation" => Some(TaskType::Variation),
            "color-guided" | "colour-guided" => Some(TaskType::ColorGuided),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Standard,
    Premium,
}

/// Parameters of one generation call, as recorded (the seed is always concrete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    pub count: u32,
    pub width: u32,
    pub height: u32,
    pub seed: u32,
    /// Whether the seed was drawn for this call rather than given.
    pub seed_was_random: bool,
    pub cfg_scale: f32,
    pub quality: Quality,
    pub task: TaskType,
    /// For variations: how close to the references (0.2..1.0).
    pub similarity_strength: Option<f32>,
}

/// Everything a generator receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRequest {
    pub prompt: String,
    pub negative_prompt: String,
    pub params: GenerationParams,
    /// Files of the reference images (variation).
    pub reference_images: Vec<String>,
    /// Hex colours (colour-guided).
    pub colours: Vec<String>,
}

/// How close a generated image is to the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Novelty {
    /// The most similar library asset by image features.
    pub nearest_asset: Option<String>,
    pub similarity: f32,
    /// Perceptual-hash distance to the nearest asset by hash (0 = same picture).
    pub phash_distance: Option<u32>,
    pub phash_nearest: Option<String>,
    pub too_close: bool,
}

/// One generated image with its full provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedImage {
    /// sha256 of the PNG.
    pub id: String,
    pub generation_id: i64,
    pub campaign_id: String,
    pub path: String,
    pub seed: u32,
    pub model: String,
    pub prompt_version_id: i64,
    pub request: GenerationRequest,
    /// Asset ids of the references used.
    pub references: Vec<String>,
    pub novelty: Option<Novelty>,
    /// Real results, recorded after the campaign ran.
    pub kpi: Option<f64>,
    pub created_at: String,
}
