//! Manifests: JSON Lines shaped like the demo library's `manifest.jsonl`, or CSV with a header
//! (`file,objective,node,results[,caption,campaign]`). Each row becomes a `ManifestRow` or a
//! per-row error; an unreadable manifest is one error for the whole run.
use std::path::Path;

use serde_json::{Map, Value};

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManifestRow {
    /// 1-based line (JSONL) or record (CSV) number, for messages.
    pub line: usize,
    pub id: Option<String>,
    pub file: String,
    pub caption: Option<String>,
    pub description: Option<String>,
    pub campaign: Option<String>,
    pub labels: Vec<String>,
    pub objective: Option<String>,
    pub node: Option<String>,
    /// The KPI as given (validated later, so the error names the item).
    pub results: Option<Value>,
    pub licence: Option<String>,
    pub attribution: Option<String>,
    /// Every other field, kept as metadata.
    pub extra: Map<String, Value>,
}

impl ManifestRow {
    /// What messages call this row: its id, else its file.
    pub fn item(&self) -> String {
        self.id.clone().unwrap_or_else(|| self.file.clone())
    }
}

/// A row that could not be read at all.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub item: String,
    pub reason: String,
}

fn text(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn from_map(line: usize, mut m: Map<String, Value>) -> std::result::Result<ManifestRow, RowError> {
    let id = text(m.remove("id"));
    let item = id.clone().unwrap_or_else(|| format!("line {line}"));
    let file = match m.remove("file") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            return Err(RowError {
                item,
                reason: "missing 'file' field".into(),
            });
        }
    };
    let labels = match m.remove("labels") {
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split([';', '|'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    let results = m.remove("results").filter(|v| !v.is_null());
    Ok(ManifestRow {
        line,
        id,
        file,
        caption: text(m.remove("caption")),
        description: text(m.remove("description")),
        campaign: text(m.remove("campaign")),
        labels,
        objective: text(m.remove("objective")),
        node: text(m.remove("node")),
        results,
        licence: text(m.remove("license")).or_else(|| text(m.remove("licence"))),
        attribution: text(m.remove("attribution")),
        extra: m,
    })
}

pub fn read(path: &Path) -> Result<Vec<std::result::Result<ManifestRow, RowError>>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(raw)
        .map_err(|_| Error::Invalid(format!("{}: manifest is not UTF-8 text", path.display())))?;
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        read_csv(path, &text)
    } else {
        Ok(read_jsonl(&text))
    }
}

pub fn read_jsonl(text: &str) -> Vec<std::result::Result<ManifestRow, RowError>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line = i + 1;
            match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(m)) => from_map(line, m),
                Ok(_) => Err(RowError {
                    item: format!("line {line}"),
                    reason: "not a JSON object".into(),
                }),
                Err(e) => Err(RowError {
                    item: format!("line {line}"),
                    reason: format!("invalid JSON: {e}"),
                }),
            }
        })
        .collect()
}

fn read_csv(path: &Path, text: &str) -> Result<Vec<std::result::Result<ManifestRow, RowError>>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::Invalid(format!("{}: unreadable CSV header: {e}", path.display())))?
        .iter()
        .map(|h| h.to_lowercase())
        .collect();
    if !headers.iter().any(|h| h == "file") {
        return Err(Error::Invalid(format!(
            "{}: the CSV header has no 'file' column (expected file,objective,node,results[,caption,campaign])",
            path.display()
        )));
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2; // the header is line 1
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                out.push(Err(RowError {
                    item: format!("line {line}"),
                    reason: format!("invalid CSV: {e}"),
                }));
                continue;
            }
        };
        let mut m = Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            if v.is_empty() {
                continue;
            }
            let value = if h == "results" {
                // Keep numbers as numbers; anything else stays text and fails validation.
                v.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::String(v.to_string()))
            } else {
                Value::String(v.to_string())
            };
            m.insert(h.clone(), value);
        }
        out.push(from_map(line, m));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_rows_keep_extra_fields_and_report_bad_lines() {
        let rows = read_jsonl(
            "{\"id\":\"a\",\"file\":\"images/a.jpg\",\"caption\":\"A cat\",\"labels\":[\"cat\"],\"objective\":\"likes\",\"node\":\"followers\",\"results\":0.02,\"license\":\"CC0-1.0\",\"coco_id\":7}\n\nnot json\n{\"id\":\"b\"}\n",
        );
        assert_eq!(rows.len(), 3);
        let a = rows[0].as_ref().unwrap();
        assert_eq!(a.item(), "a");
        assert_eq!(a.labels, vec!["cat"]);
        assert_eq!(a.licence.as_deref(), Some("CC0-1.0"));
        assert_eq!(a.extra.get("coco_id"), Some(&Value::from(7)));
        assert_eq!(rows[1].as_ref().unwrap_err().item, "line 3");
        let b = rows[2].as_ref().unwrap_err();
        assert_eq!(
            (b.item.as_str(), b.reason.as_str()),
            ("b", "missing 'file' field")
        );
    }

    #[test]
    fn csv_with_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(
            &p,
            "file,objective,node,results,caption,campaign\nx.jpg,clicks,followers,0.5,Two dogs,Spring\ny.jpg,likes,customers,abc,,\n",
        )
        .unwrap();
        let rows = read(&p).unwrap();
        let x = rows[0].as_ref().unwrap();
        assert_eq!(x.campaign.as_deref(), Some("Spring"));
        assert_eq!(x.results, Some(Value::from(0.5)));
        assert_eq!(x.item(), "x.jpg");
        let y = rows[1].as_ref().unwrap();
        assert_eq!(y.results, Some(Value::String("abc".into())));
        std::fs::write(&p, "path,objective\n").unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("'file' column"));
    }
}
