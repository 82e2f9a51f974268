//! A query in another language, moved toward the English texts it is searched against.
//!
//! A multilingual embedder places a Spanish text and its English translation near each other,
//! but not at the same place: every Spanish text also carries a direction of its own, the
//! language. Searched against English documents (descriptions, and above all the English class
//! documents raw photos are indexed by, `local::label_space`), that shared direction costs a
//! Spanish brief part of its match. The offset is the mean difference between the vectors of
//! parallel sentences, Spanish minus English, embedded as queries; a query the language
//! detector reads as Spanish is searched as unit(q − offset).
//!
//! The sentences (`data/language-offsets/es.jsonl`, 64 pairs about campaigns of many kinds,
//! written for this and never drawn from the evaluation sets) are embedded once per process
//! and embedder, on the first query that needs them. The offset is the plain mean difference:
//! no scale or other number was tuned. Only embedders that say so use it
//! (`Embedder::language_offsets`: multilingual-e5), and only for the languages that have
//! sentences here (Spanish); other queries are searched as they are. `tests/retrieval_quality.rs`
//! measures what it changes.
use std::sync::Arc;

use crate::Result;
use crate::services::built_once::BuiltOnce;
use crate::services::language::{self, Reading};
use crate::services::{Embedder, TextRole, normalize};

/// One language's parallel sentences.
#[derive(Clone, Copy)]
pub struct Corpus {
    /// The language's name as the detector gives it (`language::Reading::Other`).
    pub language: &'static str,
    /// The key of its sentences in each line (beside `en`).
    pub key: &'static str,
    /// One JSON object a line: `{"en": …, key: …}`.
    pub lines: &'static str,
}

/// The languages that have parallel sentences.
const CORPORA: &[Corpus] = &[Corpus {
    language: "Spanish",
    key: "es",
    lines: include_str!("../../data/language-offsets/es.jsonl"),
}];

/// How sure the detector must be that a query is in the language (`language::confidence`)
/// before it is moved. lingua reads some short English queries as Spanish ("tacos and salsa"
/// 0.32, "burrito bar" 0.28); of the labelled Spanish texts in tests/fixtures/language/ that it
/// reads as Spanish, one two-word query ("cena familiar", 0.29) is below this and the rest are
/// at 0.48 or more. Chosen on those files, before the retrieval sets were measured with it.
pub const MIN_CONFIDENCE: f64 = 0.4;

struct Pair {
    en: String,
    /// The sentence in the other language.
    other: String,
}

/// The corpus of `language` as shipped, if it has one.
pub fn corpus(language: &str) -> Option<Corpus> {
    CORPORA.iter().find(|c| c.language == language).copied()
}

/// The parallel sentences of `corpus`.
fn pairs(corpus: &Corpus) -> Result<Vec<Pair>> {
    let language = corpus.language;
    let mut out = Vec::new();
    for (i, line) in corpus.lines.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| {
            crate::Error::Inference(format!(
                "the {language} parallel sentences, line {}: {why}",
                i + 1
            ))
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let text = |key: &str| {
            v.get(key)
                .and_then(serde_json::Value::as_str)
                .filter(|t| !t.trim().is_empty())
                .map(str::to_string)
                .ok_or_else(|| bad(format!("no \"{key}\" text")))
        };
        out.push(Pair {
            en: text("en")?,
            other: text(corpus.key)?,
        });
    }
    if out.is_empty() {
        return Err(crate::Error::Inference(format!(
            "the {language} parallel sentences are empty"
        )));
    }
    Ok(out)
}

/// The mean of `other − english` over the pairs, as `embedder` embeds them as queries.
pub fn build(embedder: &dyn Embedder, corpus: &Corpus) -> Result<Vec<f32>> {
    let language = corpus.language;
    let pairs = pairs(corpus)?;
    let english: Vec<String> = pairs.iter().map(|p| p.en.clone()).collect();
    let other: Vec<String> = pairs.iter().map(|p| p.other.clone()).collect();
    let (en, ot) = (
        embedder.embed_texts(&english, TextRole::Query)?,
        embedder.embed_texts(&other, TextRole::Query)?,
    );
    let dim = embedder.dim();
    if en.len() != pairs.len()
        || ot.len() != pairs.len()
        || en.iter().chain(&ot).any(|v| v.len() != dim)
    {
        return Err(crate::Error::Inference(format!(
            "the text embedder returned vectors of the wrong number or size for the {language} parallel sentences"
        )));
    }
    let mut offset = vec![0.0f32; dim];
    for (e, o) in en.iter().zip(&ot) {
        for ((d, x), y) in offset.iter_mut().zip(o).zip(e) {
            *d += x - y;
        }
    }
    let n = pairs.len() as f32;
    offset.iter_mut().for_each(|d| *d /= n);
    if !offset.iter().all(|d| d.is_finite()) {
        return Err(crate::Error::Inference(format!(
            "the {language} offset is not finite"
        )));
    }
    Ok(offset)
}

/// The offset of `language` under `embedder`, built on first use and kept for the process;
/// `None` when the language has no sentences or the offset could not be built (logged once,
/// not retried in this process).
pub fn shared(embedder: &dyn Embedder, language: &str) -> Option<Arc<Vec<f32>>> {
    static OFFSETS: BuiltOnce<Vec<f32>> = BuiltOnce::new();
    let corpus = corpus(language)?;
    // The sentences are not queries a user will repeat: past any query cache.
    let embedder = embedder.uncached().unwrap_or(embedder);
    let key = format!("{}@{}/{language}", embedder.id(), embedder.dim());
    OFFSETS.get_or_build(key, || {
        let t = std::time::Instant::now();
        match build(embedder, &corpus) {
            Ok(offset) => {
                tracing::info!(embedder = %embedder.id(), language, ms = t.elapsed().as_millis() as u64, "embedded the parallel sentences of the language offset");
                Some(offset)
            }
            Err(e) => {
                tracing::warn!(embedder = %embedder.id(), language, error = %e, "no language offset: such queries are searched as they are");
                None
            }
        }
    })
}

/// The language whose offset a query `text` (read as `reading`, `language::reading`) is moved
/// by under `embedder`: one the embedder uses offsets for, that has sentences here, and that
/// the detector is sure enough of (`MIN_CONFIDENCE`). Nothing is embedded.
pub fn language_for(
    embedder: &dyn Embedder,
    text: &str,
    reading: &Reading,
) -> Option<&'static str> {
    if !embedder.language_offsets() {
        return None;
    }
    let Reading::Other(Some(name)) = reading else {
        return None;
    };
    let corpus = corpus(name)?;
    sure_of(text, corpus.language).then_some(corpus.language)
}

/// Whether the detector is sure enough that `text` is in `language` to move or translate it
/// (`MIN_CONFIDENCE`).
pub fn sure_of(text: &str, language: &str) -> bool {
    language::confidence(text, language) >= MIN_CONFIDENCE
}

/// Moves `query` (the vector of `text` under `embedder`) by the offset of `language_for`'s
/// language; returns its name when it did.
pub fn apply(
    embedder: &dyn Embedder,
    text: &str,
    reading: &Reading,
    query: &mut [f32],
) -> Option<&'static str> {
    move_by(embedder, language_for(embedder, text, reading)?, query)
}

/// Moves `query` by `language`'s offset under `embedder`; returns the language's name when it
/// did (`None`: no offset could be built, or the sizes differ).
pub fn move_by(
    embedder: &dyn Embedder,
    language: &'static str,
    query: &mut [f32],
) -> Option<&'static str> {
    let offset = shared(embedder, language)?;
    shift(query, &offset)?;
    Some(language)
}

/// `query` ← unit(query − offset); `None` (and `query` unchanged) when the sizes differ or the
/// result has no length.
pub fn shift(query: &mut [f32], offset: &[f32]) -> Option<()> {
    if query.len() != offset.len() {
        return None;
    }
    let moved: Vec<f32> = query.iter().zip(offset).map(|(q, d)| q - d).collect();
    let len = moved.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !(len.is_finite() && len > 1e-6) {
        return None;
    }
    query.copy_from_slice(&moved);
    normalize(query);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_of(lines: &'static str) -> Corpus {
        Corpus {
            language: "Spanish",
            key: "es",
            lines,
        }
    }

    #[test]
    fn every_shipped_corpus_parses_as_64_pairs() {
        for c in CORPORA {
            let pairs = pairs(c).unwrap();
            assert_eq!(pairs.len(), 64, "{}", c.language);
        }
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let e = pairs(&corpus_of("{\"en\": \"a\", \"es\": \"b\"}\nnot json\n"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("Spanish") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn a_line_without_the_languages_key_is_named() {
        let e = pairs(&corpus_of("{\"en\": \"a\", \"fr\": \"b\"}\n"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 1") && e.contains("\"es\""), "{e}");
    }

    #[test]
    fn an_empty_corpus_is_an_error() {
        assert!(pairs(&corpus_of("\n\n")).is_err());
    }

    /// English text on the first axis; the Spanish sentences (and `SPANISH_QUERY`) halfway
    /// toward the second, as a multilingual model would put them.
    struct Bilingual {
        id: crate::domain::EmbedderId,
        opts_in: bool,
        spanish: std::collections::HashSet<String>,
    }

    const SPANISH_QUERY: &str = "Campaña de verano para familias en la playa con helados";

    fn bilingual(opts_in: bool) -> Bilingual {
        let mut spanish: std::collections::HashSet<String> = pairs(&CORPORA[0])
            .unwrap()
            .into_iter()
            .map(|p| p.other)
            .collect();
        spanish.insert(SPANISH_QUERY.into());
        Bilingual {
            id: crate::domain::EmbedderId::new("test/bilingual"),
            opts_in,
            spanish,
        }
    }

    impl Embedder for Bilingual {
        fn id(&self) -> &crate::domain::EmbedderId {
            &self.id
        }
        fn dim(&self) -> usize {
            3
        }
        fn embed_texts(&self, texts: &[String], _: TextRole) -> Result<Vec<Vec<f32>>> {
            let h = std::f32::consts::FRAC_1_SQRT_2;
            Ok(texts
                .iter()
                .map(|t| {
                    if self.spanish.contains(t) {
                        vec![h, h, 0.0]
                    } else {
                        vec![1.0, 0.0, 0.0]
                    }
                })
                .collect())
        }
        fn language_offsets(&self) -> bool {
            self.opts_in
        }
    }

    /// `apply` with the text's own reading, as a search does.
    fn applied(e: &dyn Embedder, text: &str, q: &mut [f32]) -> Option<&'static str> {
        apply(e, text, &language::reading(text), q)
    }

    #[test]
    fn a_short_english_query_read_as_spanish_without_confidence_is_left_as_it_is() {
        let e = bilingual(true);
        let text = "tacos and salsa";
        assert_eq!(
            language::reading(text),
            Reading::Other(Some("Spanish".into()))
        );
        let mut q = vec![0.6, 0.8, 0.0];
        assert_eq!(applied(&e, text, &mut q), None);
        assert_eq!(q, vec![0.6, 0.8, 0.0]);
    }

    #[test]
    fn the_offset_is_the_mean_difference_of_the_parallel_sentences() {
        let offset = build(&bilingual(true), &CORPORA[0]).unwrap();
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let want = [h - 1.0, h, 0.0];
        assert!(
            offset.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{offset:?}"
        );
    }

    #[test]
    fn a_spanish_query_is_moved_onto_its_english_place() {
        let e = bilingual(true);
        let mut q = e
            .embed_texts(&[SPANISH_QUERY.into()], TextRole::Query)
            .unwrap()
            .remove(0);
        assert_eq!(applied(&e, SPANISH_QUERY, &mut q), Some("Spanish"));
        assert!((q[0] - 1.0).abs() < 1e-6 && q[1].abs() < 1e-6, "{q:?}");
    }

    #[test]
    fn an_english_query_is_left_as_it_is() {
        let e = bilingual(true);
        let text = "Summer campaign for families on the beach with ice cream";
        let mut q = e
            .embed_texts(&[text.into()], TextRole::Query)
            .unwrap()
            .remove(0);
        assert_eq!(applied(&e, text, &mut q), None);
        assert_eq!(q, vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn a_language_without_sentences_is_left_as_it_is() {
        let e = bilingual(true);
        let text = "Sommerkampagne für Familien am Strand mit Eis und Sonnenschirmen";
        let mut q = vec![0.6, 0.8, 0.0];
        assert_eq!(applied(&e, text, &mut q), None);
        assert_eq!(q, vec![0.6, 0.8, 0.0]);
    }

    #[test]
    fn an_embedder_that_does_not_opt_in_is_left_as_it_is() {
        let e = bilingual(false);
        let mut q = e
            .embed_texts(&[SPANISH_QUERY.into()], TextRole::Query)
            .unwrap()
            .remove(0);
        let before = q.clone();
        assert_eq!(applied(&e, SPANISH_QUERY, &mut q), None);
        assert_eq!(q, before);
    }

    #[test]
    fn a_shift_subtracts_the_offset_and_keeps_unit_length() {
        let mut q = [0.6, 0.8, 0.0];
        shift(&mut q, &[0.0, 0.8, 0.0]).unwrap();
        assert_eq!(q, [1.0, 0.0, 0.0]);
    }

    #[test]
    fn a_shift_of_another_size_leaves_the_query_alone() {
        let mut q = [0.6, 0.8];
        assert!(shift(&mut q, &[0.1, 0.1, 0.1]).is_none());
        assert_eq!(q, [0.6, 0.8]);
    }

    #[test]
    fn a_shift_that_cancels_the_query_leaves_it_alone() {
        let mut q = [0.6, 0.8];
        assert!(shift(&mut q, &[0.6, 0.8]).is_none());
        assert_eq!(q, [0.6, 0.8]);
    }
}
