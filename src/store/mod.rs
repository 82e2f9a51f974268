//! The library's source of truth: embedded SQLite (WAL). Originals and thumbnails are files
//! under the data dir, addressed by content hash.
pub mod campaigns;
pub mod schema;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::domain::{Asset, EmbedderId, SearchFilter};
use crate::{Error, Result};

pub struct Store {
    conn: Connection,
}

/// RFC 3339 UTC timestamp, second precision.
pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn vector_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn blob_to_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// One stored vector with the fields the index filters on.
pub struct StoredVector {
    pub asset_id: String,
    pub objective: String,
    pub node: String,
    pub kpi: Option<f64>,
    pub vector: Vec<f32>,
    /// The change feed's sequence number of its last change (its version).
    pub seq: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LibraryStats {
    pub assets: u64,
    pub by_objective: Vec<(String, u64)>,
    pub by_node: Vec<(String, u64)>,
    pub embeddings: Vec<(String, u64)>,
    pub bytes: u64,
    pub with_caption: u64,
    /// Photos nobody described that borrow words from similar described ones
    /// (`engine::inferred`; neighbours that agree on no word do not count).
    #[serde(default)]
    pub borrowing: u64,
    pub last_ingest: Option<String>,
}

const ASSET_COLUMNS: &str = "id, external_id, file, stored_path, thumbnail_path, byte_size, format, width, height, phash, objective, node, kpi, caption, description, model_labels, licence, attribution, metadata, created_at, updated_at";

fn json_col<T: serde::de::DeserializeOwned>(s: String, idx: usize) -> rusqlite::Result<T> {
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn row_to_asset(r: &rusqlite::Row<'_>) -> rusqlite::Result<Asset> {
    Ok(Asset {
        id: r.get(0)?,
        external_id: r.get(1)?,
        file: r.get(2)?,
        stored_path: r.get(3)?,
        thumbnail_path: r.get(4)?,
        byte_size: r.get::<_, i64>(5)? as u64,
        format: r.get(6)?,
        width: r.get(7)?,
        height: r.get(8)?,
        phash: r.get(9)?,
        objective: r.get(10)?,
        node: r.get(11)?,
        kpi: r.get(12)?,
        caption: r.get(13)?,
        description: json_col(r.get(14)?, 14)?,
        model_labels: json_col(r.get(15)?, 15)?,
        licence: r.get(16)?,
        attribution: r.get(17)?,
        metadata: json_col(r.get(18)?, 18)?,
        created_at: r.get(19)?,
        updated_at: r.get(20)?,
    })
}

/// The error for a file SQLite cannot read as a database.
fn not_a_library(path: &Path, why: &str) -> Error {
    Error::Invalid(format!(
        "{}: cannot be read as a campaign-studio library ({why}); it was left untouched. Point CAMPAIGN_STUDIO_DATA_DIR (or --data-dir) at another folder, or move the file away",
        path.display()
    ))
}

/// A vector row (asset id, objective, node, KPI, vector, seq) as a feed record.
fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::domain::index::VectorRecord> {
    Ok(crate::domain::index::VectorRecord {
        id: r.get(0)?,
        meta: crate::domain::index::VectorMeta {
            objective: r.get(1)?,
            node: r.get(2)?,
            kpi: r.get(3)?,
        },
        vector: blob_to_vector(r.get_ref(4)?.as_blob()?),
        version: r.get(5)?,
    })
}

impl Store {
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| not_a_library(path, &e.to_string()))?;
        Self::check_ours(&conn, path)?;
        Self::init(conn)
    }

    /// Refuses, before anything is written, a database this program did not make (another
    /// program's tables, or not a database at all) and one written by a newer version of it:
    /// the file is left byte for byte as it was.
    fn check_ours(conn: &Connection, path: &Path) -> Result<()> {
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| not_a_library(path, &e.to_string()))?;
        let known = schema::MIGRATIONS.len() as i64;
        if version > known {
            return Err(Error::Invalid(format!(
                "{}: this library was written by a newer campaign-studio (schema version {version}; this one knows up to {known}); update campaign-studio, or point CAMPAIGN_STUDIO_DATA_DIR elsewhere",
                path.display()
            )));
        }
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| not_a_library(path, &e.to_string()))?;
        if version == 0 && !tables.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: this is not a campaign-studio library (it holds another program's tables: {}); it was left untouched. Point CAMPAIGN_STUDIO_DATA_DIR (or --data-dir) at another folder",
                path.display(),
                tables
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if version > 0 && !tables.iter().any(|t| t == "assets") {
            return Err(Error::Invalid(format!(
                "{}: schema version {version} but no campaign-studio tables: another program's database; it was left untouched. Point CAMPAIGN_STUDIO_DATA_DIR (or --data-dir) at another folder",
                path.display()
            )));
        }
        Ok(())
    }

    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // 16 KiB pages keep a 1024-d f32 vector (4 KiB) inside its page instead of an overflow
        // chain; it only takes effect when the database is created.
        conn.pragma_update(None, "page_size", 16384)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(Store { conn })
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Writes an asset and its vectors in one transaction. `replaces` is an asset id whose row
    /// (and vectors) this one supersedes (the same manifest id with new bytes).
    pub fn put_asset(
        &mut self,
        asset: &Asset,
        meta_hash: &str,
        vectors: &[(EmbedderId, Vec<f32>, String)],
        replaces: Option<&str>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        if let Some(old) = replaces.filter(|o| *o != asset.id) {
            tx.execute("DELETE FROM assets WHERE id = ?1", params![old])?;
        }
        tx.execute(
            &format!(
                "INSERT INTO assets ({ASSET_COLUMNS}, meta_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)
                 ON CONFLICT(id) DO UPDATE SET external_id = excluded.external_id, file = excluded.file,
                   stored_path = excluded.stored_path, thumbnail_path = excluded.thumbnail_path,
                   objective = excluded.objective, node = excluded.node, kpi = excluded.kpi,
                   caption = excluded.caption, description = excluded.description,
                   model_labels = excluded.model_labels, licence = excluded.licence,
                   attribution = excluded.attribution, metadata = excluded.metadata,
                   meta_hash = excluded.meta_hash, updated_at = excluded.updated_at"
            ),
            params![
                asset.id,
                asset.external_id,
                asset.file,
                asset.stored_path,
                asset.thumbnail_path,
                asset.byte_size as i64,
                asset.format,
                asset.width,
                asset.height,
                asset.phash,
                asset.objective,
                asset.node,
                asset.kpi,
                asset.caption,
                serde_json::to_string(&asset.description)?,
                serde_json::to_string(&asset.model_labels)?,
                asset.licence,
                asset.attribution,
                serde_json::to_string(&asset.metadata)?,
                asset.created_at,
                asset.updated_at,
                meta_hash,
            ],
        )?;
        for (embedder, v, source) in vectors {
            tx.execute(
                "INSERT INTO embeddings (asset_id, embedder, dim, vector, source) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(asset_id, embedder) DO UPDATE SET dim = excluded.dim, vector = excluded.vector, source = excluded.source",
                params![asset.id, embedder.as_str(), v.len() as i64, vector_to_blob(v), source],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn asset(&self, id: &str) -> Result<Option<Asset>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = ?1"),
                params![id],
                row_to_asset,
            )
            .optional()?)
    }

    /// Finds an asset by manifest id, file name (when unique), full hash, or a unique hash
    /// prefix (>= 6 chars).
    pub fn resolve(&self, key: &str) -> Result<Asset> {
        let by_ext = self
            .conn
            .query_row(
                &format!("SELECT {ASSET_COLUMNS} FROM assets WHERE external_id = ?1"),
                params![key],
                row_to_asset,
            )
            .optional()?;
        if let Some(a) = by_ext {
            return Ok(a);
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ASSET_COLUMNS} FROM assets WHERE file = ?1 LIMIT 2"
        ))?;
        let by_file: Vec<Asset> = stmt
            .query_map(params![key], row_to_asset)?
            .collect::<rusqlite::Result<_>>()?;
        if by_file.len() == 1 {
            return Ok(by_file.into_iter().next().expect("one row"));
        }
        if key.len() >= 6 && key.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {ASSET_COLUMNS} FROM assets WHERE id LIKE ?1 || '%' LIMIT 2"
            ))?;
            let found: Vec<Asset> = stmt
                .query_map(params![key.to_lowercase()], row_to_asset)?
                .collect::<rusqlite::Result<_>>()?;
            match found.len() {
                1 => return Ok(found.into_iter().next().expect("one row")),
                2 => {
                    return Err(Error::Invalid(format!(
                        "'{key}' matches several assets; give more of the hash"
                    )));
                }
                _ => {}
            }
        }
        Err(Error::NotFound(format!(
            "no asset with manifest id, file or hash '{key}'"
        )))
    }

    /// (asset id, meta hash) of the asset with this manifest id.
    pub fn by_external_id(&self, ext: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, meta_hash FROM assets WHERE external_id = ?1",
                params![ext],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// (external id, meta hash) of the asset with this content hash.
    pub fn by_content(&self, id: &str) -> Result<Option<(Option<String>, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT external_id, meta_hash FROM assets WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Adds (or replaces) one asset's vector from one embedder.
    pub fn put_vector(
        &self,
        asset_id: &str,
        embedder: &EmbedderId,
        v: &[f32],
        source: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO embeddings (asset_id, embedder, dim, vector, source) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(asset_id, embedder) DO UPDATE SET dim = excluded.dim, vector = excluded.vector, source = excluded.source",
            params![asset_id, embedder.as_str(), v.len() as i64, vector_to_blob(v), source],
        )?;
        Ok(())
    }

    /// One asset's vector from one embedder, if stored.
    pub fn vector_of(&self, asset_id: &str, embedder: &EmbedderId) -> Result<Option<Vec<f32>>> {
        use rusqlite::OptionalExtension;
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT vector FROM embeddings WHERE asset_id = ?1 AND embedder = ?2",
                params![asset_id, embedder.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(blob.map(|b| blob_to_vector(&b)))
    }

    /// Up to `n` of `embedder`'s vectors, in asset id order: asset ids are content hashes, so
    /// this is a fixed, uniform sample of the library that changes only as the library does.
    /// (`+embedder` keeps SQLite walking the primary key in order, a few rows per asset, rather
    /// than sorting every vector of the embedder.)
    pub fn background_sample(&self, embedder: &EmbedderId, n: usize) -> Result<Vec<Vec<f32>>> {
        let mut stmt = self.conn.prepare(
            "SELECT vector FROM embeddings WHERE +embedder = ?1 ORDER BY asset_id LIMIT ?2",
        )?;
        let v = stmt
            .query_map(
                params![embedder.as_str(), i64::try_from(n).unwrap_or(i64::MAX)],
                |r| Ok(blob_to_vector(r.get_ref(0)?.as_blob()?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// The description document a text embedder embedded for this asset, if any.
    pub fn document_of(&self, asset_id: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                "SELECT source FROM embeddings WHERE asset_id = ?1 AND source != 'image' ORDER BY embedder LIMIT 1",
                params![asset_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn embedders_of(&self, asset_id: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT embedder FROM embeddings WHERE asset_id = ?1 ORDER BY embedder")?;
        let v = stmt
            .query_map(params![asset_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    pub fn list(&self, filter: &SearchFilter, limit: usize, offset: usize) -> Result<Vec<Asset>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ASSET_COLUMNS} FROM assets
             WHERE (?1 IS NULL OR objective = ?1) AND (?2 IS NULL OR node = ?2)
             ORDER BY COALESCE(external_id, file), id LIMIT ?3 OFFSET ?4"
        ))?;
        let v = stmt
            .query_map(
                params![filter.objective, filter.node, limit as i64, offset as i64],
                row_to_asset,
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// (asset id, perceptual hash) of every asset.
    pub fn phashes(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, phash FROM assets ORDER BY id")?;
        let v = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    pub fn count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM assets", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    /// How many assets with a vector from `embedder` lie outside `filter` (other objectives or
    /// audiences): what a widened search could find. 0 when the filter is empty or covers the
    /// library.
    pub fn count_outside(&self, filter: &SearchFilter, embedder: &EmbedderId) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM assets a JOIN embeddings e ON e.asset_id = a.id AND e.embedder = ?3
             WHERE NOT ((?1 IS NULL OR a.objective = ?1) AND (?2 IS NULL OR a.node = ?2))",
            params![filter.objective, filter.node, embedder.as_str()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Removes assets (vectors cascade). Returns the removed ones, for deleting their files.
    pub fn remove(&mut self, ids: &[String]) -> Result<Vec<Asset>> {
        let tx = self.conn.transaction()?;
        let mut removed = Vec::new();
        for id in ids {
            let a = tx
                .query_row(
                    &format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = ?1"),
                    params![id],
                    row_to_asset,
                )
                .optional()?;
            if let Some(a) = a {
                tx.execute("DELETE FROM assets WHERE id = ?1", params![id])?;
                removed.push(a);
            }
        }
        tx.commit()?;
        Ok(removed)
    }

    /// How many other assets still point at this stored file (content-addressed files are
    /// shared only by identical bytes, so this is 0 or 1 in practice).
    pub fn references_to(&self, stored_path: &str) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM assets WHERE stored_path = ?1 OR thumbnail_path = ?1",
            params![stored_path],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    pub fn vectors(&self, embedder: &EmbedderId) -> Result<Vec<StoredVector>> {
        let mut stmt = self.conn.prepare(
            "SELECT a.id, a.objective, a.node, a.kpi, e.vector, e.seq FROM embeddings e
             JOIN assets a ON a.id = e.asset_id WHERE e.embedder = ?1",
        )?;
        let v = stmt
            .query_map(params![embedder.as_str()], |r| {
                Ok(StoredVector {
                    asset_id: r.get(0)?,
                    objective: r.get(1)?,
                    node: r.get(2)?,
                    kpi: r.get(3)?,
                    vector: blob_to_vector(r.get_ref(4)?.as_blob()?),
                    seq: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// Calls `f(asset id, vector, seq, source)` for each of `embedder`'s vectors, one row at a
    /// time (a pass over a large library without holding every vector).
    pub fn for_each_vector(
        &self,
        embedder: &EmbedderId,
        mut f: impl FnMut(&str, &[f32], i64, &str),
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT asset_id, vector, seq, source FROM embeddings WHERE embedder = ?1")?;
        let mut rows = stmt.query(params![embedder.as_str()])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let v = blob_to_vector(r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?);
            let source: String = r.get(3)?;
            f(&id, &v, r.get(2)?, &source);
        }
        Ok(())
    }

    /// What `embedder` embedded for this asset (its document, or "image"), if it has a vector.
    pub fn source_of(&self, asset_id: &str, embedder: &EmbedderId) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row(
                "SELECT source FROM embeddings WHERE asset_id = ?1 AND embedder = ?2",
                params![asset_id, embedder.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Writes an asset's description and one embedder's vector of it in one transaction (what
    /// `engine::inferred` derives from other assets; the asset's own fields stay as they are),
    /// only while its description is still `was` and `embedder` still embeds `source` for it:
    /// false (nothing written) when the asset is gone or another write changed it meanwhile.
    pub fn put_description_and_vector(
        &self,
        asset_id: &str,
        was: &crate::domain::Description,
        description: &crate::domain::Description,
        embedder: &EmbedderId,
        v: &[f32],
        source: &str,
    ) -> Result<bool> {
        use rusqlite::OptionalExtension;
        let tx = self.conn.unchecked_transaction()?;
        let now: Option<String> = tx
            .query_row(
                "SELECT description FROM assets WHERE id = ?1",
                params![asset_id],
                |r| r.get(0),
            )
            .optional()?;
        let unchanged = now
            .and_then(|d| serde_json::from_str::<crate::domain::Description>(&d).ok())
            .is_some_and(|d| d == *was);
        let same_source = tx
            .query_row(
                "SELECT source FROM embeddings WHERE asset_id = ?1 AND embedder = ?2",
                params![asset_id, embedder.as_str()],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .is_some_and(|s| s == source);
        if !(unchanged && same_source) {
            return Ok(false);
        }
        tx.execute(
            "UPDATE assets SET description = ?2 WHERE id = ?1",
            params![asset_id, serde_json::to_string(description)?],
        )?;
        tx.execute(
            "INSERT INTO embeddings (asset_id, embedder, dim, vector, source) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(asset_id, embedder) DO UPDATE SET dim = excluded.dim, vector = excluded.vector, source = excluded.source",
            params![asset_id, embedder.as_str(), v.len() as i64, vector_to_blob(v), source],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The change feed's last sequence number.
    pub fn feed_head(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT seq FROM feed WHERE id = 1", [], |r| r.get(0))?)
    }

    /// Up to `limit` changes to `embedder`'s vectors after sequence number `after`, in order:
    /// vectors (with their asset's objective, node and KPI) and tombstones.
    pub fn changes(
        &self,
        embedder: &EmbedderId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<crate::domain::index::Change>> {
        use crate::domain::index::{Change, Tombstone};
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, a.objective, a.node, a.kpi, e.vector, e.seq FROM embeddings e
             JOIN assets a ON a.id = e.asset_id
             WHERE e.embedder = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT ?3",
        )?;
        let mut out: Vec<Change> = stmt
            .query_map(params![embedder.as_str(), after, limit], |r| {
                Ok(Change::Upsert(row_to_record(r)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT asset_id, seq FROM tombstones WHERE embedder = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let gone = stmt
            .query_map(params![embedder.as_str(), after, limit], |r| {
                Ok(Change::Remove(Tombstone {
                    id: r.get(0)?,
                    version: r.get(1)?,
                }))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.extend(gone);
        out.sort_by_key(|c| c.version());
        out.truncate(limit.max(0) as usize);
        Ok(out)
    }

    /// How many changes to `embedder`'s vectors come after `mark`.
    pub fn changes_after(&self, embedder: &EmbedderId, mark: i64) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM embeddings WHERE embedder = ?1 AND seq > ?2)
                  + (SELECT COUNT(*) FROM tombstones WHERE embedder = ?1 AND seq > ?2)",
            params![embedder.as_str(), mark],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// The vector of `asset` from `embedder` with its asset's metadata and version, if any.
    pub fn record(
        &self,
        embedder: &EmbedderId,
        asset: &str,
    ) -> Result<Option<crate::domain::index::VectorRecord>> {
        Ok(self
            .conn
            .query_row(
                "SELECT a.id, a.objective, a.node, a.kpi, e.vector, e.seq FROM embeddings e
                 JOIN assets a ON a.id = e.asset_id WHERE e.embedder = ?1 AND e.asset_id = ?2",
                params![embedder.as_str(), asset],
                row_to_record,
            )
            .optional()?)
    }

    /// The state of `embedder`'s vectors (all, or one digest bucket's), sorted by id: what a
    /// server index must also hold.
    pub fn doc_states(
        &self,
        embedder: &EmbedderId,
        bucket: Option<&str>,
    ) -> Result<Vec<crate::domain::index::DocState>> {
        let mut stmt = self.conn.prepare(
            "SELECT e.asset_id, e.seq, a.objective, a.node, a.kpi FROM embeddings e
             JOIN assets a ON a.id = e.asset_id
             WHERE e.embedder = ?1 AND (?2 IS NULL OR lower(substr(e.asset_id, 1, 2)) = ?2)
             ORDER BY e.asset_id",
        )?;
        let v = stmt
            .query_map(params![embedder.as_str(), bucket], |r| {
                Ok(crate::domain::index::DocState {
                    id: r.get(0)?,
                    version: r.get(1)?,
                    objective: r.get(2)?,
                    node: r.get(3)?,
                    kpi: r.get(4)?,
                    doc: None,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// The digest of `embedder`'s vectors.
    pub fn digest(&self, embedder: &EmbedderId) -> Result<Vec<crate::domain::index::DigestBucket>> {
        Ok(crate::domain::index::digest_of(
            &self.doc_states(embedder, None)?,
        ))
    }

    /// The dimension of `embedder`'s vectors (None: the library has none).
    pub fn vector_dim(&self, embedder: &EmbedderId) -> Result<Option<usize>> {
        Ok(self
            .conn
            .query_row(
                "SELECT dim FROM embeddings WHERE embedder = ?1 LIMIT 1",
                params![embedder.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .and_then(|d| usize::try_from(d).ok()))
    }

    /// Gives one vector a new version above `above` (a server holds a newer one the library
    /// never wrote; the library's is the truth and must win).
    pub fn bump_vector(&self, embedder: &EmbedderId, asset: &str, above: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        // A version far above the feed's (a document edited by hand on the server) is not
        // followed past 2^52: versions stay exact as JSON numbers and never overflow.
        tx.execute(
            "UPDATE feed SET seq = max(seq, ?1) + 1 WHERE id = 1",
            params![above.min(1 << 52)],
        )?;
        tx.execute(
            "UPDATE embeddings SET seq = (SELECT seq FROM feed WHERE id = 1) WHERE embedder = ?1 AND asset_id = ?2",
            params![embedder.as_str(), asset],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The library's random id (server indexes carry it, so two libraries never share one).
    pub fn library_id(&self) -> Result<String> {
        Ok(self.conn.query_row(
            "SELECT value FROM library_meta WHERE key = 'library_id'",
            [],
            |r| r.get(0),
        )?)
    }

    /// A server index's high-water mark (0: nothing pushed yet).
    pub fn mark(&self, backend: &str, index: &str) -> Result<i64> {
        Ok(self
            .conn
            .query_row(
                "SELECT mark FROM index_marks WHERE backend = ?1 AND index_name = ?2",
                params![backend, index],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Moves a server index's mark (never backwards unless `reset`).
    pub fn set_mark(
        &self,
        backend: &str,
        index: &str,
        embedder: &EmbedderId,
        mark: i64,
        reset: bool,
    ) -> Result<()> {
        let sql = if reset {
            "INSERT INTO index_marks (backend, index_name, embedder, mark, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(backend, index_name) DO UPDATE SET mark = excluded.mark, embedder = excluded.embedder, updated_at = excluded.updated_at"
        } else {
            "INSERT INTO index_marks (backend, index_name, embedder, mark, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(backend, index_name) DO UPDATE SET mark = max(mark, excluded.mark), embedder = excluded.embedder, updated_at = excluded.updated_at"
        };
        self.conn
            .execute(sql, params![backend, index, embedder.as_str(), mark, now()])?;
        Ok(())
    }

    /// Every file path the assets hold (stored originals and thumbnails).
    pub fn asset_file_paths(&self) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT stored_path FROM assets UNION SELECT thumbnail_path FROM assets")?;
        let v = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// How many assets have a vector from `embedder`.
    pub fn vector_count(&self, embedder: &EmbedderId) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM embeddings WHERE embedder = ?1",
            params![embedder.as_str()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Embedder ids present, with their vector counts.
    pub fn embedder_counts(&self) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT embedder, COUNT(*) FROM embeddings GROUP BY embedder ORDER BY embedder",
        )?;
        let v = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    pub fn stats(&self) -> Result<LibraryStats> {
        let group = |col: &str| -> Result<Vec<(String, u64)>> {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {col}, COUNT(*) FROM assets GROUP BY {col} ORDER BY {col}"
            ))?;
            let v = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(v)
        };
        let (bytes, with_caption, borrowing): (i64, i64, i64) = self.conn.query_row(
            "SELECT COALESCE(SUM(byte_size), 0), COUNT(caption),
                    COALESCE(SUM(json_array_length(description, '$.inferred.words') > 0), 0)
             FROM assets",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let last_ingest = self
            .conn
            .query_row(
                "SELECT finished_at FROM ingest_jobs WHERE status = 'done' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(LibraryStats {
            assets: self.count()?,
            by_objective: group("objective")?,
            by_node: group("node")?,
            embeddings: self.embedder_counts()?,
            bytes: bytes as u64,
            with_caption: with_caption as u64,
            borrowing: borrowing as u64,
            last_ingest,
        })
    }

    pub fn start_ingest_job(&self, root: &str, manifest: Option<&str>) -> Result<i64> {
        self.start_ingest_job_with(root, manifest, |_| Ok(()))
            .map(|(id, ())| id)
    }

    /// Records a running ingest job and calls `claim` with its id before anyone else can see
    /// the row (one transaction), so the job's liveness lock exists whenever the row does.
    pub fn start_ingest_job_with<T>(
        &self,
        root: &str,
        manifest: Option<&str>,
        claim: impl FnOnce(i64) -> Result<T>,
    ) -> Result<(i64, T)> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO ingest_jobs (root, manifest, started_at, status) VALUES (?1, ?2, ?3, 'running')",
            params![root, manifest, now()],
        )?;
        let id = tx.last_insert_rowid();
        let claimed = claim(id)?;
        tx.commit()?;
        Ok((id, claimed))
    }

    /// The status an ingest job has (`running`, `done`, `failed`, `cancelled`, `interrupted`).
    pub fn ingest_job_status(&self, id: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT status FROM ingest_jobs WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn finish_ingest_job(&self, id: i64, status: &str, report: &impl Serialize) -> Result<()> {
        self.conn.execute(
            "UPDATE ingest_jobs SET finished_at = ?2, status = ?3, report = ?4 WHERE id = ?1",
            params![id, now(), status, serde_json::to_string(report)?],
        )?;
        Ok(())
    }

    /// Ingest jobs that never finished (the process died): reported so the user knows a re-run
    /// completes them.
    pub fn unfinished_ingest_jobs(&self) -> Result<Vec<(i64, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, root, started_at FROM ingest_jobs WHERE status = 'running' ORDER BY id",
        )?;
        let v = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// Marks one job interrupted if it is still recorded as running (a job that finished in
    /// the meantime keeps its status). True when it was marked.
    pub fn mark_ingest_job_interrupted(&self, id: i64) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE ingest_jobs SET status = 'interrupted' WHERE id = ?1 AND status = 'running'",
            params![id],
        )? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_rfc3339() {
        let n = now();
        assert_eq!(n.len(), 20);
        assert!(n.starts_with("20") && n.ends_with('Z'));
    }

    #[test]
    fn migrations_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db.sqlite3");
        assert_eq!(
            Store::open(&p).unwrap().schema_version().unwrap(),
            schema::MIGRATIONS.len() as i64
        );
        assert_eq!(
            Store::open(&p).unwrap().schema_version().unwrap(),
            schema::MIGRATIONS.len() as i64
        );
    }

    /// A database at `path` as migration `version` left it, with `rows` (SQL) written into it.
    fn database_at(path: &Path, version: usize, rows: &str) {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        for (i, sql) in schema::MIGRATIONS.iter().take(version).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64)
                .unwrap();
        }
        conn.execute_batch(rows).unwrap();
    }

    #[test]
    fn migration_5_carries_over_earlier_prompt_tokens_and_generations() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db.sqlite3");
        database_at(
            &p,
            4,
            r#"
                INSERT INTO campaigns (id, name, brief, objective, node, created_at, updated_at)
                    VALUES ('c1', 'n', 'b', 'likes', 'followers', 't', 't');
                INSERT INTO prompt_versions (campaign_id, source, model, reasoning, prompt, negative_prompt, refs, flags, created_at, usage)
                    VALUES ('c1', 'ai', 'bedrock/eu.amazon.nova-pro-v1:0 (language model)', '', 'p', '', '[]', '[]', 't1', '{"input":812,"output":143}'),
                           ('c1', 'ai', 'local/composer (deterministic template composer)', '', 'p', '', '[]', '[]', 't2', NULL),
                           ('c1', 'user', 'user', '', 'p', '', '[]', '[]', 't3', NULL);
                INSERT INTO generations (campaign_id, prompt_version_id, model, request, created_at)
                    VALUES ('c1', 1, 'amazon.nova-canvas-v1:0', '{"params":{"width":1280,"height":720,"quality":"premium"}}', 't4');
                INSERT INTO generated_images (id, generation_id, campaign_id, path, seed, refs, created_at)
                    VALUES ('i1', 1, 'c1', 'p1', 1, '[]', 't4'), ('i2', 1, 'c1', 'p2', 1, '[]', 't4');
            "#,
        );
        let store = Store::open(&p).unwrap();
        let calls = store.model_calls(Some("c1")).unwrap();
        assert_eq!(calls.len(), 2, "{calls:?}");
        let (what, prompt) = &calls[0];
        assert_eq!(what, "prompt version 1");
        assert_eq!(
            (
                prompt.model.as_str(),
                prompt.base_model.as_str(),
                prompt.input_tokens,
                prompt.output_tokens
            ),
            ("eu.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", 812, 143)
        );
        let (what, generation) = &calls[1];
        assert_eq!(what, "generation 1");
        assert_eq!(
            (
                generation.images,
                generation.image_pixels,
                generation.premium
            ),
            (2, 1280 * 720, true)
        );
    }

    #[test]
    fn a_run_stored_before_migration_7_reads_as_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db.sqlite3");
        database_at(
            &p,
            6,
            r#"
                INSERT INTO campaigns (id, name, brief, objective, node, created_at, updated_at)
                    VALUES ('c1', 'n', 'b', 'likes', 'followers', 't', 't');
                INSERT INTO recommendation_runs (campaign_id, query, k, kpi_weight, embedder, hits, created_at)
                    VALUES ('c1', 'b', 8, 0.3, 'local/multilingual-e5-small-q4/desc-v1', '[]', 't');
            "#,
        );
        let store = Store::open(&p).unwrap();
        let runs = store.runs("c1").unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].searched_as, None);
    }

    #[test]
    fn a_run_whose_searched_as_is_unreadable_still_reads_with_it_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite3")).unwrap();
        store
            .conn
            .execute_batch(
                r#"
                INSERT INTO campaigns (id, name, brief, objective, node, created_at, updated_at)
                    VALUES ('c1', 'n', 'b', 'likes', 'followers', 't', 't');
                INSERT INTO recommendation_runs (campaign_id, query, k, kpi_weight, embedder, hits, created_at, searched_as)
                    VALUES ('c1', 'b', 8, 0.3, 'local/multilingual-e5-small-q4/desc-v1', '[]', 't', '{"guessed":1}');
                "#,
            )
            .unwrap();
        let runs = store.runs("c1").unwrap();
        assert_eq!((runs.len(), runs[0].searched_as.clone()), (1, None));
    }

    #[test]
    fn a_runs_translation_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite3")).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO campaigns (id, name, brief, objective, node, created_at, updated_at)
                    VALUES ('c1', 'n', 'b', 'likes', 'followers', 't', 't');",
            )
            .unwrap();
        let searched_as = crate::domain::SearchedAs::Translated(crate::domain::Translation {
            from: "Spanish".into(),
            by: "Apertium spa-eng".into(),
            text: "Family picnic".into(),
        });
        let run = crate::domain::RecommendationRun {
            id: 0,
            campaign_id: "c1".into(),
            query: "Pícnic familiar".into(),
            k: 8,
            kpi_weight: 0.3,
            embedder: "local/multilingual-e5-small-q4/desc-v1".into(),
            hits: Vec::new(),
            created_at: now(),
            searched_as: Some(searched_as.clone()),
        };
        store.insert_run(&run).unwrap();
        assert_eq!(store.runs("c1").unwrap()[0].searched_as, Some(searched_as));
    }

    fn asset(id: &str, node: &str) -> Asset {
        Asset {
            created_at: now(),
            updated_at: now(),
            ..Asset::for_test(id, "likes", node)
        }
    }

    fn vecs(e: &EmbedderId) -> Vec<(EmbedderId, Vec<f32>, String)> {
        vec![(e.clone(), vec![1.0, 0.0], "doc".into())]
    }

    #[test]
    fn every_new_vector_takes_the_next_feed_number() {
        let mut s = Store::open_in_memory().unwrap();
        let e = EmbedderId::new("e");
        s.put_asset(&asset("aa", "followers"), "h", &vecs(&e), None)
            .unwrap();
        s.put_asset(&asset("bb", "followers"), "h", &vecs(&e), None)
            .unwrap();
        let c = s.changes(&e, 0, 10).unwrap();
        assert_eq!(
            c.iter()
                .map(|c| (c.id().to_string(), c.version()))
                .collect::<Vec<_>>(),
            vec![("aa".to_string(), 1), ("bb".to_string(), 2)]
        );
        assert_eq!(s.feed_head().unwrap(), 2);
    }

    #[test]
    fn a_metadata_change_bumps_the_assets_vectors() {
        let mut s = Store::open_in_memory().unwrap();
        let e = EmbedderId::new("e");
        s.put_asset(&asset("aa", "followers"), "h", &vecs(&e), None)
            .unwrap();
        s.put_asset(&asset("aa", "followers"), "h", &[], None)
            .unwrap();
        assert_eq!(s.changes(&e, 1, 10).unwrap().len(), 0, "nothing changed");
        s.put_asset(&asset("aa", "customers"), "h2", &[], None)
            .unwrap();
        let c = s.changes(&e, 1, 10).unwrap();
        assert_eq!(c.len(), 1);
        match &c[0] {
            crate::domain::index::Change::Upsert(r) => assert_eq!(r.meta.node, "customers"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_removed_asset_leaves_a_tombstone_with_its_own_number() {
        let mut s = Store::open_in_memory().unwrap();
        let e = EmbedderId::new("e");
        s.put_asset(&asset("aa", "followers"), "h", &vecs(&e), None)
            .unwrap();
        s.remove(&["aa".to_string()]).unwrap();
        let c = s.changes(&e, 1, 10).unwrap();
        assert_eq!(
            c,
            vec![crate::domain::index::Change::Remove(
                crate::domain::index::Tombstone {
                    id: "aa".into(),
                    version: 2
                }
            )]
        );
        // Back again: the tombstone goes, the vector is new.
        s.put_asset(&asset("aa", "followers"), "h", &vecs(&e), None)
            .unwrap();
        let c = s.changes(&e, 0, 10).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].version(), 3);
    }

    #[test]
    fn a_replaced_manifest_id_tombstones_the_old_asset() {
        let mut s = Store::open_in_memory().unwrap();
        let e = EmbedderId::new("e");
        s.put_asset(&asset("aa", "followers"), "h", &vecs(&e), None)
            .unwrap();
        s.put_asset(&asset("bb", "followers"), "h", &vecs(&e), Some("aa"))
            .unwrap();
        let c = s.changes(&e, 1, 10).unwrap();
        let kinds: Vec<(String, bool)> = c
            .iter()
            .map(|c| {
                (
                    c.id().to_string(),
                    matches!(c, crate::domain::index::Change::Remove(_)),
                )
            })
            .collect();
        assert_eq!(kinds, vec![("aa".into(), true), ("bb".into(), false)]);
    }

    #[test]
    fn a_mark_never_moves_back_unless_reset() {
        let s = Store::open_in_memory().unwrap();
        let e = EmbedderId::new("e");
        s.set_mark("b", "i", &e, 10, false).unwrap();
        s.set_mark("b", "i", &e, 4, false).unwrap();
        assert_eq!(s.mark("b", "i").unwrap(), 10);
        s.set_mark("b", "i", &e, 4, true).unwrap();
        assert_eq!(s.mark("b", "i").unwrap(), 4);
    }

    fn file_bytes(p: &Path) -> Vec<u8> {
        std::fs::read(p).unwrap()
    }

    #[test]
    fn another_programs_database_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("library.sqlite3");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('x');")
                .unwrap();
        }
        let before = file_bytes(&p);
        let e = Store::open(&p).err().unwrap().to_string();
        assert!(
            e.contains("not a campaign-studio library") && e.contains("notes"),
            "{e}"
        );
        assert_eq!(file_bytes(&p), before, "byte for byte unchanged");
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("library.sqlite3");
        drop(Store::open(&p).unwrap());
        {
            let c = Connection::open(&p).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
            // Back to a plain journal so the file is complete on its own.
            c.pragma_update(None, "journal_mode", "DELETE").unwrap();
        }
        let before = file_bytes(&p);
        let e = Store::open(&p).err().unwrap().to_string();
        assert!(
            e.contains("version 99") && e.contains(&schema::MIGRATIONS.len().to_string()),
            "{e}"
        );
        assert_eq!(file_bytes(&p), before);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("library.sqlite3");
        std::fs::write(
            &p,
            b"this is a text file, not SQLite, padded to look like a header..",
        )
        .unwrap();
        let before = file_bytes(&p);
        let e = Store::open(&p).err().unwrap().to_string();
        assert!(
            e.contains("cannot be read as a campaign-studio library"),
            "{e}"
        );
        assert_eq!(file_bytes(&p), before);
    }

    #[test]
    fn blobs_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(blob_to_vector(&vector_to_blob(&v)), v);
    }
}
