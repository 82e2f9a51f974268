//! How well a reference's element (an object, a place) fits a brief, by the text embedder:
//! the brief's similarity to the element, as a z-score against the brief's similarity to a
//! fixed background vocabulary of everyday objects (the 80 COCO category names). Raw cosine
//! similarities of one embedder drift with the brief (multilingual-e5 scores unrelated words
//! about 0.78 with one brief and 0.80 with its Spanish twin), so a raw threshold keeps too
//! much for some briefs and too little for others; the z-score asks "does this brief prefer
//! this element over everyday objects in general", which one threshold per embedder answers.
//!
//! The thresholds (`Embedder::element_fit_threshold`) were fixed on the dev briefs of
//! tests/fixtures/retrieval (dev_bilingual.jsonl) and are reported on the held-out briefs by
//! tests/element_fit_quality.rs.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use crate::services::language::Reading;
use crate::services::{Embedder, TextRole};
use crate::{Error, Result};

/// Everyday objects the brief's similarities are measured against: the COCO category names
/// (the reference library's label vocabulary).
pub const BACKGROUND: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// The fit of each element to one brief, and the threshold it is judged by.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ElementFit {
    /// The embedder that measured it.
    pub embedder: String,
    /// An element fits the brief when its score is at least this.
    pub threshold: f32,
    /// Element (lower case, trimmed) -> z-score against the background.
    pub scores: BTreeMap<String, f32>,
}

impl ElementFit {
    /// The element's score, if it was measured.
    pub fn score(&self, element: &str) -> Option<f32> {
        self.scores.get(&key(element)).copied()
    }
}

fn key(element: &str) -> String {
    element.trim().to_lowercase()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The background's vectors per embedder, embedded once per process (80 short texts in one
/// batch).
/// Embedder id -> the background's vectors.
type Backgrounds = Mutex<HashMap<String, Arc<Vec<Vec<f32>>>>>;

fn background(embedder: &dyn Embedder) -> Result<Arc<Vec<Vec<f32>>>> {
    static CACHE: OnceLock<Backgrounds> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let id = embedder.id().as_str().to_string();
    if let Some(v) = cache.lock().ok().and_then(|c| c.get(&id).cloned()) {
        return Ok(v);
    }
    let texts: Vec<String> = BACKGROUND.iter().map(|s| s.to_string()).collect();
    let vectors = Arc::new(embedder.embed_texts(&texts, TextRole::Document)?);
    if let Ok(mut c) = cache.lock() {
        c.insert(id, vectors.clone());
    }
    Ok(vectors)
}

/// The z-scores of `elements` for `brief` by `embedder`, judged by the embedder's threshold for
/// the brief's language; `None` when it has none (cloud embedders, or an English-only model and
/// a brief in another language: the composer then says it could not judge).
pub fn measure(
    embedder: &dyn Embedder,
    brief: &str,
    elements: &[String],
) -> Result<Option<ElementFit>> {
    let english = crate::services::language::reading(brief) == Reading::English;
    let Some(threshold) = embedder.element_fit_threshold(english) else {
        return Ok(None);
    };
    Ok(Some(ElementFit {
        embedder: embedder.id().as_str().to_string(),
        threshold,
        scores: scores(embedder, brief, elements)?,
    }))
}

/// The z-score of each element (lower case, trimmed, once each) for `brief`, whatever the
/// threshold: the brief's similarity to the element against its similarities to the
/// background.
pub fn scores(
    embedder: &dyn Embedder,
    brief: &str,
    elements: &[String],
) -> Result<BTreeMap<String, f32>> {
    let mut names: Vec<String> = elements.iter().map(|e| key(e)).collect();
    names.sort();
    names.dedup();
    names.retain(|n| !n.is_empty());
    let background = background(embedder)?;
    let brief_vec = embedder
        .embed_texts(&[brief.to_string()], TextRole::Query)?
        .pop()
        .ok_or_else(|| {
            Error::Inference("the text embedder returned no vector for the brief".into())
        })?;
    if background.iter().any(|b| b.len() != brief_vec.len()) {
        return Err(Error::Inference(format!(
            "the text embedder {} returned vectors of different lengths",
            embedder.id()
        )));
    }
    let sims: Vec<f32> = background.iter().map(|b| dot(&brief_vec, b)).collect();
    let n = sims.len().max(1) as f32;
    let mean = sims.iter().sum::<f32>() / n;
    let sd = (sims.iter().map(|s| (s - mean) * (s - mean)).sum::<f32>() / n).sqrt();
    let element_vecs = if names.is_empty() {
        Vec::new()
    } else {
        embedder.embed_texts(&names, TextRole::Document)?
    };
    if element_vecs.len() != names.len() {
        return Err(Error::Inference(format!(
            "the text embedder {} returned {} vectors for {} elements",
            embedder.id(),
            element_vecs.len(),
            names.len()
        )));
    }
    Ok(names
        .into_iter()
        .zip(element_vecs)
        .map(|(name, v)| {
            let z = if sd > f32::EPSILON {
                (dot(&brief_vec, &v) - mean) / sd
            } else {
                0.0
            };
            (name, z)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmbedderId;

    /// Words as one-hot-ish vectors: a brief is the sum of its words' axes.
    struct Words {
        id: EmbedderId,
        threshold: Option<f32>,
    }
    const AXES: [&str; 4] = ["bicycle", "skis", "city", "dog"];
    impl Embedder for Words {
        fn id(&self) -> &EmbedderId {
            &self.id
        }
        fn dim(&self) -> usize {
            AXES.len() + 1
        }
        fn embed_texts(&self, texts: &[String], _role: TextRole) -> Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v: Vec<f32> = AXES
                        .iter()
                        .map(|a| if t.contains(a) { 1.0 } else { 0.0 })
                        .collect();
                    v.push(0.2); // a shared direction, like real embedders' anisotropy
                    crate::services::normalize(&mut v);
                    v
                })
                .collect())
        }
        fn element_fit_threshold(&self, _english_brief: bool) -> Option<f32> {
            self.threshold
        }
    }

    #[test]
    fn an_element_the_brief_names_scores_above_one_it_does_not() {
        let e = Words {
            id: EmbedderId::new("test/words"),
            threshold: Some(2.0),
        };
        let fit = measure(
            &e,
            "young people riding a bicycle in the city",
            &["Skis".into(), "bicycle".into()],
        )
        .unwrap()
        .unwrap();
        let (bike, skis) = (fit.score("bicycle").unwrap(), fit.score("skis").unwrap());
        assert!(bike > fit.threshold, "bicycle {bike}");
        assert!(skis < fit.threshold, "skis {skis}");
    }

    #[test]
    fn an_embedder_without_a_measured_threshold_gives_no_fit() {
        let e = Words {
            id: EmbedderId::new("test/unmeasured"),
            threshold: None,
        };
        assert_eq!(measure(&e, "a brief", &["dog".into()]).unwrap(), None);
    }
}
