//! EfficientNet-Lite0's outputs stay what they were before its convolutions were made faster:
//! the pooled features and the class probabilities of four demo photos, compared with
//! tests/fixtures/efficientnet-lite0-golden.json within 1e-4.
//!
//! The fixture was written by `golden_outputs_match_the_recorded_ones` itself, run once with
//! `EFFICIENTNET_WRITE_GOLDEN=1` on the direct-loop implementation (commit "EfficientNet golden
//! outputs", before the speed-up); it is never rewritten by a normal run.
use std::path::Path;

use campaign_studio::models::ModelFiles;
use campaign_studio::services::local::efficientnet::EfficientNetLite0;
use campaign_studio::services::local::people;
use serde::{Deserialize, Serialize};

mod common;

const PHOTOS: [&str; 4] = [
    "coco-000000000285", // a bear
    "coco-000000006012", // bananas
    "coco-000000002149", // green apples
    "coco-000000000785", // a skier
];
const TOLERANCE: f32 = 1e-4;

#[derive(Serialize, Deserialize)]
struct Golden {
    photo: String,
    features: Vec<f32>,
    probs: Vec<f32>,
}

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/efficientnet-lite0-golden.json")
}

fn outputs() -> Vec<Golden> {
    let models = ModelFiles::new(common::models_cache().join("models"));
    let net = EfficientNetLite0::load(
        &models.efficientnet_weights().unwrap(),
        &models.imagenet_names().unwrap(),
    )
    .unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/images");
    PHOTOS
        .iter()
        .map(|photo| {
            let image = image::open(demo.join(format!("{photo}.jpg"))).unwrap();
            let (features, probs) = net.forward(&EfficientNetLite0::preprocess(&image)).unwrap();
            Golden {
                photo: photo.to_string(),
                features,
                probs,
            }
        })
        .collect()
}

#[test]
fn golden_outputs_match_the_recorded_ones() {
    let now = outputs();
    let Some(recorded) = common::golden(&fixture(), "EFFICIENTNET_WRITE_GOLDEN", &now) else {
        return;
    };
    assert_eq!(recorded.len(), now.len());
    for (r, n) in recorded.iter().zip(&now) {
        assert_eq!(r.photo, n.photo);
        let f = common::largest_difference(&r.features, &n.features);
        assert!(f <= TOLERANCE, "{}: features differ by {f}", r.photo);
        let p = common::largest_difference(&r.probs, &n.probs);
        assert!(p <= TOLERANCE, "{}: probabilities differ by {p}", r.photo);
    }
}

/// The recorded probabilities of a photo (the fixture, no model run).
fn recorded_probs(photo: &str) -> Vec<f32> {
    let golden: Vec<Golden> =
        serde_json::from_str(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
    golden
        .into_iter()
        .find(|g| g.photo == photo)
        .map(|g| g.probs)
        .unwrap()
}

/// The skier is one of the photos the people score was not fitted on (its split in
/// scripts/fit-people-score.py); COCO labels it "person".
#[test]
fn people_score_says_the_held_out_skier_shows_people() {
    let p = people::score(&recorded_probs("coco-000000000785")).unwrap();
    assert!(p >= people::threshold(), "{p}");
}

/// The green apples are held out too, and show no one.
#[test]
fn people_score_does_not_say_people_for_the_held_out_apples() {
    let p = people::score(&recorded_probs("coco-000000002149")).unwrap();
    assert!(p < people::threshold(), "{p}");
}
