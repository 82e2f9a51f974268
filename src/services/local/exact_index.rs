//! The embedded vector index: exact k-NN over one contiguous matrix per embedder.
//!
//! Measured on this kind of machine (DESIGN.md), an exact scan beat every embedded HNSW crate on
//! filtered queries, so the scan is the index: rows are filtered by objective/node codes while
//! scanning (never after), dot products are written so LLVM vectorises them (AVX2/FMA with
//! x86-64-v3), large scans are split over a small thread pool, and an optional int8 copy of
//! the matrix (4x less memory traffic) is scanned first with the best candidates re-ranked
//! exactly in f32. For large indexes a 1-bit sign sketch of each (centred) vector is scanned
//! instead (Hamming distance, popcount; 128 bytes per 1024-d vector), and a wide pool of its
//! best candidates is re-ranked exactly in f32. With a filter, the matching rows are listed
//! first and only they are scanned. Results are exact for f32 storage, so tests can assert them.
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use rayon::prelude::*;

use crate::config::VectorStorage;
use crate::domain::index::{bucket_of, check_vector, digest_of, percentile_from_counts};
use crate::domain::{EmbedderId, SearchFilter};
use crate::services::{
    DigestBucket, DocState, Neighbour, Tombstone, VectorIndex, VectorMeta, VectorRecord,
    WriteFailure, WriteReport,
};
use crate::{Error, Result};

/// Below this many rows a scan is faster on one thread than the pool's hand-off.
const PARALLEL_MIN_ROWS: usize = 16_384;
/// Sketch search re-ranks max(k * SKETCH_OVERFETCH, SKETCH_MIN_POOL) candidates exactly, scaled
/// up for vectors shorter than 1024-d (fewer bits rank less sharply). Chosen with the index
/// bench: recall@10 >= 0.99 at 100k vectors of 384-d and 1024-d.
const SKETCH_OVERFETCH: usize = 64;
const SKETCH_MIN_POOL: usize = 640;
/// The sketch scan is cheap per row; splitting it over threads only pays on very large indexes.
const SKETCH_PARALLEL_MIN_ROWS: usize = 1 << 19;

pub struct ExactIndex {
    embedder: EmbedderId,
    dim: usize,
    storage: VectorStorage,
    ids: Vec<String>,
    rows: HashMap<String, usize>,
    data: Vec<f32>,
    q8: Vec<i8>,
    q8_scale: Vec<f32>,
    /// 1-bit sketches, `words` u64 per row, of `row - centre`.
    sketch: Vec<u64>,
    words: usize,
    centre: Vec<f32>,
    objective: Vec<u16>,
    node: Vec<u16>,
    kpi: Vec<Option<f64>>,
    /// The change feed's version of each row.
    versions: Vec<i64>,
    codes: Vec<String>,
    pool: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for ExactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactIndex")
            .field("embedder", &self.embedder)
            .field("dim", &self.dim)
            .field("len", &self.ids.len())
            .field("storage", &self.storage)
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq)]
struct Scored(f32, usize);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    // Reversed, so a BinaryHeap<Scored> is a min-heap on the score (ties: higher row first out).
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// Keeps the `k` best (score, row) pairs seen.
struct TopK {
    k: usize,
    heap: BinaryHeap<Scored>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }
    #[inline]
    fn push(&mut self, score: f32, row: usize) {
        if self.heap.len() < self.k {
            self.heap.push(Scored(score, row));
        } else if let Some(min) = self.heap.peek()
            && score > min.0
        {
            self.heap.pop();
            self.heap.push(Scored(score, row));
        }
    }
    fn merge(mut self, other: TopK) -> TopK {
        for s in other.heap {
            self.push(s.0, s.1);
        }
        self
    }
    fn into_sorted(self) -> Vec<(f32, usize)> {
        let mut v: Vec<(f32, usize)> = self.heap.into_iter().map(|s| (s.0, s.1)).collect();
        v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        v
    }
}

/// f32 dot product with 16 independent accumulators, so it vectorises without fast-math.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// int8 dot product in i32 (vectorises to widening multiply-adds).
#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 32];
    let ca = a.chunks_exact(32);
    let cb = b.chunks_exact(32);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..32 {
            acc[i] += x[i] as i16 as i32 * y[i] as i16 as i32;
        }
    }
    let mut s: i32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += *x as i32 * *y as i32;
    }
    s
}

/// Sign bits of `v - centre`, 64 dimensions per word.
fn sketch_into(v: &[f32], centre: &[f32], out: &mut [u64]) {
    for (w, (vc, cc)) in out.iter_mut().zip(v.chunks(64).zip(centre.chunks(64))) {
        let mut bits = 0u64;
        for (i, (x, c)) in vc.iter().zip(cc).enumerate() {
            bits |= u64::from(x > c) << i;
        }
        *w = bits;
    }
}

#[inline]
fn hamming(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Symmetric per-vector int8 quantisation.
fn quantise(v: &[f32], out: &mut [i8]) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    for (o, x) in out.iter_mut().zip(v) {
        *o = (x / scale).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

impl ExactIndex {
    /// `Auto` here means F32: resolve it with the expected size first (`VectorStorage::resolve`).
    pub fn new(embedder: EmbedderId, dim: usize, storage: VectorStorage, threads: usize) -> Self {
        let storage = storage.resolve(0, usize::MAX);
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("index-scan-{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        ExactIndex {
            embedder,
            dim,
            storage,
            ids: Vec::new(),
            rows: HashMap::new(),
            data: Vec::new(),
            q8: Vec::new(),
            q8_scale: Vec::new(),
            sketch: Vec::new(),
            words: dim.div_ceil(64),
            centre: vec![0.0; dim],
            objective: Vec::new(),
            node: Vec::new(),
            kpi: Vec::new(),
            versions: Vec::new(),
            codes: Vec::new(),
            pool,
        }
    }

    /// Number of vectors held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The stored version of `id`, if held.
    pub fn version_of(&self, id: &str) -> Option<i64> {
        self.rows.get(id).map(|&r| self.versions[r])
    }

    pub fn reserve(&mut self, n: usize) {
        self.ids.reserve(n);
        self.data.reserve(n * self.dim);
        if self.storage == VectorStorage::Int8 {
            self.q8.reserve(n * self.dim);
        }
    }

    fn code(&mut self, s: &str) -> u16 {
        if let Some(i) = self.codes.iter().position(|c| c == s) {
            i as u16
        } else {
            self.codes.push(s.to_string());
            (self.codes.len() - 1) as u16
        }
    }

    fn lookup(&self, s: &Option<String>) -> Option<Option<u16>> {
        match s {
            None => Some(None),
            Some(s) => self
                .codes
                .iter()
                .position(|c| c == s)
                .map(|i| Some(i as u16)),
        }
    }

    /// Bytes held per vector (matrix rows plus the per-row metadata, ids excluded).
    pub fn bytes_per_vector(&self) -> usize {
        let extra = match self.storage {
            VectorStorage::Int8 => self.dim + 4,
            VectorStorage::Sketch => self.words * 8,
            _ => 0,
        };
        self.dim * 4 + extra + 2 + 2 + 16
    }

    pub fn storage(&self) -> VectorStorage {
        self.storage
    }

    /// Re-centres the sketches on the mean of the stored vectors (sign bits of centred vectors
    /// carry far more information than raw signs when embeddings share a common direction).
    /// Call after a bulk load; later upserts use the centre as it is.
    pub fn rebuild_sketches(&mut self) {
        if self.storage != VectorStorage::Sketch || self.ids.is_empty() {
            return;
        }
        let n = self.ids.len();
        let mut centre = vec![0f64; self.dim];
        for row in self.data.chunks_exact(self.dim) {
            centre
                .iter_mut()
                .zip(row)
                .for_each(|(c, x)| *c += f64::from(*x));
        }
        self.centre = centre.iter().map(|c| (c / n as f64) as f32).collect();
        let (d, w) = (self.dim, self.words);
        for r in 0..n {
            sketch_into(
                &self.data[r * d..(r + 1) * d],
                &self.centre,
                &mut self.sketch[r * w..(r + 1) * w],
            );
        }
    }

    fn scan<F: Fn(usize) -> f32 + Sync>(
        &self,
        obj: Option<u16>,
        node: Option<u16>,
        k: usize,
        score: F,
    ) -> Vec<(f32, usize)> {
        let n = self.ids.len();
        // With a filter, list the matching rows first: a tight loop over two u16 arrays, so
        // the scoring loop below has no unpredictable branch per row.
        let rows: Option<Vec<u32>> = (obj.is_some() || node.is_some()).then(|| {
            (0..n as u32)
                .filter(|&r| {
                    obj.is_none_or(|o| self.objective[r as usize] == o)
                        && node.is_none_or(|o| self.node[r as usize] == o)
                })
                .collect()
        });
        let len = rows.as_ref().map_or(n, Vec::len);
        let run = |start: usize, end: usize| {
            let mut top = TopK::new(k);
            match &rows {
                Some(rows) => rows[start..end]
                    .iter()
                    .for_each(|&r| top.push(score(r as usize), r as usize)),
                None => (start..end).for_each(|r| top.push(score(r), r)),
            }
            top
        };
        let parallel_min = if self.storage == VectorStorage::Sketch {
            SKETCH_PARALLEL_MIN_ROWS
        } else {
            PARALLEL_MIN_ROWS
        };
        let top = match &self.pool {
            Some(pool) if len >= parallel_min => {
                let parts = pool.current_num_threads();
                let chunk = len.div_ceil(parts);
                pool.install(|| {
                    (0..parts)
                        .into_par_iter()
                        .map(|p| run((p * chunk).min(len), ((p + 1) * chunk).min(len)))
                        .reduce(|| TopK::new(k), TopK::merge)
                })
            }
            _ => run(0, len),
        };
        top.into_sorted()
    }

    /// Exact f32 scores of candidate rows, best k.
    fn rerank(&self, rough: Vec<(f32, usize)>, query: &[f32], k: usize) -> Vec<(f32, usize)> {
        let mut exact: Vec<(f32, usize)> = rough
            .into_iter()
            .map(|(_, r)| (dot(self.row(r), query), r))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        exact.truncate(k);
        exact
    }

    fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.dim..(r + 1) * self.dim]
    }
}

impl ExactIndex {
    /// Writes one vector whatever its version (loading from the store, benches); the trait's
    /// `upsert` checks versions first.
    pub fn put(&mut self, id: &str, vector: &[f32], meta: VectorMeta, version: i64) -> Result<()> {
        // Only the length here (the hot path of loading from the store); `upsert` checks that
        // records from outside are finite too.
        if vector.len() != self.dim {
            return Err(Error::Invalid(format!(
                "asset {id}: vector has {} dimensions, the index holds {}",
                vector.len(),
                self.dim
            )));
        }
        let (o, n) = (self.code(&meta.objective), self.code(&meta.node));
        let row = match self.rows.get(id) {
            Some(&r) => {
                self.data[r * self.dim..(r + 1) * self.dim].copy_from_slice(vector);
                self.objective[r] = o;
                self.node[r] = n;
                self.kpi[r] = meta.kpi;
                self.versions[r] = version;
                r
            }
            None => {
                let r = self.ids.len();
                self.ids.push(id.to_string());
                self.rows.insert(id.to_string(), r);
                self.data.extend_from_slice(vector);
                self.objective.push(o);
                self.node.push(n);
                self.kpi.push(meta.kpi);
                self.versions.push(version);
                if self.storage == VectorStorage::Int8 {
                    self.q8.resize((r + 1) * self.dim, 0);
                    self.q8_scale.push(1.0);
                }
                if self.storage == VectorStorage::Sketch {
                    self.sketch.resize((r + 1) * self.words, 0);
                }
                r
            }
        };
        if self.storage == VectorStorage::Int8 {
            let d = self.dim;
            self.q8_scale[row] = quantise(vector, &mut self.q8[row * d..(row + 1) * d]);
        }
        if self.storage == VectorStorage::Sketch {
            let w = self.words;
            sketch_into(
                vector,
                &self.centre,
                &mut self.sketch[row * w..(row + 1) * w],
            );
        }
        Ok(())
    }

    /// Removes one id whatever its version; false when it was not held.
    pub fn delete(&mut self, id: &str) -> bool {
        let Some(r) = self.rows.remove(id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        let d = self.dim;
        if r != last {
            self.data.copy_within(last * d..(last + 1) * d, r * d);
            if self.storage == VectorStorage::Int8 {
                self.q8.copy_within(last * d..(last + 1) * d, r * d);
                self.q8_scale[r] = self.q8_scale[last];
            }
            if self.storage == VectorStorage::Sketch {
                let w = self.words;
                self.sketch.copy_within(last * w..(last + 1) * w, r * w);
            }
            self.ids.swap(r, last);
            self.objective[r] = self.objective[last];
            self.node[r] = self.node[last];
            self.kpi[r] = self.kpi[last];
            self.versions[r] = self.versions[last];
            self.rows.insert(self.ids[r].clone(), r);
        }
        self.ids.pop();
        self.data.truncate(last * d);
        if self.storage == VectorStorage::Int8 {
            self.q8.truncate(last * d);
            self.q8_scale.pop();
        }
        self.sketch.truncate(last * self.words);
        self.objective.pop();
        self.node.pop();
        self.kpi.pop();
        self.versions.pop();
        true
    }

    /// k nearest by the index's storage, or by an exact f32 scan when `exact`.
    fn nearest(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
        exact: bool,
    ) -> Result<Vec<Neighbour>> {
        if query.len() != self.dim {
            return Err(Error::Invalid(format!(
                "query has {} dimensions; index '{}' holds {}",
                query.len(),
                self.embedder,
                self.dim
            )));
        }
        let (Some(obj), Some(node)) = (self.lookup(&filter.objective), self.lookup(&filter.node))
        else {
            return Ok(Vec::new()); // a filter value no vector has
        };
        if k == 0 {
            return Ok(Vec::new());
        }
        // Never ask for more than the index holds (a huge k must not allocate a huge heap).
        let k = k.min(self.ids.len());
        let storage = if exact {
            VectorStorage::F32
        } else {
            self.storage
        };
        let best = match storage {
            VectorStorage::F32 => self.scan(obj, node, k, |r| dot(self.row(r), query)),
            VectorStorage::Int8 => {
                let mut q = vec![0i8; self.dim];
                let qs = quantise(query, &mut q);
                let d = self.dim;
                // Over-fetch, then re-rank exactly: int8 error only reorders near-ties.
                let pool = k.saturating_mul(4).max(k.saturating_add(32));
                let rough = self.scan(obj, node, pool, |r| {
                    dot_i8(&self.q8[r * d..(r + 1) * d], &q) as f32 * self.q8_scale[r] * qs
                });
                self.rerank(rough, query, k)
            }
            VectorStorage::Sketch => {
                let w = self.words;
                let mut q = vec![0u64; w];
                sketch_into(query, &self.centre, &mut q);
                let pool = k
                    .saturating_mul(SKETCH_OVERFETCH)
                    .max(SKETCH_MIN_POOL)
                    .saturating_mul(1024_usize.div_ceil(self.dim).max(1))
                    .min(self.ids.len());
                let rough = self.scan(obj, node, pool, |r| {
                    -(hamming(&self.sketch[r * w..(r + 1) * w], &q) as f32)
                });
                self.rerank(rough, query, k)
            }
            // Resolved to a concrete storage before the index is built.
            VectorStorage::Auto => self.scan(obj, node, k, |r| dot(self.row(r), query)),
        };
        Ok(best
            .into_iter()
            .map(|(s, r)| Neighbour {
                id: self.ids[r].clone(),
                similarity: s,
            })
            .collect())
    }

    fn matching_rows(&self, filter: &SearchFilter) -> Option<impl Iterator<Item = usize> + '_> {
        let (Some(obj), Some(node)) = (self.lookup(&filter.objective), self.lookup(&filter.node))
        else {
            return None;
        };
        Some((0..self.ids.len()).filter(move |&r| {
            obj.is_none_or(|o| self.objective[r] == o) && node.is_none_or(|o| self.node[r] == o)
        }))
    }
}

impl VectorIndex for ExactIndex {
    fn embedder(&self) -> &EmbedderId {
        &self.embedder
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn upsert(&mut self, records: &[VectorRecord]) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        for r in records {
            if let Err(reason) = check_vector(&r.id, &r.vector, self.dim) {
                report.failed.push(WriteFailure {
                    id: r.id.clone(),
                    reason,
                });
                continue;
            }
            if self.version_of(&r.id).is_some_and(|v| v >= r.version) {
                report.stale.push(r.id.clone());
                continue;
            }
            self.put(&r.id, &r.vector, r.meta.clone(), r.version)?;
            report.written += 1;
        }
        Ok(report)
    }

    fn remove(&mut self, tombstones: &[Tombstone]) -> Result<WriteReport> {
        let mut report = WriteReport::default();
        for t in tombstones {
            match self.version_of(&t.id) {
                Some(v) if v >= t.version => report.stale.push(t.id.clone()),
                Some(_) => {
                    self.delete(&t.id);
                    report.written += 1;
                }
                None => {}
            }
        }
        Ok(report)
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn count(&self, filter: &SearchFilter) -> Result<usize> {
        Ok(self.matching_rows(filter).map_or(0, Iterator::count))
    }

    fn search(&self, query: &[f32], filter: &SearchFilter, k: usize) -> Result<Vec<Neighbour>> {
        self.nearest(query, filter, k, false)
    }

    fn search_exact(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
    ) -> Result<Vec<Neighbour>> {
        self.nearest(query, filter, k, true)
    }

    fn kpi_percentiles(&self, filter: &SearchFilter, kpis: &[Option<f64>]) -> Result<Vec<f32>> {
        let mut known: Vec<f64> = self
            .matching_rows(filter)
            .map(|rows| rows.filter_map(|r| self.kpi[r]).collect())
            .unwrap_or_default();
        known.sort_by(f64::total_cmp);
        Ok(kpis.iter().map(|k| kpi_percentile(&known, *k)).collect())
    }

    fn digest(&self) -> Result<Vec<DigestBucket>> {
        let states: Vec<DocState> = (0..self.ids.len()).map(|r| self.state(r)).collect();
        Ok(digest_of(&states))
    }

    fn states_in(&self, bucket: &str) -> Result<Vec<DocState>> {
        let mut v: Vec<DocState> = (0..self.ids.len())
            .filter(|&r| bucket_of(&self.ids[r]) == bucket)
            .map(|r| self.state(r))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
}

impl ExactIndex {
    fn state(&self, r: usize) -> DocState {
        DocState {
            id: self.ids[r].clone(),
            version: self.versions[r],
            objective: self.codes[self.objective[r] as usize].clone(),
            node: self.codes[self.node[r] as usize].clone(),
            kpi: self.kpi[r],
            doc: None,
        }
    }
}

/// Percentile rank of `kpi` within sorted `kpis` (ties count half), 0..1; unknown KPI -> 0.
pub fn kpi_percentile(sorted: &[f64], kpi: Option<f64>) -> f32 {
    let Some(x) = kpi else { return 0.0 };
    let below = sorted.partition_point(|v| *v < x);
    let upto = sorted.partition_point(|v| *v <= x);
    percentile_from_counts(below as u64, (upto - below) as u64, sorted.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let mut v = v;
        crate::services::normalize(&mut v);
        v
    }

    fn meta(o: &str, n: &str, kpi: f64) -> VectorMeta {
        VectorMeta {
            objective: o.into(),
            node: n.into(),
            kpi: Some(kpi),
        }
    }

    fn index(storage: VectorStorage) -> ExactIndex {
        let mut ix = ExactIndex::new(EmbedderId::new("t"), 4, storage, 1);
        let objs = ["clicks", "likes"];
        let nodes = ["followers", "customers", "new_customers"];
        for i in 0..60usize {
            let v = unit(vec![
                1.0,
                i as f32 / 10.0,
                (i % 7) as f32,
                (i % 3) as f32 * 0.5,
            ]);
            ix.put(
                &format!("a{i:02}"),
                &v,
                meta(objs[i % 2], nodes[i % 3], i as f64),
                i as i64 + 1,
            )
            .unwrap();
        }
        ix
    }

    #[test]
    fn filter_applies_during_search_and_returns_exactly_k() {
        for storage in [
            VectorStorage::F32,
            VectorStorage::Int8,
            VectorStorage::Sketch,
        ] {
            let mut ix = index(storage);
            ix.rebuild_sketches();
            let q = unit(vec![1.0, 5.0, 0.0, 0.0]);
            let f = SearchFilter {
                objective: Some("likes".into()),
                node: Some("customers".into()),
            };
            // i odd and i % 3 == 1: 10 of the 60 match.
            let hits = ix.search(&q, &f, 7).unwrap();
            assert_eq!(hits.len(), 7);
            for h in &hits {
                let i: usize = h.id[1..].parse().unwrap();
                assert!(i % 2 == 1 && i % 3 == 1, "{}", h.id);
            }
            assert!(hits.windows(2).all(|w| w[0].similarity >= w[1].similarity));
            // Fewer than k match: all of them come back.
            assert_eq!(ix.search(&q, &f, 50).unwrap().len(), 10);
            // An unknown filter value matches nothing.
            let none = SearchFilter {
                objective: Some("awareness".into()),
                node: None,
            };
            assert!(ix.search(&q, &none, 5).unwrap().is_empty());
        }
    }

    #[test]
    fn f32_results_equal_a_brute_force_ranking() {
        let ix = index(VectorStorage::F32);
        let q = unit(vec![0.3, 2.0, 1.0, 0.1]);
        let mut all: Vec<(f32, String)> = (0..ix.len())
            .map(|r| (dot(ix.row(r), &q), ix.ids[r].clone()))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        let got: Vec<String> = ix
            .search(&q, &SearchFilter::default(), 10)
            .unwrap()
            .into_iter()
            .map(|n| n.id)
            .collect();
        let want: Vec<String> = all.into_iter().take(10).map(|x| x.1).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn upsert_replaces_and_remove_keeps_rows_consistent() {
        for storage in [VectorStorage::Int8, VectorStorage::Sketch] {
            upsert_and_remove(storage);
        }
    }

    fn upsert_and_remove(storage: VectorStorage) {
        let mut ix = index(storage);
        ix.rebuild_sketches();
        let q = unit(vec![0.0, 0.0, 0.0, 1.0]);
        ix.put("a05", &q, meta("clicks", "followers", 1.0), 100)
            .unwrap();
        assert_eq!(ix.len(), 60);
        let top = ix.search(&q, &SearchFilter::default(), 1).unwrap();
        assert_eq!(top[0].id, "a05");
        assert!((top[0].similarity - 1.0).abs() < 1e-6);
        assert!(ix.delete("a05"));
        assert!(!ix.delete("a05"));
        assert_eq!(ix.len(), 59);
        assert!(
            ix.search(&q, &SearchFilter::default(), 59)
                .unwrap()
                .iter()
                .all(|n| n.id != "a05")
        );
        assert!(
            ix.put("x", &[1.0], meta("clicks", "followers", 1.0), 1)
                .is_err()
        );
    }

    #[test]
    fn percentiles_within_the_filtered_set() {
        let ix = index(VectorStorage::F32);
        let f = SearchFilter {
            objective: Some("clicks".into()),
            node: None,
        };
        assert_eq!(ix.count(&f).unwrap(), 30);
        let p = ix
            .kpi_percentiles(&f, &[Some(58.0), Some(0.0), None])
            .unwrap();
        assert_eq!(p, vec![(29.5 / 30.0) as f32, (0.5 / 30.0) as f32, 0.0]);
        assert_eq!(dot_i8(&[1, -2, 3], &[4, 5, -6]), 4 - 10 - 18);
    }
}
