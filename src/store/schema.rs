//! Numbered schema migrations. `PRAGMA user_version` records how many have run; each runs in
//! its own transaction. Never edit a released migration: append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: the reference library.
    r#"
    CREATE TABLE assets (
        id             TEXT PRIMARY KEY,          -- sha256 of the file's bytes
        external_id    TEXT UNIQUE,               -- the manifest's id
        file           TEXT NOT NULL,             -- as given, relative to the ingested folder
        stored_path    TEXT NOT NULL,
        thumbnail_path TEXT NOT NULL,
        byte_size      INTEGER NOT NULL,
        format         TEXT NOT NULL,
        width          INTEGER NOT NULL,
        height         INTEGER NOT NULL,
        phash          TEXT NOT NULL,
        objective      TEXT NOT NULL,
        node           TEXT NOT NULL,
        kpi            REAL,                      -- NULL when unknown
        caption        TEXT,
        description    TEXT NOT NULL,             -- JSON Description
        model_labels   TEXT NOT NULL,             -- JSON [Label]
        licence        TEXT,
        attribution    TEXT,
        metadata       TEXT NOT NULL,             -- JSON of fields we do not model
        meta_hash      TEXT NOT NULL,             -- what the metadata was when last written
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
    );
    CREATE INDEX assets_filter ON assets(objective, node);
    CREATE TABLE embeddings (
        asset_id TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
        embedder TEXT NOT NULL,
        dim      INTEGER NOT NULL,
        vector   BLOB NOT NULL,                   -- little-endian f32 x dim
        source   TEXT NOT NULL,                   -- what was embedded (document text, or "image")
        PRIMARY KEY (asset_id, embedder)
    );
    CREATE INDEX embeddings_by_embedder ON embeddings(embedder);
    CREATE TABLE ingest_jobs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        root        TEXT NOT NULL,
        manifest    TEXT,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        status      TEXT NOT NULL,                -- running | done | failed
        report      TEXT                          -- JSON IngestReport
    );
    "#,
];
