//! Deterministic fakes for tests. Nothing in the default configuration can select them.
use sha2::{Digest, Sha256};

use crate::Result;
use crate::domain::{EmbedderId, Label};
use crate::services::{Embedder, ImageAnalyser, ImageAnalysis, TextRole, normalize};

/// Bag-of-words hashing embedder: texts sharing words are close. Deterministic, no model.
pub struct FakeEmbedder {
    pub id: EmbedderId,
    pub dim: usize,
}

impl FakeEmbedder {
    pub fn new(dim: usize) -> Self {
        FakeEmbedder {
            id: EmbedderId::new(format!("fake/bag-of-words/{dim}")),
            dim,
        }
    }
    fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        for w in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let h = Sha256::digest(w.to_lowercase().as_bytes());
            let i = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize % self.dim;
            v[i] += 1.0;
        }
        normalize(&mut v);
        v
    }
}

impl Embedder for FakeEmbedder {
    fn id(&self) -> &EmbedderId {
        &self.id
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn embed_texts(&self, texts: &[String], _role: TextRole) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.embed(t)).collect())
    }
}

/// Labels an image by its dominant channel; features are the mean colour.
pub struct FakeAnalyser {
    id: EmbedderId,
}

impl Default for FakeAnalyser {
    fn default() -> Self {
        FakeAnalyser {
            id: EmbedderId::new("fake/mean-colour/3"),
        }
    }
}

impl ImageAnalyser for FakeAnalyser {
    fn analyse(&self, image: &image::DynamicImage) -> Result<ImageAnalysis> {
        let rgb = image.thumbnail(16, 16).to_rgb8();
        let n = rgb.pixels().len().max(1) as f32;
        let mut m = [0f32; 3];
        for p in rgb.pixels() {
            for (acc, v) in m.iter_mut().zip(p.0) {
                *acc += v as f32 / 255.0 / n;
            }
        }
        let names = ["red thing", "green thing", "blue thing"];
        let best = (0..3).max_by(|a, b| m[*a].total_cmp(&m[*b])).unwrap_or(0);
        let mut features = m.to_vec();
        normalize(&mut features);
        Ok(ImageAnalysis {
            labels: vec![Label {
                name: names[best].into(),
                prob: 0.9,
            }],
            features,
            model: "fake/mean-colour".into(),
        })
    }
    fn features_id(&self) -> &EmbedderId {
        &self.id
    }
}

/// The size and parameter rules Nova Canvas documents (without its end-of-life notice); the
/// fake generator uses them so tests exercise real validation.
pub fn canvas_like_caps(model: &str) -> crate::services::GeneratorCaps {
    crate::services::GeneratorCaps {
        notice: None,
        ..crate::services::bedrock::canvas::caps(model)
    }
}

/// Deterministic generator: a gradient PNG per (prompt, seed, index); or, when `copy_of` is
/// set, that file's bytes (to test novelty flags). Records every request it receives.
pub struct FakeGenerator {
    pub caps: crate::services::GeneratorCaps,
    pub copy_of: Option<std::path::PathBuf>,
    pub requests: std::sync::Mutex<Vec<crate::domain::GenerationRequest>>,
}

impl Default for FakeGenerator {
    fn default() -> Self {
        FakeGenerator {
            caps: canvas_like_caps("fake/gradient"),
            copy_of: None,
            requests: Default::default(),
        }
    }
}

impl crate::services::ImageGenerator for FakeGenerator {
    fn caps(&self) -> &crate::services::GeneratorCaps {
        &self.caps
    }

    fn generate(
        &self,
        r: &crate::domain::GenerationRequest,
    ) -> Result<Vec<crate::services::GeneratedPng>> {
        if let Ok(mut g) = self.requests.lock() {
            g.push(r.clone());
        }
        let h = Sha256::digest(r.prompt.as_bytes());
        (0..r.params.count)
            .map(|i| {
                let seed = r.params.seed.wrapping_add(i);
                let png = match &self.copy_of {
                    Some(p) => {
                        let img =
                            image::open(p).map_err(|e| crate::Error::Inference(e.to_string()))?;
                        let mut out = Vec::new();
                        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                            .map_err(|e| crate::Error::Inference(e.to_string()))?;
                        out
                    }
                    None => {
                        let (w, hgt) = (r.params.width / 8, r.params.height / 8);
                        let img = image::RgbImage::from_fn(w, hgt, |x, y| {
                            image::Rgb([
                                h[0].wrapping_add((x * 255 / w.max(1)) as u8),
                                h[1].wrapping_add((y * 255 / hgt.max(1)) as u8),
                                (seed % 251) as u8,
                            ])
                        });
                        let mut out = Vec::new();
                        image::DynamicImage::ImageRgb8(img)
                            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                            .map_err(|e| crate::Error::Inference(e.to_string()))?;
                        out
                    }
                };
                Ok(crate::services::GeneratedPng { png, seed })
            })
            .collect()
    }
}
