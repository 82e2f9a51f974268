//! Every request body the OpenSearch backend sends, in one place (`serde_json::json!`), and the
//! conversions of what comes back. Facts from OpenSearch 2.19's k-NN documentation and sources:
//! the mapping names the engine always (the 2.19 default is faiss, and nmslib cannot filter);
//! `space_type: innerproduct` scores `ip + 1` when ip > 0 and `1 / (1 - ip)` otherwise, on
//! lucene and faiss alike; filters go inside the `knn` clause (efficient filtering), never in a
//! `post_filter`; `size` is set to k.
use serde_json::{Value, json};

use crate::domain::SearchFilter;
use crate::domain::index::{Tombstone, VectorRecord, bucket_of};

/// Version of the mapping this code writes; an index with another one is reported, never
/// silently reused.
pub const MAPPING_VERSION: u32 = 1;
/// The vector field.
pub const FIELD: &str = "vector";

/// The alias (and on Serverless the index) of an embedder's vectors:
/// `<namespace>-<slug>-<8 hex of sha256(id)>`, lowercase and within OpenSearch's name rules.
pub fn index_name(namespace: &str, embedder: &str) -> String {
    let (slug, hash) = crate::services::embedder_slug(embedder, 40);
    format!("{namespace}-{slug}-{hash}")
}

/// What the mapping's `_meta` records, checked on open.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub embedder: String,
    pub dim: usize,
    pub library_id: String,
    pub mapping_version: u32,
}

pub fn meta_json(m: &Meta) -> Value {
    json!({
        "embedder": m.embedder,
        "dim": m.dim,
        "library_id": m.library_id,
        "mapping_version": m.mapping_version,
        "written_by": "campaign-studio",
    })
}

/// The `_meta` of a `GET <index>/_mapping` answer (the first index in it).
pub fn meta_from_mapping(answer: &Value) -> Option<Meta> {
    let index = answer.as_object()?.values().next()?;
    let m = index.get("mappings")?.get("_meta")?;
    Some(Meta {
        embedder: m.get("embedder")?.as_str()?.to_string(),
        dim: usize::try_from(m.get("dim")?.as_u64()?).ok()?,
        library_id: m.get("library_id")?.as_str()?.to_string(),
        mapping_version: u32::try_from(m.get("mapping_version")?.as_u64()?).ok()?,
    })
}

/// Index settings and mapping. Serverless takes no shard or replica counts.
pub struct MappingParams<'a> {
    pub meta: &'a Meta,
    pub engine: &'a str,
    pub m: u32,
    pub ef_construction: u32,
    pub shards: Option<u32>,
    pub replicas: Option<u32>,
    /// An alias the new index joins at creation (clusters; Serverless has none).
    pub alias: Option<&'a str>,
}

pub fn create_index(p: &MappingParams<'_>) -> Value {
    let mut index = json!({ "knn": true });
    if let Some(s) = p.shards {
        index["number_of_shards"] = json!(s);
    }
    if let Some(r) = p.replicas {
        index["number_of_replicas"] = json!(r);
    }
    let mut body = json!({
        "settings": { "index": index },
        "mappings": {
            "_meta": meta_json(p.meta),
            "dynamic": "strict",
            // The vector is indexed, not stored a second time as JSON (searches never return
            // it, and the library, not the server, is where a vector is read back from).
            "_source": { "excludes": [FIELD] },
            "properties": {
                FIELD: {
                    "type": "knn_vector",
                    "dimension": p.meta.dim,
                    "method": {
                        "name": "hnsw",
                        "engine": p.engine,
                        "space_type": "innerproduct",
                        "parameters": { "m": p.m, "ef_construction": p.ef_construction }
                    }
                },
                "asset_id": { "type": "keyword" },
                "objective": { "type": "keyword" },
                "node": { "type": "keyword" },
                "bucket": { "type": "keyword" },
                "kpi": { "type": "double" },
                "version": { "type": "long" }
            }
        }
    });
    if let Some(a) = p.alias {
        body["aliases"] = json!({ a: {} });
    }
    body
}

/// The document of a record (the vector travels only here; searches never return it).
pub fn document(r: &VectorRecord) -> Value {
    json!({
        "asset_id": r.id,
        "objective": r.meta.objective,
        "node": r.meta.node,
        "bucket": bucket_of(&r.id),
        "kpi": r.meta.kpi,
        "version": r.version,
        FIELD: r.vector,
    })
}

/// The two NDJSON lines that index a record with its feed version as an external version (a
/// 409 answer then means the server already has it or a newer one).
pub fn bulk_index(index: &str, via_alias: bool, r: &VectorRecord) -> String {
    let mut action =
        json!({"_index": index, "_id": r.id, "version": r.version, "version_type": "external"});
    if via_alias {
        // Fails instead of creating an index of that name if the alias is gone.
        action["require_alias"] = json!(true);
    }
    format!("{}\n{}\n", json!({ "index": action }), document(r))
}

/// The NDJSON line that deletes an id if its version is older than the tombstone's.
pub fn bulk_delete(index: &str, t: &Tombstone) -> String {
    format!(
        "{}\n",
        json!({"delete": {"_index": index, "_id": t.id, "version": t.version, "version_type": "external"}})
    )
}

/// Serverless vector collections assign their own `_id`s: a record is indexed without one,
/// after deleting the documents its asset already has (in the same `_bulk`).
pub fn bulk_index_auto_id(index: &str, r: &VectorRecord) -> String {
    format!("{}\n{}\n", json!({"index": {"_index": index}}), document(r))
}

/// Deletes a document by its server-assigned `_id` (Serverless).
pub fn bulk_delete_doc(index: &str, doc_id: &str) -> String {
    format!("{}\n", json!({"delete": {"_index": index, "_id": doc_id}}))
}

/// The filter of a search as a bool query's clauses.
pub fn filter_clauses(f: &SearchFilter) -> Vec<Value> {
    let mut c = Vec::new();
    if let Some(o) = &f.objective {
        c.push(json!({"term": {"objective": o}}));
    }
    if let Some(n) = &f.node {
        c.push(json!({"term": {"node": n}}));
    }
    c
}

pub fn filter_query(f: &SearchFilter) -> Value {
    let c = filter_clauses(f);
    if c.is_empty() {
        json!({"match_all": {}})
    } else {
        json!({"bool": {"filter": c}})
    }
}

/// Approximate k-NN with the filter applied while searching.
pub fn knn_search(query: &[f32], f: &SearchFilter, k: usize, candidates: usize) -> Value {
    let mut knn = json!({ "vector": query, "k": k.max(candidates) });
    let c = filter_clauses(f);
    if !c.is_empty() {
        knn["filter"] = json!({"bool": {"filter": c}});
    }
    json!({
        "size": k,
        "_source": { "includes": ["asset_id", "version"] },
        "query": { "knn": { FIELD: knn } }
    })
}

/// Exact k-NN: the k-NN plugin's scoring script over every document the filter matches.
pub fn exact_search(query: &[f32], f: &SearchFilter, k: usize) -> Value {
    json!({
        "size": k,
        "_source": { "includes": ["asset_id", "version"] },
        "query": {
            "script_score": {
                "query": filter_query(f),
                "script": {
                    "source": "knn_score",
                    "lang": "knn",
                    "params": { "field": FIELD, "query_value": query, "space_type": "innerproduct" }
                }
            }
        }
    })
}

pub fn count(f: &SearchFilter) -> Value {
    json!({ "query": filter_query(f) })
}

/// One round trip for KPI percentiles: within the filtered set, how many KPIs are known, and
/// for each asked KPI how many are below it and how many at most it.
pub fn kpi_counts(f: &SearchFilter, kpis: &[f64]) -> Value {
    let mut filters = serde_json::Map::new();
    for (i, k) in kpis.iter().enumerate() {
        filters.insert(format!("lt{i}"), json!({"range": {"kpi": {"lt": k}}}));
        filters.insert(format!("le{i}"), json!({"range": {"kpi": {"lte": k}}}));
    }
    let mut aggs = json!({ "known": { "filter": { "exists": { "field": "kpi" } } } });
    if !filters.is_empty() {
        aggs["ranks"] = json!({ "filters": { "filters": filters } });
    }
    json!({ "size": 0, "track_total_hits": true, "query": filter_query(f), "aggs": aggs })
}

/// (known, [(below, at most)]) from a `kpi_counts` answer.
pub fn kpi_counts_answer(answer: &Value, n: usize) -> Option<(u64, Vec<(u64, u64)>)> {
    let aggs = answer.get("aggregations")?;
    let known = aggs.get("known")?.get("doc_count")?.as_u64()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let b = aggs.get("ranks")?.get("buckets")?;
        let lt = b.get(format!("lt{i}"))?.get("doc_count")?.as_u64()?;
        let le = b.get(format!("le{i}"))?.get("doc_count")?.as_u64()?;
        out.push((lt, le));
    }
    Some((known, out))
}

/// Count and version sum/max per id bucket.
pub fn digest() -> Value {
    json!({
        "size": 0,
        "aggs": {
            "buckets": {
                "terms": { "field": "bucket", "size": 65536, "order": { "_key": "asc" } },
                "aggs": {
                    "version_sum": { "sum": { "field": "version" } },
                    "version_max": { "max": { "field": "version" } },
                    "kpi_sum": { "sum": { "field": "kpi" } },
                    "objectives": { "terms": { "field": "objective", "size": 1000 } },
                    "nodes": { "terms": { "field": "node", "size": 1000 } }
                }
            }
        }
    })
}

/// One page of (asset id, version, `_id`) of a bucket, in asset-id order after the sort values
/// `after` of the previous page's last hit.
pub fn bucket_page(bucket: &str, size: usize, after: Option<&Value>) -> Value {
    let mut b = json!({
        "size": size,
        "_source": { "includes": ["asset_id", "version", "objective", "node", "kpi"] },
        "query": { "term": { "bucket": bucket } },
        "sort": [ { "asset_id": "asc" }, { "version": "desc" } ]
    });
    if let Some(a) = after {
        b["search_after"] = a.clone();
    }
    b
}

/// The documents (`_id`, version) an asset has (Serverless: its own ids).
pub fn docs_of(asset_ids: &[&str]) -> Value {
    json!({
        "size": asset_ids.len().saturating_mul(4).max(10),
        "_source": { "includes": ["asset_id", "version"] },
        "query": { "terms": { "asset_id": asset_ids } }
    })
}

/// The dot product behind an inner-product `_score`: `s - 1` when s >= 1, else `1 - 1/s`.
pub fn score_to_dot(score: f64) -> f32 {
    if score >= 1.0 {
        (score - 1.0) as f32
    } else if score > 0.0 {
        (1.0 - 1.0 / score) as f32
    } else {
        f32::NEG_INFINITY
    }
}

/// The `_score` OpenSearch gives an inner product (for tests of the conversion).
pub fn dot_to_score(dot: f64) -> f64 {
    if dot > 0.0 {
        dot + 1.0
    } else {
        1.0 / (1.0 - dot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_lowercase_slugs_with_a_hash() {
        let n = index_name("campaign-studio", "local/multilingual-e5-small-q4/desc-v1");
        assert!(
            n.starts_with("campaign-studio-local-multilingual-e5-small-q4-desc-v1-"),
            "{n}"
        );
        assert_eq!(n.len(), "campaign-studio-".len() + 38 + 1 + 8, "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn two_embedders_with_one_slug_get_two_names() {
        assert_ne!(index_name("n", "a/b"), index_name("n", "a-b"));
    }

    #[test]
    fn scores_convert_back_to_the_dot_product() {
        for dot in [-1.0, -0.731, -0.2, 0.0, 0.05, 0.5, 0.999, 1.0] {
            let back = score_to_dot(dot_to_score(dot));
            assert!((back as f64 - dot).abs() < 1e-6, "{dot} -> {back}");
        }
        assert_eq!(score_to_dot(1.8), 0.8_f32);
        assert_eq!(score_to_dot(0.5), -1.0);
    }

    #[test]
    fn the_filter_is_inside_the_knn_clause() {
        let f = SearchFilter {
            objective: Some("likes".into()),
            node: None,
        };
        let b = knn_search(&[0.1, 0.2], &f, 5, 100);
        assert!(b.get("post_filter").is_none());
        assert_eq!(
            b["query"]["knn"][FIELD]["filter"]["bool"]["filter"][0]["term"]["objective"],
            "likes"
        );
        assert_eq!(b["size"], 5);
        assert_eq!(b["query"]["knn"][FIELD]["k"], 100);
    }

    #[test]
    fn the_mapping_always_names_its_engine() {
        let meta = Meta {
            embedder: "e".into(),
            dim: 4,
            library_id: "l".into(),
            mapping_version: MAPPING_VERSION,
        };
        for engine in ["lucene", "faiss"] {
            let b = create_index(&MappingParams {
                meta: &meta,
                engine,
                m: 16,
                ef_construction: 100,
                shards: None,
                replicas: None,
                alias: None,
            });
            assert_eq!(
                b["mappings"]["properties"][FIELD]["method"]["engine"],
                engine
            );
            assert_eq!(
                b["mappings"]["properties"][FIELD]["method"]["space_type"],
                "innerproduct"
            );
            assert!(b["settings"]["index"].get("number_of_shards").is_none());
        }
    }
}
