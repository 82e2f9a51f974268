//! The records of an S3 Vectors index written by the original AWS sample, read for
//! `library import`. The sample writes `{key: <file stem>, data: {float32: [1024]}, metadata:
//! {results, node, objective, image_s3_uri, image_description, img_element_list}}` (the last
//! three non-filterable) into a float32, 1024-d, cosine index (../shared/seed, §2.1.4).
use aws_smithy_types::Document;

use super::S3VectorsIndex;
use crate::Result;
use crate::services::aws::doc;
use crate::services::import_source::{RecordSource, SampleRecord};

/// What the sample embeds its images with (Titan Multimodal Embeddings G1, 1024-d).
pub const SOURCE_EMBEDDER: &str = "bedrock/amazon.titan-embed-image-v1/1024";

/// A sample's index, opened by `S3Vectors::sample_index`.
pub struct SampleIndex {
    ix: S3VectorsIndex,
    uri: String,
    dim: usize,
    cosine: bool,
}

impl SampleIndex {
    pub(super) fn new(ix: S3VectorsIndex, uri: String, dim: usize, cosine: bool) -> Self {
        SampleIndex {
            ix,
            uri,
            dim,
            cosine,
        }
    }
}

impl RecordSource for SampleIndex {
    fn name(&self) -> String {
        self.uri.clone()
    }

    fn vectors_comparable(&self) -> Option<(usize, bool)> {
        Some((self.dim, self.cosine))
    }

    fn records(&self) -> Result<Vec<SampleRecord>> {
        let mut out: Vec<SampleRecord> = self
            .ix
            .list_raw(true, true)?
            .into_iter()
            .map(|(key, meta, vector)| record_of(key, meta.as_ref(), vector))
            .collect();
        // Segments answer in any order; the import reports in key order.
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// A metadata value as text (the sample stores strings; a number is tolerated).
fn text(d: Option<&Document>) -> Option<String> {
    match d? {
        Document::String(s) => Some(s.clone()),
        Document::Null => None,
        other => Some(doc::to_json(other).to_string()),
    }
}

/// One listed vector as a sample record.
pub fn record_of(key: String, meta: Option<&Document>, vector: Option<Vec<f32>>) -> SampleRecord {
    let m = meta.and_then(Document::as_object);
    let get = |k: &str| m.and_then(|m| m.get(k));
    SampleRecord {
        key,
        vector,
        objective: text(get("objective")),
        node: text(get("node")),
        results: get("results").map(doc::to_json),
        image_s3_uri: text(get("image_s3_uri")),
        description: text(get("image_description")),
        elements: text(get("img_element_list")),
    }
}
