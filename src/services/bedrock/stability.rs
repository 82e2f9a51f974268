//! Stability AI image models on Bedrock (Nova Canvas's successor there; default
//! `stability.stable-image-ultra-v1:1`) through InvokeModel. One image per call, so a request
//! for n images makes n calls with seeds seed, seed+1, ...; images the content filter withheld
//! are reported, never saved.
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::domain::{GenerationRequest, TaskType};
use crate::services::bedrock::{Bedrock, decode_image, to_png};
use crate::services::{GeneratedPng, GeneratorCaps, ImageGenerator, SizeRules};
use crate::{Error, Result};

/// Aspect ratios the Stability image models accept.
pub const ASPECT_RATIOS: [(&str, f32); 9] = [
    ("21:9", 21.0 / 9.0),
    ("16:9", 16.0 / 9.0),
    ("3:2", 1.5),
    ("5:4", 1.25),
    ("1:1", 1.0),
    ("4:5", 0.8),
    ("2:3", 2.0 / 3.0),
    ("9:16", 9.0 / 16.0),
    ("9:21", 9.0 / 21.0),
];

/// The model makes about one megapixel at the asked aspect ratio; sizes here only carry the
/// ratio (the nearest accepted one is sent). It takes no CFG scale.
pub fn caps(model: &str) -> GeneratorCaps {
    GeneratorCaps {
        model: model.into(),
        tasks: vec![TaskType::Text],
        max_count: 5,
        max_prompt_chars: 10_000,
        sizes: SizeRules {
            min_side: 320,
            max_side: 4096,
            multiple_of: 16,
            max_pixels: 1_048_576,
            max_aspect: 21.0 / 9.0 + 0.01,
        },
        cfg_range: (0.0, 35.0),
        seed_max: 4_294_967_294,
        max_reference_images: 0,
        max_colours: 0,
    }
}

/// The accepted aspect ratio nearest to width:height.
pub fn aspect_ratio(width: u32, height: u32) -> &'static str {
    let r = width as f32 / height.max(1) as f32;
    ASPECT_RATIOS
        .iter()
        .min_by(|a, b| {
            (a.1.ln() - r.ln())
                .abs()
                .total_cmp(&(b.1.ln() - r.ln()).abs())
        })
        .map(|a| a.0)
        .unwrap_or("1:1")
}

pub fn body(r: &GenerationRequest, seed: u32) -> Value {
    let mut b = Map::new();
    b.insert("prompt".into(), json!(r.prompt));
    if !r.negative_prompt.trim().is_empty() {
        b.insert("negative_prompt".into(), json!(r.negative_prompt));
    }
    b.insert(
        "aspect_ratio".into(),
        json!(aspect_ratio(r.params.width, r.params.height)),
    );
    b.insert("seed".into(), json!(seed));
    b.insert("output_format".into(), json!("png"));
    Value::Object(b)
}

pub struct Stability {
    bedrock: Arc<Bedrock>,
    caps: GeneratorCaps,
}

impl Stability {
    pub fn new(bedrock: Arc<Bedrock>, model: &str) -> Self {
        Stability {
            bedrock,
            caps: caps(model),
        }
    }
}

impl ImageGenerator for Stability {
    fn caps(&self) -> &GeneratorCaps {
        &self.caps
    }

    fn generate(&self, r: &GenerationRequest) -> Result<Vec<GeneratedPng>> {
        Ok(self.generate_reporting(r)?.0)
    }

    fn generate_reporting(
        &self,
        r: &GenerationRequest,
    ) -> Result<(Vec<GeneratedPng>, Vec<String>)> {
        self.validate(r)?;
        let model = &self.caps.model;
        let mut out = Vec::new();
        let mut filtered = Vec::new();
        for i in 0..r.params.count {
            let seed = r.params.seed.wrapping_add(i);
            let answer = self.bedrock.invoke_json(model, &body(r, seed))?;
            let images = answer.get("images").and_then(Value::as_array);
            let seeds = answer.get("seeds").and_then(Value::as_array);
            let reasons = answer.get("finish_reasons").and_then(Value::as_array);
            let Some(images) = images else {
                return Err(Error::Cloud(format!("{model}: the answer has no images")));
            };
            for (j, img) in images.iter().enumerate() {
                let reason = reasons
                    .and_then(|r| r.get(j))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty());
                if let Some(reason) = reason {
                    tracing::warn!(model, seed, reason, "image withheld by the content filter");
                    filtered.push(format!("seed {seed}: {reason}"));
                    continue;
                }
                let b64 = img.as_str().unwrap_or("");
                let seed = seeds
                    .and_then(|s| s.get(j))
                    .and_then(Value::as_u64)
                    .map(|s| s as u32)
                    .unwrap_or(seed);
                out.push(GeneratedPng {
                    png: to_png(model, &decode_image(model, b64)?)?,
                    seed,
                });
            }
        }
        if out.is_empty() && !filtered.is_empty() {
            return Err(Error::Cloud(format!(
                "{model}: every image was withheld by the model's content filter ({}); change the prompt and try again",
                filtered.join("; ")
            )));
        }
        let notes = filtered
            .iter()
            .map(|f| format!("{model}: an image was withheld by the content filter ({f})"))
            .collect();
        Ok((out, notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_aspect_ratio() {
        assert_eq!(aspect_ratio(1024, 1024), "1:1");
        assert_eq!(aspect_ratio(1280, 720), "16:9");
        assert_eq!(aspect_ratio(720, 1280), "9:16");
        assert_eq!(aspect_ratio(1200, 800), "3:2");
        assert_eq!(aspect_ratio(4000, 1000), "21:9");
    }
}
