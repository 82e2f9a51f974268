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
