//! Stability AI image models on Bedrock through InvokeModel: Stable Image Ultra
//! (`stability.stable-image-ultra-v1:1`), Stable Image Core (`stability.stable-image-core-v1:1`,
//! the cheapest) and Stable Diffusion 3.5 Large (`stability.sd3-5-large-v1:0`, which also makes
//! variations of one reference image). One image per call, so a request for n images makes n
//! calls with seeds seed, seed+1, ... (wrapped within the model's range, never to 0, which asks
//! for a random seed). Answers follow the documented shapes: `{seeds, finish_reasons: [null],
//! images}` for an image, `{finish_reasons: ["Filter reason: ..."]}` without images when the
//! content filter withheld it (reported, never saved), `"Inference error"` for a failure that
//! is not a filter. Images already made are kept when a later call of the batch fails.
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::domain::{GenerationRequest, ModelCall, TaskType};
use crate::services::bedrock::{Bedrock, Family, Route, decode_image, to_png};
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

/// The models make about one megapixel at the asked aspect ratio; sizes here only carry the
/// ratio (the nearest accepted one is sent). They take no CFG scale. Prompt and negative
/// prompt up to 10,000 characters; seeds 0-4,294,967,294 (0 = random). SD3.5 Large also takes
/// one reference image for a variation (image-to-image).
pub fn caps(model: &str, family: Family) -> GeneratorCaps {
    let variation = family == Family::Sd35Large;
    GeneratorCaps {
        model: model.into(),
        tasks: if variation {
            vec![TaskType::Text, TaskType::Variation]
        } else {
            vec![TaskType::Text]
        },
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
        max_reference_images: usize::from(variation),
        max_colours: 0,
        max_negative_chars: 10_000,
        notice: None,
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

/// The InvokeModel body of image `seed` of a request (public for the wire tests). For a
/// variation (SD3.5 Large) `reference` is the PNG of the reference image.
pub fn body(r: &GenerationRequest, seed: u32, family: Family, reference: Option<&[u8]>) -> Value {
    let mut b = Map::new();
    b.insert("prompt".into(), json!(r.prompt));
    let negative = r.negative_prompt.trim();
    if !negative.is_empty() {
        b.insert("negative_prompt".into(), json!(negative));
    }
    match (family, reference) {
        (Family::Sd35Large, Some(png)) => {
            b.insert("mode".into(), json!("image-to-image"));
            b.insert(
                "image".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(png)),
            );
            // Nova's similarity (higher = closer to the reference) as Stability's strength
            // (higher = less of the reference).
            let similarity = r.params.similarity_strength.unwrap_or(0.7) as f64;
            b.insert(
                "strength".into(),
                json!(((1.0 - similarity) * 1e4).round() / 1e4),
            );
        }
        (Family::Sd35Large, None) => {
            b.insert("mode".into(), json!("text-to-image"));
            b.insert(
                "aspect_ratio".into(),
                json!(aspect_ratio(r.params.width, r.params.height)),
            );
        }
        _ => {
            b.insert(
                "aspect_ratio".into(),
                json!(aspect_ratio(r.params.width, r.params.height)),
            );
        }
    }
    b.insert("seed".into(), json!(seed));
    b.insert("output_format".into(), json!("png"));
    Value::Object(b)
}

/// What one answer holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Image(GeneratedPng),
    /// The content filter withheld the image ("Filter reason: prompt", "... output image",
    /// "... input image").
    Filtered(String),
    /// The model failed ("Inference error"): not a filter, worth trying again.
    Failed(String),
}

/// Reads one answer in its documented shapes.
pub fn parse_answer(model: &str, answer: &Value, seed: u32) -> Result<Answer> {
    let reason = answer
        .get("finish_reasons")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(reason) = reason {
        return Ok(if reason.to_lowercase().starts_with("filter reason") {
            Answer::Filtered(reason.to_string())
        } else {
            Answer::Failed(reason.to_string())
        });
    }
    let b64 = answer
        .get("images")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::Cloud(format!("{model}: the answer has no image")))?;
    let seed = answer
        .get("seeds")
        .and_then(Value::as_array)
        .and_then(|s| s.first())
        .and_then(Value::as_u64)
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(seed);
    Ok(Answer::Image(GeneratedPng {
        png: to_png(model, &decode_image(model, b64)?)?,
        seed,
    }))
}

pub struct Stability {
    bedrock: Arc<Bedrock>,
    route: Route,
    caps: GeneratorCaps,
}

impl Stability {
    pub fn new(bedrock: Arc<Bedrock>, route: Route) -> Self {
        Stability {
            caps: caps(&route.id, route.family()),
            bedrock,
            route,
        }
    }

    /// The PNG of the request's reference image, for a variation.
    fn reference(&self, r: &GenerationRequest) -> Result<Option<Vec<u8>>> {
        if r.params.task != TaskType::Variation {
            return Ok(None);
        }
        let Some(path) = r.reference_images.first() else {
            return Ok(None);
        };
        let png = crate::services::bedrock::canvas::reference_png(path, &self.caps.sizes)?;
        Ok(Some(png))
    }

    fn one(&self, r: &GenerationRequest, seed: u32, reference: Option<&[u8]>) -> Result<Answer> {
        let route = &self.route;
        let answer = self
            .bedrock
            .invoke_json(route, &body(r, seed, route.family(), reference))?;
        let parsed = parse_answer(&route.id, &answer.json, seed);
        self.bedrock.record(
            route,
            ModelCall {
                job: "generate".into(),
                images: u32::from(matches!(parsed, Ok(Answer::Image(_)))),
                withheld: u32::from(matches!(parsed, Ok(Answer::Filtered(_)))),
                image_pixels: r.params.width as u64 * r.params.height as u64,
                ..Default::default()
            },
        );
        parsed
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
        let model = &self.route.id;
        let reference = self.reference(r)?;
        let mut out = Vec::new();
        let mut filtered = Vec::new();
        let mut failed: Option<String> = None;
        let mut cancelled = false;
        for i in 0..r.params.count {
            // The studio's Esc: no new paid call after it (an in-flight one is dropped by
            // `Bedrock::run`).
            if crate::services::cancel::is_cancelled() {
                cancelled = true;
                break;
            }
            let seed = self.caps.nth_seed(r.params.seed, i);
            match self.one(r, seed, reference.as_deref()) {
                Ok(Answer::Image(g)) => out.push(g),
                Ok(Answer::Filtered(reason)) => {
                    tracing::warn!(model = %model, seed, reason, "image withheld by the content filter");
                    filtered.push(format!("seed {seed}: {reason}"));
                }
                Ok(Answer::Failed(reason)) => {
                    failed = Some(format!(
                        "the model failed on seed {seed} ({reason}); this is not a content filter, try again"
                    ));
                    break;
                }
                Err(Error::Cancelled) => {
                    cancelled = true;
                    break;
                }
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        if cancelled && out.is_empty() {
            return Err(Error::Cancelled);
        }
        if out.is_empty() {
            if let Some(f) = failed {
                return Err(Error::Cloud(if f.starts_with(model.as_str()) {
                    f
                } else {
                    format!("{model}: {f}")
                }));
            }
            return Err(Error::Cloud(format!(
                "{model}: every image was withheld by the model's content filter ({}); change the prompt and try again",
                filtered.join("; ")
            )));
        }
        let mut notes: Vec<String> = filtered
            .iter()
            .map(|f| format!("{model}: an image was withheld by the content filter ({f})"))
            .collect();
        if let Some(f) = failed {
            notes.push(format!(
                "{model}: {} of {} image(s) made; the rest stopped: {f}",
                out.len(),
                r.params.count
            ));
        }
        if cancelled {
            notes.push(format!(
                "{} after {} of {} image(s); the {} already made were paid for and are kept",
                crate::services::CANCELLED_NOTE,
                out.len(),
                r.params.count,
                out.len()
            ));
        }
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

    #[test]
    fn seeds_wrap_within_the_range_and_never_to_zero() {
        let c = caps("m", Family::StableImageCore);
        assert_eq!(c.nth_seed(7, 0), 7);
        assert_eq!(c.nth_seed(7, 2), 9);
        assert_eq!(c.nth_seed(4_294_967_294, 1), 1);
        assert_eq!(c.nth_seed(4_294_967_293, 3), 2);
    }

    #[test]
    fn a_filtered_answer_without_images_is_a_filter() {
        let a = parse_answer(
            "m",
            &json!({"finish_reasons": ["Filter reason: prompt"]}),
            3,
        );
        assert_eq!(a.unwrap(), Answer::Filtered("Filter reason: prompt".into()));
    }

    #[test]
    fn an_inference_error_is_not_a_filter() {
        let a = parse_answer("m", &json!({"finish_reasons": ["Inference error"]}), 3);
        assert_eq!(a.unwrap(), Answer::Failed("Inference error".into()));
    }

    #[test]
    fn an_answer_without_reason_or_image_is_an_error() {
        let e = parse_answer("m", &json!({"seeds": [1]}), 3).unwrap_err();
        assert!(e.to_string().contains("no image"), "{e}");
    }
}
