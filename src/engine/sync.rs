//! `library sync`: a server index follows the library's change feed. Everything after the
//! index's high-water mark is pushed (vectors with their feed version, tombstones), the mark
//! moving only past what the server took (never past a failed item). A drift check compares
//! per-bucket digests of both sides and, unless only checking, repairs: missing and old
//! vectors are pushed, vectors the server holds newer than the library (changed behind its
//! back) are given a new version in the feed and pushed, documents the library does not know
//! are removed, duplicates dropped. A rebuild fills a fresh index and makes it current.
use serde::Serialize;

use crate::domain::EmbedderId;
use crate::domain::index::{Change, DocState, Tombstone, VectorRecord, drifted_buckets};
use crate::engine::Library;
use crate::engine::ingest::ItemFailure;
use crate::services::{IndexSpec, VectorBackend, VectorIndex};
use crate::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Only compare digests and report drift (nothing is written).
    pub check: bool,
    /// Fill a new index from the whole library, then make it current.
    pub rebuild: bool,
}

/// What the server index holds that the library does not agree with.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Drift {
    /// Buckets whose digests differ.
    pub buckets: usize,
    /// In the library, not on the server.
    pub missing: Vec<String>,
    /// On the server, not in the library.
    pub extra: Vec<String>,
    /// On the server with another version, objective, node or KPI than the library's.
    pub version: Vec<String>,
    /// On the server more than once.
    pub duplicate: Vec<String>,
    /// The server's states of the drifted buckets (what the repair works from).
    #[serde(skip)]
    pub server: Vec<DocState>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.version.is_empty()
            && self.duplicate.is_empty()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub embedder: String,
    pub index: String,
    pub pushed: usize,
    pub removed: usize,
    /// Already on the server at that version or newer.
    pub stale: usize,
    pub failed: Vec<ItemFailure>,
    pub mark_before: i64,
    pub mark_after: i64,
    /// Changes still to push after this run.
    pub unsynced: u64,
    /// What the check found (before any repair).
    pub drift: Drift,
    /// What the repair did.
    pub repaired: usize,
    /// Drift left after the repair (empty when in step).
    pub drift_after: Drift,
}

/// The index spec of `embedder` in this library: its dimension from the stored vectors.
pub fn spec(lib: &Library, embedder: &EmbedderId) -> Result<IndexSpec> {
    let dim = lib.store.vector_dim(embedder)?.ok_or_else(|| {
        Error::NotFound(format!(
            "the library has no vectors from embedder '{embedder}' to sync; ingest or `library reindex --embedder {embedder}` first"
        ))
    })?;
    Ok(IndexSpec {
        embedder: embedder.clone(),
        dim,
        library_id: lib.store.library_id()?,
    })
}

/// The key an index's mark is kept under in the library.
fn mark_key(backend: &dyn VectorBackend) -> String {
    let i = backend.info();
    format!("{} {}", i.kind, i.endpoint)
}

/// How a push treats tombstones and its progress.
struct PushPlan<'a> {
    /// A fresh index (a rebuild) holds nothing to remove.
    skip_tombstones: bool,
    /// Called with the new mark after every batch, so a push cut off midway keeps what it did.
    save: &'a mut dyn FnMut(i64) -> Result<()>,
}

fn note_failures(
    report: &mut SyncReport,
    failed: Vec<crate::domain::index::WriteFailure>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for f in failed {
        ids.push(f.id.clone());
        if !report.failed.iter().any(|g| g.item == f.id) {
            report.failed.push(ItemFailure {
                item: f.id,
                reason: f.reason,
            });
        }
    }
    ids
}

/// Pushes the feed after `mark` into `index`. Returns the new mark: the last version pushed,
/// or just before the first item the server refused (never past it).
fn push(
    lib: &Library,
    index: &mut dyn VectorIndex,
    embedder: &EmbedderId,
    mark: i64,
    report: &mut SyncReport,
    plan: &mut PushPlan<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<i64> {
    let total = lib.store.changes_after(embedder, mark)?;
    // One page holds a bulk request for each request allowed in flight.
    let ix = &lib.config.index;
    let in_flight = if ix.backend == "s3vectors" {
        ix.s3vectors.max_concurrency
    } else {
        ix.opensearch.max_concurrency
    };
    let batch = ix.batch_size.max(1).saturating_mul(in_flight.max(1));
    let mut after = mark;
    let mut good_until = mark;
    let mut blocked = false;
    let mut done = 0u64;
    loop {
        let changes = lib.store.changes(embedder, after, batch)?;
        let Some(last) = changes.last().map(Change::version) else {
            break;
        };
        let mut records: Vec<VectorRecord> = Vec::new();
        let mut tombstones: Vec<Tombstone> = Vec::new();
        for c in &changes {
            match c {
                Change::Upsert(r) => records.push(r.clone()),
                Change::Remove(t) if !plan.skip_tombstones => tombstones.push(t.clone()),
                Change::Remove(_) => {}
            }
        }
        let w = index.upsert(&records)?;
        report.pushed += w.written;
        report.stale += w.stale.len();
        let mut failed_ids = note_failures(report, w.failed);
        let r = index.remove(&tombstones)?;
        report.removed += r.written;
        report.stale += r.stale.len();
        failed_ids.extend(note_failures(report, r.failed));
        if !blocked {
            match changes
                .iter()
                .find(|c| failed_ids.iter().any(|f| f == c.id()))
            {
                Some(first) => {
                    good_until = first.version() - 1;
                    blocked = true;
                }
                None => good_until = last,
            }
            (plan.save)(good_until)?;
        }
        done += changes.len() as u64;
        progress(done, total);
        after = last;
    }
    Ok(good_until)
}

/// Compares digests and lists the differences bucket by bucket (with the server's states of
/// the drifted buckets, for the repair).
pub fn drift(lib: &Library, index: &dyn VectorIndex, embedder: &EmbedderId) -> Result<Drift> {
    let local = lib.store.digest(embedder)?;
    let remote = index.digest()?;
    let buckets = drifted_buckets(&local, &remote);
    let mut d = Drift {
        buckets: buckets.len(),
        ..Default::default()
    };
    for b in buckets {
        let mine = lib.store.doc_states(embedder, Some(&b))?;
        let theirs = index.states_in(&b)?;
        for m in &mine {
            let on_server: Vec<&DocState> = theirs.iter().filter(|t| t.id == m.id).collect();
            match on_server.as_slice() {
                [] => d.missing.push(m.id.clone()),
                [one] if one.same_as(m) && one.doc.is_none() => {}
                [_] => d.version.push(m.id.clone()),
                _ => d.duplicate.push(m.id.clone()),
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for t in &theirs {
            if !mine.iter().any(|m| m.id == t.id) && !seen.contains(&t.id.as_str()) {
                d.extra.push(t.id.clone());
                seen.push(&t.id);
            }
        }
        d.server.extend(theirs);
    }
    Ok(d)
}

/// Makes the server agree with the library on what `drift` found.
fn repair(
    lib: &Library,
    index: &mut dyn VectorIndex,
    embedder: &EmbedderId,
    d: &Drift,
    report: &mut SyncReport,
) -> Result<usize> {
    let mut fixed = 0;
    let on_server =
        |id: &str| -> Vec<&DocState> { d.server.iter().filter(|t| t.id == id).collect() };
    // Documents the library does not know, and every copy of a duplicated or changed asset
    // kept under another document id than its own: removed by their server ids.
    let mut docs: Vec<String> = Vec::new();
    for id in &d.extra {
        docs.extend(
            on_server(id)
                .iter()
                .map(|t| t.doc.clone().unwrap_or_else(|| t.id.clone())),
        );
    }
    for id in d.version.iter().chain(&d.duplicate) {
        docs.extend(on_server(id).iter().filter_map(|t| t.doc.clone()));
    }
    if !docs.is_empty() {
        let w = index.remove_documents(&docs)?;
        fixed += w.written;
        note_failures(report, w.failed);
    }
    // Changed, duplicated and missing vectors: the library's copy gets a version above the
    // server's (the server's may be newer: a change behind the library's back), then is pushed.
    let mut push_ids: Vec<String> = d.missing.clone();
    for id in d.version.iter().chain(&d.duplicate) {
        let newest = on_server(id).iter().map(|t| t.version).max().unwrap_or(0);
        lib.store.bump_vector(embedder, id, newest)?;
        push_ids.push(id.clone());
    }
    let records: Vec<VectorRecord> = push_ids
        .iter()
        .filter_map(|id| lib.store.record(embedder, id).transpose())
        .collect::<Result<_>>()?;
    let w = index.upsert(&records)?;
    fixed += w.written;
    note_failures(report, w.failed);
    // Refused as stale: the server remembers a newer version or delete than the feed knows
    // (a version edited by hand, a recent delete). Its document goes, then the vector again.
    if !w.stale.is_empty() {
        let head = lib.store.feed_head()?;
        index.remove_documents(&w.stale)?;
        for id in &w.stale {
            lib.store.bump_vector(embedder, id, head)?;
        }
        let again: Vec<VectorRecord> = w
            .stale
            .iter()
            .filter_map(|id| lib.store.record(embedder, id).transpose())
            .collect::<Result<_>>()?;
        let w2 = index.upsert(&again)?;
        fixed += w2.written;
        note_failures(report, w2.failed);
    }
    index.flush()?;
    Ok(fixed)
}

/// Brings the server index of `embedder` in step with the library.
pub fn sync(
    lib: &Library,
    backend: &dyn VectorBackend,
    embedder: &EmbedderId,
    opts: &SyncOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SyncReport> {
    let spec = spec(lib, embedder)?;
    let key = mark_key(backend);
    let alias = backend.index_name(embedder);
    let mut report = SyncReport {
        embedder: embedder.to_string(),
        ..Default::default()
    };
    if opts.rebuild {
        let (name, mut fresh) = backend.open_fresh(&spec)?;
        report.index = name.clone();
        let mark = push(
            lib,
            fresh.as_mut(),
            embedder,
            0,
            &mut report,
            &mut PushPlan {
                skip_tombstones: true,
                save: &mut |_| Ok(()),
            },
            progress,
        )?;
        fresh.flush()?;
        if !report.failed.is_empty() {
            return Err(Error::Cloud(format!(
                "rebuild of {name}: {} vector(s) refused ({}); not made current",
                report.failed.len(),
                report.failed[0].reason
            )));
        }
        backend.promote(&spec, &name)?;
        lib.store.set_mark(&key, &alias, embedder, mark, true)?;
        report.mark_after = mark;
        report.unsynced = lib.store.changes_after(embedder, mark)?;
        return Ok(report);
    }
    report.index = alias.clone();
    let mut index = backend.open(&spec, !opts.check)?;
    let mark = lib.store.mark(&key, &alias)?;
    report.mark_before = mark;
    if opts.check {
        report.mark_after = mark;
        report.unsynced = lib.store.changes_after(embedder, mark)?;
        report.drift = drift(lib, index.as_ref(), embedder)?;
        report.drift_after = report.drift.clone();
        return Ok(report);
    }
    let mut save = |m: i64| lib.store.set_mark(&key, &alias, embedder, m, false);
    let new_mark = push(
        lib,
        index.as_mut(),
        embedder,
        mark,
        &mut report,
        &mut PushPlan {
            skip_tombstones: false,
            save: &mut save,
        },
        progress,
    )?;
    index.flush()?;
    report.mark_after = new_mark.max(mark);
    report.drift = drift(lib, index.as_ref(), embedder)?;
    if !report.drift.is_empty() {
        let d = report.drift.clone();
        report.repaired = repair(lib, index.as_mut(), embedder, &d, &mut report)?;
        // The repair gave some vectors new versions in the feed and pushed them: the mark
        // catches up (they come back as already there).
        let mut again = SyncReport::default();
        let caught_up = push(
            lib,
            index.as_mut(),
            embedder,
            report.mark_after,
            &mut again,
            &mut PushPlan {
                skip_tombstones: false,
                save: &mut save,
            },
            &mut |_, _| {},
        )?;
        note_failures(
            &mut report,
            again
                .failed
                .into_iter()
                .map(|f| crate::domain::index::WriteFailure {
                    id: f.item,
                    reason: f.reason,
                })
                .collect(),
        );
        report.mark_after = caught_up.max(report.mark_after);
        report.drift_after = drift(lib, index.as_ref(), embedder)?;
    }
    report.unsynced = lib
        .store
        .changes_after(embedder, lib.store.mark(&key, &alias)?)?;
    Ok(report)
}

/// Changes not yet on the server, per embedder with vectors (for `doctor` and the status line).
pub fn unsynced(lib: &Library, backend: &dyn VectorBackend) -> Result<Vec<(String, u64)>> {
    let key = mark_key(backend);
    let mut out = Vec::new();
    for (embedder, _) in lib.store.embedder_counts()? {
        if embedder == lib.image_features_id().as_str() {
            continue;
        }
        let id = EmbedderId::new(&embedder);
        let alias = backend.index_name(&id);
        let mark = lib.store.mark(&key, &alias)?;
        out.push((embedder, lib.store.changes_after(&id, mark)?));
    }
    Ok(out)
}
