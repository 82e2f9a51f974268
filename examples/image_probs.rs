//! Writes EfficientNet-Lite0's full class distribution for every photo of a manifest, one JSON
//! line per photo (`{"id", "labels", "probs"}`, labels from the manifest), for the offline
//! fitting scripts (scripts/fit-people-score.py):
//! `cargo run --release --example image_probs -- MODELS_DIR MANIFEST.jsonl OUT.jsonl`
//! MODELS_DIR is the `models` folder of the model cache (as `models fetch` fills it).
use std::io::Write;
use std::path::Path;

use campaign_studio::models::ModelFiles;
use campaign_studio::services::local::efficientnet::EfficientNetLite0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [models, manifest, out] = args.as_slice() else {
        return Err("usage: image_probs MODELS_DIR MANIFEST.jsonl OUT.jsonl".into());
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
        let (_, probs) = net.forward(&EfficientNetLite0::preprocess(&image))?;
        let rec = serde_json::json!({"id": id, "labels": row["labels"], "probs": probs});
        writeln!(w, "{rec}")?;
    }
    Ok(())
}
