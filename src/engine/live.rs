//! The embedded index of each embedder, opened once per session (a studio, a CLI command) and
//! kept: from its snapshot file when that is sound (a map and checks, not a rebuild), else
//! rebuilt from the store and its snapshot written in the background. Before every search the
//! library's change feed is checked (one query on the feed's head); what changed since
//! (ingest, reindex, remove, an edit, in this process or another) is applied incrementally.
//! When the changes applied on top of the snapshot pass `search.snapshot_rewrite_after`, a new
//! snapshot is written in the background and the session moves onto it when it is done.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;

use super::Library;
use crate::domain::EmbedderId;
use crate::services::local::exact_index::scan_pool;
use crate::services::local::live_index::{LiveIndex, SharedIndex};
use crate::services::local::snapshot::{self, Expect, Header, Unusable};
use crate::{Error, Result};

/// Changes read from the feed per query while catching up.
const FEED_PAGE: usize = 10_000;

/// One embedder's index in this session, and its snapshot writer if one is running.
pub(crate) struct Entry {
    index: SharedIndex,
    writer: Option<JoinHandle<Result<Header>>>,
    /// A snapshot this session wrote and has not moved onto yet.
    written: Option<Header>,
}

#[derive(Default)]
pub(crate) struct LiveIndexes {
    entries: Mutex<HashMap<EmbedderId, Entry>>,
    /// Indexes opened (from a snapshot or the store) in this session.
    opens: std::sync::atomic::AtomicUsize,
}

impl LiveIndexes {
    /// Waits for snapshot writers still running (a CLI command ends after its search: its
    /// snapshot must not be left half-written).
    pub(crate) fn finish(&self) {
        let Ok(mut g) = self.entries.lock() else {
            return;
        };
        for e in g.values_mut() {
            if let Some(w) = e.writer.take() {
                e.written = joined(w);
            }
        }
    }
}

/// The header of the snapshot a finished writer wrote (None: it failed, and said why).
fn joined(w: JoinHandle<Result<Header>>) -> Option<Header> {
    match w.join() {
        Ok(Ok(h)) => Some(h),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "index snapshot not written");
            None
        }
        Err(_) => {
            tracing::warn!("index snapshot writer panicked");
            None
        }
    }
}

/// The state of one embedder's snapshot, as `library stats` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotStatus {
    pub embedder: String,
    pub path: PathBuf,
    /// "current", "behind" (changes to catch up on open), "missing", or "unusable".
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Lists of a partitioned snapshot (its rows stored list by list; a search reads the lists
    /// nearest the query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lists: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// Changes to this embedder's vectors after the snapshot's sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind_by: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Library {
    /// The folder of the index snapshots, next to the database.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.paths
            .database()
            .parent()
            .map(|p| p.join("index"))
            .unwrap_or_else(|| PathBuf::from("index"))
    }

    pub fn snapshot_path(&self, embedder: &EmbedderId) -> PathBuf {
        snapshot::path_for(&self.snapshot_dir(), embedder)
    }

    /// The embedded index of `embedder`, up to date with the change feed. Opened once per
    /// session; later calls only apply what changed.
    pub fn embedded_index(&self, embedder: &EmbedderId) -> Result<SharedIndex> {
        let mut g = self.live.entries.lock().map_err(|_| poisoned())?;
        if let Some(entry) = g.get_mut(embedder) {
            self.refresh(embedder, entry)?;
            return Ok(entry.index.clone());
        }
        let live = self.open_live(embedder)?;
        self.count_open();
        let mut entry = Entry {
            index: SharedIndex::new(live),
            writer: None,
            written: None,
        };
        self.maybe_write(embedder, &mut entry)?;
        let index = entry.index.clone();
        g.insert(embedder.clone(), entry);
        Ok(index)
    }

    /// Opens the snapshot (and applies the changes after it), or rebuilds from the store.
    fn open_live(&self, embedder: &EmbedderId) -> Result<LiveIndex> {
        let t = Instant::now();
        snapshot::remove_leftovers(&self.snapshot_dir());
        let path = self.snapshot_path(embedder);
        let library_id = self.store.library_id()?;
        let dim = self.store.vector_dim(embedder)?;
        let head = self.store.feed_head()?;
        let pool = scan_pool(self.config.search.threads);
        if dim.is_some() {
            let expect = Expect {
                embedder,
                library_id: &library_id,
                dim,
            };
            match snapshot::open(&path, &expect, pool.clone()) {
                Ok((base, header)) if header.seq <= head => {
                    let mut live = LiveIndex::new(base, header.seq);
                    let applied = self.catch_up(embedder, &mut live, head)?;
                    let want = self.store.vector_count(embedder)?;
                    if live.len() as u64 == want {
                        tracing::info!(
                            embedder = %embedder,
                            vectors = live.len(),
                            storage = ?live.storage(),
                            caught_up = applied,
                            ms = t.elapsed().as_secs_f64() * 1e3,
                            "index snapshot opened"
                        );
                        return Ok(live);
                    }
                    tracing::warn!(
                        path = %path.display(),
                        held = live.len(),
                        library = want,
                        "index snapshot disagrees with the library after catching up; rebuilding it"
                    );
                }
                Ok((_, header)) => tracing::warn!(
                    path = %path.display(),
                    snapshot_seq = header.seq,
                    feed_head = head,
                    "index snapshot is newer than the library (a restored database?); rebuilding it"
                ),
                Err(Unusable::Missing) => {
                    tracing::info!(path = %path.display(), "no index snapshot yet; building it")
                }
                Err(Unusable::Invalid(why)) => tracing::warn!(
                    path = %path.display(),
                    reason = %why,
                    "index snapshot unusable; rebuilding it from the library"
                ),
            }
        }
        // The feed's head before reading: changes made while reading are applied again after
        // (each only when newer), so none is missed.
        let head = self.store.feed_head()?;
        let base = self.load_index(embedder)?;
        let mut live = LiveIndex::new(base, head);
        self.catch_up(embedder, &mut live, head)?;
        Ok(live)
    }

    /// Applies the feed's changes after the index's sequence number; how many were read.
    fn catch_up(&self, embedder: &EmbedderId, live: &mut LiveIndex, head: i64) -> Result<usize> {
        let mut read = 0;
        loop {
            let changes = self.store.changes(embedder, live.seq(), FEED_PAGE)?;
            if changes.is_empty() {
                break;
            }
            read += changes.len();
            let before = live.seq();
            live.apply(&changes)?;
            if live.seq() == before {
                break; // cannot happen (changes come after seq); never loop forever
            }
        }
        live.caught_up_to(head);
        Ok(read)
    }

    /// Brings a session's index up to date: nothing to do when the feed has not moved.
    fn refresh(&self, embedder: &EmbedderId, entry: &mut Entry) -> Result<()> {
        // A finished snapshot writer: move onto the new file (a map, then the changes after it).
        if entry.writer.as_ref().is_some_and(JoinHandle::is_finished)
            && let Some(w) = entry.writer.take()
        {
            entry.written = joined(w);
        }
        if let Some(header) = entry.written.take() {
            tracing::debug!(embedder = %embedder, seq = header.seq, vectors = header.count, "moving onto the new index snapshot");
            let live = self.open_live(embedder)?;
            *entry.index.write()? = live;
        }
        let head = self.store.feed_head()?;
        let (seq, dim) = {
            let live = entry.index.read()?;
            (live.seq(), crate::services::VectorIndex::dim(&*live))
        };
        if head == seq {
            return Ok(());
        }
        let now_dim = self.store.vector_dim(embedder)?;
        if head < seq || (now_dim.is_some() && now_dim != Some(dim)) {
            // The library went back (a restored database) or its vectors changed shape (the
            // first ingest into an empty library): open again.
            let live = self.open_live(embedder)?;
            self.count_open();
            *entry.index.write()? = live;
        } else {
            let t = Instant::now();
            let mut live = entry.index.write()?;
            let n = self.catch_up(embedder, &mut live, head)?;
            tracing::debug!(embedder = %embedder, changes = n, ms = t.elapsed().as_secs_f64() * 1e3, "index caught up");
        }
        self.maybe_write(embedder, entry)
    }

    /// Starts writing a snapshot in the background when there is none for this index or its
    /// tail has grown past `search.snapshot_rewrite_after`.
    fn maybe_write(&self, embedder: &EmbedderId, entry: &mut Entry) -> Result<()> {
        if entry.writer.is_some() {
            return Ok(());
        }
        let live = entry.index.read()?;
        let fresh_base = !live.base().is_mapped();
        if live.is_empty()
            || !(fresh_base || live.tail() > self.config.search.snapshot_rewrite_after)
        {
            return Ok(());
        }
        let fork = live.fork()?;
        drop(live);
        let path = self.snapshot_path(embedder);
        let library_id = self.store.library_id()?;
        let storage = self
            .config
            .search
            .storage_for(fork.len(), crate::services::VectorIndex::dim(&fork));
        let name = format!(
            "index-snapshot-{}",
            embedder.as_str().chars().take(20).collect::<String>()
        );
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let t = Instant::now();
                let h = fork.write_snapshot(&path, &library_id, storage)?;
                tracing::info!(path = %path.display(), vectors = h.count, seq = h.seq, ms = t.elapsed().as_secs_f64() * 1e3, "index snapshot written");
                Ok(h)
            })
            .map_err(|e| Error::Invalid(format!("cannot start the snapshot writer: {e}")))?;
        entry.writer = Some(handle);
        Ok(())
    }

    /// How many times this session opened an embedded index (from its snapshot or the store):
    /// once per embedder, and again only when the library went back or an empty library got
    /// its first vectors. Moving onto a snapshot the session wrote itself is not counted.
    pub fn index_opens(&self) -> usize {
        self.live.opens.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_open(&self) {
        self.live
            .opens
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits for background snapshot writers (tests, and the end of a command).
    pub fn finish_index_writes(&self) {
        self.live.finish();
    }

    /// The snapshot of each embedder the library holds vectors from.
    pub fn snapshot_status(&self) -> Result<Vec<SnapshotStatus>> {
        let mut out = Vec::new();
        for (e, _) in self.store.embedder_counts()? {
            let embedder = EmbedderId::new(e.clone());
            let path = self.snapshot_path(&embedder);
            let mut s = SnapshotStatus {
                embedder: e,
                path: path.clone(),
                state: String::new(),
                vectors: None,
                storage: None,
                lists: None,
                bytes: None,
                seq: None,
                behind_by: None,
                reason: None,
            };
            match snapshot::read_header(&path) {
                Ok(h) => {
                    let library_id = self.store.library_id()?;
                    let behind = self.store.changes_after(&embedder, h.seq)?;
                    s.vectors = Some(h.count);
                    s.storage = Some(format!("{:?}", h.storage).to_lowercase());
                    s.lists = (h.lists > 0).then_some(h.lists);
                    s.bytes = std::fs::metadata(&path).ok().map(|m| m.len());
                    s.seq = Some(h.seq);
                    if h.library_id != library_id || h.seq > self.store.feed_head()? {
                        s.state = "unusable".into();
                        s.reason = Some(if h.library_id != library_id {
                            "it belongs to another library; it is rebuilt on the next search".into()
                        } else {
                            "it is newer than the library (a restored database?); it is rebuilt on the next search".into()
                        });
                    } else {
                        s.state = if behind == 0 { "current" } else { "behind" }.into();
                        s.behind_by = Some(behind);
                    }
                }
                Err(Unusable::Missing) => s.state = "missing".into(),
                Err(Unusable::Invalid(why)) => {
                    s.state = "unusable".into();
                    s.reason = Some(format!("{why}; it is rebuilt on the next search"));
                }
            }
            out.push(s);
        }
        Ok(out)
    }
}

fn poisoned() -> Error {
    Error::Invalid("internal: an index update panicked earlier in this session".into())
}
