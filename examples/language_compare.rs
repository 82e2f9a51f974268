//! Our "is this English?" (lingua over Latin-script languages, script check for the rest)
//! against whatlang, on the labelled briefs and queries of tests/fixtures/language/:
//! `cargo run --release --example language_compare`. docs/ARCHITECTURE.md has the figures.
use std::path::Path;
use std::time::Instant;

use campaign_studio::services::language;

type Detector = fn(&str) -> bool;

fn whatlang_top(text: &str) -> bool {
    whatlang::detect_lang(text).is_none_or(|l| l == whatlang::Lang::Eng)
}

/// whatlang, English unless it is sure of another language.
fn whatlang_reliable(text: &str) -> bool {
    whatlang::detect(text).is_none_or(|i| i.lang() == whatlang::Lang::Eng || !i.is_reliable())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/language");
    let detectors: [(&str, Detector); 3] = [
        ("campaign-studio (lingua)", language::is_english),
        ("whatlang, top language", whatlang_top),
        ("whatlang, if reliable", whatlang_reliable),
    ];
    language::is_english("warm up"); // load the models outside the timing
    for file in ["dev.tsv", "heldout.tsv", "test.tsv"] {
        let text = std::fs::read_to_string(dir.join(file))?;
        let rows: Vec<(bool, &str)> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(lang, t)| (lang == "en", t))
            .collect();
        println!("{file}: {} texts", rows.len());
        for (name, is_english) in detectors {
            let (mut en, mut en_ok, mut other, mut other_ok) = (0, 0, 0, 0);
            let start = Instant::now();
            for (want_english, t) in &rows {
                let got = is_english(t);
                if *want_english {
                    en += 1;
                    en_ok += usize::from(got);
                } else {
                    other += 1;
                    other_ok += usize::from(!got);
                }
            }
            let per = start.elapsed().as_secs_f64() * 1e6 / rows.len().max(1) as f64;
            println!(
                "  {name:26} English kept {en_ok}/{en}, other languages caught {other_ok}/{other}, {per:.0} µs/text"
            );
        }
    }
    Ok(())
}
