//! What vector indexes hold and exchange: records from the library's change feed (each with
//! its version, the feed's sequence number), tombstones, write reports and digests. SQLite is
//! the record of truth; every index (the embedded one, a server's) is a projection of it.
use serde::{Deserialize, Serialize};

/// Per-vector data the index filters and ranks on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorMeta {
    pub objective: String,
    pub node: String,
    pub kpi: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub id: String,
    /// The dot product of the L2-normalised query and vector.
    pub similarity: f32,
}

/// One vector as the change feed carries it: the asset id, the vector, what filters it, and
/// its version (the feed's sequence number when it last changed). Indexes keep the newest
/// version of each id and refuse older ones, so a re-push never rolls anything back.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorRecord {
    pub id: String,
    pub vector: Vec<f32>,
    pub meta: VectorMeta,
    pub version: i64,
}

/// A vector that left the library (its asset removed or replaced), with the version of that
/// change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub id: String,
    pub version: i64,
}

/// One entry of the change feed, in sequence order.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Upsert(VectorRecord),
    Remove(Tombstone),
}

impl Change {
    pub fn version(&self) -> i64 {
        match self {
            Change::Upsert(r) => r.version,
            Change::Remove(t) => t.version,
        }
    }
    pub fn id(&self) -> &str {
        match self {
            Change::Upsert(r) => &r.id,
            Change::Remove(t) => &t.id,
        }
    }
}

/// What a batch write did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriteReport {
    /// Items written (or removed).
    pub written: usize,
    /// Ids whose version was not newer than the index's: nothing changed for them.
    pub stale: Vec<String>,
    /// Items refused, with the reason (a bad vector, a mapping error, ...).
    pub failed: Vec<WriteFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WriteFailure {
    pub id: String,
    pub reason: String,
}

impl WriteReport {
    pub fn merge(&mut self, other: WriteReport) {
        self.written += other.written;
        self.stale.extend(other.stale);
        self.failed.extend(other.failed);
    }
}

/// What an index holds for one id: its version and what it filters and ranks on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocState {
    pub id: String,
    pub version: i64,
    pub objective: String,
    pub node: String,
    pub kpi: Option<f64>,
    /// The server's own id of the document when it differs from `id` (a Serverless
    /// collection's, or a document written behind the library's back); None: `id` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
}

impl DocState {
    /// Whether two states agree (KPIs compared to 1e-9: they travel as JSON doubles).
    pub fn same_as(&self, other: &DocState) -> bool {
        self.id == other.id
            && self.version == other.version
            && self.objective == other.objective
            && self.node == other.node
            && match (self.kpi, other.kpi) {
                (None, None) => true,
                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                _ => false,
            }
    }
}

/// Drift check: per bucket of ids (the first two characters of the asset id, a hex digit pair
/// for content-hash ids), how many vectors, the sum and maximum of their versions, and what
/// they filter and rank on (counts per objective and node, the KPI sum to 1e-4), so that a
/// change made behind the library's back (a node edited on the server) shows too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct DigestBucket {
    pub bucket: String,
    pub count: u64,
    pub version_sum: i64,
    pub version_max: i64,
    /// Sum of the known KPIs, in units of 1e-4.
    pub kpi_sum: i64,
    /// (objective, count), sorted.
    pub objectives: Vec<(String, u64)>,
    /// (node, count), sorted.
    pub nodes: Vec<(String, u64)>,
}

/// The digest bucket of an asset id.
pub fn bucket_of(id: &str) -> String {
    id.chars().take(2).collect::<String>().to_lowercase()
}

/// The KPI sum of a digest, in units of 1e-4 (sums of doubles in another order agree there).
pub fn kpi_units(sum: f64) -> i64 {
    (sum * 1e4).round() as i64
}

/// The digest of a set of documents, sorted by bucket.
pub fn digest_of<'a>(docs: impl IntoIterator<Item = &'a DocState>) -> Vec<DigestBucket> {
    use std::collections::BTreeMap;
    struct Acc {
        count: u64,
        version_sum: i64,
        version_max: i64,
        kpi: f64,
        objectives: BTreeMap<String, u64>,
        nodes: BTreeMap<String, u64>,
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    for d in docs {
        let a = by.entry(bucket_of(&d.id)).or_insert(Acc {
            count: 0,
            version_sum: 0,
            version_max: i64::MIN,
            kpi: 0.0,
            objectives: BTreeMap::new(),
            nodes: BTreeMap::new(),
        });
        a.count += 1;
        a.version_sum = a.version_sum.wrapping_add(d.version);
        a.version_max = a.version_max.max(d.version);
        a.kpi += d.kpi.unwrap_or(0.0);
        *a.objectives.entry(d.objective.clone()).or_default() += 1;
        *a.nodes.entry(d.node.clone()).or_default() += 1;
    }
    by.into_iter()
        .map(|(bucket, a)| DigestBucket {
            bucket,
            count: a.count,
            version_sum: a.version_sum,
            version_max: a.version_max,
            kpi_sum: kpi_units(a.kpi),
            objectives: a.objectives.into_iter().collect(),
            nodes: a.nodes.into_iter().collect(),
        })
        .collect()
}

/// Buckets whose digests differ between two sides (each list sorted by bucket).
pub fn drifted_buckets(a: &[DigestBucket], b: &[DigestBucket]) -> Vec<String> {
    let mut names: Vec<&str> = a
        .iter()
        .chain(b.iter())
        .map(|d| d.bucket.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter(|n| a.iter().find(|d| d.bucket == *n) != b.iter().find(|d| d.bucket == *n))
        .map(str::to_string)
        .collect()
}

/// A batch upsert into `ix` that keeps the newest version of each id: a bad vector fails by
/// name, a record not newer than the version `held` reports is stale, the rest are written;
/// the batch goes on past each.
pub fn versioned_upsert<T: ?Sized>(
    ix: &mut T,
    records: &[VectorRecord],
    dim: usize,
    held: impl Fn(&T, &str) -> Option<i64>,
    write: impl Fn(&mut T, &VectorRecord) -> crate::Result<()>,
) -> crate::Result<WriteReport> {
    let mut report = WriteReport::default();
    for r in records {
        if let Err(reason) = check_vector(&r.id, &r.vector, dim) {
            report.failed.push(WriteFailure {
                id: r.id.clone(),
                reason,
            });
        } else if held(ix, &r.id).is_some_and(|v| v >= r.version) {
            report.stale.push(r.id.clone());
        } else {
            write(ix, r)?;
            report.written += 1;
        }
    }
    Ok(report)
}

/// Tombstones applied to `ix`: each removes its id only when the version `held` reports is
/// older; `remove` says whether something was removed.
pub fn versioned_remove<T: ?Sized>(
    ix: &mut T,
    tombstones: &[Tombstone],
    held: impl Fn(&T, &str) -> Option<i64>,
    remove: impl Fn(&mut T, &Tombstone) -> crate::Result<bool>,
) -> crate::Result<WriteReport> {
    let mut report = WriteReport::default();
    for t in tombstones {
        match held(ix, &t.id) {
            Some(v) if v >= t.version => report.stale.push(t.id.clone()),
            Some(_) => report.written += usize::from(remove(ix, t)?),
            None => {}
        }
    }
    Ok(report)
}

/// A vector is usable when it has `dim` finite numbers; the error names the asset.
pub fn check_vector(id: &str, vector: &[f32], dim: usize) -> Result<(), String> {
    if vector.len() != dim {
        return Err(format!(
            "asset {id}: vector has {} dimensions, the index holds {dim}",
            vector.len()
        ));
    }
    if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "asset {id}: vector holds {} at position {i}; re-embed it (`library reindex`)",
            vector[i]
        ));
    }
    Ok(())
}

/// Percentile rank of `kpi` among `below` smaller and `equal` equal values out of `total`
/// (ties count half), 0..1; unknown KPI or empty set -> 0. Every backend counts, then calls
/// this, so the figure is identical everywhere.
/// Percentile rank of `kpi` within sorted `kpis` (ties count half), 0..1; unknown KPI -> 0.
pub fn kpi_percentile(sorted: &[f64], kpi: Option<f64>) -> f32 {
    let Some(x) = kpi else { return 0.0 };
    let below = sorted.partition_point(|v| *v < x);
    let upto = sorted.partition_point(|v| *v <= x);
    percentile_from_counts(
        below as u64,
        upto.saturating_sub(below) as u64,
        sorted.len() as u64,
    )
}

pub fn percentile_from_counts(below: u64, equal: u64, total: u64) -> f32 {
    if total == 0 {
        return 0.0;
    }
    ((below as f64 + equal as f64 / 2.0) / total as f64) as f32
}
