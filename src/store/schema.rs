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
    // 2: campaigns and every step they go through.
    r#"
    CREATE TABLE campaigns (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        brief      TEXT NOT NULL,
        objective  TEXT NOT NULL,
        node       TEXT NOT NULL,
        brand      TEXT,                          -- JSON BrandKit
        selected   TEXT NOT NULL DEFAULT '[]',    -- JSON [asset id]
        step       TEXT NOT NULL DEFAULT 'brief',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE recommendation_runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        query       TEXT NOT NULL,
        k           INTEGER NOT NULL,
        kpi_weight  REAL NOT NULL,
        embedder    TEXT NOT NULL,
        hits        TEXT NOT NULL,                -- JSON [ReferenceHit]
        created_at  TEXT NOT NULL
    );
    CREATE TABLE prompt_versions (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign_id     TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        source          TEXT NOT NULL,            -- ai | user
        model           TEXT NOT NULL,
        reasoning       TEXT NOT NULL,
        prompt          TEXT NOT NULL,
        negative_prompt TEXT NOT NULL,
        instruction     TEXT,
        refs            TEXT NOT NULL,            -- JSON [asset id]
        flags           TEXT NOT NULL,            -- JSON [string]
        created_at      TEXT NOT NULL
    );
    CREATE TABLE generations (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign_id       TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        prompt_version_id INTEGER NOT NULL REFERENCES prompt_versions(id),
        model             TEXT NOT NULL,
        request           TEXT NOT NULL,          -- JSON GenerationRequest
        created_at        TEXT NOT NULL
    );
    CREATE TABLE generated_images (
        id            TEXT PRIMARY KEY,           -- sha256 of the PNG
        generation_id INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
        campaign_id   TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        path          TEXT NOT NULL,
        seed          INTEGER NOT NULL,
        refs          TEXT NOT NULL,              -- JSON [asset id]
        novelty       TEXT,                       -- JSON Novelty
        kpi           REAL,                       -- real results, recorded later
        created_at    TEXT NOT NULL
    );
    "#,
    // 3: the studio's view of a session (pane, cursors, drafts, form), JSON, restored on reopen.
    r#"
    ALTER TABLE campaigns ADD COLUMN view TEXT;
    "#,
    // 4: tokens each prompt-writing call used (JSON TokenUsage), for the cost meter.
    r#"
    ALTER TABLE prompt_versions ADD COLUMN usage TEXT;
    "#,
];
