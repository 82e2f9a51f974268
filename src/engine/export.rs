//! Export a campaign to a folder: the generated images, reference thumbnails, `campaign.json`
//! with every step and parameter, and a self-contained `index.html` contact sheet (images
//! embedded as data URIs, inline CSS, no network) written as well-formed XHTML.
use std::path::Path;

use base64::Engine as _;
use serde_json::json;

use crate::domain::Campaign;
use crate::engine::Library;
use crate::engine::prompt::escape;
use crate::services::local::imaging;
use crate::store::now;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExportReport {
    pub dir: String,
    pub images: usize,
    pub references: usize,
    pub prompt_versions: usize,
}

fn attr(s: &str) -> String {
    escape(s).replace('"', "&quot;")
}

/// A small JPEG of an image file, as a data URI.
fn data_uri(lib: &Library, path: &Path, px: u32) -> Result<String> {
    let img = imaging::open_limited(path, imaging::ImageLimits::of(&lib.config.library))?;
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 80);
    img.thumbnail(px, px)
        .to_rgb8()
        .write_with_encoder(enc)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(buf)
    ))
}

/// A text cell a spreadsheet will not run: one that starts like a formula (`=`, `+`, `-`, `@`,
/// tab, carriage return) is prefixed with `'`, which spreadsheets show but do not evaluate.
fn inert_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// `references.csv`: one row per chosen reference, every text cell inert (see `inert_cell`).
fn references_csv(path: &Path, refs: &[crate::domain::Asset]) -> Result<()> {
    let io = |e: csv::Error| Error::Invalid(format!("{}: {e}", path.display()));
    let mut w = csv::Writer::from_path(path).map_err(io)?;
    w.write_record([
        "external_id",
        "file",
        "objective",
        "node",
        "kpi",
        "description",
        "licence",
        "attribution",
        "inferred_from_similar_images",
    ])
    .map_err(io)?;
    for a in refs {
        let text = |s: Option<&str>| inert_cell(s.unwrap_or_default());
        w.write_record([
            text(a.external_id.as_deref()),
            text(Some(&a.file)),
            text(Some(&a.objective)),
            text(Some(&a.node)),
            a.kpi.map(|k| k.to_string()).unwrap_or_default(),
            text(Some(&a.description.description)),
            text(a.licence.as_deref()),
            text(a.attribution.as_deref()),
            text(
                a.description
                    .inferred
                    .as_ref()
                    .map(|i| i.words_line())
                    .as_deref(),
            ),
        ])
        .map_err(io)?;
    }
    w.flush().map_err(|e| Error::io(path, e))?;
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    std::fs::copy(from, to).map_err(|e| Error::io(from, e))?;
    Ok(())
}

pub fn export(
    lib: &Library,
    campaign: &Campaign,
    out: &Path,
    moodboard: Option<&Path>,
) -> Result<ExportReport> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let runs = lib.store.runs(&campaign.id)?;
    let prompts = lib.store.prompt_versions(&campaign.id)?;
    let images = lib.store.generated_images(&campaign.id)?;
    let refs: Vec<_> = campaign
        .selected
        .iter()
        .filter_map(|id| lib.store.asset(id).ok().flatten())
        .collect();

    let mut ref_files = Vec::new();
    for a in &refs {
        let rel = format!("references/{}.jpg", &a.id[..16]);
        copy(Path::new(&a.thumbnail_path), &out.join(&rel))?;
        ref_files.push(json!({
            "asset_id": a.id, "external_id": a.external_id, "file": rel, "kpi": a.kpi,
            "objective": a.objective, "node": a.node, "description": a.description.description,
            "elements": a.description.elements, "licence": a.licence, "attribution": a.attribution,
            "inferred": a.description.inferred.as_ref().map(|i| serde_json::json!({
                "words": i.words,
                "from": i.from.iter().map(|f| serde_json::json!({"name": f.name, "similarity": f.similarity})).collect::<Vec<_>>(),
                "note": "inferred from similar described photos in the library; not a caption",
            })),
        }));
    }
    let mut image_files = Vec::new();
    for im in &images {
        let rel = format!("images/{}.png", &im.id[..16]);
        copy(Path::new(&im.path), &out.join(&rel))?;
        let mut v = serde_json::to_value(im)?;
        v["file"] = json!(rel);
        image_files.push(v);
    }
    let moodboard_rel = match moodboard.filter(|m| m.is_file()) {
        Some(m) => {
            copy(m, &out.join("moodboard.png"))?;
            Some("moodboard.png".to_string())
        }
        None => None,
    };
    let doc = json!({
        "exported_at": now(),
        "campaign": campaign,
        "recommendation_runs": runs,
        "references": ref_files,
        "prompt_versions": prompts,
        "generated_images": image_files,
        "moodboard": moodboard_rel,
        "cost": crate::engine::cost::campaign_cost(lib, campaign)?,
    });
    references_csv(&out.join("references.csv"), &refs)?;
    let json_path = out.join("campaign.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&doc)?)
        .map_err(|e| Error::io(&json_path, e))?;

    // The contact sheet.
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    h.push_str(&format!("<title>{}</title>\n", escape(&campaign.name)));
    h.push_str("<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222;background:#faf8f4}\
        .grid{display:flex;flex-wrap:wrap;gap:1rem}.card{width:260px;background:#fff;padding:.5rem;border-radius:6px;box-shadow:0 1px 3px #0002}\
        .card img{width:100%;border-radius:4px}.muted{color:#666;font-size:.85rem}.flag{color:#b00020;font-weight:600}\
        pre{white-space:pre-wrap;background:#fff;padding:1rem;border-radius:6px}</style>\n</head>\n<body>\n");
    h.push_str(&format!("<h1>{}</h1>\n", escape(&campaign.name)));
    h.push_str(&format!(
        "<p><strong>Objective:</strong> {} &#8212; <strong>Audience:</strong> {}</p>\n<pre>{}</pre>\n",
        escape(&campaign.objective),
        escape(&campaign.node),
        escape(&campaign.brief)
    ));
    if let Some(b) = &campaign.brand {
        h.push_str(&format!(
            "<p><strong>Brand kit:</strong> {}</p>\n",
            escape(&b.name)
        ));
    }
    h.push_str("<h2>References</h2>\n<div class=\"grid\">\n");
    for a in &refs {
        h.push_str(&format!(
            "<div class=\"card\"><img alt=\"{}\" src=\"{}\"/><div>{}</div><div class=\"muted\">KPI {} &#183; {}{}</div></div>\n",
            attr(a.external_id.as_deref().unwrap_or(&a.file)),
            data_uri(lib, Path::new(&a.thumbnail_path), 320)?,
            escape(a.external_id.as_deref().unwrap_or(&a.file)),
            a.kpi.map(|k| k.to_string()).unwrap_or_else(|| "unknown".into()),
            escape(&a.description.description),
            a.description
                .inferred
                .as_ref()
                .map(|i| format!(" &#183; {}", escape(&i.words_line())))
                .unwrap_or_default()
        ));
    }
    h.push_str("</div>\n<h2>Prompt versions</h2>\n<ol>\n");
    for p in &prompts {
        h.push_str(&format!(
            "<li><div>{}</div><div class=\"muted\">{:?} &#183; {} &#183; negative: {}</div></li>\n",
            escape(&p.prompt),
            p.source,
            escape(&p.model),
            escape(&p.negative_prompt)
        ));
    }
    h.push_str("</ol>\n<h2>Generated images</h2>\n");
    if images.is_empty() {
        h.push_str("<p class=\"muted\">No images were generated for this campaign.</p>\n");
    }
    h.push_str("<div class=\"grid\">\n");
    for im in &images {
        let flag = match &im.novelty {
            Some(n) if n.too_close => format!(
                "<div class=\"flag\">too close to an existing asset ({:.2})</div>",
                n.similarity
            ),
            _ => String::new(),
        };
        h.push_str(&format!(
            "<div class=\"card\"><img alt=\"seed {}\" src=\"{}\"/><div class=\"muted\">{} &#183; seed {} &#183; {}x{}</div>{}</div>\n",
            im.seed,
            data_uri(lib, Path::new(&im.path), 480)?,
            escape(&im.model),
            im.seed,
            im.request.params.width,
            im.request.params.height,
            flag
        ));
    }
    h.push_str("</div>\n");
    if let Some(m) = &moodboard_rel {
        h.push_str(&format!(
            "<h2>Mood board</h2>\n<p class=\"muted\">References and colours, not generated images.</p>\n<img alt=\"mood board\" style=\"max-width:100%\" src=\"{}\"/>\n",
            data_uri(lib, &out.join(m), 1600)?
        ));
    }
    h.push_str("</body>\n</html>\n");
    let html_path = out.join("index.html");
    std::fs::write(&html_path, h).map_err(|e| Error::io(&html_path, e))?;
    Ok(ExportReport {
        dir: out.to_string_lossy().into_owned(),
        images: images.len(),
        references: refs.len(),
        prompt_versions: prompts.len(),
    })
}
