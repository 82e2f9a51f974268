//! Words for photos nobody described, borrowed from the described photos that look most like
//! them.
//!
//! A photo without human text is indexed by its classifier labels (`local::label_space`). When
//! the library also holds photos people described (a caption, a description, labels, or a
//! vision model's description), the `NEIGHBOURS` of those nearest to it by the image
//! classifier's features (cosine of EfficientNet-Lite0's pooled features) lend it their text
//! vectors: each neighbour's vector, less the class vectors' mean, weighted by its similarity
//! to the power `POWER`, gives a direction that takes `label_space::BORROWED_WEIGHT` of the
//! photo's own direction before it is set at the documents' angle. The labels people gave the
//! neighbours, held by those with at least `WORD_SHARE` of the weight, are kept as the photo's
//! inferred words, with the neighbours' names and similarities (`Description::inferred`),
//! shown as "inferred from similar images", never as a caption, and never written into the
//! indexed document.
//!
//! Measured on the reference library with half of its photos described (those whose sha256 of
//! the manifest id starts with 0-7 keep their captions and labels) and judged only on the
//! other, raw half (labels the index never saw), ranking only raw photos. On the dev sets (the
//! choice: 3, 5 or 10 neighbours; weight 0.2-0.7; power 1 or 4; the neighbours' whole
//! documents, their labels alone, or their captions alone; a similarity floor), e5 P@5 from
//! 0.482 / 0.440 / 0.307 (English queries / briefs EN / briefs ES) to 0.464 / 0.453 / 0.413
//! with the kept rule; then once on the held-out sets: 0.494 / 0.440 / 0.407 to 0.478 / 0.500 /
//! 0.460 (`tests/retrieval_quality.rs` measures it again with the Rust models). A floor on
//! the similarity (borrow only from a neighbour this close) was tried and lost on every set:
//! photos that borrow and photos that do not then rank on two scales.
//!
//! The pass runs after every ingest, reindex and removal that changed a text vector. It is
//! incremental: a photo whose stored neighbours are all still described and unchanged only
//! meets the described photos whose vectors changed since the last pass (a mark per text
//! embedder), so a small ingest into a large library does not rescan every pair.
use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::Result;
use crate::domain::{Asset, Description, EmbedderId, Inferred, InferredFrom, SearchFilter};
use crate::engine::Library;
use crate::engine::ingest::ItemFailure;
use crate::services::local::label_space;
use crate::services::{Embedder, TextRole};

/// How many described photos a photo borrows from.
pub const NEIGHBOURS: usize = 5;
/// Each neighbour's weight is its similarity to this power (the nearest count most).
pub const POWER: i32 = 4;
/// A label is an inferred word when neighbours holding this share of the weight carry it.
pub const WORD_SHARE: f32 = 0.5;
/// The mark table's name for this pass (one mark per text embedder).
const MARK: &str = "inferred-from-similar";
/// Documents embedded in one call.
const BATCH: usize = 16;
/// Assets read at a time.
const PAGE: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InferredReport {
    /// Photos whose neighbours (and vector) changed.
    pub refreshed: usize,
    pub failed: Vec<ItemFailure>,
}

/// Whether a description holds words a person or a vision model gave (a campaign name alone
/// does not describe the image): such a photo can lend.
pub fn described(d: &Description) -> bool {
    d.sources.text.iter().any(|s| s != "campaign name")
}

/// What `described` photos lend as words: the labels people gave them (the manifest's
/// `labels`), or a vision model's elements.
fn lent_words(a: &Asset) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |w: &str| {
        let w = w.trim().to_lowercase();
        if !w.is_empty() && !out.contains(&w) {
            out.push(w);
        }
    };
    if let Some(labels) = a.metadata.get("labels").and_then(|l| l.as_array()) {
        labels.iter().filter_map(|l| l.as_str()).for_each(&mut push);
    }
    if a.description
        .sources
        .elements
        .iter()
        .any(|s| s.starts_with("bedrock/"))
    {
        a.description.elements.iter().for_each(|e| push(e));
    }
    out
}

/// How people know an asset: its manifest id, else the start of its hash.
fn name_of(a: &Asset) -> String {
    a.external_id
        .clone()
        .unwrap_or_else(|| a.id.chars().take(12).collect())
}

/// Unit-length features as int8 (x 127): a quarter of the memory of f32 for the pass over a
/// large library, and ranks neighbours as the f32 cosine does to about 1e-2.
#[derive(Default)]
pub struct Codes {
    dim: usize,
    codes: Vec<i8>,
}

impl Codes {
    /// Appends `v`; false (nothing appended) for an empty, zero or non-finite vector or one
    /// of another dimension.
    pub fn push(&mut self, v: &[f32]) -> bool {
        if self.dim == 0 {
            self.dim = v.len();
        }
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if v.len() != self.dim || v.is_empty() || !(n.is_finite() && n > 0.0) {
            return false;
        }
        self.codes.extend(
            v.iter()
                .map(|x| (x / n * 127.0).round().clamp(-127.0, 127.0) as i8),
        );
        true
    }

    fn row(&self, i: usize) -> &[i8] {
        &self.codes[i * self.dim..(i + 1) * self.dim]
    }

    /// How many vectors it holds.
    pub fn len(&self) -> usize {
        self.codes.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// The approximate cosine of rows `a` and `b`.
    pub fn cosine(&self, a: usize, b: usize) -> f32 {
        let s: i32 = self
            .row(a)
            .iter()
            .zip(self.row(b))
            .map(|(&x, &y)| x as i32 * y as i32)
            .sum();
        s as f32 / (127.0 * 127.0)
    }

    /// The `k` rows of `among` most similar to row `me`, as (row, cosine), most similar first.
    pub fn nearest(&self, me: usize, among: &[usize], k: usize) -> Vec<(usize, f32)> {
        best(among.iter().map(|&r| (r, self.cosine(me, r))).collect(), k)
    }
}

struct Lender {
    asset: String,
    name: String,
    words: Vec<String>,
    features: Option<usize>,
    /// Its text vector, version, and the hash of the document it embeds.
    text: Option<(Vec<f32>, i64, String)>,
}

struct Borrower {
    asset: Asset,
    features: Option<usize>,
    indexed: bool,
}

/// A short hash of a lender's document: what a borrower checks to know the text it borrowed
/// is still the lender's (a KPI or licence change does not change it; a new caption does).
fn text_hash(doc: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(doc.as_bytes())[..8])
}

/// The `k` best (lender index, similarity) of `candidates` (each lender once), most similar
/// first; ties by lender index, so the choice does not depend on the order they came in.
fn best(mut candidates: Vec<(usize, f32)>, k: usize) -> Vec<(usize, f32)> {
    let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k == 0 {
        return Vec::new();
    }
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k - 1, order);
        candidates.truncate(k);
    }
    candidates.sort_by(order);
    candidates
}

/// The words held by neighbours with at least `WORD_SHARE` of the weight, most weight first.
fn words_of(neighbours: &[(f32, &[String])]) -> Vec<String> {
    let total: f32 = neighbours.iter().map(|(w, _)| w).sum();
    if !(total.is_finite() && total > 0.0) {
        return Vec::new();
    }
    let mut weight: Vec<(String, f32)> = Vec::new();
    for (w, words) in neighbours {
        for word in *words {
            match weight.iter_mut().find(|(x, _)| x == word) {
                Some((_, acc)) => *acc += w,
                None => weight.push((word.clone(), *w)),
            }
        }
    }
    weight.retain(|(_, acc)| *acc / total >= WORD_SHARE);
    weight.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    weight.into_iter().map(|(w, _)| w).collect()
}

fn weight(similarity: f32) -> f32 {
    similarity.max(0.0).powi(POWER)
}

/// Brings every undescribed photo's borrowed neighbours, words and `embedder` vector up to
/// date with the described photos now in the library. A no-op for an embedder without a label
/// space (a cloud or multimodal one).
pub fn refresh(lib: &Library, embedder: &dyn Embedder) -> Result<InferredReport> {
    refresh_with(lib, embedder, &HashMap::new())
}

/// As `refresh`, with the description documents' own vectors (asset id -> vector) that an
/// ingest has just made, so those photos' documents are not embedded again.
///
/// The pass's mark moves to the change feed's head as it was when the pass began, and only
/// when every photo was brought up to date (a failed photo is tried again by the next pass);
/// past its own writes too when no other process wrote meanwhile.
pub fn refresh_with(
    lib: &Library,
    embedder: &dyn Embedder,
    documents: &HashMap<String, Vec<f32>>,
) -> Result<InferredReport> {
    let started = std::time::Instant::now();
    let mut report = InferredReport::default();
    let Some(distance) = embedder.label_space() else {
        return Ok(report);
    };
    if embedder.embeds_images() {
        return Ok(report);
    }
    let text_id = embedder.id().clone();
    let features_id = lib.image_features_id();
    let head = lib.store.feed_head()?;
    let mark = lib.store.mark(MARK, text_id.as_str())?;

    // Who lends, who borrows.
    let mut lenders: Vec<Lender> = Vec::new();
    let mut borrowers: Vec<Borrower> = Vec::new();
    let mut offset = 0;
    loop {
        let page = lib.store.list(&SearchFilter::default(), PAGE, offset)?;
        if page.is_empty() {
            break;
        }
        offset += page.len();
        for a in page {
            if described(&a.description) {
                lenders.push(Lender {
                    asset: a.id.clone(),
                    name: name_of(&a),
                    words: lent_words(&a),
                    features: None,
                    text: None,
                });
            } else if a.description.sources.text.is_empty() && !a.model_labels.is_empty() {
                borrowers.push(Borrower {
                    asset: a,
                    features: None,
                    indexed: false,
                });
            }
        }
    }
    let had_any = borrowers
        .iter()
        .any(|b| b.asset.description.inferred.is_some());
    if borrowers.is_empty() || (lenders.is_empty() && !had_any) {
        lib.store
            .set_mark(MARK, text_id.as_str(), &text_id, head, false)?;
        return Ok(report);
    }

    // Their features (int8) and the lenders' text vectors.
    let lender_at: HashMap<String, usize> = lenders
        .iter()
        .enumerate()
        .map(|(i, l)| (l.asset.clone(), i))
        .collect();
    let borrower_at: HashMap<String, usize> = borrowers
        .iter()
        .enumerate()
        .map(|(i, b)| (b.asset.id.clone(), i))
        .collect();
    let mut codes = Codes::default();
    let mut rows = 0usize;
    lib.store.for_each_vector(&features_id, |id, v, _, _| {
        let slot = if let Some(&i) = lender_at.get(id) {
            &mut lenders[i].features
        } else if let Some(&i) = borrower_at.get(id) {
            &mut borrowers[i].features
        } else {
            return;
        };
        if codes.push(v) {
            *slot = Some(rows);
            rows += 1;
        }
    })?;
    lib.store.for_each_vector(&text_id, |id, v, seq, source| {
        if let Some(&i) = lender_at.get(id) {
            lenders[i].text = Some((v.to_vec(), seq, text_hash(source)));
        } else if let Some(&i) = borrower_at.get(id) {
            borrowers[i].indexed = true;
        }
    })?;
    let usable: Vec<usize> = (0..lenders.len())
        .filter(|&i| lenders[i].features.is_some() && lenders[i].text.is_some())
        .collect();
    let mut is_usable = vec![false; lenders.len()];
    usable.iter().for_each(|&i| is_usable[i] = true);
    let fresh: Vec<usize> = usable
        .iter()
        .copied()
        .filter(|&i| lenders[i].text.as_ref().is_some_and(|t| t.1 > mark))
        .collect();
    let hash_of = |i: usize| lenders[i].text.as_ref().map(|t| t.2.as_str());

    // Each borrower's neighbours now: from its stored ones and the fresh lenders when those
    // are all still described with the same text, else from a scan of every usable lender.
    let scan = |row: usize, among: &mut dyn Iterator<Item = usize>| -> Vec<(usize, f32)> {
        among
            .filter_map(|i| Some((i, codes.cosine(row, lenders[i].features?))))
            .collect()
    };
    let plans: Vec<Option<Vec<(usize, f32)>>> = borrowers
        .par_iter()
        .map(|b| {
            if !b.indexed {
                return None;
            }
            let stored = b.asset.description.inferred.as_ref();
            let top = match b.features {
                // No features to compare (none stored): nothing to borrow.
                None => Vec::new(),
                Some(row) => {
                    let kept: Option<Vec<(usize, f32)>> = stored.and_then(|inf| {
                        inf.from
                            .iter()
                            .map(|f| {
                                let &i = lender_at.get(&f.asset)?;
                                (is_usable[i] && hash_of(i) == Some(f.text.as_str()))
                                    .then_some((i, f.similarity))
                            })
                            .collect()
                    });
                    match kept {
                        Some(mut kept) => {
                            let have: Vec<usize> = kept.iter().map(|k| k.0).collect();
                            let mut new = fresh.iter().copied().filter(|i| !have.contains(i));
                            kept.extend(scan(row, &mut new));
                            best(kept, NEIGHBOURS)
                        }
                        None => best(scan(row, &mut usable.iter().copied()), NEIGHBOURS),
                    }
                }
            };
            let same = match stored {
                Some(inf) => {
                    inf.vectors.iter().any(|v| v == text_id.as_str())
                        && inf.from.len() == top.len()
                        && inf.from.iter().zip(&top).all(|(f, (i, _))| {
                            f.asset == lenders[*i].asset && hash_of(*i) == Some(f.text.as_str())
                        })
                }
                None => top.is_empty(),
            };
            (!same).then_some(top)
        })
        .collect();
    let changed: Vec<(usize, Vec<(usize, f32)>)> = plans
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    let mut written = 0usize;
    if !changed.is_empty() {
        let Some(space) = label_space::shared(embedder) else {
            // Said once in the log by `shared`; every changed photo is tried again next time.
            for (i, _) in &changed {
                report.failed.push(ItemFailure {
                    item: name_of(&borrowers[*i].asset),
                    reason: "the ImageNet class documents could not be embedded".into(),
                });
            }
            return Ok(report);
        };
        for chunk in changed.chunks(BATCH) {
            written += write_chunk(
                lib,
                embedder,
                &space,
                distance,
                documents,
                chunk
                    .iter()
                    .map(|(i, top)| (&borrowers[*i], top.as_slice())),
                &lenders,
                &mut report,
            )?;
        }
    }
    if report.failed.is_empty() {
        // Past this pass's own writes too when nothing else moved the feed meanwhile (each
        // write moves it by one).
        let now = lib.store.feed_head()?;
        let to = if i64::try_from(written)
            .ok()
            .and_then(|w| head.checked_add(w))
            == Some(now)
        {
            now
        } else {
            head
        };
        lib.store
            .set_mark(MARK, text_id.as_str(), &text_id, to, false)?;
    }
    if report.refreshed > 0 || !report.failed.is_empty() {
        tracing::info!(embedder = %text_id, refreshed = report.refreshed, failed = report.failed.len(), ms = started.elapsed().as_millis() as u64, "undescribed photos borrowed from similar described ones");
    }
    Ok(report)
}

/// Embeds (where the ingest has no vector for it) and writes one chunk of changed photos: the
/// description's inferred part and the vector, together, unless the photo changed meanwhile.
/// Returns how many were written.
#[allow(clippy::too_many_arguments)]
fn write_chunk<'a>(
    lib: &Library,
    embedder: &dyn Embedder,
    space: &label_space::LabelSpace,
    distance: f32,
    documents: &HashMap<String, Vec<f32>>,
    chunk: impl Iterator<Item = (&'a Borrower, &'a [(usize, f32)])>,
    lenders: &[Lender],
    report: &mut InferredReport,
) -> Result<usize> {
    let text_id = embedder.id();
    let mut docs = Vec::new();
    let mut known = Vec::new();
    let mut items = Vec::new();
    for (b, top) in chunk {
        match lib.store.source_of(&b.asset.id, text_id)? {
            Some(doc) if doc != "image" => {
                known.push(
                    documents
                        .get(&b.asset.id)
                        .filter(|v| v.len() == embedder.dim())
                        .cloned(),
                );
                docs.push(doc);
                items.push((b, top));
            }
            _ => {}
        }
    }
    // Only the documents this run has no vector for are embedded.
    let missing: Vec<String> = docs
        .iter()
        .zip(&known)
        .filter(|(_, k)| k.is_none())
        .map(|(d, _)| d.clone())
        .collect();
    let mut embedded = embed_all(embedder, &missing).into_iter();
    let vectors: Vec<std::result::Result<Vec<f32>, String>> = known
        .into_iter()
        .map(|k| match k {
            Some(v) => Ok(v),
            None => embedded
                .next()
                .unwrap_or_else(|| Err("the text embedder returned no vector".into())),
        })
        .collect();
    let mut written = 0;
    for (((b, top), doc), v) in items.into_iter().zip(&docs).zip(vectors) {
        let document = match v {
            Ok(v) => v,
            Err(reason) => {
                report.failed.push(ItemFailure {
                    item: name_of(&b.asset),
                    reason,
                });
                continue;
            }
        };
        let neighbours: Vec<(&[f32], f32)> = top
            .iter()
            .filter_map(|(i, s)| Some((lenders[*i].text.as_ref()?.0.as_slice(), weight(*s))))
            .collect();
        let borrowed = space
            .borrowed_direction(&neighbours)
            .and_then(|d| space.vector_with(&b.asset.model_labels, &document, distance, Some(&d)));
        let carries = borrowed.is_some();
        let vector = borrowed
            .or_else(|| space.vector(&b.asset.model_labels, &document, distance))
            .unwrap_or(document);
        let mut description = b.asset.description.clone();
        // Other embedders' vectors carry these neighbours too when only this one's was
        // missing; new neighbours are in this embedder's vector alone.
        let mut vectors = Vec::new();
        if carries {
            vectors.push(text_id.to_string());
        }
        if let Some(old) = &description.inferred
            && old.from.len() == top.len()
            && old.from.iter().zip(top).all(|(f, (i, _))| {
                f.asset == lenders[*i].asset
                    && lenders[*i].text.as_ref().map(|t| t.2.as_str()) == Some(f.text.as_str())
            })
        {
            vectors.extend(
                old.vectors
                    .iter()
                    .filter(|v| **v != text_id.as_str())
                    .cloned(),
            );
            vectors.sort();
        }
        description.inferred = (!top.is_empty()).then(|| {
            let lent: Vec<(f32, &[String])> = top
                .iter()
                .map(|(i, s)| (weight(*s), lenders[*i].words.as_slice()))
                .collect();
            Inferred {
                from: top
                    .iter()
                    .map(|(i, s)| InferredFrom {
                        asset: lenders[*i].asset.clone(),
                        name: lenders[*i].name.clone(),
                        similarity: *s,
                        text: lenders[*i]
                            .text
                            .as_ref()
                            .map(|t| t.2.clone())
                            .unwrap_or_default(),
                    })
                    .collect(),
                words: words_of(&lent),
                source: source(),
                vectors,
            }
        });
        if lib.store.put_description_and_vector(
            &b.asset.id,
            &b.asset.description,
            &description,
            text_id,
            &vector,
            doc,
        )? {
            report.refreshed += 1;
            written += 1;
        }
    }
    Ok(written)
}

/// How inferred words come about, for whoever reads them.
pub fn source() -> String {
    format!(
        "inferred from similar images: the {NEIGHBOURS} described photos nearest by EfficientNet-Lite0 image features, weighted by similarity^{POWER}; words held by neighbours with {:.0} % of the weight; not a caption",
        WORD_SHARE * 100.0
    )
}

/// Each document's vector, in one call, else one by one so one bad document fails alone.
fn embed_all(
    embedder: &dyn Embedder,
    docs: &[String],
) -> Vec<std::result::Result<Vec<f32>, String>> {
    if docs.is_empty() {
        return Vec::new();
    }
    if let Ok(v) = embedder.embed_texts(docs, TextRole::Document)
        && v.len() == docs.len()
    {
        return v.into_iter().map(Ok).collect();
    }
    docs.iter()
        .map(|d| {
            embedder
                .embed_texts(std::slice::from_ref(d), TextRole::Document)
                .map_err(|e| e.to_string())?
                .pop()
                .ok_or_else(|| "the text embedder returned no vector".to_string())
        })
        .collect()
}

/// Whether `refresh` has work for `embedder`: a change to its vectors since its last pass.
pub fn pending(lib: &Library, embedder: &EmbedderId) -> Result<bool> {
    let mark = lib.store.mark(MARK, embedder.as_str())?;
    Ok(lib.store.changes_after(embedder, mark)? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_neighbours_come_most_similar_first() {
        let got = best(vec![(3, 0.2), (1, 0.9), (2, 0.5), (4, 0.1), (0, 0.5)], 3);
        assert_eq!(got, vec![(1, 0.9), (0, 0.5), (2, 0.5)]);
        assert_eq!(best(vec![(3, 0.2), (1, 0.9)], 5), vec![(1, 0.9), (3, 0.2)]);
        assert!(best(vec![(3, 0.2)], 0).is_empty());
    }

    #[test]
    fn a_word_needs_neighbours_with_half_the_weight() {
        let dog = vec!["dog".to_string(), "person".to_string()];
        let cat = vec!["cat".to_string(), "person".to_string()];
        let words = words_of(&[(0.6, dog.as_slice()), (0.4, cat.as_slice())]);
        assert_eq!(words, vec!["person".to_string(), "dog".to_string()]);
    }

    #[test]
    fn no_weight_gives_no_words() {
        let dog = vec!["dog".to_string()];
        assert!(words_of(&[(0.0, dog.as_slice())]).is_empty());
        assert!(words_of(&[]).is_empty());
    }

    #[test]
    fn nearer_neighbours_weigh_far_more() {
        assert!(weight(0.9) / weight(0.6) > 5.0);
        assert_eq!(weight(-0.3), 0.0);
    }

    #[test]
    fn int8_codes_rank_as_the_cosine_does() {
        let mut c = Codes::default();
        assert!(c.push(&[1.0, 0.0, 0.0]));
        assert!(c.push(&[0.8, 0.6, 0.0]));
        assert!(c.push(&[0.0, 0.0, 2.0]));
        assert!(!c.push(&[0.0, 0.0, 0.0]), "a zero vector has no direction");
        assert!(!c.push(&[1.0, 0.0]), "another dimension");
        assert!(!c.push(&[f32::NAN, 0.0, 1.0]));
        let near = c.cosine(0, 1);
        assert!((near - 0.8).abs() < 0.02, "{near}");
        assert!(c.cosine(0, 2).abs() < 1e-6);
        assert_eq!(c.len(), 3);
        assert_eq!(c.nearest(0, &[2, 1], 1), vec![(1, near)]);
    }

    #[test]
    fn a_campaign_name_alone_does_not_describe_a_photo() {
        let mut d = Description::default();
        assert!(!described(&d));
        d.sources.text = vec!["campaign name".into()];
        assert!(!described(&d));
        d.sources.text.push("manifest caption".into());
        assert!(described(&d));
    }
}
