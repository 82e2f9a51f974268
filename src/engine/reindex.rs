//! `library reindex --embedder ID`: gives every asset a vector from another embedder, so the
//! library can switch embedders without a re-ingest. Resumable: assets that already have a
//! vector from that embedder are skipped, and each vector is written as soon as it exists.
//! A bad item fails with its reason; the rest go on.
use serde::Serialize;

use crate::Result;
use crate::domain::{Asset, SearchFilter};
use crate::engine::Library;
use crate::engine::ingest::ItemFailure;
use crate::services::{Embedder, TextRole};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReindexReport {
    pub embedder: String,
    pub embedded: usize,
    /// Already had a vector from this embedder.
    pub skipped: usize,
    pub failed: Vec<ItemFailure>,
    /// Photos nobody described whose vector now borrows from similar described ones.
    #[serde(skip_serializing_if = "is_zero")]
    pub inferred: usize,
    /// With a server index and inline sync: why the new vectors are not on the server yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsynced: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What a text embedder embeds for an asset: the document an earlier text embedder used, else
/// the stored description with its elements.
fn document(lib: &Library, a: &Asset) -> Result<String> {
    if let Some(doc) = lib.store.document_of(&a.id)? {
        return Ok(doc);
    }
    let d = &a.description;
    Ok(if d.elements.is_empty() {
        d.description.clone()
    } else {
        format!("{} Elements: {}.", d.description, d.elements.join(", "))
    })
}

fn embed_one(
    lib: &Library,
    e: &dyn Embedder,
    a: &Asset,
) -> std::result::Result<(Vec<f32>, String), String> {
    if e.embeds_images() {
        let img = crate::services::local::imaging::open_limited(
            std::path::Path::new(&a.stored_path),
            crate::services::local::imaging::ImageLimits::of(&lib.config.library),
        )
        .map_err(|err| err.to_string())?;
        let v = e
            .embed_image(&img)
            .ok_or("the embedder does not embed images")?
            .map_err(|err| err.to_string())?;
        return Ok((v, "image".into()));
    }
    let doc = document(lib, a).map_err(|err| err.to_string())?;
    let v = e
        .embed_texts(std::slice::from_ref(&doc), TextRole::Document)
        .map_err(|err| err.to_string())?
        .pop()
        .ok_or("the embedder returned no vector")?;
    let v =
        crate::services::local::label_space::indexed_vector(e, &a.description, &a.model_labels, v);

    Ok((v, doc))
}

/// Embeds every asset that has no vector from `embedder` yet. `progress(done, total)`.
pub fn reindex(
    lib: &Library,
    embedder: &dyn Embedder,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ReindexReport> {
    let total = lib.store.count()? as usize;
    let id = embedder.id().clone();
    let mut report = ReindexReport {
        embedder: id.to_string(),
        ..Default::default()
    };
    let mut done = 0;
    let page = 200;
    let mut offset = 0;
    loop {
        let assets = lib.store.list(&SearchFilter::default(), page, offset)?;
        if assets.is_empty() {
            break;
        }
        offset += assets.len();
        for a in assets {
            done += 1;
            if lib
                .store
                .embedders_of(&a.id)?
                .iter()
                .any(|e| *e == id.as_str())
            {
                report.skipped += 1;
            } else {
                let made = embed_one(lib, embedder, &a);
                lib.store_model_calls(None, &format!("reindex {}", asset_label(&a)))?;
                match made {
                    Ok((v, source)) => {
                        lib.store.put_vector(&a.id, &id, &v, &source)?;
                        report.embedded += 1;
                    }
                    Err(reason) => report.failed.push(ItemFailure {
                        item: a.external_id.clone().unwrap_or_else(|| a.file.clone()),
                        reason,
                    }),
                }
            }
            progress(done, total);
        }
    }
    // Undescribed photos' vectors from this embedder borrow from similar described ones: a
    // full pass whatever changed (another embedder's pass may have moved their neighbours).
    let r = crate::engine::inferred::refresh(lib, embedder)?;
    report.inferred = r.refreshed;
    report.failed.extend(r.failed);
    if report.embedded + report.inferred > 0 {
        report.unsynced = lib.sync_inline_for(embedder.id());
    }
    Ok(report)
}

/// How the cost meter names a library asset: its manifest id, else the start of its hash.
pub fn asset_label(a: &crate::domain::Asset) -> String {
    a.external_id
        .clone()
        .unwrap_or_else(|| a.id.chars().take(12).collect())
}
