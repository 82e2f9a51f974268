//! The classifier's labels as a text vector, for images nobody described.
//!
//! An image with no human text is otherwise indexed by a document of its confident labels
//! (probability at least `models.label_min_prob`), their WordNet kinds and colours: an image the
//! classifier is unsure about has no labels in it at all, and a 0.2 guess weighs as much as a
//! 0.9 one. Here each of the classifier's top labels speaks with its probability: every
//! ImageNet class's own short document ("Shows golden retriever. Kinds: dog, domestic animal,
//! animal, mammal."; 998 distinct names, two shared by two classes) is embedded once by the
//! library's text embedder; `mean` is the mean of
//! those class vectors, the direction every text shares (large with a multilingual embedder).
//! An image's vector is built from the centred class vectors (minus `mean`):
//!
//!   w = unit(0.2 * unit(doc - mean) + 0.8 * unit(sum_l sqrt(p_l) * (class_l - mean)))
//!
//! Searched as it is, w would rank raw photos well but on a scale of its own (similarities
//! near 0 where a described photo's are near 0.8 with e5): in a library with some captioned
//! and some raw photos one kind would always come first, and `engine::search`'s background
//! could not judge both. So w is turned into a unit vector at the angle from `mean` that a
//! photo's description document has: with m = |mean| and r the mean distance of such a
//! document from `mean` (`Embedder::label_space`, measured per model), c0 = m / sqrt(m² + r²)
//! and s0 = r / sqrt(m² + r²), a = w·unit(mean), w' = unit(w minus a * unit(mean)):
//!
//!   v = c * unit(mean) + sqrt(1 - c²) * w',  c = c0 + s0 * a
//!
//! Its similarity to a query is on the documents' scale, and it keeps w's order closely: w's
//! own small part along the mean (a) stays, scaled as w' is. That part rises for an image whose
//! labels' class documents are close to what every text shares; it was kept because, on the dev
//! sets, dropping it cost P@5 (e5 0.04-0.12 per set, MiniLM up to 0.04).
//!
//! The rule and its numbers (0.2, square root) were chosen on the dev sets of
//! `tests/retrieval_quality.rs` only (the library indexed from its photos alone). It changes
//! only the vector of an asset without human text; what a search shows (the description, its
//! elements) is unchanged.
use std::collections::HashMap;
use std::sync::Arc;

use crate::Result;
use crate::domain::{Description, Label};
use crate::services::built_once::BuiltOnce;
use crate::services::{Embedder, TextRole, normalize};

/// The weight of the description document's own vector; the labels have the rest.
pub const DOCUMENT_WEIGHT: f32 = 0.2;

/// The weight of the direction a photo nobody described borrows from the described photos
/// that look most like it (`engine::inferred`); its own labels and document keep the rest.
/// Chosen on the dev sets of a library half captioned (0.2, 0.35, 0.5 and 0.7 tried; see
/// `engine::inferred`).
pub const BORROWED_WEIGHT: f32 = 0.5;

/// How many classes are embedded in one call.
const BATCH: usize = 64;

/// Every ImageNet class's centred vector under one text embedder.
pub struct LabelSpace {
    mean: Vec<f32>,
    /// `mean` as a unit vector.
    mean_dir: Vec<f32>,
    classes: HashMap<&'static str, Vec<f32>>,
}

/// The short document a class is embedded as ("Shows tabby. Kinds: cat, animal.").
pub fn class_document(name: &str, kinds: &[String]) -> String {
    let kinds: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| *k != name)
        .collect();
    if kinds.is_empty() {
        format!("Shows {name}.")
    } else {
        format!("Shows {name}. Kinds: {}.", kinds.join(", "))
    }
}

impl LabelSpace {
    /// Embeds every class's document with `embedder` (about a thousand short texts: a few
    /// seconds with a local model, once per process and embedder).
    pub fn build(embedder: &dyn Embedder) -> Result<Self> {
        let classes = crate::services::local::kinds::classes();
        let docs: Vec<String> = classes
            .iter()
            .map(|(name, kinds)| class_document(name, kinds))
            .collect();
        let mut vectors = Vec::with_capacity(docs.len());
        for chunk in docs.chunks(BATCH) {
            let got = embedder.embed_texts(chunk, TextRole::Document)?;
            if got.len() != chunk.len() {
                return Err(crate::Error::Inference(format!(
                    "the text embedder returned {} vectors for {} class documents",
                    got.len(),
                    chunk.len()
                )));
            }
            vectors.extend(got);
        }
        Self::from_vectors(classes.iter().map(|(n, _)| *n).zip(vectors).collect())
    }

    /// The space of these class vectors (all of one dimension).
    pub fn from_vectors(named: Vec<(&'static str, Vec<f32>)>) -> Result<Self> {
        let dim = named.first().map(|(_, v)| v.len()).unwrap_or(0);
        if dim == 0 || named.iter().any(|(_, v)| v.len() != dim) {
            return Err(crate::Error::Inference(
                "the class vectors are empty or of mixed dimensions".into(),
            ));
        }
        let mut mean = vec![0.0f32; dim];
        for (_, v) in &named {
            mean.iter_mut().zip(v).for_each(|(m, x)| *m += x);
        }
        let n = named.len() as f32;
        mean.iter_mut().for_each(|m| *m /= n);
        let classes: HashMap<&'static str, Vec<f32>> = named
            .into_iter()
            .map(|(name, v)| {
                let centred = v.iter().zip(&mean).map(|(x, m)| x - m).collect();
                (name, centred)
            })
            .collect();
        let spread = classes.values().map(|c| norm(c)).sum::<f32>() / n;
        let mut mean_dir = mean.clone();
        normalize(&mut mean_dir);
        if !(spread.is_finite() && spread > 1e-6 && norm(&mean_dir) > 0.5) {
            return Err(crate::Error::Inference(
                "the class vectors do not vary, or have no common direction".into(),
            ));
        }
        Ok(LabelSpace {
            mean,
            mean_dir,
            classes,
        })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The vector to index for an image with these classifier `labels` whose description
    /// document embeds as `document`, placed at `distance` from the mean; `None` when no label
    /// is a known class with a positive probability (then the document's vector stays as it
    /// is).
    pub fn vector(&self, labels: &[Label], document: &[f32], distance: f32) -> Option<Vec<f32>> {
        self.vector_with(labels, document, distance, None)
    }

    /// The direction that described photos' text vectors share, for a photo that borrows from
    /// them (`engine::inferred`): unit(sum_i w_i * unit(t_i - mean)) over (vector, weight)
    /// pairs; `None` when there is none of this dimension with a positive weight.
    pub fn borrowed_direction(&self, neighbours: &[(&[f32], f32)]) -> Option<Vec<f32>> {
        let mut sum = vec![0.0f32; self.dim()];
        let mut any = false;
        for (t, w) in neighbours {
            if t.len() != self.dim() || !(w.is_finite() && *w > 0.0) {
                continue;
            }
            let mut c: Vec<f32> = t.iter().zip(&self.mean).map(|(x, m)| x - m).collect();
            if norm(&c) <= 1e-6 {
                continue;
            }
            normalize(&mut c);
            sum.iter_mut().zip(&c).for_each(|(s, x)| *s += w * x);
            any = true;
        }
        if !any || norm(&sum) <= 1e-6 {
            return None;
        }
        normalize(&mut sum);
        sum.iter().all(|x| x.is_finite()).then_some(sum)
    }

    /// As `vector`, with `borrowed` (from `borrowed_direction`) taking `BORROWED_WEIGHT` of
    /// the direction before it is set at the documents' angle.
    pub fn vector_with(
        &self,
        labels: &[Label],
        document: &[f32],
        distance: f32,
        borrowed: Option<&[f32]>,
    ) -> Option<Vec<f32>> {
        if document.len() != self.dim() || !(distance.is_finite() && distance > 0.0) {
            return None;
        }
        let mut from_labels = vec![0.0f32; self.dim()];
        let mut any = false;
        for l in labels {
            let Some(c) = self.classes.get(l.name.trim().to_lowercase().as_str()) else {
                continue;
            };
            if !(l.prob.is_finite() && l.prob > 0.0) {
                continue;
            }
            let w = l.prob.min(1.0).sqrt();
            from_labels.iter_mut().zip(c).for_each(|(u, x)| *u += w * x);
            any = true;
        }
        let size = norm(&from_labels);
        if !any || !size.is_finite() || size <= 1e-6 {
            return None;
        }
        normalize(&mut from_labels);
        let mut doc: Vec<f32> = document
            .iter()
            .zip(&self.mean)
            .map(|(x, m)| x - m)
            .collect();
        normalize(&mut doc);
        let mut w: Vec<f32> = doc
            .iter()
            .zip(&from_labels)
            .map(|(d, u)| DOCUMENT_WEIGHT * d + (1.0 - DOCUMENT_WEIGHT) * u)
            .collect();
        if norm(&w) <= 1e-6 {
            return None;
        }
        normalize(&mut w);
        if let Some(b) = borrowed.filter(|b| b.len() == self.dim()) {
            w.iter_mut()
                .zip(b)
                .for_each(|(x, y)| *x = (1.0 - BORROWED_WEIGHT) * *x + BORROWED_WEIGHT * y);
            if norm(&w) <= 1e-6 {
                return None;
            }
            normalize(&mut w);
        }
        let along = dot(&w, &self.mean_dir);
        w.iter_mut()
            .zip(&self.mean_dir)
            .for_each(|(x, m)| *x -= along * m);
        if norm(&w) <= 1e-6 {
            return None;
        }
        normalize(&mut w);
        let m = norm(&self.mean);
        let hyp = (m * m + distance * distance).sqrt();
        let c0 = m / hyp;
        // Never nearer the mean than halfway from the documents' angle: a vector on the mean
        // would score high against every query (on the reference library w's part along the
        // mean stays well inside this, |a| <= 0.19 where the limit is 0.21 with e5).
        let cos = (c0 + distance / hyp * along).clamp(-1.0, (1.0 + c0) / 2.0);
        let sin = (1.0 - cos * cos).max(0.0).sqrt();
        let mut v: Vec<f32> = self
            .mean_dir
            .iter()
            .zip(&w)
            .map(|(md, x)| cos * md + sin * x)
            .collect();
        normalize(&mut v);
        v.iter().all(|x| x.is_finite()).then_some(v)
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(v: &[f32]) -> f32 {
    dot(v, v).sqrt()
}

/// The vector to index for an asset's description document (`document`, embedded by
/// `embedder`): for an asset with no human text (its description's text sources are empty)
/// and classifier labels, from an embedder that opts in (`Embedder::label_space`, the local
/// ones, with the distance measured for it), the label-space vector above; else `document` as
/// it is. When the class documents cannot be embedded, the photo keeps its document's vector
/// (said once in the log) rather than failing its ingest.
pub fn indexed_vector(
    embedder: &dyn Embedder,
    description: &Description,
    labels: &[Label],
    document: Vec<f32>,
) -> Vec<f32> {
    let Some(distance) = embedder.label_space() else {
        return document;
    };
    if !description.sources.text.is_empty() || labels.is_empty() {
        return document;
    }
    match shared(embedder) {
        Some(space) => space
            .vector(labels, &document, distance)
            .unwrap_or(document),
        None => document,
    }
}

/// The label space of `embedder`, built on first use and kept for the process; `None` when it
/// could not be built (the error is logged once, and not retried in this process). Only the
/// first caller for an embedder builds; others for it wait, those for other embedders do not.
pub fn shared(embedder: &dyn Embedder) -> Option<Arc<LabelSpace>> {
    static SPACES: BuiltOnce<LabelSpace> = BuiltOnce::new();
    let key = format!("{}@{}", embedder.id(), embedder.dim());
    SPACES.get_or_build(key, || {
        let t = std::time::Instant::now();
        match LabelSpace::build(embedder) {
            Ok(space) => {
                tracing::info!(embedder = %embedder.id(), ms = t.elapsed().as_millis() as u64, "embedded the ImageNet class documents");
                Some(space)
            }
            Err(e) => {
                tracing::warn!(embedder = %embedder.id(), error = %e, "could not embed the ImageNet class documents: photos without human text keep their label document's vector");
                None
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, prob: f32) -> Label {
        Label {
            name: name.into(),
            prob,
        }
    }

    /// Three classes on three axes (and a shared offset every text carries).
    fn space() -> LabelSpace {
        LabelSpace::from_vectors(vec![
            ("tabby", vec![1.0, 0.0, 0.0, 1.0]),
            ("golden retriever", vec![0.0, 1.0, 0.0, 1.0]),
            ("pizza", vec![0.0, 0.0, 1.0, 1.0]),
        ])
        .unwrap()
    }

    #[test]
    fn a_class_document_names_the_class_and_its_kinds_but_not_itself_twice() {
        let kinds = vec![
            "dog".to_string(),
            "golden retriever".into(),
            "animal".into(),
        ];
        assert_eq!(
            class_document("golden retriever", &kinds),
            "Shows golden retriever. Kinds: dog, animal."
        );
        assert_eq!(class_document("pizza", &[]), "Shows pizza.");
    }

    #[test]
    fn the_more_probable_label_leads_the_vector() {
        let v = space()
            .vector(
                &[label("tabby", 0.6), label("pizza", 0.1)],
                &[0.0, 0.0, 0.0, 1.0],
                0.5,
            )
            .unwrap();
        let s = space();
        assert!(
            dot(&v, &s.classes["tabby"]) > dot(&v, &s.classes["pizza"]),
            "{v:?}"
        );
        assert!((dot(&v, &v) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_label_vector_lies_at_about_the_documents_angle_from_the_mean() {
        let s = space();
        let doc = [0.0, 0.0, 0.0, 1.0];
        // m = |mean| and distance r = 0.5 set the angle: cos c0 = m / sqrt(m² + r²), and w's
        // own part along the mean moves it by at most s0 = r / sqrt(m² + r²).
        let m = norm(&s.mean);
        let hyp = (m * m + 0.25f32).sqrt();
        for labels in [
            vec![label("tabby", 0.9)],
            vec![label("pizza", 0.3), label("golden retriever", 0.2)],
        ] {
            let v = s.vector(&labels, &doc, 0.5).unwrap();
            let along = dot(&v, &s.mean_dir);
            assert!(
                (along - m / hyp).abs() <= 0.5 / hyp + 1e-5,
                "{labels:?}: {along}"
            );
        }
    }

    #[test]
    fn a_label_the_table_does_not_know_gives_no_vector() {
        let doc = [0.0, 0.0, 0.0, 1.0];
        assert_eq!(
            space().vector(&[label("not a class", 0.9)], &doc, 0.5),
            None
        );
    }

    #[test]
    fn labels_without_a_usable_probability_give_no_vector() {
        let doc = [0.0, 0.0, 0.0, 1.0];
        assert_eq!(space().vector(&[label("pizza", 0.0)], &doc, 0.5), None);
        assert_eq!(space().vector(&[label("pizza", f32::NAN)], &doc, 0.5), None);
        assert_eq!(space().vector(&[], &doc, 0.5), None);
    }

    #[test]
    fn a_document_of_another_dimension_gives_no_vector() {
        assert_eq!(
            space().vector(&[label("pizza", 0.9)], &[1.0, 0.0], 0.5),
            None
        );
    }

    #[test]
    fn labels_are_matched_whatever_their_case() {
        let doc = [0.0, 0.0, 0.0, 1.0];
        assert_eq!(
            space().vector(&[label("Tabby", 0.5)], &doc, 0.5),
            space().vector(&[label("tabby", 0.5)], &doc, 0.5)
        );
    }

    #[test]
    fn class_vectors_of_mixed_dimensions_are_refused() {
        assert!(LabelSpace::from_vectors(vec![("a", vec![1.0]), ("b", vec![1.0, 0.0])]).is_err());
        assert!(LabelSpace::from_vectors(Vec::new()).is_err());
    }

    #[test]
    fn class_vectors_that_do_not_vary_are_refused() {
        let same = vec![("a", vec![0.0, 1.0]), ("b", vec![0.0, 1.0])];
        assert!(LabelSpace::from_vectors(same).is_err());
    }
}
