//! Text search over the library: filtered exact k-NN, then a blend of similarity and the KPI's
//! percentile within the filtered set.
use serde::Serialize;

use crate::Result;
use crate::domain::{ReferenceHit, SearchFilter};
use crate::services::local::exact_index::kpi_percentile;
use crate::services::{Embedder, TextRole, VectorIndex};
use crate::store::Store;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub query: String,
    pub filter: SearchFilter,
    pub k: usize,
    /// score = (1 - w) * relevance + w * kpi_percentile, relevance = similarity rescaled to 0..1
    /// within the re-rank pool
    pub kpi_weight: f32,
    /// How many nearest neighbours by similarity are re-ranked by score (at least k): the KPI
    /// reorders relevant assets, it never pulls in irrelevant ones.
    pub rerank_pool: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchResult {
    pub query: String,
    pub embedder: String,
    pub objective: Option<String>,
    pub node: Option<String>,
    pub kpi_weight: f32,
    pub hits: Vec<ReferenceHit>,
}

pub fn search(
    store: &Store,
    index: &dyn VectorIndex,
    embedder: &dyn Embedder,
    req: &SearchRequest,
) -> Result<SearchResult> {
    let q = embedder
        .embed_texts(std::slice::from_ref(&req.query), TextRole::Query)?
        .pop()
        .unwrap_or_default();
    search_vector(store, index, &q, req)
}

pub fn search_vector(
    store: &Store,
    index: &dyn VectorIndex,
    query: &[f32],
    req: &SearchRequest,
) -> Result<SearchResult> {
    let mut hits = Vec::new();
    if !index.is_empty() && req.k > 0 {
        let pool = req.rerank_pool.max(req.k);
        let neighbours = index.search(query, &req.filter, pool)?;
        let kpis = index.filtered_kpis(&req.filter);
        let w = req.kpi_weight;
        // Similarity is rescaled to 0..1 within the pool before blending: raw cosine values of
        // a text embedder sit in a narrow band (often 0.1-0.5), where a KPI percentile in 0..1
        // would swamp relevance. Rescaled, the most similar asset counts 1 and the least 0, so
        // relevance leads and the KPI orders assets of similar relevance.
        let (lo, hi) = neighbours.iter().fold((f32::MAX, f32::MIN), |(lo, hi), n| {
            (lo.min(n.similarity), hi.max(n.similarity))
        });
        let relevance = |s: f32| {
            if hi - lo > 1e-6 {
                (s - lo) / (hi - lo)
            } else {
                1.0
            }
        };
        for n in neighbours {
            let Some(a) = store.asset(&n.id)? else {
                continue;
            };
            let pct = kpi_percentile(&kpis, a.kpi);
            hits.push(ReferenceHit {
                score: (1.0 - w) * relevance(n.similarity) + w * pct,
                similarity: n.similarity,
                kpi: a.kpi,
                kpi_percentile: pct,
                asset_id: a.id,
                external_id: a.external_id,
                file: a.file,
                stored_path: a.stored_path,
                thumbnail_path: a.thumbnail_path,
                objective: a.objective,
                node: a.node,
                description: a.description.description,
                elements: a.description.elements,
            });
        }
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.similarity.total_cmp(&a.similarity))
                .then(a.asset_id.cmp(&b.asset_id))
        });
        hits.truncate(req.k);
    }
    Ok(SearchResult {
        query: req.query.clone(),
        embedder: index.embedder().to_string(),
        objective: req.filter.objective.clone(),
        node: req.filter.node.clone(),
        kpi_weight: req.kpi_weight,
        hits,
    })
}
