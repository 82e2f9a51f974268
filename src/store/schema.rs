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
    // 5: every paid model call, recorded when it returned (the cost meter sums these), with
    // the calls recorded before it (prompt versions' tokens, generations' images) carried over.
    r#"
    CREATE TABLE model_calls (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign_id   TEXT REFERENCES campaigns(id) ON DELETE CASCADE,  -- NULL: the library's
        what          TEXT NOT NULL,              -- "prompt version 3", "generation 2", an asset
        job           TEXT NOT NULL,              -- prompt | describe | embed-text | embed-image | translate | generate
        model         TEXT NOT NULL,              -- the id sent (profile, ARN)
        base_model    TEXT NOT NULL,              -- what prices it
        region        TEXT NOT NULL DEFAULT '',
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        images        INTEGER NOT NULL DEFAULT 0,
        withheld      INTEGER NOT NULL DEFAULT 0, -- images the content filter withheld
        image_pixels  INTEGER NOT NULL DEFAULT 0,
        premium       INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT NOT NULL
    );
    CREATE INDEX model_calls_by_campaign ON model_calls(campaign_id);
    INSERT INTO model_calls (campaign_id, what, job, model, base_model, input_tokens, output_tokens, created_at)
        SELECT campaign_id, 'prompt version ' || id, 'prompt', m,
               CASE WHEN substr(m, 1, instr(m, '.') - 1) IN ('us', 'us-gov', 'eu', 'apac', 'ca', 'jp', 'au', 'global')
                    THEN substr(m, instr(m, '.') + 1) ELSE m END,
               COALESCE(json_extract(usage, '$.input'), 0), COALESCE(json_extract(usage, '$.output'), 0), created_at
        FROM (SELECT id, campaign_id, usage, created_at,
                     CASE WHEN model LIKE 'bedrock/% %' THEN substr(model, 9, instr(model, ' ') - 9)
                          WHEN model LIKE 'bedrock/%' THEN substr(model, 9)
                          ELSE model END AS m
              FROM prompt_versions WHERE usage IS NOT NULL);
    INSERT INTO model_calls (campaign_id, what, job, model, base_model, images, image_pixels, premium, created_at)
        SELECT g.campaign_id, 'generation ' || g.id, 'generate', g.model, g.model,
               (SELECT count(*) FROM generated_images i WHERE i.generation_id = g.id),
               COALESCE(json_extract(g.request, '$.params.width') * json_extract(g.request, '$.params.height'), 0),
               COALESCE(json_extract(g.request, '$.params.quality') = 'premium', 0), g.created_at
        FROM generations g;
    "#,
    // 6: the change feed that server indexes follow. Every vector row carries a library-wide
    // sequence number set in the same transaction as the change (triggers, so no write path
    // can forget it): a new or re-embedded vector, and a change of its asset's objective, node
    // or KPI, take the next number; a deleted vector leaves a tombstone with its own. The
    // number is also the document version a server keeps. Each server index's high-water mark
    // is kept here; a random library id keeps two libraries out of each other's indexes.
    r#"
    CREATE TABLE feed (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
    INSERT INTO feed (id, seq) VALUES (1, 0);
    ALTER TABLE embeddings ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    UPDATE embeddings SET seq = rowid;
    UPDATE feed SET seq = COALESCE((SELECT MAX(seq) FROM embeddings), 0) WHERE id = 1;
    CREATE INDEX embeddings_feed ON embeddings(embedder, seq);
    CREATE TABLE tombstones (
        asset_id TEXT NOT NULL,
        embedder TEXT NOT NULL,
        seq      INTEGER NOT NULL,
        PRIMARY KEY (asset_id, embedder)
    );
    CREATE INDEX tombstones_feed ON tombstones(embedder, seq);
    CREATE TABLE index_marks (
        backend    TEXT NOT NULL,                 -- "opensearch <endpoint>"
        index_name TEXT NOT NULL,
        embedder   TEXT NOT NULL,
        mark       INTEGER NOT NULL,              -- every change up to it is on the server
        updated_at TEXT NOT NULL,
        PRIMARY KEY (backend, index_name)
    );
    CREATE TABLE library_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO library_meta (key, value) VALUES ('library_id', lower(hex(randomblob(16))));
    CREATE TRIGGER feed_embedding_insert AFTER INSERT ON embeddings BEGIN
        UPDATE feed SET seq = seq + 1 WHERE id = 1;
        UPDATE embeddings SET seq = (SELECT seq FROM feed WHERE id = 1) WHERE rowid = NEW.rowid;
        DELETE FROM tombstones WHERE asset_id = NEW.asset_id AND embedder = NEW.embedder;
    END;
    CREATE TRIGGER feed_embedding_update AFTER UPDATE OF dim, vector ON embeddings BEGIN
        UPDATE feed SET seq = seq + 1 WHERE id = 1;
        UPDATE embeddings SET seq = (SELECT seq FROM feed WHERE id = 1) WHERE rowid = NEW.rowid;
    END;
    CREATE TRIGGER feed_embedding_delete AFTER DELETE ON embeddings BEGIN
        UPDATE feed SET seq = seq + 1 WHERE id = 1;
        INSERT INTO tombstones (asset_id, embedder, seq)
            VALUES (OLD.asset_id, OLD.embedder, (SELECT seq FROM feed WHERE id = 1))
            ON CONFLICT(asset_id, embedder) DO UPDATE SET seq = excluded.seq;
    END;
    CREATE TRIGGER feed_asset_metadata AFTER UPDATE OF objective, node, kpi ON assets
        WHEN OLD.objective IS NOT NEW.objective OR OLD.node IS NOT NEW.node OR OLD.kpi IS NOT NEW.kpi
    BEGIN
        UPDATE feed SET seq = seq + 1 WHERE id = 1;
        UPDATE embeddings SET seq = (SELECT seq FROM feed WHERE id = 1) WHERE asset_id = NEW.id;
    END;
    "#,
    // 7: how each run's text query was brought to the library's English texts (JSON
    // SearchedAs: as written, moved by its language's offset, or translated); NULL for runs
    // stored before.
    r#"
    ALTER TABLE recommendation_runs ADD COLUMN searched_as TEXT;
    "#,
];
