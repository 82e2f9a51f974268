//! A coarse partition of a large snapshot's rows (an inverted file): the rows are grouped into
//! lists by their nearest centroid (spherical k-means over a sample of them), the snapshot
//! stores them list by list, and a search ranks the centroids against the query and reads only
//! the lists nearest to it, enough of them to hold one in PROBE_SHARE of the rows it ranks.
//!
//! Why: at 1M x 1024 every query used to read a column over every row (the 32 MB sketch head),
//! bounded by memory bandwidth at 10-15 ms, which left usearch's graph ahead where a filter keeps
//! half the library or none. Probing an eighth of the rows reads an eighth of the codes.
//!
//! Written here rather than taken from a crate: `linfa-clustering` brings `ndarray` and starts
//! k-means with k-means++, itself a sequential pass over the sample per centroid; what the
//! index needs is a few rounds of the plain algorithm over a sample with a deterministic start,
//! forty lines over the index's own `dot`.
use rayon::prelude::*;

use super::columns::Col;
use super::exact_index::dot;

/// Snapshots of at least this many rows (with sketches) are partitioned: below it a search
/// reads little enough that the sketch scan is as fast (the same size the head pass starts at).
pub const PARTITION_MIN_ROWS: usize = 1 << 18;
/// About this many rows per list, up to MAX_LISTS lists: 245 lists at 1M, 256 from 1.05M. The cost that bounds
/// the count is assigning every row to its nearest centroid when a snapshot is written (rows x
/// lists x dimensions: 0.27 T multiply-adds at 1M x 1024, seconds on two cores).
const ROWS_PER_LIST: usize = 4096;
const MAX_LISTS: usize = 256;
/// A search reads the nearest lists until they hold at least 1 / PROBE_SHARE of the rows it
/// ranks (the filter's matches). Fixed before measuring, from the cost (an eighth of the codes
/// read) and the data's shape: a query's nearest rows sit in its own cluster, and a list holds
/// whole clusters, so an eighth of the lists is many times the few lists they fall in.
pub const PROBE_SHARE: usize = 8;
/// Searches ranking fewer rows than this read them all (the probed eighth would be under 8 192
/// rows, where a scan of the matches is already well under a millisecond).
pub const PROBE_MIN_RANKED: usize = 1 << 16;
/// Whether the probed lists can be trusted is checked per search: every PROBE_CHECK_STRIDE-th
/// row left out must be farther from the query (in sketch bits) than the
/// (PROBE_CHECK_DEPTH x k)-th nearest of every PROBE_CHECK_STRIDE-th probed row, about the
/// (16 x 4 x k)-th nearest probed row; else twice the rows are probed and checked again
/// (PROBE_MAX_SHARE). Where a query's nearest rows sit in a few lists (clustered data) the rows
/// left out are far beyond that; where they are spread over many lists the sample finds rows
/// as near. Chosen on the perturbed e5 set at
/// 1M x 384, whose nearest rows are spread by noise over many lists (recall@10 0.91 probing an
/// eighth without the check); the held-out set checks it.
pub const PROBE_CHECK_STRIDE: usize = 16;
pub const PROBE_CHECK_DEPTH: usize = 4;
/// A probe that fails the check reads the nearest lists until they hold a quarter of the rows
/// ranked, then 1 / PROBE_MAX_SHARE (half), each checked again; one that fails at half reads
/// every row instead. Fixed before measuring
/// it; the first form of this widening (reading only the lists where the sample found near
/// rows) lost recall on the perturbed e5 set at 1M x 384 (0.946 unfiltered, 0.998 before), as
/// a sample of one row in 16 misses lists that hold only a few near rows.
pub const PROBE_MAX_SHARE: usize = 2;
/// The k-means sample: this many rows per list, spread evenly over the rows.
const SAMPLE_PER_LIST: usize = 64;
/// k-means rounds over the sample.
const ROUNDS: usize = 10;

/// How many lists a partition of `n` rows has.
pub fn lists_for(n: usize) -> usize {
    n.div_ceil(ROWS_PER_LIST).clamp(1, MAX_LISTS)
}

/// How many sample rows train `lists` centroids.
pub fn sample_size(lists: usize, n: usize) -> usize {
    lists.saturating_mul(SAMPLE_PER_LIST).min(n)
}

/// `m` distinct positions among `0..n`, one drawn from each of `m` equal strata by a fixed
/// hash (an even stride alone aligns with any period in the rows' order: a library ingested
/// folder by folder, or a test's rows that cycle through their clusters).
pub fn spread(m: usize, n: usize) -> Vec<usize> {
    (0..m)
        .map(|i| {
            let (a, b) = (i * n / m, (i + 1) * n / m);
            a + (mix(i as u64) % (b - a).max(1) as u64) as usize
        })
        .collect()
}

/// splitmix64's finaliser.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The list whose centroid has the largest dot product with `v` (the first on a tie).
pub fn nearest(centroids: &[f32], dim: usize, v: &[f32]) -> u32 {
    let mut best = (f32::NEG_INFINITY, 0u32);
    for (l, c) in centroids.chunks_exact(dim.max(1)).enumerate() {
        let s = dot(c, v);
        if s > best.0 {
            best = (s, l as u32);
        }
    }
    best.1
}

/// `lists` unit centroids by spherical k-means over `sample` (row-major, `dim` per row): the
/// start is `lists` sample rows, one from each stretch of it (`spread`), then ROUNDS rounds of assigning each
/// row to its nearest centroid and moving each centroid to its rows' mean direction (a list
/// left empty keeps its centroid). Deterministic.
pub fn train(sample: &[f32], dim: usize, lists: usize) -> Vec<f32> {
    let dim = dim.max(1);
    let m = sample.len() / dim;
    let lists = lists.min(m);
    if lists == 0 {
        return Vec::new();
    }
    let mut centroids: Vec<f32> = spread(lists, m)
        .into_iter()
        .flat_map(|r| sample[r * dim..(r + 1) * dim].iter().copied())
        .collect();
    for _ in 0..ROUNDS {
        let assigned: Vec<u32> = sample
            .par_chunks_exact(dim)
            .map(|v| nearest(&centroids, dim, v))
            .collect();
        let mut sums = vec![0f64; lists * dim];
        let mut counts = vec![0usize; lists];
        for (v, &l) in sample.chunks_exact(dim).zip(&assigned) {
            let l = l as usize;
            counts[l] += 1;
            sums[l * dim..(l + 1) * dim]
                .iter_mut()
                .zip(v)
                .for_each(|(s, x)| *s += f64::from(*x));
        }
        for (l, sum) in sums.chunks_exact(dim).enumerate() {
            let norm = sum.iter().map(|s| s * s).sum::<f64>().sqrt();
            if counts[l] == 0 || norm == 0.0 || !norm.is_finite() {
                continue;
            }
            centroids[l * dim..(l + 1) * dim]
                .iter_mut()
                .zip(sum)
                .for_each(|(c, s)| *c = (s / norm) as f32);
        }
    }
    centroids
}

/// A snapshot's partition: the centroids (`lists` x dim) and where each list's rows start
/// (`lists + 1` offsets, the last the row count). Rows of list `l` are `offsets[l]..offsets[l+1]`.
pub struct Partition {
    pub centroids: Col<f32>,
    pub offsets: Col<u64>,
}

impl Partition {
    pub fn lists(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The rows of list `l`.
    pub fn range(&self, l: usize) -> std::ops::Range<usize> {
        match (self.offsets.get(l), self.offsets.get(l + 1)) {
            (Some(&a), Some(&b)) if a <= b => a as usize..b as usize,
            _ => 0..0,
        }
    }

    /// The list row `r` is in.
    pub fn list_of(&self, r: usize) -> Option<u32> {
        let after = self.offsets.partition_point(|&o| o as usize <= r);
        let l = after.checked_sub(1)?;
        (l < self.lists()).then_some(l as u32)
    }

    /// The lists in order of their centroid's dot product with `query`, best first.
    pub fn ranked(&self, query: &[f32]) -> Vec<usize> {
        let dim = query.len().max(1);
        let mut scored: Vec<(f32, usize)> = self
            .centroids
            .chunks_exact(dim)
            .take(self.lists())
            .enumerate()
            .map(|(l, c)| (dot(c, query), l))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().map(|(_, l)| l).collect()
    }

    /// Whether the offsets rise from 0 to `n`.
    pub fn is_consistent(&self, n: usize) -> bool {
        self.offsets.first() == Some(&0)
            && self.offsets.windows(2).all(|w| w[0] <= w[1])
            && self.offsets.last().copied() == Some(n as u64)
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

    #[test]
    fn lists_grow_with_the_rows_up_to_the_cap() {
        assert_eq!(lists_for(1), 1);
        assert_eq!(lists_for(PARTITION_MIN_ROWS), 64);
        assert_eq!(lists_for(1_000_000), 245);
        assert_eq!(lists_for(10_000_000), MAX_LISTS);
    }

    #[test]
    fn training_separates_two_well_apart_groups() {
        // Rows alternate between two directions with small noise: two lists, one per group.
        let dim = 8;
        let mut sample = Vec::new();
        for i in 0..40 {
            let mut v = vec![0.0; dim];
            v[if i % 2 == 0 { 0 } else { 5 }] = 1.0;
            v[3] = (i as f32) * 0.001;
            sample.extend(unit(v));
        }
        let c = train(&sample, dim, 2);
        let a = nearest(&c, dim, &unit(vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]));
        let b = nearest(&c, dim, &unit(vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]));
        assert_ne!(a, b);
    }

    #[test]
    fn spread_draws_one_position_from_each_stratum() {
        let got = spread(4, 100);
        assert_eq!(got.len(), 4);
        for (i, p) in got.iter().enumerate() {
            assert!((i * 25..(i + 1) * 25).contains(p), "{p} in stratum {i}");
        }
    }

    #[test]
    fn spread_of_every_position_is_every_position() {
        assert_eq!(spread(5, 5), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn training_asks_no_more_lists_than_sample_rows() {
        let c = train(&unit(vec![1.0, 2.0, 3.0]), 3, 5);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn training_an_empty_sample_gives_no_centroids() {
        assert!(train(&[], 4, 3).is_empty());
    }

    #[test]
    fn list_of_finds_the_list_holding_a_row_and_skips_empty_lists() {
        let p = Partition {
            centroids: Col::Owned(vec![0.0; 6]),
            offsets: Col::Owned(vec![0, 2, 2, 5]),
        };
        assert_eq!(p.list_of(0), Some(0));
        assert_eq!(p.list_of(1), Some(0));
        assert_eq!(p.list_of(2), Some(2));
        assert_eq!(p.list_of(4), Some(2));
        assert_eq!(p.list_of(5), None);
        assert_eq!(p.range(2), 2..5);
        assert!(p.is_consistent(5));
        assert!(!p.is_consistent(6));
    }

    #[test]
    fn ranked_puts_the_list_nearest_the_query_first() {
        let p = Partition {
            centroids: Col::Owned(vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8]),
            offsets: Col::Owned(vec![0, 1, 2, 3]),
        };
        assert_eq!(p.ranked(&[0.0, 1.0]), vec![1, 2, 0]);
    }
}
