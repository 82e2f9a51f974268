//! Amazon Titan Multimodal Embeddings G1 (`amazon.titan-embed-image-v1`) through InvokeModel:
//! library images are embedded as images and briefs as text, in one space, so a text query
//! finds images directly (as the original did). The embedder id carries the model and the
//! output length ("bedrock/amazon.titan-embed-image-v1/1024"), so vectors of different lengths
//! never mix.
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use crate::domain::EmbedderId;
use crate::services::bedrock::Bedrock;
use crate::services::{Embedder, TextRole};
use crate::{Error, Result};

pub const PREFIX: &str = "bedrock/";
pub const LENGTHS: [usize; 3] = [256, 384, 1024];
/// Titan takes images up to 2048 px on a side (and 25 MB); larger ones are scaled down first.
pub const MAX_SIDE: u32 = 2048;
/// Titan's text limit is 256 tokens; at about 4 characters per token, longer text is cut at a
/// word boundary (with a warning in the log) rather than refused.
pub const MAX_TEXT_CHARS: usize = 1000;

pub struct Titan {
    bedrock: Arc<Bedrock>,
    model: String,
    length: usize,
    id: EmbedderId,
}

/// (model, length) from an embedder id like "bedrock/amazon.titan-embed-image-v1/1024".
pub fn parse_id(id: &str) -> Result<(String, usize)> {
    let rest = id
        .strip_prefix(PREFIX)
        .ok_or_else(|| Error::Config(format!("'{id}' is not a Bedrock embedder id")))?;
    let (model, len) = rest.rsplit_once('/').ok_or_else(|| {
        Error::Config(format!(
            "key 'models.text_embedder': '{id}' needs the output length, like bedrock/amazon.titan-embed-image-v1/1024"
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

/// Text within Titan's limit, cut at a word boundary.
pub fn fit_text(text: &str) -> (String, bool) {
    if text.chars().count() <= MAX_TEXT_CHARS {
        return (text.to_string(), false);
    }
    let cut: String = text.chars().take(MAX_TEXT_CHARS).collect();
    let end = cut.rfind(char::is_whitespace).unwrap_or(cut.len());
    (cut[..end].trim_end().to_string(), true)
}

fn normalised(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.into_iter().map(|x| x / n).collect()
    } else {
        v
    }
}

impl Titan {
    pub fn new(bedrock: Arc<Bedrock>, id: &str) -> Result<Self> {
        let (model, length) = parse_id(id)?;
        Ok(Titan {
            bedrock,
            model,
            length,
            id: EmbedderId::new(id),
        })
    }

    fn call(&self, input: (&str, String)) -> Result<Vec<f32>> {
        let body = json!({
            input.0: input.1,
            "embeddingConfig": { "outputEmbeddingLength": self.length },
        });
        let answer = self.bedrock.invoke_json(&self.model, &body)?;
        let v: Vec<f32> = answer
            .get("embedding")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Cloud(format!("{}: the answer has no embedding", self.model)))?
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::Cloud(format!(
                    "{}: the embedding is not a list of numbers",
                    self.model
                ))
            })?;
        if v.len() != self.length {
            return Err(Error::Cloud(format!(
                "{}: asked for {} dimensions, got {}",
                self.model,
                self.length,
                v.len()
            )));
        }
        Ok(normalised(v))
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
        texts
            .iter()
            .map(|t| {
                let (t, cut) = fit_text(t);
                if cut {
                    tracing::warn!(
                        model = %self.model,
                        "text over Titan's limit; embedded its first {} characters",
                        t.chars().count()
                    );
                }
                self.call(("inputText", t))
            })
            .collect()
    }
    fn embed_image(&self, image: &image::DynamicImage) -> Option<Result<Vec<f32>>> {
        let rgb = if image.width().max(image.height()) > MAX_SIDE {
            image
                .resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Triangle)
                .to_rgb8()
        } else {
            image.to_rgb8()
        };
        let mut jpeg = Vec::new();
        if let Err(e) = rgb.write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        ) {
            return Some(Err(Error::Invalid(format!(
                "encoding the image for Titan: {e}"
            ))));
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg);
        Some(self.call(("inputImage", b64)))
    }
    fn embeds_images(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_text_limits() {
        assert_eq!(
            parse_id("bedrock/amazon.titan-embed-image-v1/384").unwrap(),
            ("amazon.titan-embed-image-v1".to_string(), 384)
        );
        let e = parse_id("bedrock/amazon.titan-embed-image-v1/512")
            .unwrap_err()
            .to_string();
        assert!(e.contains("256, 384 or 1024"), "{e}");
        assert!(parse_id("bedrock/amazon.titan-embed-image-v1").is_err());
        let long = "word ".repeat(400);
        let (t, cut) = fit_text(&long);
        assert!(cut && t.len() <= MAX_TEXT_CHARS && t.ends_with("word"));
        assert_eq!(fit_text("short brief"), ("short brief".to_string(), false));
    }
}
