//! Fuzzing, on stable: cargo-fuzz needs a nightly toolchain, and rustup's nightly channel is
//! not reachable from these machines, so the same targets run as proptest properties. Every
//! parser of outside data gets random bytes and mutated seeds (tests/fixtures/fuzz/<target>/,
//! plus the binary seeds built below) and must answer Ok or Err: never panic, never hang.
//!
//! Cases per target: `FUZZ_CASES` (default 3 000, a bounded run for CI); the fixed RNG seed
//! makes every run the same. `FUZZ_CASES=1000000 cargo test --release --test fuzz_parsers`
//! is the long local run whose counts the issue note reports.
use std::io::Cursor;
use std::path::Path;

use campaign_studio::config::Config;
use campaign_studio::engine::manifest;
use campaign_studio::services::bedrock::{canvas, describe, nova, stability};
use campaign_studio::services::local::{imaging, smollm};
use candle_core::quantized::gguf_file;
use proptest::prelude::*;
use proptest::test_runner::{Config as Runs, RngSeed, TestRunner};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// The seed files of a target, sorted by name.
fn seed_files(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Random bytes, or a seed with up to 16 byte flips, insertions, deletions and truncations.
fn inputs(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    let random = proptest::collection::vec(any::<u8>(), 0..512);
    if seeds.is_empty() {
        return random.boxed();
    }
    let edits = proptest::collection::vec((any::<usize>(), any::<u8>(), 0..4u8), 0..16);
    let mutated = (proptest::sample::select(seeds), edits).prop_map(|(mut s, edits)| {
        for (at, byte, op) in edits {
            let len = s.len();
            match op {
                0 if len > 0 => s[at % len] ^= byte | 1,
                1 => s.insert(at % (len + 1), byte),
                2 if len > 0 => {
                    s.remove(at % len);
                }
                3 => s.truncate(at % (len + 1)),
                _ => {}
            }
        }
        s
    });
    prop_oneof![1 => random, 3 => mutated].boxed()
}

/// Runs `target` on `cases()` inputs; a panic fails the test with the (shrunk) input.
fn fuzz(seeds: Vec<Vec<u8>>, target: impl Fn(&[u8])) {
    let mut runner = TestRunner::new(Runs {
        cases: cases(),
        rng_seed: RngSeed::Fixed(0x5EED_CA4E),
        failure_persistence: None,
        ..Runs::default()
    });
    runner
        .run(&inputs(seeds), |input| {
            target(&input);
            Ok(())
        })
        .unwrap();
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn fuzz_manifest_jsonl() {
    fuzz(seed_files("manifest_jsonl"), |b| {
        let _ = manifest::read_jsonl_bytes(b);
    });
}

#[test]
fn fuzz_manifest_csv() {
    fuzz(seed_files("manifest_csv"), |b| {
        let _ = manifest::read_csv_text(&text(b));
    });
}

#[test]
fn fuzz_config_toml() {
    fuzz(seed_files("config_toml"), |b| {
        let _ = Config::from_toml_str(&text(b), "fuzz.toml");
    });
}

#[test]
fn fuzz_prompt_writer_json_answer() {
    fuzz(seed_files("prompt_answer"), |b| {
        let _ = nova::parse_answer("model", &text(b));
    });
}

#[test]
fn fuzz_thinking_splitter_in_every_chunking() {
    fuzz(seed_files("thinking"), |b| {
        let t = text(b);
        let chars: Vec<char> = t.chars().collect();
        // Chunk sizes from the input itself, so tags are split at every place.
        let step = 1 + b.first().copied().unwrap_or(0) as usize % 7;
        let mut s = nova::ThinkingSplitter::default();
        for chunk in chars.chunks(step) {
            s.push(&chunk.iter().collect::<String>());
        }
        s.finish();
    });
}

fn json_of(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|_| serde_json::Value::String(text(b)))
}

#[test]
fn fuzz_describer_tool_answer() {
    fuzz(seed_files("describer_tool"), |b| {
        let _ = describe::parse_tool_input(&json_of(b));
    });
}

#[test]
fn fuzz_stability_answer() {
    fuzz(seed_files("stability_answer"), |b| {
        let _ = stability::parse_answer("model", &json_of(b), 7);
    });
}

#[test]
fn fuzz_canvas_answer() {
    fuzz(seed_files("canvas_answer"), |b| {
        let _ = canvas::parse_answer("model", &json_of(b), 3, 7);
    });
}

/// Small images of every format ingest reads, made here (the same bytes every run).
fn image_seeds() -> Vec<Vec<u8>> {
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(9, 7, |x, y| {
        Rgb([x as u8 * 20, y as u8 * 30, 90])
    }));
    [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
        ImageFormat::WebP,
    ]
    .into_iter()
    .map(|f| {
        let mut v = Vec::new();
        img.write_to(&mut Cursor::new(&mut v), f).unwrap();
        v
    })
    .collect()
}

#[test]
fn fuzz_image_header_check_and_decode() {
    fuzz(image_seeds(), |b| {
        let _ = imaging::decode(b, "png", 4_096);
    });
}

/// An E5S1 file's header with small shapes and nothing after it.
fn e5s1_seed() -> Vec<u8> {
    let mut v = b"E5S1".to_vec();
    for n in [1u32, 32, 1, 2, 32, 8, 4, 1] {
        v.extend_from_slice(&n.to_le_bytes());
    }
    v.extend_from_slice(&1e-12f32.to_le_bytes());
    v.extend_from_slice(&32u32.to_le_bytes());
    v
}

#[test]
fn fuzz_e5s1_model_file_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e5-small-q4.bin");
    fuzz(vec![e5s1_seed()], |b| {
        std::fs::write(&path, b).unwrap();
        let _ = campaign_studio::services::local::e5::E5::load(&path);
    });
}

/// A GGUF file with only the tokenizer's metadata: three tokens, one merge.
fn gguf_seed() -> Vec<u8> {
    fn s(v: &mut Vec<u8>, t: &str) {
        v.extend_from_slice(&(t.len() as u64).to_le_bytes());
        v.extend_from_slice(t.as_bytes());
    }
    let mut v = b"GGUF".to_vec();
    v.extend_from_slice(&3u32.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes()); // tensors
    v.extend_from_slice(&4u64.to_le_bytes()); // metadata entries
    s(&mut v, "tokenizer.ggml.tokens");
    v.extend_from_slice(&9u32.to_le_bytes()); // array
    v.extend_from_slice(&8u32.to_le_bytes()); // of strings
    v.extend_from_slice(&3u64.to_le_bytes());
    for t in ["a", "b", "ab"] {
        s(&mut v, t);
    }
    s(&mut v, "tokenizer.ggml.merges");
    v.extend_from_slice(&9u32.to_le_bytes());
    v.extend_from_slice(&8u32.to_le_bytes());
    v.extend_from_slice(&1u64.to_le_bytes());
    s(&mut v, "a b");
    s(&mut v, "tokenizer.ggml.token_type");
    v.extend_from_slice(&9u32.to_le_bytes());
    v.extend_from_slice(&5u32.to_le_bytes()); // of i32
    v.extend_from_slice(&3u64.to_le_bytes());
    for t in [1i32, 1, 3] {
        v.extend_from_slice(&t.to_le_bytes());
    }
    s(&mut v, "tokenizer.ggml.eos_token_id");
    v.extend_from_slice(&4u32.to_le_bytes()); // u32
    v.extend_from_slice(&2u32.to_le_bytes());
    v
}

#[test]
fn the_gguf_seed_is_a_tokenizer() {
    let content = gguf_file::Content::read(&mut Cursor::new(gguf_seed())).unwrap();
    let (tok, eos) = smollm::tokenizer_from_gguf(&content.metadata).unwrap();
    assert_eq!(eos, 2);
    assert_eq!(tok.get_vocab_size(true), 3);
}

#[test]
fn fuzz_gguf_tokenizer_reader() {
    fuzz(vec![gguf_seed()], |b| {
        if let Ok(content) = gguf_file::Content::read(&mut Cursor::new(b)) {
            let _ = smollm::tokenizer_from_gguf(&content.metadata);
        }
    });
}

#[test]
fn fuzz_terminal_reply_of_the_image_probe() {
    fuzz(seed_files("terminal_reply"), |b| {
        let _ = campaign_studio::tui::images::parse_probe(b);
    });
}
