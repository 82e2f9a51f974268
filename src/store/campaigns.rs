//! Campaigns and their steps in the store.
use rusqlite::{OptionalExtension, params};

use crate::domain::{Campaign, CampaignStep, PromptSource, PromptVersion, RecommendationRun};
use crate::store::{Store, now};
use crate::{Error, Result};

const CAMPAIGN_COLUMNS: &str =
    "id, name, brief, objective, node, brand, selected, step, created_at, updated_at";

fn json_err(idx: usize, e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
}

fn row_to_campaign(r: &rusqlite::Row<'_>) -> rusqlite::Result<Campaign> {
    let brand: Option<String> = r.get(5)?;
    let selected: String = r.get(6)?;
    Ok(Campaign {
        id: r.get(0)?,
        name: r.get(1)?,
        brief: r.get(2)?,
        objective: r.get(3)?,
        node: r.get(4)?,
        brand: brand
            .map(|b| serde_json::from_str(&b))
            .transpose()
            .map_err(|e| json_err(5, e))?,
        selected: serde_json::from_str(&selected).map_err(|e| json_err(6, e))?,
        step: CampaignStep::parse(&r.get::<_, String>(7)?),
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

fn row_to_prompt(r: &rusqlite::Row<'_>) -> rusqlite::Result<PromptVersion> {
    let source: String = r.get(2)?;
    Ok(PromptVersion {
        id: r.get(0)?,
        campaign_id: r.get(1)?,
        source: if source == "user" {
            PromptSource::User
        } else {
            PromptSource::Ai
        },
        model: r.get(3)?,
        reasoning: r.get(4)?,
        prompt: r.get(5)?,
        negative_prompt: r.get(6)?,
        instruction: r.get(7)?,
        references: serde_json::from_str(&r.get::<_, String>(8)?).map_err(|e| json_err(8, e))?,
        flags: serde_json::from_str(&r.get::<_, String>(9)?).map_err(|e| json_err(9, e))?,
        created_at: r.get(10)?,
        usage: r
            .get::<_, Option<String>>(11)?
            .map(|u| serde_json::from_str(&u).map_err(|e| json_err(11, e)))
            .transpose()?,
    })
}

const PROMPT_COLUMNS: &str = "id, campaign_id, source, model, reasoning, prompt, negative_prompt, instruction, refs, flags, created_at, usage";

impl Store {
    pub fn insert_campaign(&self, c: &Campaign) -> Result<()> {
        self.conn.execute(
            &format!("INSERT INTO campaigns ({CAMPAIGN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![
                c.id,
                c.name,
                c.brief,
                c.objective,
                c.node,
                c.brand.as_ref().map(serde_json::to_string).transpose()?,
                serde_json::to_string(&c.selected)?,
                c.step.as_str(),
                c.created_at,
                c.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn campaign(&self, id: &str) -> Result<Option<Campaign>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1"),
                params![id],
                row_to_campaign,
            )
            .optional()?)
    }

    /// A campaign by id, unique id prefix, or exact name.
    pub fn resolve_campaign(&self, key: &str) -> Result<Campaign> {
        if let Some(c) = self.campaign(key)? {
            return Ok(c);
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id LIKE ?1 || '%' OR name = ?1 LIMIT 2"
        ))?;
        let found: Vec<Campaign> = stmt
            .query_map(params![key], row_to_campaign)?
            .collect::<rusqlite::Result<_>>()?;
        match found.len() {
            1 => Ok(found.into_iter().next().expect("one row")),
            0 => Err(Error::NotFound(format!(
                "no campaign with id or name '{key}'"
            ))),
            _ => Err(Error::Invalid(format!(
                "'{key}' matches several campaigns; give more of the id"
            ))),
        }
    }

    pub fn campaigns(&self) -> Result<Vec<Campaign>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY updated_at DESC, id"
        ))?;
        let v = stmt
            .query_map([], row_to_campaign)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    pub fn rename_campaign(&self, id: &str, name: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE campaigns SET name = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, name, now()],
        )?;
        Ok(())
    }

    /// Deletes a campaign and everything it holds; returns the generated image paths so the
    /// caller can delete the files.
    pub fn delete_campaign(&mut self, id: &str) -> Result<Vec<String>> {
        let tx = self.conn.transaction()?;
        let paths: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT path FROM generated_images WHERE campaign_id = ?1")?;
            stmt.query_map(params![id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "DELETE FROM generated_images WHERE campaign_id = ?1",
            params![id],
        )?;
        tx.execute(
            "DELETE FROM generations WHERE campaign_id = ?1",
            params![id],
        )?;
        tx.execute("DELETE FROM campaigns WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(paths)
    }

    /// The studio's saved view of a campaign (JSON), written by the studio's persistence actor.
    pub fn set_view(&self, id: &str, view: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE campaigns SET view = ?2 WHERE id = ?1",
            params![id, view],
        )?;
        Ok(())
    }

    pub fn view(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT view FROM campaigns WHERE id = ?1", [id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .flatten())
    }

    /// Records the user's references, and moves the step forward (never back).
    pub fn set_selection(&self, id: &str, selected: &[String]) -> Result<()> {
        self.conn.execute(
            "UPDATE campaigns SET selected = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, serde_json::to_string(selected)?, now()],
        )?;
        Ok(())
    }

    pub fn advance_step(&self, id: &str, step: CampaignStep) -> Result<()> {
        let current = self
            .campaign(id)?
            .ok_or_else(|| Error::NotFound(format!("campaign {id}")))?
            .step;
        let order = |s: CampaignStep| s as u8;
        if order(step) > order(current) {
            self.conn.execute(
                "UPDATE campaigns SET step = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, step.as_str(), now()],
            )?;
        } else {
            self.touch_campaign(id)?;
        }
        Ok(())
    }

    pub fn touch_campaign(&self, id: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE campaigns SET updated_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        Ok(())
    }

    pub fn insert_run(&self, run: &RecommendationRun) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO recommendation_runs (campaign_id, query, k, kpi_weight, embedder, hits, created_at, searched_as)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                run.campaign_id,
                run.query,
                run.k as i64,
                run.kpi_weight,
                run.embedder,
                serde_json::to_string(&run.hits)?,
                run.created_at,
                run.searched_as
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()?
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn runs(&self, campaign_id: &str) -> Result<Vec<RecommendationRun>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, campaign_id, query, k, kpi_weight, embedder, hits, created_at, searched_as
             FROM recommendation_runs WHERE campaign_id = ?1 ORDER BY id",
        )?;
        let v = stmt
            .query_map(params![campaign_id], |r| {
                Ok(RecommendationRun {
                    id: r.get(0)?,
                    campaign_id: r.get(1)?,
                    query: r.get(2)?,
                    k: r.get::<_, i64>(3)? as usize,
                    kpi_weight: r.get(4)?,
                    embedder: r.get(5)?,
                    hits: serde_json::from_str(&r.get::<_, String>(6)?)
                        .map_err(|e| json_err(6, e))?,
                    created_at: r.get(7)?,
                    // Only says how the hits were found: a value this build cannot read
                    // (corrupt, or from a newer build) reads as not recorded rather than
                    // closing the campaign.
                    searched_as: r.get::<_, Option<String>>(8)?.and_then(|j| {
                        serde_json::from_str(&j)
                            .inspect_err(|e| {
                                tracing::warn!(error = %e, "a run's searched_as was not readable")
                            })
                            .ok()
                    }),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    pub fn insert_prompt_version(&self, p: &PromptVersion) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO prompt_versions (campaign_id, source, model, reasoning, prompt, negative_prompt, instruction, refs, flags, created_at, usage)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                p.campaign_id,
                match p.source {
                    PromptSource::Ai => "ai",
                    PromptSource::User => "user",
                },
                p.model,
                p.reasoning,
                p.prompt,
                p.negative_prompt,
                p.instruction,
                serde_json::to_string(&p.references)?,
                serde_json::to_string(&p.flags)?,
                p.created_at,
                p.usage.map(|u| serde_json::to_string(&u)).transpose()?
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn prompt_versions(&self, campaign_id: &str) -> Result<Vec<PromptVersion>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {PROMPT_COLUMNS} FROM prompt_versions WHERE campaign_id = ?1 ORDER BY id"
        ))?;
        let v = stmt
            .query_map(params![campaign_id], row_to_prompt)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    pub fn prompt_version(&self, id: i64) -> Result<Option<PromptVersion>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {PROMPT_COLUMNS} FROM prompt_versions WHERE id = ?1"),
                params![id],
                row_to_prompt,
            )
            .optional()?)
    }
}

const IMAGE_COLUMNS: &str = "i.id, i.generation_id, i.campaign_id, i.path, i.seed, g.model, g.prompt_version_id, g.request, i.refs, i.novelty, i.kpi, i.created_at";

fn row_to_image(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::domain::GeneratedImage> {
    let novelty: Option<String> = r.get(9)?;
    Ok(crate::domain::GeneratedImage {
        id: r.get(0)?,
        generation_id: r.get(1)?,
        campaign_id: r.get(2)?,
        path: r.get(3)?,
        seed: r.get::<_, i64>(4)? as u32,
        model: r.get(5)?,
        prompt_version_id: r.get(6)?,
        request: serde_json::from_str(&r.get::<_, String>(7)?).map_err(|e| json_err(7, e))?,
        references: serde_json::from_str(&r.get::<_, String>(8)?).map_err(|e| json_err(8, e))?,
        novelty: novelty
            .map(|n| serde_json::from_str(&n))
            .transpose()
            .map_err(|e| json_err(9, e))?,
        kpi: r.get(10)?,
        created_at: r.get(11)?,
    })
}

impl Store {
    /// Stores a generation call and its images in one transaction.
    pub fn insert_generation(
        &mut self,
        campaign_id: &str,
        prompt_version_id: i64,
        model: &str,
        request: &crate::domain::GenerationRequest,
        images: &mut [crate::domain::GeneratedImage],
    ) -> Result<i64> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO generations (campaign_id, prompt_version_id, model, request, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![campaign_id, prompt_version_id, model, serde_json::to_string(request)?, now()],
        )?;
        let gid = tx.last_insert_rowid();
        for im in images.iter_mut() {
            im.generation_id = gid;
            tx.execute(
                "INSERT OR REPLACE INTO generated_images (id, generation_id, campaign_id, path, seed, refs, novelty, kpi, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)",
                params![
                    im.id,
                    gid,
                    campaign_id,
                    im.path,
                    im.seed as i64,
                    serde_json::to_string(&im.references)?,
                    im.novelty.as_ref().map(serde_json::to_string).transpose()?,
                    im.created_at
                ],
            )?;
        }
        tx.commit()?;
        Ok(gid)
    }

    pub fn generated_images(
        &self,
        campaign_id: &str,
    ) -> Result<Vec<crate::domain::GeneratedImage>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {IMAGE_COLUMNS} FROM generated_images i JOIN generations g ON g.id = i.generation_id
             WHERE i.campaign_id = ?1 ORDER BY i.generation_id, i.seed, i.id"
        ))?;
        let v = stmt
            .query_map(params![campaign_id], row_to_image)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(v)
    }

    /// A generated image by (a unique prefix of) its id.
    pub fn resolve_generated_image(&self, key: &str) -> Result<crate::domain::GeneratedImage> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {IMAGE_COLUMNS} FROM generated_images i JOIN generations g ON g.id = i.generation_id
             WHERE i.id LIKE ?1 || '%' LIMIT 2"
        ))?;
        let found: Vec<crate::domain::GeneratedImage> = stmt
            .query_map(params![key.to_lowercase()], row_to_image)?
            .collect::<rusqlite::Result<_>>()?;
        match found.len() {
            1 if key.len() >= 6 => Ok(found.into_iter().next().expect("one row")),
            0 => Err(Error::NotFound(format!(
                "no generated image with id '{key}'"
            ))),
            _ => Err(Error::Invalid(format!(
                "'{key}' matches several generated images or is shorter than 6 characters"
            ))),
        }
    }

    pub fn set_image_kpi(&self, image_id: &str, kpi: f64) -> Result<()> {
        self.conn.execute(
            "UPDATE generated_images SET kpi = ?2 WHERE id = ?1",
            params![image_id, kpi],
        )?;
        Ok(())
    }
}

impl Store {
    /// Stores paid calls as made for `campaign` (None: the library), labelled `what`, in one
    /// transaction; returns their row ids.
    pub fn insert_model_calls(
        &self,
        campaign: Option<&str>,
        what: &str,
        calls: &[crate::domain::ModelCall],
    ) -> Result<Vec<i64>> {
        let at = now();
        let tx = self.conn.unchecked_transaction()?;
        let mut ids = Vec::with_capacity(calls.len());
        for c in calls {
            tx.execute(
                "INSERT INTO model_calls (campaign_id, what, job, model, base_model, region, input_tokens, output_tokens, images, withheld, image_pixels, premium, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    campaign,
                    what,
                    c.job,
                    c.model,
                    c.base_model,
                    c.region,
                    c.input_tokens as i64,
                    c.output_tokens as i64,
                    c.images as i64,
                    c.withheld as i64,
                    i64::try_from(c.image_pixels).unwrap_or(i64::MAX),
                    c.premium,
                    at
                ],
            )?;
            ids.push(tx.last_insert_rowid());
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Relabels stored calls (a generation gets its id once stored).
    pub fn label_model_calls(&self, ids: &[i64], what: &str) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for id in ids {
            tx.execute(
                "UPDATE model_calls SET what = ?2 WHERE id = ?1",
                params![id, what],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The paid calls of a campaign (None: the library's own), oldest first, with their labels.
    pub fn model_calls(
        &self,
        campaign: Option<&str>,
    ) -> Result<Vec<(String, crate::domain::ModelCall)>> {
        let mut stmt = self.conn.prepare(
            "SELECT what, job, model, base_model, region, input_tokens, output_tokens, images, withheld, image_pixels, premium
             FROM model_calls WHERE campaign_id IS ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![campaign], |r| {
            let n = |i: usize| -> rusqlite::Result<u32> {
                Ok(u32::try_from(r.get::<_, i64>(i)?.max(0)).unwrap_or(u32::MAX))
            };
            Ok((
                r.get::<_, String>(0)?,
                crate::domain::ModelCall {
                    job: r.get(1)?,
                    model: r.get(2)?,
                    base_model: r.get(3)?,
                    region: r.get(4)?,
                    input_tokens: n(5)?,
                    output_tokens: n(6)?,
                    images: n(7)?,
                    withheld: n(8)?,
                    image_pixels: u64::try_from(r.get::<_, i64>(9)?.max(0)).unwrap_or(0),
                    premium: r.get(10)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
