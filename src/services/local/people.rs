//! "Likely shows people": ImageNet-1k has no person class, but the classifier's whole
//! distribution over its 1 000 classes (clothing, sports gear, instruments, places) says a lot
//! about whether people are in a photo. The score is a logistic regression over the
//! log-probabilities of every class, calibrated (Platt) so that it reads as a probability,
//! fitted once on half of the reference library's COCO "person" labels by
//! scripts/fit-people-score.py and committed as data/people-score.json with its figures
//! (held-out precision and recall; tests/retrieval_quality.rs checks them again on the photos
//! it was not fitted on).
use std::sync::OnceLock;

use serde::Deserialize;

const MODEL: &str = include_str!("../../../data/people-score.json");

#[derive(Deserialize)]
struct Held {
    precision: f32,
    recall: f32,
}

#[derive(Deserialize)]
struct Model {
    eps: f32,
    bias: f32,
    weights: Vec<f32>,
    platt_a: f32,
    platt_c: f32,
    threshold: f32,
    held_out: Held,
}

fn model() -> Option<&'static Model> {
    static M: OnceLock<Option<Model>> = OnceLock::new();
    M.get_or_init(|| match serde_json::from_str::<Model>(MODEL) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!(error = %e, "data/people-score.json does not parse: no people score");
            None
        }
    })
    .as_ref()
}

/// The calibrated probability that a photo shows people, from the classifier's full
/// distribution `probs` (one per ImageNet class, in the classifier's order); None when the
/// distribution is not the one the score was fitted on (another length) or holds a non-finite
/// value.
pub fn score(probs: &[f32]) -> Option<f32> {
    let m = model()?;
    if probs.len() != m.weights.len() || probs.iter().any(|p| !p.is_finite()) {
        return None;
    }
    let z = m.bias
        + m.weights
            .iter()
            .zip(probs)
            .map(|(w, p)| w * (p.max(0.0) + m.eps).ln())
            .sum::<f32>();
    let p = 1.0 / (1.0 + (-(m.platt_a * z + m.platt_c)).exp());
    p.is_finite().then_some(p)
}

/// The score at or above which a description says "likely shows people" (the fitting set's
/// highest cross-validated recall at precision 0.8).
pub fn threshold() -> f32 {
    model().map_or(f32::INFINITY, |m| m.threshold)
}

/// Where the score comes from, with its held-out precision and recall, for a description's
/// sources.
pub fn source() -> String {
    match model() {
        Some(m) => format!(
            "people score from the image classifier's class distribution (held-out precision {:.2}, recall {:.2})",
            m.held_out.precision, m.held_out.recall
        ),
        None => "no people score".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_model_parses_with_one_weight_per_class() {
        let m = model().expect("data/people-score.json parses");
        assert_eq!(m.weights.len(), 1000);
        assert!(m.threshold > 0.0 && m.threshold < 1.0);
    }

    #[test]
    fn a_distribution_of_another_length_has_no_score() {
        assert_eq!(score(&[0.5, 0.5]), None);
    }

    #[test]
    fn a_non_finite_probability_has_no_score() {
        let mut p = vec![0.001; 1000];
        p[3] = f32::NAN;
        assert_eq!(score(&p), None);
    }

    #[test]
    fn a_uniform_distribution_scores_a_probability() {
        let p = score(&[0.001; 1000]).expect("a score");
        assert!((0.0..=1.0).contains(&p), "{p}");
    }
}
