//! Text search over the library: filtered exact k-NN, then a blend of similarity and the KPI's
//! percentile within the filtered set.
use serde::Serialize;

use crate::domain::{Asset, EmbedderId, MatchStrength, ReferenceHit, SearchFilter, StrengthLevel};
use crate::services::language::Reading;
use crate::services::translate::Translation;
use crate::services::{Embedder, Neighbour, StrengthThresholds, TextRole, VectorIndex};
use crate::store::Store;
use crate::{Error, Result};

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
    /// Set when the filter leaves no strong match or fewer than k assets: what a widened
    /// search (`widen`) would offer, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widen_offer: Option<String>,
    /// Whether hits from outside the filter were added (`widen`); they carry `outside_filter`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub widened: bool,
    /// The query's embedding (text searches), so `widen` does not pay for it again.
    #[serde(skip)]
    pub query_vector: Vec<f32>,
    /// How a text query was brought to the library's English texts. In JSON as it always was:
    /// `language_offset` (the language whose offset moved it) or `translation` (`{from, by,
    /// text}`), neither for a query searched as written.
    #[serde(flatten, serialize_with = "searched_as_fields")]
    pub searched_as: SearchedAs,
}

/// `SearchResult::searched_as` as the fields `--json` has carried since before it was one.
fn searched_as_fields<S: serde::Serializer>(
    searched_as: &SearchedAs,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Fields<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        language_offset: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        translation: Option<&'a Translation>,
    }
    Fields {
        language_offset: searched_as.language_offset(),
        translation: searched_as.translation(),
    }
    .serialize(serializer)
}

pub use crate::domain::SearchedAs;

impl SearchedAs {
    /// The language whose offset moved it.
    pub fn language_offset(&self) -> Option<&str> {
        match self {
            SearchedAs::Moved { language, .. } => Some(language),
            _ => None,
        }
    }

    pub fn translation(&self) -> Option<&Translation> {
        match self {
            SearchedAs::Translated(t) => Some(t),
            _ => None,
        }
    }

    /// Whether the vector searched is that of English text, for `reading` (the query's own).
    pub fn english(&self, reading: &Reading) -> bool {
        *reading == Reading::English || matches!(self, SearchedAs::Translated(_))
    }

    /// What the CLI and the studio say of it; `None` for a query searched as written.
    pub fn describe(&self) -> Option<String> {
        match self {
            SearchedAs::Written => None,
            SearchedAs::Moved {
                language: l,
                not_translated,
            } => Some(format!(
                "read as {l}: its vector was moved toward English text by the measured {l} offset{}",
                not_translated
                    .as_ref()
                    .map(|why| format!(" (its English translation would find more, but {why})"))
                    .unwrap_or_default()
            )),
            SearchedAs::Translated(t) => Some(format!(
                "read as {}: searched as its English translation by {}: \u{201c}{}\u{201d}",
                t.from, t.by, t.text
            )),
        }
    }
}

/// How many of the library's vectors a query is compared with to learn its background (the
/// similarities it scores against the library at large): a fixed sample, the first in content
/// hash order.
pub const BACKGROUND_SAMPLE: usize = 512;
/// Below this many vectors the background is too thin to judge a hit's strength.
pub const MIN_BACKGROUND: usize = 20;

pub fn search(
    store: &Store,
    index: &dyn VectorIndex,
    embedder: &dyn Embedder,
    req: &SearchRequest,
) -> Result<SearchResult> {
    let reading = crate::services::language::reading(&req.query);
    search_read(store, index, embedder, req, &reading, Translator::Process)
}

/// `search` with `translator` (none: a query in another language is moved by its offset alone,
/// as where Apertium is not installed).
pub fn search_with(
    store: &Store,
    index: &dyn VectorIndex,
    embedder: &dyn Embedder,
    req: &SearchRequest,
    translator: Option<&crate::services::translate::Apertium>,
) -> Result<SearchResult> {
    let reading = crate::services::language::reading(&req.query);
    search_read(
        store,
        index,
        embedder,
        req,
        &reading,
        Translator::Given(translator),
    )
}

/// Where a search gets its translator: the process's Apertium (`translate::shared`, looked for
/// only for a query it would translate), or one given (none: the offset alone).
#[derive(Clone, Copy)]
enum Translator<'a> {
    Process,
    Given(Option<&'a crate::services::translate::Apertium>),
}

impl<'a> Translator<'a> {
    fn get(self) -> Option<&'a crate::services::translate::Apertium> {
        match self {
            Translator::Process => crate::services::translate::shared(),
            Translator::Given(a) => a,
        }
    }
}

/// `search_with` for a query already read as `reading`.
fn search_read(
    store: &Store,
    index: &dyn VectorIndex,
    embedder: &dyn Embedder,
    req: &SearchRequest,
    reading: &Reading,
    translator: Translator,
) -> Result<SearchResult> {
    let (q, searched_as) = embed_query_by(embedder, &req.query, reading, translator)?;
    let mut r = search_vector(store, index, &q, req)?;
    judge_strength(
        store,
        index.embedder(),
        &q,
        embedder.strength_thresholds(searched_as.english(reading)),
        &mut r.hits,
    )?;
    r.widen_offer = offer_for(store, index.embedder(), &req.filter, req.k, &r.hits)?;
    r.query_vector = q;
    r.searched_as = searched_as;
    Ok(r)
}

/// The vector `text` (read as `reading`, `services::language::reading`) is searched by, and
/// how it was brought to English text: its English translation's where the embedder's
/// documents are English and the process has a translator for its language
/// (`services::translate`, looked for only for such a query); otherwise the embedder's vector
/// of it, moved by the offset of its language where the embedder uses one
/// (`services::language_offset`).
fn embed_query_read(
    embedder: &dyn Embedder,
    text: &str,
    reading: &Reading,
) -> Result<(Vec<f32>, SearchedAs)> {
    embed_query_by(embedder, text, reading, Translator::Process)
}

/// `embed_query_read` with `translator` (none: the offset alone, as where Apertium is not
/// installed).
pub fn embed_query_with(
    embedder: &dyn Embedder,
    text: &str,
    reading: &Reading,
    translator: Option<&crate::services::translate::Apertium>,
) -> Result<(Vec<f32>, SearchedAs)> {
    embed_query_by(embedder, text, reading, Translator::Given(translator))
}

fn embed_query_by(
    embedder: &dyn Embedder,
    text: &str,
    reading: &Reading,
    translator: Translator,
) -> Result<(Vec<f32>, SearchedAs)> {
    let embed = |t: &str| -> Result<Vec<f32>> {
        Ok(embedder
            .embed_texts(&[t.to_string()], TextRole::Query)?
            .pop()
            .unwrap_or_default())
    };
    match searched_as(embedder, text, reading, translator) {
        SearchedAs::Translated(t) => {
            tracing::debug!(from = %t.from, by = %t.by, "query searched as its translation");
            Ok((embed(&t.text)?, SearchedAs::Translated(t)))
        }
        SearchedAs::Moved {
            language,
            not_translated,
        } => {
            let mut q = embed(text)?;
            let moved = crate::services::language_offset::corpus(&language).and_then(|c| {
                crate::services::language_offset::move_by(embedder, c.language, &mut q)
            });
            match moved {
                Some(language) => {
                    tracing::debug!(language, "query moved by its language's offset");
                    Ok((
                        q,
                        SearchedAs::Moved {
                            language: language.to_string(),
                            not_translated,
                        },
                    ))
                }
                None => Ok((q, SearchedAs::Written)),
            }
        }
        SearchedAs::Written => Ok((embed(text)?, SearchedAs::Written)),
    }
}

/// How `text` (read as `reading`) is searched under `embedder` with `translator`: as its
/// English translation, moved by its language's offset, or as written. Translates (kept for
/// the process); embeds nothing.
fn searched_as(
    embedder: &dyn Embedder,
    text: &str,
    reading: &Reading,
    translator: Translator,
) -> SearchedAs {
    use crate::services::{language_offset, translate};
    // The detector's confidence is read once, here: it gates translation and the offset alike.
    let language = match reading {
        Reading::Other(Some(name)) if language_offset::sure_of(text, name) => name.as_str(),
        _ => return SearchedAs::Written,
    };
    let translator = (embedder.translates_queries() && translate::mode_for(language).is_some())
        .then(|| translator.get())
        .flatten();
    if let Some(t) = translator.and_then(|a| translate::translate_from(a, language, text)) {
        return SearchedAs::Translated(t);
    }
    match language_offset::corpus(language).filter(|_| embedder.language_offsets()) {
        Some(c) => SearchedAs::Moved {
            language: c.language.to_string(),
            not_translated: translate::why_not_translated(c.language, translator.is_some()),
        },
        None => SearchedAs::Written,
    }
}

/// `widen_offer` for a search of `embedder`'s vectors, counting what lies outside the filter
/// (a scan of the catalog) only when there would be an offer.
pub fn offer_for(
    store: &Store,
    embedder: &EmbedderId,
    filter: &SearchFilter,
    k: usize,
    hits: &[ReferenceHit],
) -> Result<Option<String>> {
    if widen_offer(filter, k, hits, 1).is_none() {
        return Ok(None);
    }
    Ok(widen_offer(
        filter,
        k,
        hits,
        store.count_outside(filter, embedder)?,
    ))
}

/// What a widened search would add, in words, when the filter is on, the library holds
/// `outside` assets beyond it, and its hits hold no strong match (judged hits only) or fewer
/// than `k` assets; `None` otherwise, and once widened.
pub fn widen_offer(
    filter: &SearchFilter,
    k: usize,
    hits: &[ReferenceHit],
    outside: u64,
) -> Option<String> {
    if filter.objective.is_none() && filter.node.is_none()
        || k == 0
        || outside == 0
        || hits.iter().any(|h| h.outside_filter)
    {
        return None;
    }
    let inside: Vec<&ReferenceHit> = hits.iter().filter(|h| !h.outside_filter).collect();
    let judged: Vec<StrengthLevel> = inside
        .iter()
        .filter_map(|h| h.strength.and_then(|s| s.level))
        .collect();
    let group = match (&filter.objective, &filter.node) {
        (Some(o), Some(n)) => format!("objective {o}, audience {n}"),
        (Some(o), None) => format!("objective {o}"),
        (None, Some(n)) => format!("audience {n}"),
        (None, None) => String::new(),
    };
    if inside.len() < k {
        Some(format!(
            "only {} of the {k} references asked for are in {group}: widen the search to other objectives and audiences",
            inside.len()
        ))
    } else if !judged.is_empty() && !judged.contains(&StrengthLevel::Strong) {
        Some(format!(
            "no strong match in {group}: widen the search to other objectives and audiences"
        ))
    } else {
        None
    }
}

/// Judges each hit's strength (`MatchStrength`) against the query's background: its
/// similarities to `BACKGROUND_SAMPLE` of the library's vectors from `embedder`, every
/// objective and audience. Similarities are recomputed from the stored vectors (dot products of
/// unit vectors), so a server backend's own score scale does not matter. Leaves the hits
/// unjudged when the library holds fewer than `MIN_BACKGROUND` vectors or they do not vary.
pub fn judge_strength(
    store: &Store,
    embedder: &EmbedderId,
    query: &[f32],
    thresholds: Option<StrengthThresholds>,
    hits: &mut [ReferenceHit],
) -> Result<()> {
    if hits.is_empty() {
        return Ok(());
    }
    let dot = |v: &[f32]| crate::services::local::exact_index::dot(v, query);
    let mut background: Vec<f32> = store
        .background_sample(embedder, BACKGROUND_SAMPLE)?
        .iter()
        .filter(|v| v.len() == query.len())
        .map(|v| dot(v))
        .filter(|s| s.is_finite())
        .collect();
    if background.len() < MIN_BACKGROUND {
        return Ok(());
    }
    background.sort_by(f32::total_cmp);
    let n = background.len() as f32;
    let mean = background.iter().sum::<f32>() / n;
    let sd = (background.iter().map(|s| (s - mean).powi(2)).sum::<f32>() / n).sqrt();
    if sd.is_nan() || sd <= 1e-6 {
        return Ok(());
    }
    for h in hits {
        let Some(v) = store.vector_of(&h.asset_id, embedder)? else {
            continue;
        };
        if v.len() != query.len() {
            continue;
        }
        let s = dot(&v);
        if !s.is_finite() {
            continue;
        }
        let z = (s - mean) / sd;
        let below = background.partition_point(|b| *b < s);
        let level = thresholds.map(|t| {
            if z >= t.strong_z {
                StrengthLevel::Strong
            } else if z >= t.fair_z {
                StrengthLevel::Fair
            } else {
                StrengthLevel::Weak
            }
        });
        h.strength = Some(MatchStrength {
            level,
            z,
            percentile: below as f32 / n,
        });
    }
    Ok(())
}

/// Widens a filtered text search (`result`, from `search` with `req`): adds up to `req.k` hits
/// from outside the filter (other objectives or audiences), ranked like a search of their own,
/// each marked `outside_filter`, its KPI percentile taken within its own objective and audience
/// (never mixed into the filtered set's), its strength judged against the same background. The
/// filtered hits stay first and unchanged; an asset already among them never comes twice.
pub fn widen(
    store: &Store,
    index: &dyn VectorIndex,
    embedder: &dyn Embedder,
    req: &SearchRequest,
    result: &mut SearchResult,
) -> Result<()> {
    if req.filter.objective.is_none() && req.filter.node.is_none() {
        result.widen_offer = None;
        return Ok(());
    }
    let reading = crate::services::language::reading(&req.query);
    let (q, searched_as) = if result.query_vector.is_empty() {
        embed_query_read(embedder, &req.query, &reading)?
    } else {
        (result.query_vector.clone(), result.searched_as.clone())
    };
    let pool = req.rerank_pool.max(req.k);
    // Enough neighbours that `pool` of them are outside even when the filter's own assets are
    // all nearer, up to `MAX_K * 4`: past that, a filter holding thousands of assets nearer than
    // any other leaves fewer (or no) outside hits, and the pool is what remains.
    let ask = pool
        .saturating_add(index.count(&req.filter)?)
        .min(crate::config::MAX_K.saturating_mul(4).max(pool));
    let shown: std::collections::HashSet<String> =
        result.hits.iter().map(|h| h.asset_id.clone()).collect();
    let mut neighbours = known_neighbours(store, index, &q, &SearchFilter::default(), ask)?;
    neighbours.retain(|(_, a)| !req.filter.admits(&a.objective, &a.node) && !shown.contains(&a.id));
    neighbours.truncate(pool);
    // KPI percentiles within each hit's own objective and audience: one call per group.
    let mut percentiles = vec![0.0; neighbours.len()];
    let mut groups: std::collections::BTreeMap<(String, String), Vec<usize>> = Default::default();
    for (i, (_, a)) in neighbours.iter().enumerate() {
        groups
            .entry((a.objective.clone(), a.node.clone()))
            .or_default()
            .push(i);
    }
    for ((objective, node), members) in groups {
        let own = SearchFilter {
            objective: Some(objective),
            node: Some(node),
        };
        let kpis: Vec<Option<f64>> = members.iter().map(|&i| neighbours[i].1.kpi).collect();
        let got = index.kpi_percentiles(&own, &kpis)?;
        for (&i, p) in members.iter().zip(got) {
            percentiles[i] = p;
        }
    }
    let mut outside = blend(neighbours, percentiles, req.kpi_weight, req.k);
    for h in &mut outside {
        h.outside_filter = true;
    }
    judge_strength(
        store,
        index.embedder(),
        &q,
        embedder.strength_thresholds(searched_as.english(&reading)),
        &mut outside,
    )?;
    result.hits.extend(outside);
    result.widened = true;
    result.widen_offer = None;
    Ok(())
}

pub fn search_vector(
    store: &Store,
    index: &dyn VectorIndex,
    query: &[f32],
    req: &SearchRequest,
) -> Result<SearchResult> {
    search_vector_without(store, index, query, req, None)
}

/// What an asset is called in messages and in a "more like this" query: its manifest id, else
/// its file name.
pub fn label_of(asset: &Asset) -> &str {
    asset.external_id.as_deref().unwrap_or(&asset.file)
}

/// "More like this": the assets whose images look most like `asset`'s, by the image
/// embedder's features (`features`, the index `index` holds), with the filter and KPI blend
/// of a text search; the asset itself never answers. `req.query` is what the result says was
/// searched.
pub fn similar_to(
    store: &Store,
    index: &dyn VectorIndex,
    features: &EmbedderId,
    asset: &Asset,
    req: &SearchRequest,
) -> Result<SearchResult> {
    let Some(v) = store.vector_of(&asset.id, features)? else {
        return Err(Error::Invalid(format!(
            "{} has no image features from {features}, so no image can be compared with it; ingest its folder again (`campaign-studio library ingest DIR`): assets without image features are analysed again",
            label_of(asset)
        )));
    };
    search_vector_without(store, index, &v, req, Some(&asset.id))
}

/// `search_vector`, never answering with the asset `exclude`: it is left out before the
/// similarity is rescaled within the pool, so it does not set the top of the scale.
fn search_vector_without(
    store: &Store,
    index: &dyn VectorIndex,
    query: &[f32],
    req: &SearchRequest,
    exclude: Option<&str>,
) -> Result<SearchResult> {
    let mut hits = Vec::new();
    if req.k > crate::config::MAX_K {
        return Err(crate::Error::Invalid(format!(
            "k {} is over {}: a search returns at most {} references",
            req.k,
            crate::config::MAX_K,
            crate::config::MAX_K
        )));
    }
    if req.k > 0 {
        let pool = req.rerank_pool.max(req.k);
        let asked = pool.saturating_add(usize::from(exclude.is_some()));
        let mut neighbours = known_neighbours(store, index, query, &req.filter, asked)?;
        if let Some(x) = exclude {
            neighbours.retain(|(_, a)| a.id != x);
        }
        neighbours.truncate(pool);
        let kpis: Vec<Option<f64>> = neighbours.iter().map(|(_, a)| a.kpi).collect();
        let percentiles = index.kpi_percentiles(&req.filter, &kpis)?;
        hits = blend(neighbours, percentiles, req.kpi_weight, req.k);
    }
    Ok(SearchResult {
        query: req.query.clone(),
        embedder: index.embedder().to_string(),
        objective: req.filter.objective.clone(),
        node: req.filter.node.clone(),
        kpi_weight: req.kpi_weight,
        hits,
        widen_offer: None,
        widened: false,
        query_vector: Vec::new(),
        searched_as: SearchedAs::Written,
    })
}

/// Ranks a re-rank pool: score = (1 - w) * relevance + w * KPI percentile, best `k` first.
fn blend(
    neighbours: Vec<(Neighbour, Asset)>,
    percentiles: Vec<f32>,
    w: f32,
    k: usize,
) -> Vec<ReferenceHit> {
    // Similarity is rescaled to 0..1 within the pool before blending: raw cosine values of
    // a text embedder sit in a narrow band (often 0.1-0.5), where a KPI percentile in 0..1
    // would swamp relevance. Rescaled, the most similar asset counts 1 and the least 0, so
    // relevance leads and the KPI orders assets of similar relevance.
    let (lo, hi) = neighbours
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), (n, _)| {
            (lo.min(n.similarity), hi.max(n.similarity))
        });
    let relevance = |s: f32| {
        if hi - lo > 1e-6 {
            (s - lo) / (hi - lo)
        } else {
            1.0
        }
    };
    let mut hits = Vec::with_capacity(neighbours.len());
    for ((n, a), pct) in neighbours.into_iter().zip(percentiles) {
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
            inferred: a.description.inferred.as_ref().map(|i| i.summary()),
            description: a.description.description,
            elements: a.description.elements,
            strength: None,
            outside_filter: false,
        });
    }
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.similarity.total_cmp(&a.similarity))
            .then(a.asset_id.cmp(&b.asset_id))
    });
    hits.truncate(k);
    hits
}

/// The `k` nearest vectors the catalog knows and that still match the filter, with their
/// assets. A server index may lag the catalog (an asset removed or re-filed since its last
/// sync): such hits are dropped, counted and the index asked once more for as many more; an
/// index that returns fewer than `min(k, matches)` is asked again on its exact path. So k come
/// back whenever k match, on every backend.
pub fn known_neighbours(
    store: &Store,
    index: &dyn VectorIndex,
    query: &[f32],
    filter: &SearchFilter,
    k: usize,
) -> Result<Vec<(Neighbour, Asset)>> {
    let keep = |ns: Vec<Neighbour>| -> Result<(Vec<(Neighbour, Asset)>, usize)> {
        let mut kept = Vec::with_capacity(ns.len());
        let mut dropped = 0;
        for n in ns {
            match store.asset(&n.id)? {
                Some(a) if filter.admits(&a.objective, &a.node) => kept.push((n, a)),
                _ => dropped += 1,
            }
        }
        Ok((kept, dropped))
    };
    // Ask for k, then for k plus however many the last answer held that the catalog rejects,
    // until k are kept or the index has no more (a few rounds at most).
    let ask_until_k = |exact: bool| -> Result<Vec<(Neighbour, Asset)>> {
        let mut ask = k;
        let mut kept = Vec::new();
        for _round in 0..4 {
            let got = if exact {
                index.search_exact(query, filter, ask)?
            } else {
                index.search(query, filter, ask)?
            };
            let answered = got.len();
            let (now, dropped) = keep(got)?;
            kept = now;
            if kept.len() >= k || answered < ask || dropped == 0 {
                break;
            }
            tracing::warn!(
                embedder = %index.embedder(),
                dropped,
                "the index returned assets the library no longer has, or under another objective or audience; run `campaign-studio library sync`"
            );
            ask = k.saturating_add(dropped).min(crate::config::MAX_K * 4);
        }
        Ok(kept)
    };
    let mut kept = ask_until_k(false)?;
    if kept.len() < k {
        let matches = index.count(filter)?;
        if kept.len() < k.min(matches) {
            tracing::info!(embedder = %index.embedder(), got = kept.len(), matches, "asking the index's exact path");
            kept = ask_until_k(true)?;
        }
    }
    kept.truncate(k);
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_query_says_why_it_was_not_translated() {
        let said = SearchedAs::Moved {
            language: "Spanish".into(),
            not_translated: Some("Apertium's translation failed; the log says why".into()),
        }
        .describe()
        .unwrap();
        assert!(
            said.ends_with(
                "Spanish offset (its English translation would find more, but Apertium's translation failed; the log says why)"
            ),
            "{said}"
        );
    }

    #[test]
    fn a_moved_query_with_nothing_to_add_says_only_the_move() {
        let said = SearchedAs::Moved {
            language: "Spanish".into(),
            not_translated: None,
        }
        .describe()
        .unwrap();
        assert!(said.ends_with("measured Spanish offset"), "{said}");
    }

    #[test]
    fn a_search_result_as_written_carries_neither_offset_nor_translation_in_json() {
        let r = SearchResult {
            query: "q".into(),
            embedder: "e".into(),
            objective: None,
            node: None,
            kpi_weight: 0.3,
            hits: Vec::new(),
            widen_offer: None,
            widened: false,
            query_vector: Vec::new(),
            searched_as: SearchedAs::Written,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert!(
            v.get("language_offset").is_none() && v.get("translation").is_none(),
            "{v}"
        );
    }

    fn hit(level: StrengthLevel, outside: bool) -> ReferenceHit {
        ReferenceHit {
            asset_id: "a".into(),
            external_id: None,
            file: "a.jpg".into(),
            stored_path: String::new(),
            thumbnail_path: String::new(),
            similarity: 0.8,
            kpi: None,
            kpi_percentile: 0.0,
            score: 0.5,
            objective: "likes".into(),
            node: "customers".into(),
            description: String::new(),
            elements: Vec::new(),
            strength: Some(MatchStrength {
                level: Some(level),
                z: 1.0,
                percentile: 0.5,
            }),
            outside_filter: outside,
            inferred: None,
        }
    }

    fn filter() -> SearchFilter {
        SearchFilter {
            objective: Some("likes".into()),
            node: Some("customers".into()),
        }
    }

    #[test]
    fn weak_hits_in_a_filter_are_offered_a_widening() {
        let hits = vec![hit(StrengthLevel::Weak, false); 2];
        let offer = widen_offer(&filter(), 2, &hits, 10).unwrap();
        assert!(offer.starts_with("no strong match in objective likes, audience customers"));
    }

    #[test]
    fn a_strong_hit_and_k_assets_are_offered_nothing() {
        let hits = vec![
            hit(StrengthLevel::Strong, false),
            hit(StrengthLevel::Weak, false),
        ];
        assert_eq!(widen_offer(&filter(), 2, &hits, 10), None);
    }

    #[test]
    fn nothing_is_offered_when_the_library_has_nothing_outside_the_filter() {
        let hits = vec![hit(StrengthLevel::Weak, false)];
        assert_eq!(widen_offer(&filter(), 5, &hits, 0), None);
    }

    #[test]
    fn a_widened_result_is_offered_nothing_more() {
        let hits = vec![
            hit(StrengthLevel::Weak, false),
            hit(StrengthLevel::Weak, true),
        ];
        assert_eq!(widen_offer(&filter(), 1, &hits, 10), None);
    }

    #[test]
    fn an_unfiltered_search_is_offered_nothing() {
        let hits = vec![hit(StrengthLevel::Weak, false)];
        assert_eq!(widen_offer(&SearchFilter::default(), 5, &hits, 10), None);
    }
}
