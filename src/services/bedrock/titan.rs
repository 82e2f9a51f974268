//! Amazon Titan Multimodal Embeddings G1 (`amazon.titan-embed-image-v1`) through InvokeModel:
//! library images are embedded as images and briefs as text, in one space, so a text query
//! finds images directly (as the original did). The embedder id carries the model and the
//! output length ("bedrock/amazon.titan-embed-image-v1/1024"), so vectors of different lengths
//! never mix. Every call is recorded with the `inputTextTokenCount` Titan reports.
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use crate::domain::{EmbedderId, ModelCall};
use crate::services::bedrock::{Bedrock, Route};
use crate::services::{Embedder, TextRole};
use crate::{Error, Result};

pub const PREFIX: &str = "bedrock/";
pub const MODEL: &str = "amazon.titan-embed-image-v1";
pub const LENGTHS: [usize; 3] = [256, 384, 1024];
/// Titan takes images up to 2048 px on a side (and 25 MB); larger ones are scaled down first.
pub const MAX_SIDE: u32 = 2048;
/// Titan's documented text limit.
pub const MAX_TEXT_TOKENS: usize = 256;
/// Text is cut to this many estimated tokens, below the limit to leave room for the estimate's
/// error; a refusal for length is retried once more with half the text.
const TEXT_TOKEN_BUDGET: usize = 230;

pub struct Titan {
    bedrock: Arc<Bedrock>,
    route: Route,
    length: usize,
    id: EmbedderId,
}

/// (model, length) from an embedder id like "bedrock/amazon.titan-embed-image-v1/1024".
pub fn parse_id(id: &str) -> Result<(String, usize)> {
    let rest = id
        .strip_prefix(PREFIX)
        .ok_or_else(|| Error::Config(format!("'{id}' is not a Bedrock embedder id")))?;
    let (model, len) = rest
        .split_once('/')
        .filter(|(_, len)| !len.contains('/'))
        .ok_or_else(|| {
            Error::Config(format!(
                "key 'models.text_embedder': '{id}' is not model/length, like bedrock/amazon.titan-embed-image-v1/1024"
            ))
        })?;
    let length: usize = len
        .parse()
        .ok()
        .filter(|l| LENGTHS.contains(l))
        .ok_or_else(|| {
            Error::Config(format!(
                "key 'models.text_embedder': output length '{len}' of '{id}' must be 256, 384 or 1024"
            ))
        })?;
    Ok((model.to_string(), length))
}

/// A conservative count of the tokens a text costs Titan: about four letters per token, but
/// every digit and every punctuation or symbol character may be a token of its own (text of
/// prices, dates and codes runs out of tokens long before 1,000 characters).
pub fn estimate_tokens(text: &str) -> usize {
    let mut tokens = 0usize;
    let mut letters = 0usize;
    for c in text.chars() {
        if c.is_alphabetic() {
            letters += 1;
            continue;
        }
        tokens += letters.div_ceil(4);
        letters = 0;
        if !c.is_whitespace() {
            tokens += 1;
        }
    }
    tokens + letters.div_ceil(4)
}

/// The longest prefix of `text`, cut at a word boundary, whose estimate fits `budget`.
pub fn fit_tokens(text: &str, budget: usize) -> (String, bool) {
    if estimate_tokens(text) <= budget {
        return (text.to_string(), false);
    }
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if estimate_tokens(&text[..i]) > budget {
                break;
            }
            end = i;
        }
    }
    if end == 0 {
        // One long word: cut by characters.
        let mut cut = String::new();
        for c in text.chars() {
            cut.push(c);
            if estimate_tokens(&cut) > budget {
                cut.pop();
                break;
            }
        }
        return (cut, true);
    }
    (text[..end].trim_end().to_string(), true)
}

fn normalised(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.into_iter().map(|x| x / n).collect()
    } else {
        v
    }
}

/// Whether a refusal is about the text's length (then a shorter text may pass).
fn refused_for_length(e: &Error) -> bool {
    let Error::Cloud(m) = e else { return false };
    let m = m.to_lowercase();
    m.contains("refused as invalid")
        && ["token", "too long", "length", "exceed", "limit"]
            .iter()
            .any(|w| m.contains(w))
}

/// The embedding vector of an answer, checked against the length asked for.
pub(crate) fn vector(model: &str, v: Option<&Value>, length: usize) -> Result<Vec<f32>> {
    let v: Vec<f32> = v
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Cloud(format!("{model}: the answer has no embedding")))?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32).filter(|f| f.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            Error::Cloud(format!(
                "{model}: the embedding is not a list of finite numbers"
            ))
        })?;
    if v.len() != length {
        return Err(Error::Cloud(format!(
            "{model}: asked for {length} dimensions, got {}",
            v.len()
        )));
    }
    Ok(normalised(v))
}

/// JPEG of an image within `max_side`, for the embedders that take images inline.
pub(crate) fn jpeg_within(image: &image::DynamicImage, max_side: u32) -> Result<Vec<u8>> {
    let rgb = if image.width().max(image.height()) > max_side {
        image
            .resize(max_side, max_side, image::imageops::FilterType::Triangle)
            .to_rgb8()
    } else {
        image.to_rgb8()
    };
    let mut jpeg = Vec::new();
    rgb.write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )
    .map_err(|e| Error::Invalid(format!("encoding the image for the embedder: {e}")))?;
    Ok(jpeg)
}

impl Titan {
    /// `route` is where `bedrock.models.embeddings` says to call the model (see
    /// `Bedrock::embedding_route`).
    pub fn new(bedrock: Arc<Bedrock>, id: &str, route: Route) -> Result<Self> {
        let (_, length) = parse_id(id)?;
        Ok(Titan {
            bedrock,
            route,
            length,
            id: EmbedderId::new(id),
        })
    }

    fn call(&self, job: &str, input: (&str, String)) -> Result<Vec<f32>> {
        let body = json!({
            input.0: input.1,
            "embeddingConfig": { "outputEmbeddingLength": self.length },
        });
        let answer = self.bedrock.invoke_json(&self.route, &body)?;
        let tokens = answer
            .json
            .get("inputTextTokenCount")
            .and_then(Value::as_u64)
            .map(|t| t.min(u32::MAX as u64) as u32)
            .or(answer.input_tokens)
            .unwrap_or(0);
        self.bedrock.record(
            &self.route,
            ModelCall {
                job: job.into(),
                input_tokens: tokens,
                images: u32::from(input.0 == "inputImage"),
                ..Default::default()
            },
        );
        if let Some(m) = answer
            .json
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !m.trim().is_empty())
            && answer.json.get("embedding").is_none()
        {
            return Err(Error::Cloud(format!("{}: {m}", self.route.id)));
        }
        vector(&self.route.id, answer.json.get("embedding"), self.length)
    }

    fn embed_text(&self, text: &str) -> Result<Vec<f32>> {
        let (mut t, cut) = fit_tokens(text, TEXT_TOKEN_BUDGET);
        if cut {
            tracing::warn!(
                model = %self.route.id,
                chars = t.chars().count(),
                "text over Titan's {MAX_TEXT_TOKENS}-token limit; embedded its first part"
            );
        }
        match self.call("embed-text", ("inputText", t.clone())) {
            Err(e) if refused_for_length(&e) && t.chars().count() > 16 => {
                let budget = estimate_tokens(&t) / 2;
                t = fit_tokens(&t, budget).0;
                tracing::warn!(model = %self.route.id, chars = t.chars().count(), "Titan refused the text's length; retrying with half");
                self.call("embed-text", ("inputText", t))
            }
            other => other,
        }
    }
}

impl Embedder for Titan {
    fn id(&self) -> &EmbedderId {
        &self.id
    }
    fn dim(&self) -> usize {
        self.length
    }
    fn embed_texts(&self, texts: &[String], _role: TextRole) -> Result<Vec<Vec<f32>>> {
        texts.iter().map(|t| self.embed_text(t)).collect()
    }
    fn embed_image(&self, image: &image::DynamicImage) -> Option<Result<Vec<f32>>> {
        let jpeg = match jpeg_within(image, MAX_SIDE) {
            Ok(j) => j,
            Err(e) => return Some(Err(e)),
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg);
        Some(self.call("embed-image", ("inputImage", b64)))
    }
    fn embeds_images(&self) -> bool {
        true
    }
    fn english_only_text(&self) -> bool {
        self.route.known.english_only_text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_model_and_length() {
        assert_eq!(
            parse_id("bedrock/amazon.titan-embed-image-v1/384").unwrap(),
            ("amazon.titan-embed-image-v1".to_string(), 384)
        );
    }

    #[test]
    fn an_undocumented_length_is_refused() {
        let e = parse_id("bedrock/amazon.titan-embed-image-v1/512")
            .unwrap_err()
            .to_string();
        assert!(e.contains("256, 384 or 1024"), "{e}");
        assert!(parse_id("bedrock/amazon.titan-embed-image-v1").is_err());
    }

    #[test]
    fn plain_words_fit_about_four_letters_a_token() {
        assert_eq!(estimate_tokens("word word"), 2);
        let long = "word ".repeat(400);
        let (t, cut) = fit_tokens(&long, TEXT_TOKEN_BUDGET);
        assert!(cut && t.ends_with("word") && estimate_tokens(&t) <= TEXT_TOKEN_BUDGET);
        assert_eq!(
            fit_tokens("short brief", TEXT_TOKEN_BUDGET),
            ("short brief".to_string(), false)
        );
    }

    #[test]
    fn digits_and_punctuation_are_cut_well_under_a_thousand_characters() {
        // 1,000 characters of prices and codes: far more than 256 tokens.
        let text = "SKU-4471/B $19.99 (-20%) 2026-06-01; ".repeat(27);
        assert!(text.chars().count() <= 1000);
        assert!(estimate_tokens(&text) > MAX_TEXT_TOKENS);
        let (t, cut) = fit_tokens(&text, TEXT_TOKEN_BUDGET);
        assert!(cut && estimate_tokens(&t) <= TEXT_TOKEN_BUDGET, "{t}");
    }

    #[test]
    fn one_endless_word_is_cut_by_characters() {
        let (t, cut) = fit_tokens(&"9".repeat(600), 100);
        assert!(cut);
        assert_eq!(t.len(), 100);
    }
}
