//! Writes EfficientNet-Lite0's class distribution for five parts of every photo of a manifest,
//! one JSON line per photo and part (`{"id": "ID|part", "labels", "probs"}`), for measuring
//! what parts of a photo show that the whole does not (scripts/measure-part-labels.py). The
//! parts are the corners and the centre of the head's 7 × 7 feature map, each 4 × 4 cells,
//! pooled before the classifier's last layer: parts of what the classifier sees, the centred
//! square of 87.5 % of the short side. With `--crops`, each part is instead a 60 % crop of the
//! photo's corners and centre run through the whole network (which centre-crops it again),
//! five times the cost:
//! `cargo run --release --example region_probs -- MODELS_DIR MANIFEST.jsonl OUT.jsonl [--crops]`
use std::io::Write;
use std::path::Path;

use campaign_studio::models::ModelFiles;
use campaign_studio::services::local::efficientnet::{EfficientNetLite0, pool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (models, manifest, out, crops) = match args.as_slice() {
        [m, f, o] => (m, f, o, false),
        [m, f, o, c] if c == "--crops" => (m, f, o, true),
        _ => {
            return Err("usage: region_probs MODELS_DIR MANIFEST.jsonl OUT.jsonl [--crops]".into());
        }
    };
    let files = ModelFiles::new(models);
    let net = EfficientNetLite0::load(&files.efficientnet_weights()?, &files.imagenet_names()?)?;
    let root = Path::new(manifest).parent().unwrap_or(Path::new("."));
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    for line in std::fs::read_to_string(manifest)?.lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        let (Some(id), Some(file)) = (row["id"].as_str(), row["file"].as_str()) else {
            return Err(format!("a manifest row without id or file: {line}").into());
        };
        let image = image::open(root.join(file))?;
        let parts = if crops {
            crop_parts(&net, &image)?
        } else {
            map_parts(&net, &image)?
        };
        for (name, probs) in parts {
            let rec = serde_json::json!({"id": format!("{id}|{name}"), "labels": row["labels"], "probs": probs});
            writeln!(w, "{rec}")?;
        }
    }
    Ok(())
}

type Parts = Vec<(&'static str, Vec<f32>)>;

/// Corners and centre of a `h × w` grid, each `sh × sw`: (name, top, left).
fn corners(h: u32, w: u32, sh: u32, sw: u32) -> [(&'static str, u32, u32); 5] {
    [
        ("tl", 0, 0),
        ("tr", 0, w - sw),
        ("bl", h - sh, 0),
        ("br", h - sh, w - sw),
        ("c", (h - sh) / 2, (w - sw) / 2),
    ]
}

fn map_parts(
    net: &EfficientNetLite0,
    image: &image::DynamicImage,
) -> Result<Parts, Box<dyn std::error::Error>> {
    let (map, h, w) = net.feature_map(&EfficientNetLite0::preprocess(image))?;
    let (sh, sw) = ((h * 4).div_ceil(7), (w * 4).div_ceil(7));
    let mut out = Vec::new();
    for (name, top, left) in corners(h as u32, w as u32, sh as u32, sw as u32) {
        let (top, left) = (top as usize, left as usize);
        let inside = |i: usize| {
            let (r, c) = (i / w, i % w);
            (top..top + sh).contains(&r) && (left..left + sw).contains(&c)
        };
        out.push((name, net.classify(&pool(&map, h * w, inside))?));
    }
    Ok(out)
}

fn crop_parts(
    net: &EfficientNetLite0,
    image: &image::DynamicImage,
) -> Result<Parts, Box<dyn std::error::Error>> {
    let (h, w) = (image.height(), image.width());
    let (sh, sw) = ((h * 3 / 5).max(1), (w * 3 / 5).max(1));
    let mut out = Vec::new();
    for (name, top, left) in corners(h, w, sh, sw) {
        let part = image.crop_imm(left, top, sw, sh);
        out.push((name, net.forward(&EfficientNetLite0::preprocess(&part))?.1));
    }
    Ok(out)
}
