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
            people: None,
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

/// A fake vector server for tests (never selectable from config): it keeps one exact index per
/// name, shared by every clone as a server is shared by its clients, and checks what an index
/// holds on open as a server backend must. It proves the engine's sync against a server that
/// behaves exactly; the real server is tested live (tests/index_contract.rs).
#[derive(Clone, Default)]
pub struct FakeServer {
    pub namespace: String,
    #[allow(clippy::type_complexity)]
    indexes: std::sync::Arc<
        std::sync::Mutex<
            std::collections::BTreeMap<
                String,
                (
                    crate::services::IndexSpec,
                    std::sync::Arc<
                        std::sync::Mutex<crate::services::local::exact_index::ExactIndex>,
                    >,
                ),
            >,
        >,
    >,
    /// Aliases: name -> concrete index.
    aliases: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>,
}

impl FakeServer {
    pub fn new(namespace: &str) -> Self {
        FakeServer {
            namespace: namespace.into(),
            ..Default::default()
        }
    }

    fn make(
        &self,
        name: &str,
        spec: &crate::services::IndexSpec,
    ) -> crate::Result<FakeServerIndex> {
        let ix = crate::services::local::exact_index::ExactIndex::new(
            spec.embedder.clone(),
            spec.dim,
            crate::config::VectorStorage::F32,
            1,
        );
        let shared = std::sync::Arc::new(std::sync::Mutex::new(ix));
        self.indexes
            .lock()
            .map_err(|_| crate::Error::Invalid("fake server poisoned".into()))?
            .insert(name.to_string(), (spec.clone(), shared.clone()));
        Ok(FakeServerIndex {
            embedder: spec.embedder.clone(),
            dim: spec.dim,
            inner: shared,
        })
    }
}

/// An index of the fake server.
pub struct FakeServerIndex {
    embedder: crate::domain::EmbedderId,
    dim: usize,
    inner: std::sync::Arc<std::sync::Mutex<crate::services::local::exact_index::ExactIndex>>,
}

impl FakeServerIndex {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut crate::services::local::exact_index::ExactIndex) -> crate::Result<T>,
    ) -> crate::Result<T> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| crate::Error::Invalid("fake server poisoned".into()))?;
        f(&mut g)
    }
}

impl crate::services::VectorIndex for FakeServerIndex {
    fn embedder(&self) -> &crate::domain::EmbedderId {
        &self.embedder
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn upsert(
        &mut self,
        records: &[crate::services::VectorRecord],
    ) -> crate::Result<crate::services::WriteReport> {
        self.with(|ix| ix.upsert(records))
    }
    fn remove(
        &mut self,
        tombstones: &[crate::services::Tombstone],
    ) -> crate::Result<crate::services::WriteReport> {
        self.with(|ix| ix.remove(tombstones))
    }
    fn flush(&mut self) -> crate::Result<()> {
        Ok(())
    }
    fn count(&self, filter: &crate::domain::SearchFilter) -> crate::Result<usize> {
        self.with(|ix| ix.count(filter))
    }
    fn search(
        &self,
        query: &[f32],
        filter: &crate::domain::SearchFilter,
        k: usize,
    ) -> crate::Result<Vec<crate::services::Neighbour>> {
        self.with(|ix| ix.search(query, filter, k))
    }
    fn kpi_percentiles(
        &self,
        filter: &crate::domain::SearchFilter,
        kpis: &[Option<f64>],
    ) -> crate::Result<Vec<f32>> {
        self.with(|ix| ix.kpi_percentiles(filter, kpis))
    }
    fn digest(&self) -> crate::Result<Vec<crate::services::DigestBucket>> {
        self.with(|ix| ix.digest())
    }
    fn states_in(&self, bucket: &str) -> crate::Result<Vec<crate::services::DocState>> {
        self.with(|ix| ix.states_in(bucket))
    }
}

impl crate::services::VectorBackend for FakeServer {
    fn info(&self) -> crate::services::BackendInfo {
        crate::services::BackendInfo {
            kind: "fake".into(),
            endpoint: format!("memory:{}", self.namespace),
            auth: "none".into(),
            engine: "exact".into(),
            namespace: self.namespace.clone(),
        }
    }

    fn index_name(&self, embedder: &crate::domain::EmbedderId) -> String {
        crate::services::opensearch::bodies::index_name(&self.namespace, embedder.as_str())
    }

    fn open(
        &self,
        spec: &crate::services::IndexSpec,
        create: bool,
    ) -> crate::Result<Box<dyn crate::services::VectorIndex>> {
        let alias = self.index_name(&spec.embedder);
        let concrete = self
            .aliases
            .lock()
            .map_err(|_| crate::Error::Invalid("fake server poisoned".into()))?
            .get(&alias)
            .cloned();
        let found =
            concrete.and_then(|c| self.indexes.lock().ok().and_then(|g| g.get(&c).cloned()));
        match found {
            Some((held, inner)) => {
                if held.library_id != spec.library_id
                    || held.dim != spec.dim
                    || held.embedder != spec.embedder
                {
                    return Err(crate::Error::Cloud(format!(
                        "fake index {alias} holds embedder '{}' ({}-d, library {}), not '{}' ({}-d, library {})",
                        held.embedder,
                        held.dim,
                        held.library_id,
                        spec.embedder,
                        spec.dim,
                        spec.library_id
                    )));
                }
                Ok(Box::new(FakeServerIndex {
                    embedder: spec.embedder.clone(),
                    dim: spec.dim,
                    inner,
                }))
            }
            None if create => {
                let name = format!("{alias}-v1");
                let ix = self.make(&name, spec)?;
                self.aliases
                    .lock()
                    .map_err(|_| crate::Error::Invalid("fake server poisoned".into()))?
                    .insert(alias, name);
                Ok(Box::new(ix))
            }
            None => Err(crate::Error::NotFound(format!(
                "no fake index for embedder '{}'; run `campaign-studio library sync`",
                spec.embedder
            ))),
        }
    }

    fn open_fresh(
        &self,
        spec: &crate::services::IndexSpec,
    ) -> crate::Result<(String, Box<dyn crate::services::VectorIndex>)> {
        let alias = self.index_name(&spec.embedder);
        let last = self
            .indexes
            .lock()
            .map_err(|_| crate::Error::Invalid("fake server poisoned".into()))?
            .keys()
            .filter_map(|k| k.strip_prefix(&format!("{alias}-v"))?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let name = format!("{alias}-v{}", last + 1);
        let ix = self.make(&name, spec)?;
        Ok((name, Box::new(ix)))
    }

    fn promote(&self, spec: &crate::services::IndexSpec, name: &str) -> crate::Result<()> {
        let alias = self.index_name(&spec.embedder);
        let old = self
            .aliases
            .lock()
            .map_err(|_| crate::Error::Invalid("fake server poisoned".into()))?
            .insert(alias, name.to_string());
        if let Some(old) = old.filter(|o| o != name)
            && let Ok(mut g) = self.indexes.lock()
        {
            g.remove(&old);
        }
        Ok(())
    }

    fn indexes(&self) -> crate::Result<Vec<crate::services::IndexInfo>> {
        let g = self
            .indexes
            .lock()
            .map_err(|_| crate::Error::Invalid("fake server poisoned".into()))?;
        Ok(g.iter()
            .map(|(name, (spec, ix))| crate::services::IndexInfo {
                name: name.clone(),
                embedder: spec.embedder.to_string(),
                dim: spec.dim,
                library_id: spec.library_id.clone(),
                count: ix.lock().map(|i| i.len() as u64).unwrap_or(0),
            })
            .collect())
    }

    fn health(&self) -> crate::Result<Vec<(String, String)>> {
        Ok(vec![("server".into(), "fake (in memory)".into())])
    }
}
