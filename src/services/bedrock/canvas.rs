//! Amazon Nova Canvas (`amazon.nova-canvas-v1:0`) through InvokeModel: text to image, variations
//! of the chosen references, and colour-guided generation, 1-5 images in one call.
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::domain::{GenerationRequest, Quality, TaskType};
use crate::services::bedrock::{Bedrock, decode_image, to_png};
use crate::services::{GeneratedPng, GeneratorCaps, ImageGenerator, SizeRules};
use crate::{Error, Result};

/// The rules Nova Canvas documents: 1-5 images, sides 320-4096 in multiples of 16, at most
/// 4.19 MP, aspect up to 4:1, cfgScale 1.1-10, seed 0-2147483646, text 1-1024 characters,
/// up to 5 reference images, up to 10 colours.
pub fn caps(model: &str) -> GeneratorCaps {
    GeneratorCaps {
        model: model.into(),
        tasks: vec![TaskType::Text, TaskType::Variation, TaskType::ColorGuided],
        max_count: 5,
        max_prompt_chars: 1024,
        sizes: SizeRules {
            min_side: 320,
            max_side: 4096,
            multiple_of: 16,
            max_pixels: 4_194_304,
            max_aspect: 4.0,
        },
        cfg_range: (1.1, 10.0),
        seed_max: 2_147_483_646,
        max_reference_images: 5,
        max_colours: 10,
    }
}

pub struct NovaCanvas {
    bedrock: Arc<Bedrock>,
    caps: GeneratorCaps,
}

impl NovaCanvas {
    pub fn new(bedrock: Arc<Bedrock>, model: &str) -> Self {
        NovaCanvas {
            bedrock,
            caps: caps(model),
        }
    }
}

/// A reference image as Canvas takes it: base64 PNG, scaled down to fit its size rules.
fn reference_b64(path: &str, rules: &SizeRules) -> Result<String> {
    let img = image::open(path).map_err(|e| Error::Invalid(format!("{path}: {e}")))?;
    let (w, h) = (img.width() as u64, img.height() as u64);
    let img = if w * h > rules.max_pixels || w.max(h) > rules.max_side as u64 {
        let scale = (rules.max_pixels as f64 / (w * h) as f64)
            .sqrt()
            .min(rules.max_side as f64 / w.max(h) as f64);
        img.resize(
            ((w as f64 * scale) as u32).max(1),
            ((h as f64 * scale) as u32).max(1),
            image::imageops::FilterType::Triangle,
        )
    } else {
        img
    };
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Invalid(format!("{path}: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(png))
}

/// An f32 parameter as the decimal the user chose (0.8, not 0.800000011920929).
fn decimal(x: f32) -> f64 {
    (x as f64 * 1e4).round() / 1e4
}

/// The InvokeModel body for a request (public for the wire tests' expectations).
pub fn body(r: &GenerationRequest, rules: &SizeRules) -> Result<Value> {
    let p = &r.params;
    let mut params = Map::new();
    params.insert("text".into(), json!(r.prompt));
    if !r.negative_prompt.trim().is_empty() {
        params.insert("negativeText".into(), json!(r.negative_prompt));
    }
    let (task, key) = match p.task {
        TaskType::Text => ("TEXT_IMAGE", "textToImageParams"),
        TaskType::Variation => {
            let images = r
                .reference_images
                .iter()
                .map(|f| reference_b64(f, rules))
                .collect::<Result<Vec<_>>>()?;
            params.insert("images".into(), json!(images));
            params.insert(
                "similarityStrength".into(),
                json!(decimal(p.similarity_strength.unwrap_or(0.7))),
            );
            ("IMAGE_VARIATION", "imageVariationParams")
        }
        TaskType::ColorGuided => {
            params.insert("colors".into(), json!(r.colours));
            ("COLOR_GUIDED_GENERATION", "colorGuidedGenerationParams")
        }
    };
    Ok(json!({
        "taskType": task,
        key: params,
        "imageGenerationConfig": {
            "numberOfImages": p.count,
            "width": p.width,
            "height": p.height,
            "cfgScale": decimal(p.cfg_scale),
            "seed": p.seed,
            "quality": match p.quality { Quality::Standard => "standard", Quality::Premium => "premium" },
        }
    }))
}

impl ImageGenerator for NovaCanvas {
    fn caps(&self) -> &GeneratorCaps {
        &self.caps
    }

    fn generate(&self, r: &GenerationRequest) -> Result<Vec<GeneratedPng>> {
        self.validate(r)?;
        let model = &self.caps.model;
        let answer = self
            .bedrock
            .invoke_json(model, &body(r, &self.caps.sizes)?)?;
        if let Some(e) = answer.get("error").and_then(Value::as_str)
            && !e.is_empty()
        {
            return Err(Error::Cloud(format!("{model}: {e}")));
        }
        let images = answer
            .get("images")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Cloud(format!("{model}: the answer has no images")))?;
        // One call, one seed: every image of the call records it (with the same request, the
        // model makes the same set again).
        images
            .iter()
            .map(|b| {
                let b64 = b
                    .as_str()
                    .ok_or_else(|| Error::Cloud(format!("{model}: an image is not a string")))?;
                Ok(GeneratedPng {
                    png: to_png(model, &decode_image(model, b64)?)?,
                    seed: r.params.seed,
                })
            })
            .collect()
    }
}
