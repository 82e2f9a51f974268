//! The embedded index as a session holds it: a base (a memory-mapped snapshot, or rows just
//! read from the store) that never changes, the rows changed since it was made (an in-memory
//! exact index), and the base rows those changes replaced or removed (hidden). Changes come
//! from the library's change feed in sequence order and are applied incrementally; nothing is
//! rebuilt. A search scans the base (skipping hidden rows) and the delta and merges the two.
use std::sync::Arc;

use super::columns::RowSet;
use super::exact_index::{ExactIndex, keeps_sketch};
use super::snapshot::{self, RowRef};
use crate::config::VectorStorage;
use crate::domain::index::kpi_percentile;
use crate::domain::index::{Change, bucket_of, digest_of, versioned_remove, versioned_upsert};
use crate::domain::{EmbedderId, SearchFilter};
use crate::services::{
    DigestBucket, DocState, Neighbour, Tombstone, VectorIndex, VectorRecord, WriteReport,
};
use crate::{Error, Result};

pub struct LiveIndex {
    base: Arc<ExactIndex>,
    hidden: RowSet,
    delta: ExactIndex,
    /// The highest change-feed sequence number applied.
    seq: i64,
    /// The sequence number the base holds everything up to.
    base_seq: i64,
    /// Changes applied on top of the base (its tail).
    tail: usize,
}

impl std::fmt::Debug for LiveIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveIndex")
            .field("base", &self.base)
            .field("hidden", &self.hidden.len())
            .field("delta", &self.delta.len())
            .field("seq", &self.seq)
            .finish()
    }
}

impl LiveIndex {
    /// `base` holds every change up to `seq`.
    pub fn new(base: ExactIndex, seq: i64) -> Self {
        let delta = ExactIndex::with_pool(
            base.embedder.clone(),
            base.dim,
            VectorStorage::F32,
            base.pool.clone(),
        );
        LiveIndex {
            base: Arc::new(base),
            hidden: RowSet::default(),
            delta,
            seq,
            base_seq: seq,
            tail: 0,
        }
    }

    pub fn seq(&self) -> i64 {
        self.seq
    }

    pub fn base_seq(&self) -> i64 {
        self.base_seq
    }

    /// Changes applied since the base was made.
    pub fn tail(&self) -> usize {
        self.tail
    }

    pub fn base(&self) -> &Arc<ExactIndex> {
        &self.base
    }

    pub fn storage(&self) -> VectorStorage {
        self.base.storage()
    }

    /// Live vectors.
    pub fn len(&self) -> usize {
        self.base.len() - self.hidden.len() + self.delta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live version of `id`: the delta's, else the base's unless hidden.
    pub fn version_of(&self, id: &str) -> Option<i64> {
        self.delta.version_of(id).or_else(|| {
            self.base
                .row_of(id)
                .filter(|r| !self.hidden.contains(*r))
                .map(|r| self.base.version(r))
        })
    }

    fn hide(&mut self, id: &str) {
        if let Some(r) = self.base.row_of(id) {
            self.hidden.insert(r);
        }
    }

    /// Applies changes from the feed (in sequence order). Each is applied only when newer than
    /// what the index holds, so a change seen twice changes nothing.
    pub fn apply(&mut self, changes: &[Change]) -> Result<()> {
        for c in changes {
            let newer = self.version_of(c.id()).is_none_or(|v| v < c.version());
            if newer {
                match c {
                    Change::Upsert(r) => {
                        self.hide(&r.id);
                        self.delta
                            .put(&r.id, &r.vector, r.meta.clone(), r.version)?;
                    }
                    Change::Remove(t) => {
                        self.hide(&t.id);
                        self.delta.delete(&t.id);
                    }
                }
                self.tail += 1;
            }
            self.seq = self.seq.max(c.version());
        }
        Ok(())
    }

    /// Notes that the feed has been read up to `seq` (no change for this embedder since).
    pub fn caught_up_to(&mut self, seq: i64) {
        self.seq = self.seq.max(seq);
    }

    /// A copy that shares the base (a snapshot writer works on it while searches go on).
    pub fn fork(&self) -> Result<LiveIndex> {
        let mut delta = ExactIndex::with_pool(
            self.base.embedder.clone(),
            self.base.dim,
            VectorStorage::F32,
            None,
        );
        delta.reserve(self.delta.len());
        for r in 0..self.delta.len() {
            delta.put(
                self.delta.id(r),
                &self.delta.vector(r)?,
                self.delta.meta(r),
                self.delta.version(r),
            )?;
        }
        Ok(LiveIndex {
            base: self.base.clone(),
            hidden: self.hidden.clone(),
            delta,
            seq: self.seq,
            base_seq: self.base_seq,
            tail: self.tail,
        })
    }

    /// Every live row, base first.
    pub fn rows(&self) -> Vec<RowRef<'_>> {
        let base = (0..self.base.len())
            .filter(|r| !self.hidden.contains(*r))
            .map(|r| (self.base.as_ref(), r));
        let delta = (0..self.delta.len()).map(|r| (&self.delta, r));
        base.chain(delta).collect()
    }

    /// Writes the live rows as a snapshot at `path` holding everything up to `seq()`.
    pub fn write_snapshot(
        &self,
        path: &std::path::Path,
        library_id: &str,
        storage: VectorStorage,
    ) -> Result<snapshot::Header> {
        let storage = storage.concrete();
        // Keep the base's sketch centre while the base is most of the index.
        let keep_centre =
            self.base.sketched() && keeps_sketch(storage) && self.delta.len() * 4 < self.base.len();
        snapshot::write(
            path,
            &snapshot::WriteSpec {
                embedder: &self.base.embedder,
                library_id,
                dim: self.base.dim,
                seq: self.seq,
                storage,
                centre: keep_centre.then_some(self.base.centre.as_slice()),
                centroids: self.base.partition.as_ref().map(|p| &p.centroids[..]),
                partition_min_rows: self.base.partition_min_rows,
            },
            &self.rows(),
        )
    }

    fn merge(&self, a: Vec<Neighbour>, b: Vec<Neighbour>, k: usize) -> Vec<Neighbour> {
        let mut all: Vec<Neighbour> = a.into_iter().chain(b).collect();
        all.sort_by(|x, y| {
            y.similarity
                .total_cmp(&x.similarity)
                .then_with(|| x.id.cmp(&y.id))
        });
        all.truncate(k);
        all
    }

    fn nearest(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
        exact: bool,
    ) -> Result<Vec<Neighbour>> {
        let base = self
            .base
            .nearest_skipping(query, filter, k, exact, &self.hidden)?;
        if self.delta.is_empty() {
            return Ok(base);
        }
        let delta = if exact {
            self.delta.search_exact(query, filter, k)?
        } else {
            self.delta.search(query, filter, k)?
        };
        Ok(self.merge(base, delta, k))
    }
}

impl VectorIndex for LiveIndex {
    fn embedder(&self) -> &EmbedderId {
        &self.base.embedder
    }

    fn dim(&self) -> usize {
        self.base.dim
    }

    fn upsert(&mut self, records: &[VectorRecord]) -> Result<WriteReport> {
        let dim = self.base.dim;
        versioned_upsert(self, records, dim, Self::version_of, |ix, r| {
            ix.apply(&[Change::Upsert(r.clone())])
        })
    }

    fn remove(&mut self, tombstones: &[Tombstone]) -> Result<WriteReport> {
        versioned_remove(self, tombstones, Self::version_of, |ix, t| {
            ix.apply(&[Change::Remove(t.clone())]).map(|_| true)
        })
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn count(&self, filter: &SearchFilter) -> Result<usize> {
        let base = self
            .base
            .matching_rows(filter, &self.hidden)
            .map_or(0, Iterator::count);
        Ok(base + self.delta.count(filter)?)
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
        let mut known = self.base.known_kpis(filter, &self.hidden);
        known.extend(self.delta.known_kpis(filter, &RowSet::default()));
        known.sort_by(f64::total_cmp);
        Ok(kpis.iter().map(|k| kpi_percentile(&known, *k)).collect())
    }

    fn digest(&self) -> Result<Vec<DigestBucket>> {
        let states: Vec<DocState> = self.rows().into_iter().map(|(ix, r)| ix.state(r)).collect();
        Ok(digest_of(&states))
    }

    fn states_in(&self, bucket: &str) -> Result<Vec<DocState>> {
        let mut v: Vec<DocState> = self
            .rows()
            .into_iter()
            .filter(|(ix, r)| bucket_of(ix.id(*r)) == bucket)
            .map(|(ix, r)| ix.state(r))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
}

/// A live index shared by a session: every search takes a read lock; the engine applies the
/// feed's changes under the write lock before it hands the index out.
#[derive(Clone)]
pub struct SharedIndex {
    inner: Arc<std::sync::RwLock<LiveIndex>>,
    embedder: EmbedderId,
    dim: usize,
}

impl SharedIndex {
    pub fn new(ix: LiveIndex) -> Self {
        SharedIndex {
            embedder: ix.base.embedder.clone(),
            dim: ix.base.dim,
            inner: Arc::new(std::sync::RwLock::new(ix)),
        }
    }

    pub fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, LiveIndex>> {
        self.inner.read().map_err(|_| poisoned())
    }

    pub fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, LiveIndex>> {
        self.inner.write().map_err(|_| poisoned())
    }
}

fn poisoned() -> Error {
    Error::Invalid("internal: a search panicked earlier in this session".into())
}

impl VectorIndex for SharedIndex {
    fn embedder(&self) -> &EmbedderId {
        &self.embedder
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn upsert(&mut self, records: &[VectorRecord]) -> Result<WriteReport> {
        self.write()?.upsert(records)
    }
    fn remove(&mut self, tombstones: &[Tombstone]) -> Result<WriteReport> {
        self.write()?.remove(tombstones)
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn count(&self, filter: &SearchFilter) -> Result<usize> {
        self.read()?.count(filter)
    }
    fn search(&self, query: &[f32], filter: &SearchFilter, k: usize) -> Result<Vec<Neighbour>> {
        self.read()?.search(query, filter, k)
    }
    fn search_exact(
        &self,
        query: &[f32],
        filter: &SearchFilter,
        k: usize,
    ) -> Result<Vec<Neighbour>> {
        self.read()?.search_exact(query, filter, k)
    }
    fn kpi_percentiles(&self, filter: &SearchFilter, kpis: &[Option<f64>]) -> Result<Vec<f32>> {
        self.read()?.kpi_percentiles(filter, kpis)
    }
    fn digest(&self) -> Result<Vec<DigestBucket>> {
        self.read()?.digest()
    }
    fn states_in(&self, bucket: &str) -> Result<Vec<DocState>> {
        self.read()?.states_in(bucket)
    }
}
