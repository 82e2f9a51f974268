//! Amazon Nova Canvas (`amazon.nova-canvas-v1:0`) through InvokeModel: text to image, variations
//! of the chosen references, and colour-guided generation, 1-5 images in one call.
//! Legacy: end-of-life on Bedrock on 2026-09-30. Kept for accounts that still reach it (e.g.
//! through provisioned throughput) and for its request shapes; never a default. When the
//! content filter blocks some images after generation, AWS returns the others with an `error`
//! string: they are kept and the blocked ones reported.
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::domain::{GenerationRequest, ModelCall, Quality, TaskType};
use crate::services::bedrock::{Bedrock, Route, catalog, decode_image, to_png};
use crate::services::{GeneratedPng, GeneratorCaps, ImageGenerator, SizeRules};
use crate::{Error, Result};

/// The rules Nova Canvas documents: 1-5 images, sides 320-4096 in multiples of 16, at most
/// 4.19 MP, aspect up to 4:1, cfgScale 1.1-10, seed 0-858,993,459, text and negative text
/// 1-1024 characters each, up to 5 reference images, up to 10 colours.
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
        seed_max: 858_993_459,
        max_reference_images: 5,
        max_colours: 10,
        max_negative_chars: 1024,
        notice: Some(catalog::NOVA_CANVAS_EOL.to_string()),
    }
}

pub struct NovaCanvas {
    bedrock: Arc<Bedrock>,
    route: Route,
    caps: GeneratorCaps,
}

impl NovaCanvas {
    pub fn new(bedrock: Arc<Bedrock>, route: Route) -> Self {
        NovaCanvas {
            caps: caps(&route.id),
            bedrock,
            route,
        }
    }
}

/// The images of an answer and what the content filter withheld, from the documented shapes:
/// `{"images": [...]}`; `{"images": [...], "error": "Some of the generated images have been
/// blocked by our content filters."}` (the others are kept); `{"error": "All of the generated
/// images have been blocked ..."}` (nothing to keep).
pub fn parse_answer(
    model: &str,
    answer: &Value,
    asked: u32,
    seed: u32,
) -> Result<(Vec<GeneratedPng>, Option<String>)> {
    let error = answer
        .get("error")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let images = answer
        .get("images")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut out = Vec::new();
    let mut unreadable = None;
    for b in images {
        let Some(b64) = b.as_str().filter(|s| !s.trim().is_empty()) else {
            continue;
        };
        // One call, one seed: every image of the call records it (with the same request,
        // the model makes the same set again). An unreadable image is dropped; the others
        // are kept.
        match decode_image(model, b64).and_then(|bytes| to_png(model, &bytes)) {
            Ok(png) => out.push(GeneratedPng { png, seed }),
            Err(e) => unreadable = Some(e),
        }
    }
    if out.is_empty()
        && let Some(e) = unreadable
    {
        return Err(e);
    }
    match (error, out.is_empty()) {
        (Some(e), true) => Err(Error::Cloud(format!(
            "{model}: every image was withheld by the model's content filter ({e}); change the prompt and try again"
        ))),
        (None, true) => Err(Error::Cloud(format!("{model}: the answer has no images"))),
        (Some(e), false) => Ok((
            out.clone(),
            Some(format!(
                "{model}: {} of {asked} image(s) withheld by the content filter ({e})",
                asked.saturating_sub(out.len() as u32)
            )),
        )),
        (None, false) => Ok((out, None)),
    }
}

/// A reference image as the generators take it: PNG, scaled down to fit the size rules.
pub(crate) fn reference_png(path: &str, rules: &SizeRules) -> Result<Vec<u8>> {
    // The library's own limits were checked by the engine; these bound what is decoded here
    // (a `reference`-mode original can have changed since).
    let img = crate::services::local::imaging::open_limited(
        std::path::Path::new(path),
        crate::services::local::imaging::ImageLimits::default(),
    )?;
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
    Ok(png)
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
    let negative = r.negative_prompt.trim();
    if !negative.is_empty() {
        params.insert("negativeText".into(), json!(negative));
    }
    let (task, key) = match p.task {
        TaskType::Text => ("TEXT_IMAGE", "textToImageParams"),
        TaskType::Variation => {
            let images = r
                .reference_images
                .iter()
                .map(|f| {
                    reference_png(f, rules)
                        .map(|png| base64::engine::general_purpose::STANDARD.encode(png))
                })
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
        Ok(self.generate_reporting(r)?.0)
    }

    fn generate_reporting(
        &self,
        r: &GenerationRequest,
    ) -> Result<(Vec<GeneratedPng>, Vec<String>)> {
        self.validate(r)?;
        let route = &self.route;
        let answer = self
            .bedrock
            .invoke_json(route, &body(r, &self.caps.sizes)?)?;
        let parsed = parse_answer(&route.id, &answer.json, r.params.count, r.params.seed);
        let kept = parsed.as_ref().map(|p| p.0.len() as u32).unwrap_or(0);
        let filtered = answer
            .json
            .get("error")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.trim().is_empty());
        self.bedrock.record(
            route,
            ModelCall {
                job: "generate".into(),
                images: kept,
                withheld: if filtered {
                    r.params.count.saturating_sub(kept)
                } else {
                    0
                },
                image_pixels: r.params.width as u64 * r.params.height as u64,
                premium: r.params.quality == Quality::Premium,
                ..Default::default()
            },
        );
        let (images, note) = parsed?;
        Ok((images, note.into_iter().collect()))
    }
}
