//! The records of an OpenSearch index written by the original AWS sample in its older version
//! (OpenSearch Serverless), read for `library import` with the backend's client and auth
//! (`aoss` SigV4 included). The sample's documents (../shared/seed, §2.1.3): `{id, results,
//! node, objective, image_s3_uri, image_description, img_element_list, embeddings}`, with
//! `embeddings` a 1024-d `knn_vector` (cosinesimil), indexed without an explicit `_id`.
//!
//! Pages follow `search_after` in `_doc` order with `_id` as the tie-break: `_doc` alone is
//! unique only within a shard and the sample's index has two, so a page boundary could skip or
//! repeat documents; the pair is unique across shards. (A point in time would pin the view,
//! but OpenSearch Serverless does not offer one; the source is read as it stands.)
use serde_json::{Value, json};

use super::{Body, OpenSearch};
use crate::services::import_source::{RecordSource, SampleRecord};
use crate::{Error, Result};
use opensearch::http::Method;

/// Documents per page (a 1024-d vector is about 20 KB of JSON, so a page about 4 MB).
const PAGE: usize = 200;

const FIELDS: [&str; 8] = [
    "id",
    "results",
    "node",
    "objective",
    "image_s3_uri",
    "image_description",
    "img_element_list",
    "embeddings",
];

/// A sample's index on an OpenSearch cluster, opened by `OpenSearch::sample_index`.
pub struct SampleIndex {
    os: OpenSearch,
    index: String,
    uri: String,
    comparable: Option<(usize, bool)>,
}

impl OpenSearch {
    /// The index `name` as the original sample wrote it, to import from: its vector field's
    /// dimension and space from the mapping.
    pub fn sample_index(self, name: &str, uri: &str) -> Result<SampleIndex> {
        if name.is_empty() || name.contains(['/', '?', '#', '*', ',', ' ']) {
            return Err(Error::Config(format!(
                "'{name}' is not an OpenSearch index name (--from opensearch://HOST[:PORT]/INDEX)"
            )));
        }
        let mapping = self.call(
            "read the source index's mapping",
            Method::Get,
            &format!("/{name}/_mapping"),
            Body::None,
        )?;
        Ok(SampleIndex {
            os: self,
            index: name.to_string(),
            uri: uri.to_string(),
            comparable: vector_field(&mapping),
        })
    }
}

/// (dimension, cosine) of the `embeddings` field in a `_mapping` answer.
pub fn vector_field(mapping: &Value) -> Option<(usize, bool)> {
    let props = mapping
        .as_object()?
        .values()
        .next()?
        .pointer("/mappings/properties/embeddings")?;
    let dim = usize::try_from(props.get("dimension")?.as_u64()?).ok()?;
    let space = props
        .pointer("/method/space_type")
        .or_else(|| props.get("space_type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    Some((dim, space == "cosinesimil"))
}

/// The body of the page after `after` (None: the first).
pub fn page_body(after: Option<&Value>) -> Value {
    let mut b = json!({
        "size": PAGE,
        "query": {"match_all": {}},
        "sort": [{"_doc": "asc"}, {"_id": "asc"}],
        "_source": FIELDS,
        "track_total_hits": false,
    });
    if let Some(a) = after {
        b["search_after"] = a.clone();
    }
    b
}

/// A metadata value as text (the sample stores strings; a number is tolerated).
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// One hit of a page as a sample record; a vector that is not an array of numbers is left out
/// (the record is imported without it, and the import says so).
pub fn record_of(hit: &Value) -> Option<SampleRecord> {
    let id = hit.get("_id").and_then(Value::as_str)?;
    let src = hit.get("_source");
    let get = |k: &str| src.and_then(|s| s.get(k));
    let vector = get("embeddings").and_then(Value::as_array).and_then(|a| {
        a.iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<Vec<f32>>>()
    });
    Some(SampleRecord {
        key: text(get("id")).unwrap_or_else(|| id.to_string()),
        vector,
        objective: text(get("objective")),
        node: text(get("node")),
        results: get("results").cloned().filter(|v| !v.is_null()),
        image_s3_uri: text(get("image_s3_uri")),
        description: text(get("image_description")),
        elements: text(get("img_element_list")),
    })
}

impl RecordSource for SampleIndex {
    fn name(&self) -> String {
        self.uri.clone()
    }

    fn vectors_comparable(&self) -> Option<(usize, bool)> {
        self.comparable
    }

    fn records(&self) -> Result<Vec<SampleRecord>> {
        let path = format!("/{}/_search", self.index);
        let mut out = Vec::new();
        let mut after: Option<Value> = None;
        loop {
            let answer = self.os.call(
                "read the source index",
                Method::Post,
                &path,
                Body::Json(page_body(after.as_ref())),
            )?;
            let hits = answer
                .pointer("/hits/hits")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let Some(last) = hits.last() else { break };
            let next = last.get("sort").cloned();
            if next.is_none() || next == after {
                return Err(Error::Cloud(format!(
                    "opensearch: {} answered a page without a new sort position; the import cannot page through it",
                    self.uri
                )));
            }
            out.extend(hits.iter().filter_map(record_of));
            if hits.len() < PAGE {
                break;
            }
            after = next;
        }
        Ok(out)
    }
}
