//! Amazon Nova Multimodal Embeddings (`amazon.nova-2-multimodal-embeddings-v1:0`) through
//! InvokeModel, schema `nova-multimodal-embed-v1`, task `SINGLE_EMBEDDING`: library images are
//! embedded as images and library documents with purpose `GENERIC_INDEX`, briefs with
//! `GENERIC_RETRIEVAL`, all in one space. The embedder id carries the model, the purpose scheme
//! and the dimension ("bedrock/amazon.nova-2-multimodal-embeddings-v1:0/generic/1024"), so its
//! vectors never mix with Titan's or with another dimension's.
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use crate::domain::{EmbedderId, ModelCall};
use crate::services::bedrock::titan::{PREFIX, jpeg_within, vector};
use crate::services::bedrock::{Bedrock, Route};
use crate::services::{Embedder, TextRole};
use crate::{Error, Result};

pub const MODEL: &str = "amazon.nova-2-multimodal-embeddings-v1:0";
pub const DIMENSIONS: [usize; 4] = [256, 384, 1024, 3072];
/// Purpose schemes: "generic" = GENERIC_INDEX for what the library holds, GENERIC_RETRIEVAL
/// for queries.
pub const SCHEMES: [&str; 1] = ["generic"];
/// Images are sent as JPEG within this side (the documentation gives no pixel limit for this
/// model; Titan's is used, which keeps requests small).
pub const MAX_SIDE: u32 = 2048;

/// (model, scheme, dimension) from an id like
/// "bedrock/amazon.nova-2-multimodal-embeddings-v1:0/generic/1024".
pub fn parse_id(id: &str) -> Result<(String, String, usize)> {
    let rest = id
        .strip_prefix(PREFIX)
        .ok_or_else(|| Error::Config(format!("'{id}' is not a Bedrock embedder id")))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [model, scheme, dim] = parts.as_slice() else {
        return Err(Error::Config(format!(
            "key 'models.text_embedder': '{id}' needs the purpose scheme and dimension, like bedrock/{MODEL}/generic/1024"
        )));
    };
    if !SCHEMES.contains(scheme) {
        return Err(Error::Config(format!(
            "key 'models.text_embedder': purpose scheme '{scheme}' of '{id}' is unknown (known: {})",
            SCHEMES.join(", ")
        )));
    }
    let dim: usize = dim
        .parse()
        .ok()
        .filter(|d| DIMENSIONS.contains(d))
        .ok_or_else(|| {
            Error::Config(format!(
                "key 'models.text_embedder': dimension '{dim}' of '{id}' must be 256, 384, 1024 or 3072"
            ))
        })?;
    Ok((model.to_string(), scheme.to_string(), dim))
}

/// The InvokeModel body for a text (public for the wire tests).
pub fn text_body(text: &str, role: TextRole, dim: usize) -> Value {
    json!({
        "schemaVersion": "nova-multimodal-embed-v1",
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {
            "embeddingPurpose": purpose(role),
            "embeddingDimension": dim,
            "text": {"truncationMode": "END", "value": text},
        }
    })
}

/// The InvokeModel body for an image (JPEG bytes).
pub fn image_body(jpeg: &[u8], dim: usize) -> Value {
    json!({
        "schemaVersion": "nova-multimodal-embed-v1",
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {
            "embeddingPurpose": "GENERIC_INDEX",
            "embeddingDimension": dim,
            "image": {
                "detailLevel": "STANDARD_IMAGE",
                "format": "jpeg",
                "source": {"bytes": base64::engine::general_purpose::STANDARD.encode(jpeg)},
            },
        }
    })
}

fn purpose(role: TextRole) -> &'static str {
    match role {
        TextRole::Query => "GENERIC_RETRIEVAL",
        TextRole::Document => "GENERIC_INDEX",
    }
}

pub struct NovaEmbed {
    bedrock: Arc<Bedrock>,
    route: Route,
    dim: usize,
    id: EmbedderId,
}

impl NovaEmbed {
    pub fn new(bedrock: Arc<Bedrock>, id: &str, route: Route) -> Result<Self> {
        let (_, _, dim) = parse_id(id)?;
        Ok(NovaEmbed {
            bedrock,
            route,
            dim,
            id: EmbedderId::new(id),
        })
    }

    fn call(&self, job: &str, body: &Value, images: u32) -> Result<Vec<f32>> {
        let answer = self.bedrock.invoke_json(&self.route, body)?;
        self.bedrock.record(
            &self.route,
            ModelCall {
                job: job.into(),
                input_tokens: answer.input_tokens.unwrap_or(0),
                images,
                ..Default::default()
            },
        );
        // `{"embeddings": [{"embeddingType": "TEXT", "embedding": [...]}]}`.
        let first = answer
            .json
            .get("embeddings")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|e| e.get("embedding"));
        vector(&self.route.id, first, self.dim)
    }
}

impl Embedder for NovaEmbed {
    fn id(&self) -> &EmbedderId {
        &self.id
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn embed_texts(&self, texts: &[String], role: TextRole) -> Result<Vec<Vec<f32>>> {
        texts
            .iter()
            .map(|t| self.call("embed-text", &text_body(t, role, self.dim), 0))
            .collect()
    }
    fn embed_image(&self, image: &image::DynamicImage) -> Option<Result<Vec<f32>>> {
        Some(
            jpeg_within(image, MAX_SIDE)
                .and_then(|jpeg| self.call("embed-image", &image_body(&jpeg, self.dim), 1)),
        )
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
    fn ids_carry_model_scheme_and_dimension() {
        assert_eq!(
            parse_id("bedrock/amazon.nova-2-multimodal-embeddings-v1:0/generic/3072").unwrap(),
            (MODEL.to_string(), "generic".to_string(), 3072)
        );
    }

    #[test]
    fn an_id_without_scheme_is_refused_with_an_example() {
        let e = parse_id("bedrock/amazon.nova-2-multimodal-embeddings-v1:0/1024")
            .unwrap_err()
            .to_string();
        assert!(e.contains("generic/1024"), "{e}");
    }

    #[test]
    fn an_undocumented_dimension_is_refused() {
        let e = parse_id("bedrock/amazon.nova-2-multimodal-embeddings-v1:0/generic/512")
            .unwrap_err()
            .to_string();
        assert!(e.contains("256, 384, 1024 or 3072"), "{e}");
    }

    #[test]
    fn briefs_are_retrieval_and_documents_are_index() {
        assert_eq!(
            text_body("x", TextRole::Query, 256)["singleEmbeddingParams"]["embeddingPurpose"],
            "GENERIC_RETRIEVAL"
        );
        assert_eq!(
            text_body("x", TextRole::Document, 256)["singleEmbeddingParams"]["embeddingPurpose"],
            "GENERIC_INDEX"
        );
    }
}
