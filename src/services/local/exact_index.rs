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
use std::collections::BinaryHeap;
use std::sync::Arc;

use rayon::prelude::*;

use super::columns::{Col, Ids, RowSet, Vectors};
use super::partition::{
    PARTITION_MIN_ROWS, PROBE_CHECK_DEPTH, PROBE_CHECK_STRIDE, PROBE_MAX_SHARE, PROBE_MIN_RANKED,
    PROBE_SHARE, Partition,
};
use crate::config::VectorStorage;
use crate::domain::index::{
    bucket_of, digest_of, kpi_percentile, versioned_remove, versioned_upsert,
};
use crate::domain::{EmbedderId, SearchFilter};
use crate::services::{
    DigestBucket, DocState, Neighbour, Tombstone, VectorIndex, VectorMeta, VectorRecord,
    WriteReport,
};
use crate::{Error, Result};

/// Below this many rows a scan is faster on one thread than the pool's hand-off.
const PARALLEL_MIN_ROWS: usize = 16_384;
/// How many listed rows ahead of the one scored a scan prefetches.
const SCAN_PREFETCH_AHEAD: usize = 8;
/// Sketch search re-ranks max(k * SKETCH_OVERFETCH, SKETCH_MIN_POOL) candidates exactly, scaled
/// up for vectors shorter than 1024-d (fewer bits rank less sharply). Chosen with the index
/// bench: recall@10 >= 0.99 at 100k vectors of 384-d and 1024-d.
const SKETCH_OVERFETCH: usize = 64;
const SKETCH_MIN_POOL: usize = 640;
/// The pool grows by that much again per this many rows: more rows means more near-ties in
/// Hamming distance. Measured on the clustered set at 1M x 1024: a pool of 640 had recall@10
/// 0.982, 1 920 (three times, what this gives there) 1.000.
const SKETCH_POOL_GROWTH_ROWS: usize = 400_000;
/// Re-ranking this many candidates or more is split over the scan threads.
const PARALLEL_MIN_RERANK: usize = 512;
/// The sketch scan is cheap per row; splitting it over threads only pays on very large indexes.
const SKETCH_PARALLEL_MIN_ROWS: usize = 1 << 19;
/// Whether an index of `storage` keeps 1-bit sketches: sketch storage, and int8 (its sketches
/// pick which rows the int8 codes score, `int8_by_sketch`; until snapshot format 3 only from
/// 768-d on).
pub(crate) fn keeps_sketch(storage: VectorStorage) -> bool {
    matches!(storage, VectorStorage::Sketch | VectorStorage::Int8)
}

/// How much nearer (in sketch bits) the worst of the best k must be than every row the
/// sketches left out, for the int8 path to trust the sketches' shortlist: sqrt(bits). The
/// Hamming distance between a query's sketch and a row's, over `bits` sign bits, spreads like
/// a count of independent coin flips, with a standard deviation of at most sqrt(bits) / 2;
/// the margin is two of them. Set from that argument before measuring; measured afterwards
/// (index bench, 100k x 384): on the clustered set the gap was 70 to 130 bits (trusted,
/// recall@10 1.000), on the perturbed e5 set 0 to 20 (a full int8 scan, recall 1.000, where
/// the shortlist alone had 0.77).
fn sketch_margin(bits: usize) -> usize {
    (bits as f64).sqrt().ceil() as usize
}

/// The int8 path's first shortlist is the sketch path's pool when that is at most this share
/// of the rows ranked (one in 16: at 384-d from about 31k rows, at 1024-d from about 10k),
/// else the int8 pool. Set from the cost argument (a gathered row costs about as much as two
/// read in order, so a wide first round costs at most an eighth of a scan) before measuring.
const WIDE_FIRST_SHARE: usize = 16;

/// The sketch head: the first HEAD_WORDS words (256 bits) of each sketch, kept contiguous so
/// a first pass reads a quarter of the sketch bytes. At 1M x 1024 every query read all 128 MB
/// of sketches, and that pass was bounded by memory bandwidth (11-12 ms of CPU however it was
/// written when the bus was shared), which left usearch ef 512 ahead unfiltered.
const HEAD_WORDS: usize = 4;
/// Indexes of at least this many rows ranked, with sketches of at least 2 * HEAD_WORDS words,
/// take the head pass first.
const HEAD_MIN_ROWS: usize = 1 << 18;
/// The head pass keeps this many times the pool for the full-sketch pass: 8 x 1 920 = 15 360
/// rows at 1M, 1.5 % of the rows. First 16, chosen before measuring; then measured on the
/// clustered set at 1M x 1024 (int8, one thread, 50 queries): recall@10 1.000 with 16, 8 and 4
/// unfiltered and at 50 %, p50 unfiltered 11.6 ms with 16 and 9.7 with 8 (gathering the kept
/// rows' full sketches was the largest share of the search). The held-out set checks it.
const HEAD_OVERFETCH: usize = 8;

/// Bits per dimension of the query in the asymmetric sketch score (`QueryPlanes`).
const QUERY_BITS: usize = 4;

/// At most this many times the int8 path widens the sketches' shortlist before it scans every
/// row instead.
const SHORTLIST_ROUNDS: usize = 3;

pub struct ExactIndex {
    pub(crate) embedder: EmbedderId,
    pub(crate) dim: usize,
    pub(crate) storage: VectorStorage,
    pub(crate) ids: Ids,
    pub(crate) vectors: Vectors,
    pub(crate) q8: Col<i8>,
    pub(crate) q8_scale: Col<f32>,
    /// 1-bit sketches, `words` u64 per row, of `row - centre`.
    pub(crate) sketch: Col<u64>,
    /// The first HEAD_WORDS words of every row's sketch in a column of their own, on large
    /// indexes of long sketches (`build_head`); empty otherwise, or once a row changes.
    head: Vec<u64>,
    /// HEAD_MIN_ROWS (tests lower it to take the head pass on small indexes).
    head_min_rows: usize,
    /// A large snapshot's coarse partition (`partition`): its rows are stored list by list.
    pub(crate) partition: Option<Partition>,
    /// PROBE_MIN_RANKED (tests lower it to probe small indexes).
    pub(crate) probe_min_ranked: usize,
    /// A snapshot written from this index is partitioned from this many rows
    /// (PARTITION_MIN_ROWS; tests lower it).
    pub(crate) partition_min_rows: usize,
    pub(crate) words: usize,
    pub(crate) centre: Vec<f32>,
    pub(crate) objective: Col<u16>,
    pub(crate) node: Col<u16>,
    /// KPIs; NaN where unknown.
    pub(crate) kpi: Col<f64>,
    /// The change feed's version of each row.
    pub(crate) versions: Col<i64>,
    pub(crate) codes: Vec<String>,
    pub(crate) pool: Option<Arc<rayon::ThreadPool>>,
}

impl std::fmt::Debug for ExactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactIndex")
            .field("embedder", &self.embedder)
            .field("dim", &self.dim)
            .field("len", &self.ids.len())
            .field("storage", &self.storage)
            .field("mapped", &self.is_mapped())
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

/// A query quantised to QUERY_BITS bits per dimension (`lo + step * code`), stored as bit
/// planes laid out like a sketch (plane j, word i: bit j of the codes of dimensions 64i to
/// 64i + 63), for the asymmetric score of a row's sketch (`QueryPlanes::score`).
struct QueryPlanes {
    planes: Vec<u64>,
    words: usize,
    lo: f32,
    step: f32,
}

impl QueryPlanes {
    fn new(query: &[f32], words: usize) -> Self {
        let lo = query.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = query.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let levels = ((1u32 << QUERY_BITS) - 1) as f32;
        let step = if hi > lo && (hi - lo).is_finite() {
            (hi - lo) / levels
        } else {
            1.0
        };
        let lo = if lo.is_finite() { lo } else { 0.0 };
        let mut planes = vec![0u64; QUERY_BITS * words];
        for (i, &x) in query.iter().enumerate().take(words * 64) {
            let code = ((x - lo) / step).round().clamp(0.0, levels) as u32;
            for j in 0..QUERY_BITS {
                if code >> j & 1 == 1 {
                    planes[j * words + i / 64] |= 1 << (i % 64);
                }
            }
        }
        QueryPlanes {
            planes,
            words,
            lo,
            step,
        }
    }

    /// The query's dot product with the row's sketch read as +1/-1 per dimension, up to terms
    /// the same for every row: sum over dimensions of (lo + step * code) * (2 * bit - 1) is
    /// 2 * (step * sum(code * bit) + lo * popcount) less a constant. Unlike the Hamming
    /// distance between two sketches it keeps the query's magnitudes, so it ranks the rows
    /// nearest the query far more sharply (the row's side is still one bit per dimension).
    #[inline]
    fn score(&self, row: &[u64]) -> f32 {
        let w = self.words;
        let mut weighted = 0u32;
        for j in 0..QUERY_BITS {
            let plane = &self.planes[j * w..(j + 1) * w];
            let ones: u32 = plane
                .iter()
                .zip(row)
                .map(|(p, b)| (p & b).count_ones())
                .sum();
            weighted += ones << j;
        }
        let ones: u32 = row.iter().map(|b| b.count_ones()).sum();
        self.step * weighted as f32 + self.lo * ones as f32
    }
}

/// Sign bits of `v - centre`, 64 dimensions per word.
pub(crate) fn sketch_into(v: &[f32], centre: &[f32], out: &mut [u64]) {
    for (w, (vc, cc)) in out.iter_mut().zip(v.chunks(64).zip(centre.chunks(64))) {
        let mut bits = 0u64;
        for (i, (x, c)) in vc.iter().zip(cc).enumerate() {
            bits |= u64::from(x > c) << i;
        }
        *w = bits;
    }
}

/// The `pool` nearest of `(row, distance)` pairs given in row order, as (-distance, row): a
/// histogram of the distances (`histogram`) gives the smallest distance at which `pool` rows
/// are reached; one more pass takes every row below it and rows at it in row order until the
/// pool is full (`cut`). Distances of `bins` or more (u16::MAX: a missing row) never answer.
fn histogram_cut(
    pairs: impl Iterator<Item = (usize, u16)> + Clone,
    bins: usize,
    pool: usize,
) -> Vec<(f32, usize)> {
    let hist = histogram(pairs.clone(), bins);
    cut(pairs, &hist, pool)
}

/// How many of `pairs` are at each distance under `bins`.
fn histogram(pairs: impl Iterator<Item = (usize, u16)>, bins: usize) -> Vec<u32> {
    let mut hist = vec![0u32; bins];
    for (_, h) in pairs {
        if let Some(c) = hist.get_mut(usize::from(h)) {
            *c += 1;
        }
    }
    hist
}

/// The `pool` nearest of `pairs` (row order) whose distances `hist` counts, as in
/// `histogram_cut`.
fn cut(pairs: impl Iterator<Item = (usize, u16)>, hist: &[u32], pool: usize) -> Vec<(f32, usize)> {
    let bins = hist.len();
    let (mut below, mut limit) = (0usize, bins);
    for (dist, &count) in hist.iter().enumerate() {
        if below + count as usize >= pool {
            limit = dist;
            break;
        }
        below += count as usize;
    }
    let mut at_limit = pool.saturating_sub(below);
    let mut out = Vec::with_capacity(pool.min(1 << 16));
    for (r, h) in pairs {
        let h = usize::from(h);
        if h < limit || (h == limit && h < bins && at_limit > 0) {
            if h == limit {
                at_limit -= 1;
            }
            out.push((-(h as f32), r));
        }
    }
    out
}

/// Asks the CPU to start loading row `r` (`row_len` elements of `codes`) into cache, one
/// request per 64-byte line; a row past the end is ignored. Written here because no crate
/// offers a safe slice prefetch.
#[inline]
fn prefetch_row<T>(codes: &[T], r: usize, row_len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let end = r.checked_add(1).and_then(|e| e.checked_mul(row_len));
        let (Some(start), Some(end)) = (r.checked_mul(row_len), end) else {
            return;
        };
        let Some(row) = codes.get(start..end) else {
            return;
        };
        let bytes = std::mem::size_of_val(row);
        let base = row.as_ptr().cast::<i8>();
        let mut off = 0;
        while off < bytes {
            // SAFETY: a prefetch never faults and reads nothing into the program; the address
            // is inside `row`, a live slice.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    base.add(off),
                );
            }
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (codes, r, row_len);
}

/// Bit i set where `codes[i] == want`, for up to 64 codes (more are ignored).
#[inline]
fn eq_mask(codes: &[u16], want: u16) -> u64 {
    let mask = |codes: &[u16]| {
        codes
            .iter()
            .take(64)
            .enumerate()
            .fold(0u64, |m, (i, &c)| m | (u64::from(c == want) << i))
    };
    match <&[u16; 64]>::try_from(codes) {
        // A whole block: a fixed trip count once inlined, which LLVM vectorises.
        Ok(block) => mask(block),
        Err(_) => mask(codes),
    }
}

/// The Hamming distance from `q` to each row of `W` words in `rows`, for the common sketch
/// widths (384, 512, 768 and 1024 bits): with the width known at compile time the row loop is
/// unrolled and vectorised (AVX2 popcount), where the general loop over a runtime width scores
/// one row at a time (10k x 384: 35 -> 25 us per query, index bench).
fn distances_of<const W: usize>(rows: &[u64], q: &[u64]) -> Vec<u16> {
    let Ok(q) = <&[u64; W]>::try_from(q) else {
        return vec![u16::MAX; rows.len() / W];
    };
    rows.chunks_exact(W)
        .map(|s| {
            let mut d = 0u32;
            for i in 0..W {
                d += (s[i] ^ q[i]).count_ones();
            }
            d as u16
        })
        .collect()
}

#[inline]
fn hamming(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Symmetric per-vector int8 quantisation.
pub(crate) fn quantise(v: &[f32], out: &mut [i8]) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    // Ties to even: one vector instruction, where `round` (ties away from zero) is a libm call
    // per value (most of the int8 codes' cost when a 100k x 1024 index is built).
    let inv = 1.0 / scale;
    for (o, x) in out.iter_mut().zip(v) {
        *o = (x * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
    }
    scale
}

fn kpi_of(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

/// The rows a probe of `ranked` rows reads, step after step while its check fails: an eighth
/// (PROBE_SHARE), a quarter, then half (PROBE_MAX_SHARE), each rounded up.
fn probe_steps(ranked: usize) -> impl Iterator<Item = usize> {
    std::iter::successors(Some(PROBE_SHARE), |s| Some(s / 2))
        .take_while(|&s| s >= PROBE_MAX_SHARE)
        .map(move |s| ranked.div_ceil(s))
}

/// A scan pool of `threads` threads (None for one).
pub(crate) fn scan_pool(threads: usize) -> Option<Arc<rayon::ThreadPool>> {
    (threads > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("index-scan-{i}"))
                .build()
                .ok()
        })
        .flatten()
        .map(Arc::new)
}

/// Rows an index holds but must not answer with (a snapshot's rows changed since it was
/// written); empty for an index on its own.
static NO_ROWS: std::sync::LazyLock<RowSet> = std::sync::LazyLock::new(RowSet::default);

impl ExactIndex {
    /// `Auto` here means F32: resolve it with the expected size first (`VectorStorage::resolve`).
    pub fn new(embedder: EmbedderId, dim: usize, storage: VectorStorage, threads: usize) -> Self {
        Self::with_pool(embedder, dim, storage, scan_pool(threads))
    }

    pub(crate) fn with_pool(
        embedder: EmbedderId,
        dim: usize,
        storage: VectorStorage,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Self {
        let storage = storage.concrete();
        ExactIndex {
            embedder,
            dim,
            storage,
            ids: Ids::default(),
            vectors: Vectors::default(),
            q8: Col::default(),
            q8_scale: Col::default(),
            sketch: Col::default(),
            head: Vec::new(),
            head_min_rows: HEAD_MIN_ROWS,
            partition: None,
            probe_min_ranked: PROBE_MIN_RANKED,
            partition_min_rows: PARTITION_MIN_ROWS,
            words: dim.div_ceil(64),
            centre: vec![0.0; dim],
            objective: Col::default(),
            node: Col::default(),
            kpi: Col::default(),
            versions: Col::default(),
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

    /// Whether the rows are a memory-mapped snapshot (read-only).
    pub fn is_mapped(&self) -> bool {
        self.versions.is_mapped()
    }

    /// The stored version of `id`, if held.
    pub fn version_of(&self, id: &str) -> Option<i64> {
        self.ids
            .row_of(id)
            .and_then(|r| self.versions.get(r).copied())
    }

    pub(crate) fn row_of(&self, id: &str) -> Option<usize> {
        self.ids.row_of(id)
    }

    pub(crate) fn id(&self, r: usize) -> &str {
        self.ids.get(r)
    }

    pub fn reserve(&mut self, n: usize) {
        if let Ok((ids, _)) = self.ids.owned_mut() {
            ids.reserve(n);
        }
        if let Vectors::Mem(Col::Owned(v)) = &mut self.vectors {
            v.reserve(n.saturating_mul(self.dim));
        }
        if self.storage == VectorStorage::Int8
            && let Ok(q) = self.q8.vec_mut()
        {
            q.reserve(n.saturating_mul(self.dim));
        }
        if self.sketched()
            && let Ok(s) = self.sketch.vec_mut()
        {
            s.reserve(n.saturating_mul(self.words));
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

    /// Bytes held in memory per vector (what the search reads on every query), by storage:
    /// f32 rows in memory, or the compact codes with the f32 rows left on disk for a mapped
    /// snapshot. Ids excluded.
    pub fn bytes_per_vector(&self) -> usize {
        let f32_rows = if self.vectors.mem().is_some() {
            self.dim * 4
        } else {
            0
        };
        let int8 = if self.storage == VectorStorage::Int8 {
            self.dim + 4
        } else {
            0
        };
        let sketch = if self.sketched() { self.words * 8 } else { 0 };
        let extra = int8 + sketch;
        f32_rows + extra + 2 + 2 + 16
    }

    pub fn storage(&self) -> VectorStorage {
        self.storage
    }

    /// Whether this index keeps 1-bit sketches (`keeps_sketch`).
    pub(crate) fn sketched(&self) -> bool {
        keeps_sketch(self.storage)
    }

    /// Re-centres the sketches on the mean of the stored vectors (sign bits of centred vectors
    /// carry far more information than raw signs when embeddings share a common direction).
    /// Call after a bulk load; later upserts use the centre as it is.
    pub fn rebuild_sketches(&mut self) {
        if !self.sketched() || self.ids.is_empty() {
            return;
        }
        let n = self.ids.len();
        let (d, w) = (self.dim, self.words);
        let Some(data) = self.vectors.mem() else {
            return;
        };
        let mut centre = vec![0f64; d];
        for row in data.chunks_exact(d) {
            centre
                .iter_mut()
                .zip(row)
                .for_each(|(c, x)| *c += f64::from(*x));
        }
        let centre: Vec<f32> = centre.iter().map(|c| (c / n as f64) as f32).collect();
        let Ok(sketch) = self.sketch.vec_mut() else {
            return;
        };
        for (r, row) in data.chunks_exact(d).enumerate().take(n) {
            sketch_into(row, &centre, &mut sketch[r * w..(r + 1) * w]);
        }
        self.centre = centre;
        self.build_head();
    }

    /// Copies the sketch head into its own column where the head pass applies (a mapped
    /// snapshot at open, a rebuilt index after `rebuild_sketches`): 32 bytes per row.
    pub(crate) fn build_head(&mut self) {
        self.head = Vec::new();
        let (n, w) = (self.ids.len(), self.words);
        if !self.sketched() || w < 2 * HEAD_WORDS || n < self.head_min_rows {
            return;
        }
        // A partitioned index ranks a probed eighth of its rows: the head pass applies only
        // where that eighth reaches its threshold (from 2M rows).
        if self.partition.is_some() && n < self.head_min_rows.saturating_mul(PROBE_SHARE) {
            return;
        }
        self.fill_head();
    }

    /// Copies the sketch head into its column, whatever the size (tests call it directly).
    fn fill_head(&mut self) {
        let (n, w) = (self.ids.len(), self.words);
        if w < HEAD_WORDS {
            return;
        }
        let mut head = Vec::with_capacity(n.saturating_mul(HEAD_WORDS));
        for row in self.sketch.chunks_exact(w).take(n) {
            head.extend_from_slice(&row[..HEAD_WORDS]);
        }
        if head.len() == n * HEAD_WORDS {
            self.head = head;
        }
    }

    /// Whether row `r` passes the filter codes.
    #[inline]
    fn passes(&self, r: usize, obj: Option<u16>, node: Option<u16>) -> bool {
        obj.is_none_or(|o| self.objective.get(r) == Some(&o))
            && node.is_none_or(|o| self.node.get(r) == Some(&o))
    }

    /// With a filter (or hidden rows), the matching rows, listed first: a tight loop over two
    /// u16 arrays (split over the pool on large indexes), so the scoring loop after it has no
    /// unpredictable branch per row. The list is built 64 rows at a time from a bit mask of the
    /// rows that pass (`eq_mask`), then one step per set bit: a branch per row mispredicted half
    /// the time at a 50 % filter, which made the list cost 0.5 ms at 100k rows, a third of the
    /// search. None: every row.
    fn filtered_rows(
        &self,
        obj: Option<u16>,
        node: Option<u16>,
        skip: &RowSet,
    ) -> Option<Vec<u32>> {
        if obj.is_none() && node.is_none() && skip.is_empty() {
            return None;
        }
        let (objective, nodes) = (&self.objective[..], &self.node[..]);
        let n = self.ids.len().min(objective.len()).min(nodes.len());
        let no_skip = skip.is_empty();
        let list = |start: usize, end: usize| -> Vec<u32> {
            // 64 rows at a time: a bit mask of those that pass, built without a branch per row
            // (compares LLVM turns into vector compares and a move-mask), then one step per set
            // bit, so the cost follows the matches rather than mispredictions.
            let mut out = Vec::new();
            let mut from = start;
            while from < end {
                let to = end.min(from + 64);
                let all = u64::MAX >> (64 - (to - from));
                let mut bits = all;
                if let (Some(o), Some(codes)) = (obj, objective.get(from..to)) {
                    bits &= eq_mask(codes, o);
                }
                if let (Some(o), Some(codes)) = (node, nodes.get(from..to)) {
                    bits &= eq_mask(codes, o);
                }
                if !no_skip {
                    for i in 0..to - from {
                        bits &= !(u64::from(skip.contains(from + i)) << i);
                    }
                }
                while bits != 0 {
                    out.push((from + bits.trailing_zeros() as usize) as u32);
                    bits &= bits - 1;
                }
                from = to;
            }
            out
        };
        Some(self.in_parts(n, list))
    }

    /// With a partition, the rows of the lists nearest to `query` among `rows` (every row when
    /// None, else the filter's matches, in row order), list after list until they hold one in
    /// PROBE_SHARE of the rows ranked, returned in row order (the lists read front to back).
    /// Without a partition, or where fewer than `probe_min_ranked` rows are ranked, `rows`
    /// as given. A list's matches are a slice of the sorted `rows` (rows are stored list by
    /// list), found by two binary searches. The probe is checked by a sample of the rows left
    /// out (`partition::PROBE_CHECK_STRIDE`): where it finds rows as near as the probed ones,
    /// the lists nearest to the query are read until they hold a quarter of the rows ranked,
    /// then half (1 / PROBE_MAX_SHARE), each checked again; past that every row ranked is read.
    fn probe(&self, query: &[f32], rows: Option<Vec<u32>>, k: usize) -> Option<Vec<u32>> {
        let Some(p) = &self.partition else {
            return rows;
        };
        let n = self.ids.len();
        let ranked = rows.as_ref().map_or(n, Vec::len);
        if ranked < self.probe_min_ranked || !p.is_consistent(n) || !self.sketched() {
            return rows;
        }
        // A list's part of the rows ranked: row numbers (every row ranked) or positions in the
        // match list.
        let within = |range: std::ops::Range<usize>| -> std::ops::Range<usize> {
            match &rows {
                None => range,
                Some(list) => {
                    let a = list.partition_point(|&r| (r as usize) < range.start);
                    let b = list.partition_point(|&r| (r as usize) < range.end);
                    a..b
                }
            }
        };
        let row_at = |i: usize| -> usize {
            match &rows {
                None => i,
                Some(list) => list.get(i).map_or(usize::MAX, |&r| r as usize),
            }
        };
        // Each list's part, nearest list first.
        let parts: Vec<_> = p
            .ranked(query)
            .into_iter()
            .map(|l| within(p.range(l)))
            .collect();
        let w = self.words;
        let mut sq = vec![0u64; w];
        sketch_into(query, &self.centre, &mut sq);
        let sketch = &self.sketch[..];
        let dist = |r: usize| -> u32 {
            sketch
                .get(r.saturating_mul(w)..r.saturating_add(1).saturating_mul(w))
                .map_or(u32::MAX, |x| hamming(x, &sq))
        };
        for want in probe_steps(ranked) {
            // The nearest lists until they hold `want` rows.
            let mut taken = 0;
            let mut got = 0usize;
            for part in &parts {
                got += part.len();
                taken += 1;
                if got >= want {
                    break;
                }
            }
            // Too few probed rows to hold the k asked (a k in the thousands): read them all.
            if got < k.saturating_mul(PROBE_CHECK_DEPTH) {
                return rows;
            }
            let (chosen, left) = parts.split_at(taken);
            let mut chosen = chosen.to_vec();
            chosen.sort_by_key(|r| r.start);
            let mut out = Vec::with_capacity(got);
            for part in &chosen {
                match &rows {
                    None => out.extend(part.clone().map(|r| r as u32)),
                    Some(list) => out.extend_from_slice(list.get(part.clone()).unwrap_or(&[])),
                }
            }
            // The check: a sample of the rows left out must all be farther (in sketch bits)
            // from the query than the probed sample's PROBE_CHECK_DEPTH * k-th nearest
            // (`partition::PROBE_CHECK_STRIDE`); else twice the rows are probed and checked.
            let mut near: Vec<u32> = out
                .iter()
                .step_by(PROBE_CHECK_STRIDE)
                .map(|&r| dist(r as usize))
                .collect();
            if near.is_empty() {
                return rows;
            }
            let depth = k.saturating_mul(PROBE_CHECK_DEPTH).clamp(1, near.len());
            let bar = *near.select_nth_unstable(depth - 1).1;
            let closer = left
                .iter()
                .flat_map(|part| part.clone().step_by(PROBE_CHECK_STRIDE))
                .any(|i| dist(row_at(i)) <= bar);
            if !closer {
                return Some(out);
            }
        }
        rows
    }

    /// `part(start, end)` over `0..len`, split in one range per scan thread from
    /// SKETCH_PARALLEL_MIN_ROWS on, the parts concatenated in order.
    fn in_parts<T: Send + Copy>(
        &self,
        len: usize,
        part: impl Fn(usize, usize) -> Vec<T> + Sync,
    ) -> Vec<T> {
        match &self.pool {
            Some(tp) if len >= SKETCH_PARALLEL_MIN_ROWS => {
                let n = tp.current_num_threads();
                let chunk = len.div_ceil(n);
                let parts: Vec<Vec<T>> = tp.install(|| {
                    (0..n)
                        .into_par_iter()
                        .map(|p| part((p * chunk).min(len), ((p + 1) * chunk).min(len)))
                        .collect()
                });
                parts.concat()
            }
            _ => part(0, len),
        }
    }

    /// Hamming distances to sketch `q` of every row (None) or of the listed rows, in order;
    /// u16::MAX marks a missing row. Split over the pool on large indexes.
    fn sketch_distances(&self, q: &[u64], rows: Option<&[u32]>) -> Vec<u16> {
        let w = self.words;
        let sketch = &self.sketch[..];
        // Distances fit a u16 for any sketch up to 65 534 bits.
        let cap = u32::from(u16::MAX - 1);
        let len = rows.map_or(self.ids.len(), <[u32]>::len);
        let part = |start: usize, end: usize| -> Vec<u16> {
            match rows {
                None => {
                    let rows = sketch.get(start * w..end * w).unwrap_or_default();
                    match w {
                        6 => distances_of::<6>(rows, q),
                        8 => distances_of::<8>(rows, q),
                        12 => distances_of::<12>(rows, q),
                        16 => distances_of::<16>(rows, q),
                        _ => rows
                            .chunks_exact(w.max(1))
                            .map(|s| hamming(s, q).min(cap) as u16)
                            .collect(),
                    }
                }
                Some(rows) => {
                    let part = &rows[start..end];
                    part.iter()
                        .enumerate()
                        .map(|(i, &r)| {
                            if let Some(&ahead) = part.get(i + SCAN_PREFETCH_AHEAD) {
                                prefetch_row(sketch, ahead as usize, w);
                            }
                            let r = r as usize;
                            sketch
                                .get(r * w..(r + 1) * w)
                                .map_or(u16::MAX, |s| hamming(s, q).min(cap) as u16)
                        })
                        .collect()
                }
            }
        };
        self.in_parts(len, part)
    }

    /// The `pool` rows (all, or those listed) nearest to sketch `q` by Hamming distance, ties
    /// broken by row order. Batched rather than a heap per row: the distances go into a u16
    /// buffer (a loop LLVM vectorises, popcount included), a histogram of them gives the
    /// distance at which `pool` rows are reached, and one pass collects them (measured 2x
    /// faster than a heap per row at 1M x 1024). A filter's rows are gathered whatever their
    /// share, each prefetched ahead: it used to compute every row's distance in file order for
    /// a list over 1/16 of the rows, which the prefetch made slower (100k x 1024, sketch one
    /// thread, p99: 1.55 -> 1.29 ms at 50 %, 1.42 -> 0.75 ms at 8 %).
    fn sketch_candidates(
        &self,
        q: &[u64],
        rows: Option<&[u32]>,
        pool: usize,
        planes: Option<&QueryPlanes>,
    ) -> Vec<(f32, usize)> {
        let bins = (self.words * 64 + 1).min(usize::from(u16::MAX));
        let ranked = rows.map_or(self.ids.len(), <[u32]>::len);
        if ranked >= self.head_min_rows
            && self.has_head()
            && let Some(qh) = q.get(..HEAD_WORDS)
        {
            return self.head_candidates(q, qh, rows, pool, bins, planes);
        }
        let d = self.sketch_distances(q, rows);
        // (row, distance) in row order for the rows that may answer, one concrete iterator per
        // case so both passes below compile to tight loops (through a boxed iterator, a call
        // per row).
        match rows {
            None => histogram_cut(d.iter().copied().enumerate(), bins, pool),
            Some(rows) => histogram_cut(
                rows.iter().map(|&r| r as usize).zip(d.iter().copied()),
                bins,
                pool,
            ),
        }
    }

    /// Where the head pass applies (`sketch_candidates`), the rows the int8 path scores: the
    /// sketch path's candidates (head pass, then the asymmetric score of the full sketches),
    /// in row order. At 1M x 1024 the int8 path used to rank every row's full sketch first
    /// (128 MB read per query); this reads the head (32 MB) and 30 720 full sketches, then
    /// scores the sketch path's pool (1 920 rows) in int8 instead of reading them from disk.
    fn head_shortlist(&self, query: &[f32], rows: Option<&[u32]>, k: usize) -> Option<Vec<u32>> {
        let ranked = rows.map_or(self.ids.len(), <[u32]>::len);
        if ranked < self.head_min_rows || !self.has_head() {
            return None;
        }
        let mut sq = vec![0u64; self.words];
        sketch_into(query, &self.centre, &mut sq);
        let planes = QueryPlanes::new(query, self.words);
        let pool = sketch_pool(k, self.dim, ranked);
        let mut short: Vec<u32> = self
            .sketch_candidates(&sq, rows, pool, Some(&planes))
            .into_iter()
            .map(|(_, r)| r as u32)
            .collect();
        short.sort_unstable();
        Some(short)
    }

    /// Whether the head column is built and matches the rows.
    fn has_head(&self) -> bool {
        !self.head.is_empty() && self.head.len() == self.ids.len().saturating_mul(HEAD_WORDS)
    }

    /// `sketch_candidates` in two passes: the head (a quarter of the bits, read in order)
    /// keeps HEAD_OVERFETCH times the pool, and only those rows' full sketches are read
    /// (each prefetched ahead: they are scattered over the sketch column). With the query's
    /// `planes` the pool is the best by the asymmetric score (`QueryPlanes::score`), as
    /// (score, row) in no particular order; without, the nearest by Hamming distance as in
    /// `sketch_candidates`. Measured at 1M x 1024 (clustered, sketch, one thread): prefetching
    /// and the asymmetric score took p50 unfiltered from 14.6 to 13.2 ms at the same pool
    /// and recall (1.000); the pool stays the same, since a third of it lost recall (0.99).
    fn head_candidates(
        &self,
        q: &[u64],
        qh: &[u64],
        rows: Option<&[u32]>,
        pool: usize,
        bins: usize,
        planes: Option<&QueryPlanes>,
    ) -> Vec<(f32, usize)> {
        let head = &self.head[..];
        let len = rows.map_or(self.ids.len(), <[u32]>::len);
        let dh = self.in_parts(len, |start, end| match rows {
            None => distances_of::<HEAD_WORDS>(
                head.get(start * HEAD_WORDS..end * HEAD_WORDS)
                    .unwrap_or_default(),
                qh,
            ),
            Some(rows) => rows[start..end]
                .iter()
                .map(|&r| {
                    let r = r as usize;
                    head.get(r * HEAD_WORDS..(r + 1) * HEAD_WORDS)
                        .map_or(u16::MAX, |h| hamming(h, qh) as u16)
                })
                .collect(),
        });
        let wide = pool.saturating_mul(HEAD_OVERFETCH);
        let head_bins = HEAD_WORDS * 64 + 1;
        let first = match rows {
            None => histogram_cut(dh.iter().copied().enumerate(), head_bins, wide),
            Some(rows) => histogram_cut(
                rows.iter().map(|&r| r as usize).zip(dh.iter().copied()),
                head_bins,
                wide,
            ),
        };
        let w = self.words;
        let sketch = &self.sketch[..];
        if let Some(planes) = planes {
            let keep = pool;
            let mut scored: Vec<(f32, usize)> = first
                .iter()
                .enumerate()
                .map(|(i, &(_, r))| {
                    if let Some(&(_, ahead)) = first.get(i + SCAN_PREFETCH_AHEAD) {
                        prefetch_row(sketch, ahead, w);
                    }
                    let s = sketch
                        .get(r * w..(r + 1) * w)
                        .map_or(f32::NEG_INFINITY, |s| planes.score(s));
                    (s, r)
                })
                .collect();
            if scored.len() > keep {
                scored.select_nth_unstable_by(keep, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                scored.truncate(keep);
            }
            return scored;
        }
        let cap = u32::from(u16::MAX - 1);
        // The kept rows are in row order, so the full sketches are read front to back.
        let full: Vec<(usize, u16)> = first
            .iter()
            .enumerate()
            .map(|(i, &(_, r))| {
                if let Some(&(_, ahead)) = first.get(i + SCAN_PREFETCH_AHEAD) {
                    prefetch_row(sketch, ahead, w);
                }
                let d = sketch
                    .get(r * w..(r + 1) * w)
                    .map_or(u16::MAX, |s| hamming(s, q).min(cap) as u16);
                (r, d)
            })
            .collect();
        histogram_cut(full.iter().copied(), bins, pool)
    }

    /// The best `k` rows by `score`, over every row (None) or the listed rows. `codes`
    /// is the row-major array `score` reads (`row_len` elements per row): a listed row's are
    /// prefetched SCAN_PREFETCH_AHEAD rows before it is scored, since the hardware prefetcher
    /// does not follow a list with gaps (at a 50 % filter, 68 % of the int8 scan's time was the
    /// first load of each row: a scan of half the rows took twice as long as one of all).
    fn scan<T, F: Fn(usize) -> f32 + Sync>(
        &self,
        rows: Option<&[u32]>,
        k: usize,
        (codes, row_len): (&[T], usize),
        score: F,
    ) -> Vec<(f32, usize)>
    where
        T: Sync,
    {
        let n = self.ids.len();
        let len = rows.map_or(n, <[u32]>::len);
        let run = |start: usize, end: usize| {
            let mut top = TopK::new(k);
            match rows {
                Some(rows) => {
                    let part = &rows[start..end];
                    for (i, &r) in part.iter().enumerate() {
                        if let Some(&ahead) = part.get(i + SCAN_PREFETCH_AHEAD) {
                            prefetch_row(codes, ahead as usize, row_len);
                        }
                        top.push(score(r as usize), r as usize);
                    }
                }
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

    /// Row `r`'s int8 score against the quantised query `q` (scale `qs`).
    #[inline]
    fn int8_score(&self, r: usize, q: &[i8], qs: f32) -> f32 {
        let d = self.dim;
        match (self.q8.get(r * d..(r + 1) * d), self.q8_scale.get(r)) {
            (Some(codes), Some(scale)) => dot_i8(codes, q) as f32 * scale * qs,
            _ => f32::NEG_INFINITY,
        }
    }

    /// The best `pool` rows by int8 score among a shortlist the sketches pick, or None where
    /// a scan of every row ranked is needed. The shortlist starts at the rows nearest by
    /// sketch (the sketch path's pool where that is a small share of the rows ranked, else the
    /// int8 pool; at least every row within a margin of the k-th nearest) and is trusted once every row it leaves out is `sketch_margin` bits farther from the
    /// query's sketch than the worst of the best k it holds; until then it widens to every row
    /// nearer than that (at most SHORTLIST_ROUNDS times). A shortlist over a quarter of the
    /// rows ranked is not worth scoring: a gathered row costs about twice one read in order
    /// (int8 at 384-d: 52 against 31 ns), and a shortlist found untrustworthy is paid on top
    /// of the scan. So embeddings whose sketches barely tell the nearest apart are scanned
    /// directly: the perturbed e5 set, where the sketch pool alone had recall@10 0.77.
    /// It used to start at the sketch path's pool whatever the size (1 920 rows at 384-d),
    /// which made a 10k index or a 50 % filter of it scan every row; starting small indexes at
    /// the int8 pool (42 rows for k = 10, widened on the same check) took 10k x 384 clustered
    /// from 0.35 to 0.13 ms p99 unfiltered and 0.40 to 0.12 ms at 50 % (index bench, one
    /// thread, with its f32 rows mapped), recall@10 1.000. Measured p99 unfiltered on one
    /// thread before that change:
    /// 100k x 1024 clustered 7.8 ms scanning every row, 1.39 ms with the checked shortlist;
    /// 100k x 384 clustered 3.1 and 0.67 ms.
    fn int8_by_sketch(
        &self,
        query: &[f32],
        q: (&[i8], f32),
        rows: Option<&[u32]>,
        k: usize,
        pool: usize,
    ) -> Option<Vec<(f32, usize)>> {
        let ranked = rows.map_or(self.ids.len(), <[u32]>::len);
        if !self.sketched() || k == 0 || pool > ranked / 4 {
            return None;
        }
        // A wide first round (the sketch path's pool) costs little beside a scan of many rows
        // and is trusted at once far more often where sketches separate poorly (the e5 set:
        // 3.7 ms p50 at 100k x 384 against 5.3 starting narrow); among few rows it is most of
        // the work (10k x 384: 0.35 against 0.13 ms p99 starting at the int8 pool).
        let wide = sketch_pool(k, self.dim, ranked);
        let first = if wide <= ranked / WIDE_FIRST_SHARE {
            wide
        } else {
            pool
        };
        let mut sq = vec![0u64; self.words];
        sketch_into(query, &self.centre, &mut sq);
        let d = self.sketch_distances(&sq, rows);
        let shortlist = Shortlist {
            sq: &sq,
            q,
            k,
            pool,
            first,
            most: ranked / 4,
        };
        match rows {
            None => self.int8_shortlist(d.iter().copied().enumerate(), &shortlist),
            Some(rows) => self.int8_shortlist(
                rows.iter().map(|&r| r as usize).zip(d.iter().copied()),
                &shortlist,
            ),
        }
    }

    /// `int8_by_sketch` over `(row, sketch distance)` pairs in row order. The shortlist is
    /// every row nearer than a distance `hi`; each round scores only the rows it adds.
    fn int8_shortlist(
        &self,
        pairs: impl Iterator<Item = (usize, u16)> + Clone,
        s: &Shortlist<'_>,
    ) -> Option<Vec<(f32, usize)>> {
        let bins = (self.words * 64 + 1).min(usize::from(u16::MAX));
        let hist = histogram(pairs.clone(), bins);
        // The smallest distance h with at least `n` rows nearer than or at it, plus one: the
        // rows nearer than the result number n or more.
        let reach = |n: usize| -> usize {
            let mut seen = 0usize;
            hist.iter()
                .position(|&c| {
                    seen += c as usize;
                    seen >= n
                })
                .map_or(bins, |h| h + 1)
        };
        let nearer = |h: usize| -> usize { hist.iter().take(h).map(|&c| c as usize).sum() };
        let margin = sketch_margin(self.dim);
        // The best k by int8 are k distinct rows, so the worst of them is at least the k-th
        // smallest distance: every row within the margin of that is needed from the start.
        let kth = reach(s.k).saturating_sub(1);
        // The worst of the best k is usually up to a margin past the k-th smallest distance
        // (measured 6 to 25 bits), so a trusted shortlist is likely to hold every row within
        // two margins of it: when those are too many to be worth scoring, every row is
        // scanned straight away (this only chooses the way, never what is trusted).
        if nearer(kth.saturating_add(2 * margin)) > s.most {
            return None;
        }
        let mut hi = reach(s.first).max(kth.saturating_add(margin));
        let mut lo = 0;
        let (q, qs) = s.q;
        let w = self.words;
        let mut best: Vec<(f32, usize)> = Vec::new();
        for _ in 0..SHORTLIST_ROUNDS {
            hi = hi.min(bins);
            if nearer(hi) > s.most {
                return None;
            }
            let added: Vec<u32> = pairs
                .clone()
                .filter(|&(_, h)| (lo..hi).contains(&usize::from(h)))
                .map(|(r, _)| r as u32)
                .collect();
            best.extend(
                self.scan(Some(&added), s.pool, (&self.q8[..], self.dim), |r| {
                    self.int8_score(r, q, qs)
                }),
            );
            best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            best.truncate(s.pool);
            let worst = best
                .iter()
                .take(s.k)
                .map(|&(_, r)| {
                    self.sketch
                        .get(r * w..(r + 1) * w)
                        .map_or(usize::MAX, |x| hamming(x, s.sq) as usize)
                })
                .max()
                .unwrap_or(0);
            // Every row left out is at `hi` or farther.
            let needed = worst.saturating_add(margin);
            if needed <= hi {
                return Some(best);
            }
            (lo, hi) = (hi, needed);
        }
        None
    }

    /// Exact f32 scores of candidate rows, best k (rows on disk are read in file order).
    fn rerank(
        &self,
        mut rough: Vec<(f32, usize)>,
        query: &[f32],
        k: usize,
    ) -> Result<Vec<(f32, usize)>> {
        rough.sort_by_key(|&(_, r)| r);
        let score = |part: &[(f32, usize)]| -> Result<Vec<(f32, usize)>> {
            let mut buf = Vec::new();
            part.iter()
                .map(|&(_, r)| Ok((dot(self.vectors.row(r, self.dim, &mut buf)?, query), r)))
                .collect()
        };
        // Rows on disk are read one `pread` each: a wide pool is split over the scan threads.
        let mut exact = match &self.pool {
            Some(tp) if rough.len() >= PARALLEL_MIN_RERANK => {
                let chunk = rough.len().div_ceil(tp.current_num_threads());
                let parts: Vec<Result<Vec<(f32, usize)>>> =
                    tp.install(|| rough.par_chunks(chunk).map(score).collect());
                let mut all = Vec::with_capacity(rough.len());
                for part in parts {
                    all.extend(part?);
                }
                all
            }
            _ => score(&rough)?,
        };
        exact.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        exact.truncate(k);
        Ok(exact)
    }

    /// Row `r`'s vector (a copy: rows may live on disk).
    pub fn vector(&self, r: usize) -> Result<Vec<f32>> {
        let mut buf = Vec::new();
        Ok(self.vectors.row(r, self.dim, &mut buf)?.to_vec())
    }

    /// Row `r`'s filter values and KPI.
    pub(crate) fn meta(&self, r: usize) -> VectorMeta {
        let code = |c: Option<&u16>| {
            c.and_then(|&c| self.codes.get(c as usize))
                .cloned()
                .unwrap_or_default()
        };
        VectorMeta {
            objective: code(self.objective.get(r)),
            node: code(self.node.get(r)),
            kpi: self.kpi.get(r).copied().and_then(kpi_of),
        }
    }

    pub(crate) fn version(&self, r: usize) -> i64 {
        self.versions.get(r).copied().unwrap_or(0)
    }
}

impl ExactIndex {
    /// Writes one vector whatever its version (loading from the store, benches); the trait's
    /// `upsert` checks versions first. A mapped snapshot refuses (write through `LiveIndex`).
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
        if self.is_mapped() {
            return Err(Error::Invalid(
                "internal: a snapshot is read-only; write through the live index".into(),
            ));
        }
        // A changed row would leave the head stale: drop it (a bulk load rebuilds it). Only a
        // read-only snapshot has a partition, but a row added out of list order would break it.
        // Both after the checks: a refused write changes nothing.
        self.head = Vec::new();
        self.partition = None;
        let (o, n) = (self.code(&meta.objective), self.code(&meta.node));
        let d = self.dim;
        let kpi = meta.kpi.unwrap_or(f64::NAN);
        let Vectors::Mem(data) = &mut self.vectors else {
            return Err(Error::Invalid(
                "internal: vectors on disk are read-only".into(),
            ));
        };
        let data = data.vec_mut()?;
        let (ids, rows) = self.ids.owned_mut()?;
        let row = match rows.get(id) {
            Some(&r) => {
                data[r * d..(r + 1) * d].copy_from_slice(vector);
                self.objective.vec_mut()?[r] = o;
                self.node.vec_mut()?[r] = n;
                self.kpi.vec_mut()?[r] = kpi;
                self.versions.vec_mut()?[r] = version;
                r
            }
            None => {
                let r = ids.len();
                ids.push(id.to_string());
                rows.insert(id.to_string(), r);
                data.extend_from_slice(vector);
                self.objective.vec_mut()?.push(o);
                self.node.vec_mut()?.push(n);
                self.kpi.vec_mut()?.push(kpi);
                self.versions.vec_mut()?.push(version);
                if self.storage == VectorStorage::Int8 {
                    self.q8.vec_mut()?.resize((r + 1) * d, 0);
                    self.q8_scale.vec_mut()?.push(1.0);
                }
                if self.sketched() {
                    self.sketch.vec_mut()?.resize((r + 1) * self.words, 0);
                }
                r
            }
        };
        if self.storage == VectorStorage::Int8 {
            let scale = quantise(vector, &mut self.q8.vec_mut()?[row * d..(row + 1) * d]);
            self.q8_scale.vec_mut()?[row] = scale;
        }
        if self.sketched() {
            let w = self.words;
            sketch_into(
                vector,
                &self.centre,
                &mut self.sketch.vec_mut()?[row * w..(row + 1) * w],
            );
        }
        Ok(())
    }

    /// Removes one id whatever its version; false when it was not held (or the index is a
    /// read-only snapshot: `LiveIndex` hides its rows instead).
    pub fn delete(&mut self, id: &str) -> bool {
        self.try_delete(id).unwrap_or(false)
    }

    fn try_delete(&mut self, id: &str) -> Result<bool> {
        if self.is_mapped() {
            return Ok(false);
        }
        self.head = Vec::new();
        self.partition = None;
        let d = self.dim;
        let w = self.words;
        let storage = self.storage;
        let sketched = self.sketched();
        let (ids, rows) = self.ids.owned_mut()?;
        let Some(r) = rows.remove(id) else {
            return Ok(false);
        };
        let last = ids.len() - 1;
        let Vectors::Mem(data) = &mut self.vectors else {
            return Ok(false);
        };
        let data = data.vec_mut()?;
        if r != last {
            data.copy_within(last * d..(last + 1) * d, r * d);
            if storage == VectorStorage::Int8 {
                self.q8
                    .vec_mut()?
                    .copy_within(last * d..(last + 1) * d, r * d);
                let q = self.q8_scale.vec_mut()?;
                q[r] = q[last];
            }
            if sketched {
                self.sketch
                    .vec_mut()?
                    .copy_within(last * w..(last + 1) * w, r * w);
            }
            ids.swap(r, last);
            for col in [self.objective.vec_mut()?, self.node.vec_mut()?] {
                col[r] = col[last];
            }
            let k = self.kpi.vec_mut()?;
            k[r] = k[last];
            let v = self.versions.vec_mut()?;
            v[r] = v[last];
            rows.insert(ids[r].clone(), r);
        }
        ids.pop();
        data.truncate(last * d);
        if storage == VectorStorage::Int8 {
            self.q8.vec_mut()?.truncate(last * d);
            self.q8_scale.vec_mut()?.pop();
        }
        self.sketch.vec_mut()?.truncate(last * w);
        self.objective.vec_mut()?.pop();
        self.node.vec_mut()?.pop();
        self.kpi.vec_mut()?.pop();
        self.versions.vec_mut()?.pop();
        Ok(true)
    }

    /// k nearest by the index's storage, or by an exact f32 scan when `exact`; rows in `skip`
    /// never answer. With a scan pool the whole search runs on one of its threads: a search
    /// alternates parallel parts (the filter's match list, long scans) with serial ones (the
    /// probe and its check, the re-rank), and run from outside the pool each serial part
    /// shared the 2 cores with both pool threads spinning for work after the parallel part
    /// before they sleep (1M x 1024 int8 at a 50 % filter: 7.05 ms p99 on 2 threads against
    /// 2.89 on 1). Inside the pool only the other thread spins.
    pub(crate) fn nearest_skipping(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
        exact: bool,
        skip: &RowSet,
    ) -> Result<Vec<Neighbour>> {
        match &self.pool {
            Some(tp) => tp.install(|| self.nearest_here(query, filter, k, exact, skip)),
            None => self.nearest_here(query, filter, k, exact, skip),
        }
    }

    /// `nearest_skipping` on the calling thread (parallel parts go to the pool).
    fn nearest_here(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
        exact: bool,
        skip: &RowSet,
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
        if k == 0 || self.ids.is_empty() {
            return Ok(Vec::new());
        }
        // Never ask for more than the index holds (a huge k must not allocate a huge heap).
        let k = k.min(self.ids.len());
        let storage = if exact {
            VectorStorage::F32
        } else {
            self.storage
        };
        let best = match (storage, self.vectors.mem()) {
            (VectorStorage::F32 | VectorStorage::Auto, Some(data)) => {
                let d = self.dim;
                let rows = self.filtered_rows(obj, node, skip);
                self.scan(rows.as_deref(), k, (data, d), |r| {
                    dot(&data[r * d..(r + 1) * d], query)
                })
            }
            // An exact scan of rows on disk: read each matching row (only `search_exact`, the
            // engine's last resort when the compact path found fewer than asked, comes here).
            (VectorStorage::F32 | VectorStorage::Auto, None) => {
                let all: Vec<(f32, usize)> = (0..self.ids.len())
                    .filter(|&r| self.passes(r, obj, node) && !skip.contains(r))
                    .map(|r| (0.0, r))
                    .collect();
                self.rerank(all, query, k)?
            }
            (VectorStorage::Int8, _) => {
                let mut q = vec![0i8; self.dim];
                let qs = quantise(query, &mut q);
                // Over-fetch, then re-rank exactly: int8 error only reorders near-ties.
                let pool = k.saturating_mul(4).max(k.saturating_add(32));
                let rows = self.probe(query, self.filtered_rows(obj, node, skip), k);
                let int8 = |listed: Option<&[u32]>| {
                    self.scan(listed, pool, (&self.q8[..], self.dim), |r| {
                        self.int8_score(r, &q, qs)
                    })
                };
                let rough = if let Some(short) = self.head_shortlist(query, rows.as_deref(), k) {
                    int8(Some(&short))
                } else if let Some(rough) =
                    self.int8_by_sketch(query, (&q, qs), rows.as_deref(), k, pool)
                {
                    rough
                } else {
                    int8(rows.as_deref())
                };
                self.rerank(rough, query, k)?
            }
            (VectorStorage::Sketch, _) => {
                let mut q = vec![0u64; self.words];
                sketch_into(query, &self.centre, &mut q);
                let rows = self.filtered_rows(obj, node, skip);
                // Sized by the rows ranked (a filter's matches), not the whole index, and
                // before probing: the lists left out hold far rows, while the near-ties in
                // Hamming distance the pool grows for are all in the lists read (at 1M x 1024,
                // clustered, a pool sized by the probed eighth had recall@10 0.982 unfiltered).
                let ranked = rows.as_ref().map_or(self.ids.len(), Vec::len);
                let rows = self.probe(query, rows, k);
                let pool = sketch_pool(k, self.dim, ranked);
                let planes = QueryPlanes::new(query, self.words);
                let rough = self.sketch_candidates(&q, rows.as_deref(), pool, Some(&planes));
                self.rerank(rough, query, k)?
            }
        };
        Ok(best
            .into_iter()
            .map(|(s, r)| Neighbour {
                id: self.ids.get(r).to_string(),
                similarity: s,
            })
            .collect())
    }

    /// Rows that match `filter` and are not in `skip` (None: a filter value no row has).
    pub(crate) fn matching_rows<'a>(
        &'a self,
        filter: &SearchFilter,
        skip: &'a RowSet,
    ) -> Option<impl Iterator<Item = usize> + 'a> {
        let (Some(obj), Some(node)) = (self.lookup(&filter.objective), self.lookup(&filter.node))
        else {
            return None;
        };
        Some((0..self.ids.len()).filter(move |&r| self.passes(r, obj, node) && !skip.contains(r)))
    }

    pub(crate) fn known_kpis(&self, filter: &SearchFilter, skip: &RowSet) -> Vec<f64> {
        self.matching_rows(filter, skip)
            .map(|rows| {
                rows.filter_map(|r| self.kpi.get(r).copied().and_then(kpi_of))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn state(&self, r: usize) -> DocState {
        let meta = self.meta(r);
        DocState {
            id: self.ids.get(r).to_string(),
            version: self.version(r),
            objective: meta.objective,
            node: meta.node,
            kpi: meta.kpi,
            doc: None,
        }
    }
}

/// What `int8_shortlist` works with: the query's sketch and int8 codes (with their scale), the
/// k asked, the int8 pool kept for the exact re-rank, the first shortlist's size and the
/// largest worth scoring.
struct Shortlist<'a> {
    sq: &'a [u64],
    q: (&'a [i8], f32),
    k: usize,
    pool: usize,
    first: usize,
    most: usize,
}

/// How many sketch candidates are re-ranked exactly for `k` results: max(k * SKETCH_OVERFETCH,
/// SKETCH_MIN_POOL), scaled up for vectors shorter than 1024-d (fewer bits rank less sharply)
/// and by one step per SKETCH_POOL_GROWTH_ROWS rows ranked.
fn sketch_pool(k: usize, dim: usize, n: usize) -> usize {
    k.saturating_mul(SKETCH_OVERFETCH)
        .max(SKETCH_MIN_POOL)
        .saturating_mul(1024_usize.div_ceil(dim.max(1)).max(1))
        .saturating_mul(n.div_ceil(SKETCH_POOL_GROWTH_ROWS).max(1))
        .min(n)
}

impl VectorIndex for ExactIndex {
    fn embedder(&self) -> &EmbedderId {
        &self.embedder
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn upsert(&mut self, records: &[VectorRecord]) -> Result<WriteReport> {
        let dim = self.dim;
        versioned_upsert(self, records, dim, Self::version_of, |ix, r| {
            ix.put(&r.id, &r.vector, r.meta.clone(), r.version)
        })
    }

    fn remove(&mut self, tombstones: &[Tombstone]) -> Result<WriteReport> {
        versioned_remove(self, tombstones, Self::version_of, |ix, t| {
            ix.try_delete(&t.id)
        })
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn count(&self, filter: &SearchFilter) -> Result<usize> {
        Ok(self
            .matching_rows(filter, &NO_ROWS)
            .map_or(0, Iterator::count))
    }

    fn search(&self, query: &[f32], filter: &SearchFilter, k: usize) -> Result<Vec<Neighbour>> {
        self.nearest_skipping(query, filter, k, false, &NO_ROWS)
    }

    fn search_exact(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
    ) -> Result<Vec<Neighbour>> {
        self.nearest_skipping(query, filter, k, true, &NO_ROWS)
    }

    fn kpi_percentiles(&self, filter: &SearchFilter, kpis: &[Option<f64>]) -> Result<Vec<f32>> {
        let mut known = self.known_kpis(filter, &NO_ROWS);
        known.sort_by(f64::total_cmp);
        Ok(kpis.iter().map(|k| kpi_percentile(&known, *k)).collect())
    }

    fn digest(&self) -> Result<Vec<DigestBucket>> {
        let states: Vec<DocState> = (0..self.ids.len()).map(|r| self.state(r)).collect();
        Ok(digest_of(&states))
    }

    fn states_in(&self, bucket: &str) -> Result<Vec<DocState>> {
        let mut v: Vec<DocState> = (0..self.ids.len())
            .filter(|&r| bucket_of(self.ids.get(r)) == bucket)
            .map(|r| self.state(r))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
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

    /// A sketch index of `n` seeded 128-d vectors (two sketch words), objective "a" on every
    /// third row.
    fn sketch_index(n: usize) -> ExactIndex {
        sketch_index_of(n, 128)
    }

    fn sketch_index_of(n: usize, dim: usize) -> ExactIndex {
        let mut ix = ExactIndex::new(EmbedderId::new("t"), dim, VectorStorage::Sketch, 1);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..n {
            let v: Vec<f32> = (0..dim)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect();
            let o = if i % 3 == 0 { "a" } else { "b" };
            ix.put(&format!("r{i}"), &unit(v), meta(o, "all", 0.0), 1)
                .unwrap();
        }
        ix.rebuild_sketches();
        ix
    }

    /// The `pool` smallest (distance, row) pairs by sorting, the reference for the batched scan.
    fn by_sorting(ix: &ExactIndex, q: &[u64], rows: &[usize], pool: usize) -> Vec<(f32, usize)> {
        let w = ix.words;
        let mut all: Vec<(u32, usize)> = rows
            .iter()
            .map(|&r| (hamming(&ix.sketch[r * w..(r + 1) * w], q), r))
            .collect();
        all.sort();
        all.truncate(pool);
        all.sort_by_key(|&(_, r)| r);
        all.into_iter().map(|(d, r)| (-(d as f32), r)).collect()
    }

    fn query_sketch(ix: &ExactIndex) -> Vec<u64> {
        let mut q = vec![0u64; ix.words];
        let v = unit((0..128).map(|i| (i as f32 * 0.37).sin()).collect());
        sketch_into(&v, &ix.centre, &mut q);
        q
    }

    #[test]
    fn head_pass_keeps_the_nearest_rows_of_the_full_sketch_pass_on_clustered_rows() {
        // 512-d sketches (8 words), 4 000 rows in 40 clusters of 100 around random centres;
        // the query sits near the first centre. The head pass keeps 16 x 20 rows by their
        // first 256 bits, then ranks those by all 512; the best 10 of the full pass must be
        // among its 20. (On structureless random rows near-ties are everywhere and a quarter
        // of the bits loses some of them: that data is what the bench's held-out set is for.)
        let dim = 512;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..40).map(|_| (0..dim).map(|_| rnd()).collect()).collect();
        let mut ix = ExactIndex::new(EmbedderId::new("t"), dim, VectorStorage::Sketch, 1);
        for i in 0..4_000 {
            let c = &centres[i % 40];
            let v: Vec<f32> = c.iter().map(|a| a + 0.3 * rnd()).collect();
            ix.put(&format!("r{i}"), &unit(v), meta("a", "all", 0.0), 1)
                .unwrap();
        }
        ix.rebuild_sketches();
        ix.fill_head();
        let v: Vec<f32> = centres[0].iter().map(|a| a + 0.3 * rnd()).collect();
        let mut q = vec![0u64; ix.words];
        sketch_into(&unit(v), &ix.centre, &mut q);
        let bins = ix.words * 64 + 1;
        let full = ix.sketch_candidates(&q, None, 10, None);
        let head = ix.head_candidates(&q, &q[..HEAD_WORDS], None, 20, bins, None);
        assert_eq!(head.len(), 20);
        for (_, r) in &full {
            assert!(
                head.iter().any(|(_, h)| h == r),
                "row {r} lost by the head pass"
            );
        }
    }

    /// The quantised query `planes` encode, value by value.
    fn dequantised(planes: &QueryPlanes, dim: usize) -> Vec<f32> {
        (0..dim)
            .map(|i| {
                let code: u32 = (0..QUERY_BITS)
                    .map(|j| {
                        let bit = planes.planes[j * planes.words + i / 64] >> (i % 64) & 1;
                        (bit as u32) << j
                    })
                    .sum();
                planes.lo + planes.step * code as f32
            })
            .collect()
    }

    #[test]
    fn query_planes_keep_each_value_within_half_a_step() {
        let q: Vec<f32> = (0..300)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 97.0)
            .collect();
        let planes = QueryPlanes::new(&q, q.len().div_ceil(64));
        for (a, b) in q.iter().zip(dequantised(&planes, q.len())) {
            assert!((a - b).abs() <= planes.step / 2.0 + 1e-6, "{a} became {b}");
        }
    }

    #[test]
    fn asymmetric_score_orders_rows_as_the_quantised_query_dotted_with_their_signs() {
        // score(a) - score(b) must be half the difference of sum(q_i * s_i), s_i = +1 where
        // the row's bit is set and -1 where not: the terms it leaves out are the same for
        // every row.
        let dim: usize = 200;
        let words = dim.div_ceil(64);
        let q: Vec<f32> = (0..dim)
            .map(|i| ((i * 53 % 89) as f32 - 40.0) / 60.0)
            .collect();
        let planes = QueryPlanes::new(&q, words);
        let deq = dequantised(&planes, dim);
        let signed = |row: &[u64]| -> f32 {
            (0..dim)
                .map(|i| {
                    let s = if row[i / 64] >> (i % 64) & 1 == 1 {
                        1.0
                    } else {
                        -1.0
                    };
                    deq[i] * s
                })
                .sum()
        };
        let rows: Vec<Vec<u64>> = (0..20u64)
            .map(|r| {
                (0..words as u64)
                    .map(|w| {
                        let bits = (r + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (w << 17);
                        if w as usize == words - 1 {
                            bits & ((1u64 << (dim % 64)) - 1)
                        } else {
                            bits
                        }
                    })
                    .collect()
            })
            .collect();
        for pair in rows.windows(2) {
            let got = planes.score(&pair[0]) - planes.score(&pair[1]);
            let want = (signed(&pair[0]) - signed(&pair[1])) / 2.0;
            assert!((got - want).abs() < 1e-3, "{got} against {want}");
        }
    }

    /// An index of `n` clustered 512-d rows taking the head pass from `n / 2` rows ranked.
    fn headed_index(storage: VectorStorage, n: usize) -> ExactIndex {
        let mut ix = index_of(512, 40, storage, n);
        ix.head_min_rows = n / 2;
        ix.build_head();
        assert!(ix.has_head());
        ix
    }

    #[test]
    fn int8_through_the_head_pass_equals_a_brute_force_ranking() {
        // 40 000 rows: the head keeps 8 x 1 280 of them (the pool of 512-d sketches), the
        // asymmetric score 1 280, int8 42, re-ranked in f32.
        let ix = headed_index(VectorStorage::Int8, 40_000);
        let q = wide_query(&ix, 321);
        assert!(ix.head_shortlist(&q, None, 10).is_some());
        let got = search_top10(&ix, &q, &SearchFilter::default());
        assert_eq!(got, brute_force_top10(&ix, &q, |_| true));
    }

    #[test]
    fn int8_through_the_head_pass_at_a_half_filter_equals_a_brute_force_ranking() {
        let ix = headed_index(VectorStorage::Int8, 40_000);
        let q = wide_query(&ix, 321); // an odd row: its nearest are mostly filtered out
        let f = SearchFilter {
            objective: Some("a".into()),
            node: None,
        };
        let want = brute_force_top10(&ix, &q, |r| ix.meta(r).objective == "a");
        assert_eq!(search_top10(&ix, &q, &f), want);
    }

    #[test]
    fn int8_below_the_head_threshold_takes_the_sketch_shortlist() {
        let ix = headed_index(VectorStorage::Int8, 40_000);
        let q = wide_query(&ix, 321);
        // 4 000 rows ranked, under the 20 000 the head pass needs.
        let rows: Vec<u32> = (0..4_000).collect();
        assert!(ix.head_shortlist(&q, Some(&rows), 10).is_none());
    }

    #[test]
    fn sketch_through_the_head_pass_equals_a_brute_force_ranking() {
        let ix = headed_index(VectorStorage::Sketch, 40_000);
        let q = wide_query(&ix, 4_000);
        let got = search_top10(&ix, &q, &SearchFilter::default());
        assert_eq!(got, brute_force_top10(&ix, &q, |_| true));
    }

    #[test]
    fn a_changed_row_drops_the_head() {
        let mut ix = sketch_index_of(100, 512);
        ix.fill_head();
        assert!(!ix.head.is_empty());
        ix.put("new", &unit(vec![1.0; 512]), meta("a", "all", 0.0), 2)
            .unwrap();
        assert!(ix.head.is_empty());
    }

    #[test]
    fn sketch_candidates_are_the_nearest_by_hamming_with_ties_in_row_order() {
        let ix = sketch_index(500);
        let q = query_sketch(&ix);
        let all: Vec<usize> = (0..500).collect();
        assert_eq!(
            ix.sketch_candidates(&q, None, 37, None),
            by_sorting(&ix, &q, &all, 37)
        );
    }

    /// The batched scan over rows `r % every == offset` of 500 against sorting them.
    fn filtered_candidates_match_sorting(every: u32, offset: u32, pool: usize) {
        let ix = sketch_index(500);
        let q = query_sketch(&ix);
        let rows: Vec<u32> = (0..500u32).filter(|r| r % every == offset).collect();
        let listed: Vec<usize> = rows.iter().map(|&r| r as usize).collect();
        assert_eq!(
            ix.sketch_candidates(&q, Some(&rows), pool, None),
            by_sorting(&ix, &q, &listed, pool)
        );
    }

    #[test]
    fn sketch_candidates_of_a_dense_filter_are_the_nearest_listed_rows() {
        // A third of the rows, most of them prefetched before their distance is taken.
        filtered_candidates_match_sorting(3, 0, 25);
    }

    #[test]
    fn sketch_candidates_of_a_sparse_filter_are_gathered_row_by_row() {
        filtered_candidates_match_sorting(50, 7, 4);
    }

    #[test]
    fn sketch_candidates_return_every_row_when_the_pool_exceeds_them() {
        let ix = sketch_index(30);
        let q = query_sketch(&ix);
        assert_eq!(ix.sketch_candidates(&q, None, 100, None).len(), 30);
    }

    #[test]
    fn sketch_pool_grows_with_the_rows_ranked() {
        assert_eq!(sketch_pool(10, 1024, 100_000), SKETCH_MIN_POOL);
        assert_eq!(sketch_pool(10, 1024, 1_000_000), 3 * SKETCH_MIN_POOL);
        assert_eq!(sketch_pool(10, 1024, 300), 300);
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

    /// The ids of the best 10 rows `keep` accepts, by a sort of their exact scores.
    fn brute_force_top10(ix: &ExactIndex, q: &[f32], keep: impl Fn(usize) -> bool) -> Vec<String> {
        let mut all: Vec<(f32, String)> = (0..ix.len())
            .filter(|&r| keep(r))
            .map(|r| (dot(&ix.vector(r).unwrap(), q), ix.id(r).to_string()))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        all.into_iter().take(10).map(|x| x.1).collect()
    }

    fn search_top10(ix: &ExactIndex, q: &[f32], f: &SearchFilter) -> Vec<String> {
        let hits = ix.search(q, f, 10).unwrap();
        hits.into_iter().map(|n| n.id).collect()
    }

    #[test]
    fn f32_results_equal_a_brute_force_ranking() {
        let ix = index(VectorStorage::F32);
        let q = unit(vec![0.3, 2.0, 1.0, 0.1]);
        let got = search_top10(&ix, &q, &SearchFilter::default());
        assert_eq!(got, brute_force_top10(&ix, &q, |_| true));
    }

    #[test]
    fn filtered_f32_results_equal_a_brute_force_ranking_of_the_matching_rows() {
        // 30 matching rows: the scan of the row list prefetches ahead of most of them.
        let ix = index(VectorStorage::F32);
        let q = unit(vec![0.3, 2.0, 1.0, 0.1]);
        let f = SearchFilter {
            objective: Some("likes".into()),
            node: None,
        };
        let want = brute_force_top10(&ix, &q, |r| ix.meta(r).objective == "likes");
        assert_eq!(search_top10(&ix, &q, &f), want);
    }

    /// `n` seeded unit vectors of `dim` dimensions around `centres` centres (like real
    /// embeddings: most of the spread in a few directions), objective "a" on even rows and "b"
    /// on odd ones, node "x" on every third row and "y" elsewhere.
    fn rows_of(dim: usize, centres: usize, n: usize) -> Vec<(String, Vec<f32>, VectorMeta)> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let centres: Vec<Vec<f32>> = (0..centres)
            .map(|_| (0..dim).map(|_| next()).collect())
            .collect();
        (0..n)
            .map(|i| {
                let c = &centres[i % centres.len()];
                let v: Vec<f32> = c.iter().map(|c| c + 0.6 * next()).collect();
                let o = if i % 2 == 0 { "a" } else { "b" };
                let nd = if i % 3 == 0 { "x" } else { "y" };
                (format!("w{i:04}"), unit(v), meta(o, nd, 0.0))
            })
            .collect()
    }

    fn wide_index(storage: VectorStorage, n: usize) -> ExactIndex {
        index_of(1024, 8, storage, n)
    }

    fn index_of(dim: usize, centres: usize, storage: VectorStorage, n: usize) -> ExactIndex {
        let mut ix = ExactIndex::new(EmbedderId::new("t"), dim, storage, 1);
        for (id, v, m) in rows_of(dim, centres, n) {
            ix.put(&id, &v, m, 1).unwrap();
        }
        ix.rebuild_sketches();
        ix
    }

    /// A query near row `r` of `wide_rows`, not equal to any row.
    fn wide_query(ix: &ExactIndex, r: usize) -> Vec<f32> {
        let v = ix.vector(r).unwrap();
        unit(
            v.iter()
                .enumerate()
                .map(|(i, x)| x + if i % 5 == 0 { 0.02 } else { 0.0 })
                .collect(),
        )
    }

    #[test]
    fn int8_and_sketch_storage_keep_sketches_and_f32_does_not() {
        assert!(keeps_sketch(VectorStorage::Int8));
        assert!(keeps_sketch(VectorStorage::Sketch));
        assert!(!keeps_sketch(VectorStorage::F32));
        let ix = wide_index(VectorStorage::Int8, 100);
        assert_eq!(ix.sketch.len(), 100 * 16, "16 sketch words per 1024-d row");
        assert_eq!(ix.bytes_per_vector(), 1024 * 4 + 1024 + 4 + 16 * 8 + 20);
    }

    #[test]
    fn sketch_margin_is_the_square_root_of_the_bits_rounded_up() {
        assert_eq!(sketch_margin(384), 20);
        assert_eq!(sketch_margin(1024), 32);
        assert_eq!(sketch_margin(0), 0);
    }

    /// Whether the int8 path of `ix` trusts its sketches' shortlist for `q` (unfiltered, k 10).
    fn shortlist_trusted(ix: &ExactIndex, q: &[f32]) -> bool {
        let mut q8 = vec![0i8; ix.dim];
        let qs = quantise(q, &mut q8);
        ix.int8_by_sketch(q, (&q8, qs), None, 10, 42).is_some()
    }

    #[test]
    fn int8_at_384_dimensions_trusts_the_shortlist_of_well_separated_rows() {
        // 10 000 rows around 8 centres: the shortlist (1 920 rows at first) holds the query's
        // cluster, far nearer in sketch bits than the rows of any other.
        let ix = index_of(384, 8, VectorStorage::Int8, 10_000);
        let q = wide_query(&ix, 4321);
        assert!(shortlist_trusted(&ix, &q));
    }

    #[test]
    fn int8_at_384_dimensions_from_a_trusted_shortlist_equals_a_brute_force_ranking() {
        let ix = index_of(384, 8, VectorStorage::Int8, 10_000);
        let q = wide_query(&ix, 4321);
        let got = search_top10(&ix, &q, &SearchFilter::default());
        assert_eq!(got, brute_force_top10(&ix, &q, |_| true));
    }

    #[test]
    fn int8_scans_every_row_when_the_sketches_cannot_tell_the_nearest_apart() {
        // One cluster: each row's sketch (signs around the mean) is its own noise, so the
        // nearest rows are barely nearer in sketch bits than any other.
        let ix = index_of(384, 1, VectorStorage::Int8, 10_000);
        let q = wide_query(&ix, 4321);
        assert!(!shortlist_trusted(&ix, &q));
    }

    #[test]
    fn int8_on_rows_the_sketches_cannot_tell_apart_equals_a_brute_force_ranking() {
        let ix = index_of(384, 1, VectorStorage::Int8, 10_000);
        let q = wide_query(&ix, 4321);
        let got = search_top10(&ix, &q, &SearchFilter::default());
        assert_eq!(got, brute_force_top10(&ix, &q, |_| true));
    }

    #[test]
    fn int8_at_1024_dimensions_trusts_the_shortlist_of_well_separated_rows() {
        // 4 000 rows, over four times the pool of 640: the sketches pick the candidates.
        let ix = wide_index(VectorStorage::Int8, 4000);
        assert!(shortlist_trusted(&ix, &wide_query(&ix, 1234)));
    }

    #[test]
    fn wide_int8_results_equal_a_brute_force_ranking() {
        // 4 000 rows, over four times the pool of 640: the int8 codes score only the rows
        // the sketches pick.
        let ix = wide_index(VectorStorage::Int8, 4000);
        let q = wide_query(&ix, 1234);
        let got = search_top10(&ix, &q, &SearchFilter::default());
        assert_eq!(got, brute_force_top10(&ix, &q, |_| true));
    }

    #[test]
    fn wide_int8_results_at_a_half_filter_equal_a_brute_force_ranking_of_the_matching_rows() {
        // 4 000 matching rows, over four times the pool of 640: the sketches pick the
        // candidates.
        let ix = wide_index(VectorStorage::Int8, 8000);
        let q = wide_query(&ix, 1001); // an odd row: its nearest are mostly filtered out
        let f = SearchFilter {
            objective: Some("a".into()),
            node: None,
        };
        let want = brute_force_top10(&ix, &q, |r| ix.meta(r).objective == "a");
        assert_eq!(search_top10(&ix, &q, &f), want);
    }

    #[test]
    fn wide_int8_results_after_removals_equal_a_brute_force_ranking() {
        // Removing moves the last row into the gap: its sketch must move with it.
        let mut ix = wide_index(VectorStorage::Int8, 4000);
        for i in (0..4000).step_by(7) {
            assert!(ix.delete(&format!("w{i:04}")));
        }
        let q = wide_query(&ix, 500);
        let got = search_top10(&ix, &q, &SearchFilter::default());
        assert_eq!(got, brute_force_top10(&ix, &q, |_| true));
    }

    #[test]
    fn a_wide_int8_snapshot_maps_its_sketches_and_answers_as_the_index_in_memory() {
        let ix = wide_index(VectorStorage::Int8, 1500);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.idx");
        write_at(&ix, &path, usize::MAX);
        let expect = crate::services::local::snapshot::Expect {
            embedder: &ix.embedder,
            library_id: "lib",
            dim: Some(1024),
        };
        let (mapped, _) = crate::services::local::snapshot::open(&path, &expect, None).unwrap();
        assert!(mapped.is_mapped());
        assert_eq!(mapped.sketch.len(), 1500 * 16);
        let f = SearchFilter {
            objective: Some("b".into()),
            node: Some("y".into()),
        };
        let q = wide_query(&ix, 77);
        assert_eq!(search_top10(&mapped, &q, &f), search_top10(&ix, &q, &f));
        assert_eq!(
            search_top10(&mapped, &q, &SearchFilter::default()),
            search_top10(&ix, &q, &SearchFilter::default())
        );
    }

    #[test]
    fn filtered_rows_lists_exactly_the_rows_passing_both_codes_and_not_skipped() {
        // 200 rows: three whole blocks of 64 and a tail of 8.
        let ix = wide_index(VectorStorage::F32, 200);
        let mut skip = RowSet::default();
        for r in [0, 3, 63, 64, 130, 198] {
            skip.insert(r);
        }
        let (a, x) = (ix.lookup(&Some("a".into())), ix.lookup(&Some("x".into())));
        let (Some(a), Some(x)) = (a, x) else {
            panic!("both codes are known");
        };
        let got = ix.filtered_rows(a, x, &skip).unwrap();
        let want: Vec<u32> = (0..200u32)
            .filter(|&r| r % 2 == 0 && r % 3 == 0 && !skip.contains(r as usize))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn filtered_rows_of_one_code_over_a_partial_block_lists_every_match() {
        let ix = wide_index(VectorStorage::F32, 70);
        let Some(b) = ix.lookup(&Some("b".into())) else {
            panic!("the code is known");
        };
        let got = ix.filtered_rows(b, None, &RowSet::default()).unwrap();
        let want: Vec<u32> = (0..70u32).filter(|r| r % 2 == 1).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn prefetch_of_a_row_past_the_end_does_nothing() {
        let codes = vec![1i8; 64];
        prefetch_row(&codes, 1, 32); // the last row
        prefetch_row(&codes, 2, 32); // one past the end
        prefetch_row(&codes, usize::MAX, 32); // its offset overflows
        prefetch_row(&codes, 0, 0); // an empty row
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

    /// `ix` written as a partitioned snapshot (from one row on) and opened, probing from 1 000
    /// rows ranked; the folder lives as long as the mapping is used.
    /// Every row of `ix` written as a snapshot of its storage at `path`, partitioned from
    /// `partition_min_rows` rows.
    fn write_at(
        ix: &ExactIndex,
        path: &std::path::Path,
        partition_min_rows: usize,
    ) -> crate::services::local::snapshot::Header {
        let rows: Vec<_> = (0..ix.len()).map(|r| (ix, r)).collect();
        let spec = crate::services::local::snapshot::WriteSpec {
            embedder: &ix.embedder,
            library_id: "lib",
            dim: ix.dim,
            seq: 1,
            storage: ix.storage,
            centre: None,
            centroids: None,
            partition_min_rows,
        };
        crate::services::local::snapshot::write(path, &spec, &rows).unwrap()
    }

    fn partitioned(ix: &ExactIndex) -> (tempfile::TempDir, ExactIndex) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.idx");
        write_at(ix, &path, 1);
        let (mut mapped, _) = open_at(&path, ix);
        mapped.probe_min_ranked = 1_000;
        (dir, mapped)
    }

    fn open_at(
        path: &std::path::Path,
        ix: &ExactIndex,
    ) -> (ExactIndex, crate::services::local::snapshot::Header) {
        let expect = crate::services::local::snapshot::Expect {
            embedder: &ix.embedder,
            library_id: "lib",
            dim: Some(ix.dim),
        };
        crate::services::local::snapshot::open(path, &expect, None).unwrap()
    }

    /// 20 000 rows of 256-d around 40 centres: 5 lists.
    fn clustered_256(storage: VectorStorage) -> ExactIndex {
        index_of(256, 40, storage, 20_000)
    }

    /// 100 000 rows of 128-d around 40 centres: 25 lists, of which a search reads about 4.
    fn clustered_100k(storage: VectorStorage) -> ExactIndex {
        index_of(128, 40, storage, 100_000)
    }

    #[test]
    fn a_large_compact_snapshot_is_partitioned_and_stores_each_row_in_its_nearest_list() {
        let ix = clustered_256(VectorStorage::Int8);
        let (_dir, mapped) = partitioned(&ix);
        let p = mapped.partition.as_ref().unwrap();
        assert_eq!(p.lists(), 5);
        assert!(p.is_consistent(mapped.len()));
        for r in (0..mapped.len()).step_by(97) {
            let v = mapped.vector(r).unwrap();
            let nearest = super::super::partition::nearest(&p.centroids, 256, &v);
            assert_eq!(p.list_of(r), Some(nearest), "row {r}");
        }
    }

    #[test]
    fn a_partitioned_snapshot_holds_every_row_once_with_its_metadata() {
        let ix = clustered_256(VectorStorage::Sketch);
        let (_dir, mapped) = partitioned(&ix);
        assert_eq!(mapped.len(), ix.len());
        for r in (0..ix.len()).step_by(13) {
            let m = mapped.row_of(ix.id(r)).unwrap();
            assert_eq!(mapped.vector(m).unwrap(), ix.vector(r).unwrap());
            assert_eq!(mapped.meta(m), ix.meta(r));
        }
    }

    #[test]
    fn a_search_of_a_partitioned_snapshot_reads_an_eighth_of_the_rows_or_a_little_more() {
        let ix = clustered_100k(VectorStorage::Int8);
        let (_dir, mapped) = partitioned(&ix);
        let q = wide_query(&mapped, 321);
        let probed = mapped.probe(&q, None, 10).unwrap();
        assert!(probed.len() >= 100_000 / 8, "{}", probed.len());
        assert!(probed.len() < 100_000 / 4, "{}", probed.len());
        assert!(probed.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_probe_for_more_results_than_its_rows_can_hold_reads_every_row() {
        let ix = clustered_100k(VectorStorage::Int8);
        let (_dir, mapped) = partitioned(&ix);
        let q = wide_query(&mapped, 321);
        // 5 000 x 4 = 20 000 rows needed; an eighth of 100 000 is 12 500.
        assert_eq!(mapped.probe(&q, None, 5_000), None);
    }

    #[test]
    fn a_refused_write_to_a_partitioned_snapshot_keeps_its_partition() {
        let ix = clustered_256(VectorStorage::Int8);
        let (_dir, mut mapped) = partitioned(&ix);
        let v = ix.vector(0).unwrap();
        assert!(mapped.put("new", &v, meta("a", "x", 0.0), 9).is_err());
        assert!(mapped.partition.is_some());
    }

    #[test]
    fn a_probe_whose_rows_left_out_are_as_near_reads_every_row() {
        // 20 000 rows around 20 000 centres (no clusters): the nearest rows are anywhere.
        let ix = index_of(64, 20_000, VectorStorage::Int8, 20_000);
        let (_dir, mapped) = partitioned(&ix);
        let q = wide_query(&mapped, 321);
        assert_eq!(mapped.probe(&q, None, 10), None);
    }

    #[test]
    fn a_filtered_probe_counts_only_the_matching_rows() {
        let ix = clustered_100k(VectorStorage::Int8);
        let (_dir, mapped) = partitioned(&ix);
        // Near a matching row: its cluster's rows are all even, so all match (a filter whose
        // matches are few in the query's cluster fails the probe's check and reads every row).
        let q = wide_query(&ix, 360);
        let f = SearchFilter {
            objective: Some("a".into()),
            node: None,
        };
        let (Some(o), Some(n)) = (mapped.lookup(&f.objective), mapped.lookup(&f.node)) else {
            panic!("codes");
        };
        let rows = mapped.filtered_rows(o, n, &NO_ROWS).unwrap();
        let probed = mapped.probe(&q, Some(rows.clone()), 10).unwrap();
        assert!(probed.len() >= rows.len() / 8);
        assert!(
            probed.len() < rows.len() / 4,
            "{} of {}",
            probed.len(),
            rows.len()
        );
        assert!(probed.iter().all(|r| rows.binary_search(r).is_ok()));
    }

    /// Filter "a" keeps the even rows: whole clusters (row i goes to centre i % 40), none of
    /// them the cluster of odd row 389. A query near it has its nearest matches in other
    /// clusters, which the lists nearest to it need not hold (for this row, the first eighth
    /// fails the check and a quarter passes it).
    struct AwayFromMatches {
        _dir: tempfile::TempDir,
        ix: ExactIndex,
        mapped: ExactIndex,
        q: Vec<f32>,
        filter: SearchFilter,
        rows: Vec<u32>,
    }

    fn away_from_matches() -> AwayFromMatches {
        let ix = clustered_100k(VectorStorage::Int8);
        let (dir, mapped) = partitioned(&ix);
        let q = wide_query(&ix, 389);
        let filter = SearchFilter {
            objective: Some("a".into()),
            node: None,
        };
        let (Some(o), Some(n)) = (
            mapped.lookup(&filter.objective),
            mapped.lookup(&filter.node),
        ) else {
            panic!("codes");
        };
        let rows = mapped.filtered_rows(o, n, &NO_ROWS).unwrap();
        AwayFromMatches {
            _dir: dir,
            ix,
            mapped,
            q,
            filter,
            rows,
        }
    }

    #[test]
    fn a_probe_whose_check_finds_near_rows_left_out_probes_more_lists() {
        let t = away_from_matches();
        let p = t.mapped.partition.as_ref().unwrap();
        // The matches in the nearest lists until they hold an eighth: what is read first.
        let (want, mut first) = (t.rows.len().div_ceil(8), 0);
        for l in p.ranked(&t.q) {
            let range = p.range(l);
            first += t
                .rows
                .iter()
                .filter(|&&x| range.contains(&(x as usize)))
                .count();
            if first >= want {
                break;
            }
        }
        let probed = t.mapped.probe(&t.q, Some(t.rows.clone()), 10).unwrap();
        assert!(probed.len() > first, "{} rows, {first} first", probed.len());
        assert!(probed.len() < t.rows.len(), "{}", probed.len());
        assert!(probed.windows(2).all(|w| w[0] < w[1]));
        assert!(probed.iter().all(|r| t.rows.binary_search(r).is_ok()));
    }

    #[test]
    fn a_widened_probe_finds_the_nearest_matches() {
        let t = away_from_matches();
        assert_eq!(
            search_top10(&t.mapped, &t.q, &t.filter),
            brute_force_top10(&t.ix, &t.q, |r| r % 2 == 0)
        );
    }

    #[test]
    fn a_probe_steps_through_an_eighth_a_quarter_and_half_of_any_row_count() {
        let steps: Vec<usize> = probe_steps(65_537).collect();
        assert_eq!(steps, [8_193, 16_385, 32_769]);
    }

    #[test]
    fn too_few_rows_ranked_are_read_without_probing() {
        let ix = clustered_256(VectorStorage::Int8);
        let (_dir, mapped) = partitioned(&ix);
        let q = wide_query(&mapped, 321);
        let few: Vec<u32> = (0..999).collect();
        assert_eq!(mapped.probe(&q, Some(few.clone()), 10), Some(few));
    }

    #[test]
    fn int8_on_a_partitioned_snapshot_equals_a_brute_force_ranking() {
        let ix = clustered_100k(VectorStorage::Int8);
        let (_dir, mapped) = partitioned(&ix);
        for r in [7, 321, 40_000, 99_999] {
            let q = wide_query(&ix, r);
            let got = search_top10(&mapped, &q, &SearchFilter::default());
            assert_eq!(
                got,
                brute_force_top10(&ix, &q, |_| true),
                "query near row {r}"
            );
        }
    }

    #[test]
    fn sketch_on_a_partitioned_snapshot_at_a_filter_equals_a_brute_force_ranking() {
        let ix = clustered_100k(VectorStorage::Sketch);
        let (_dir, mapped) = partitioned(&ix);
        let f = SearchFilter {
            objective: Some("b".into()),
            node: None,
        };
        let q = wide_query(&ix, 321);
        let want = brute_force_top10(&ix, &q, |r| ix.meta(r).objective == "b");
        assert_eq!(search_top10(&mapped, &q, &f), want);
    }

    #[test]
    fn a_small_snapshot_is_not_partitioned() {
        let ix = clustered_256(VectorStorage::Int8);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.idx");
        let h = write_at(&ix, &path, 20_001);
        assert_eq!(h.lists, 0);
        assert!(open_at(&path, &ix).0.partition.is_none());
    }

    #[test]
    fn rewriting_a_partitioned_snapshot_keeps_its_centroids_and_files_new_rows_by_them() {
        let ix = clustered_256(VectorStorage::Int8);
        let (dir, mut mapped) = partitioned(&ix);
        let before: Vec<f32> = mapped.partition.as_ref().unwrap().centroids.to_vec();
        mapped.partition_min_rows = 1;
        let mut live = super::super::live_index::LiveIndex::new(mapped, 1);
        let extra = rows_of(256, 40, 20_500);
        let changes: Vec<crate::domain::index::Change> = extra[20_000..]
            .iter()
            .enumerate()
            .map(|(i, (_, v, m))| {
                crate::domain::index::Change::Upsert(VectorRecord {
                    id: format!("new{i}"),
                    vector: v.clone(),
                    meta: m.clone(),
                    version: 2 + i as i64,
                })
            })
            .collect();
        live.apply(&changes).unwrap();
        let path = dir.path().join("again.idx");
        let h = live
            .write_snapshot(&path, "lib", VectorStorage::Int8)
            .unwrap();
        assert_eq!(h.count, 20_500);
        let (again, _) = open_at(&path, &ix);
        let p = again.partition.as_ref().unwrap();
        assert_eq!(p.centroids.to_vec(), before);
        let r = again.row_of("new7").unwrap();
        let v = again.vector(r).unwrap();
        assert_eq!(
            p.list_of(r),
            Some(super::super::partition::nearest(&p.centroids, 256, &v))
        );
    }

    #[test]
    fn a_flipped_byte_in_the_list_offsets_makes_the_snapshot_unusable() {
        let ix = clustered_256(VectorStorage::Int8);
        let (dir, _mapped) = partitioned(&ix);
        let path = dir.path().join("t.idx");
        let h = crate::services::local::snapshot::read_header(&path).unwrap();
        let s = h
            .sections
            .iter()
            .find(|s| s.name == "list_offsets")
            .unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[s.offset as usize + 9] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        let expect = crate::services::local::snapshot::Expect {
            embedder: &ix.embedder,
            library_id: "lib",
            dim: Some(256),
        };
        let err = crate::services::local::snapshot::open(&path, &expect, None).unwrap_err();
        assert!(err.to_string().contains("list_offsets"), "{err}");
    }
}
