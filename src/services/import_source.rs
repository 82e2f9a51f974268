//! What `library import` reads a deployment of the original AWS sample through: its records
//! (an S3 Vectors index, or an OpenSearch index in the sample's older version) and its images
//! (S3). Declared here, not in the engine, so the services that implement them never import
//! the engine.
use std::path::PathBuf;

use crate::Result;

/// One record of the sample's vector index as read; a field is None when the record lacks it
/// (the import reports that per item).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleRecord {
    /// The S3 Vectors key, or the OpenSearch document's `id` field (its `_id` when absent).
    pub key: String,
    pub vector: Option<Vec<f32>>,
    pub objective: Option<String>,
    pub node: Option<String>,
    /// The KPI as stored (a number, or a string the import parses).
    pub results: Option<serde_json::Value>,
    pub image_s3_uri: Option<String>,
    /// Nova Pro's description of the image.
    pub description: Option<String>,
    /// `img_element_list`: Nova Pro's elements joined with ','.
    pub elements: Option<String>,
}

/// Reads every record of the source index.
pub trait RecordSource {
    /// What messages call the source (`s3vectors://bucket/index`).
    fn name(&self) -> String;
    /// The index's vector dimension and whether its metric is cosine, when the source says.
    fn vectors_comparable(&self) -> Option<(usize, bool)>;
    fn records(&self) -> Result<Vec<SampleRecord>>;
}

/// Fetches objects by bucket and key.
pub trait ObjectSource: Sync {
    /// Fetches each `(key, path)` of `bucket` (at most the configured concurrency at once),
    /// refusing an object over `max_bytes`, and writes it to the path given (complete or not at
    /// all). One result per item, in order: Ok, or why that object could not be had.
    /// `progress` is called with the number done after each.
    fn fetch_all(
        &self,
        bucket: &str,
        items: &[(String, PathBuf)],
        max_bytes: u64,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Vec<std::result::Result<(), String>>;
}
