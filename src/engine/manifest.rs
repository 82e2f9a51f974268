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
    /// Who wrote the description and labels, when not people ("imported: Nova Pro via the
    /// original deployment"); recorded as their source.
    pub description_source: Option<String>,
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

/// The longest manifest line (or CSV record) read; a longer one fails alone.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A character that is invisible or changes the direction of what follows (zero-width
/// spaces and joiners, bidi embeddings, overrides, isolates and marks, the BOM) or any other
/// control character: in an id it makes two ids that look the same differ, or hides its end.
fn hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}'
        )
}

fn from_map(line: usize, mut m: Map<String, Value>) -> std::result::Result<ManifestRow, RowError> {
    let id = text(m.remove("id"));
    let item = id.clone().unwrap_or_else(|| format!("line {line}"));
    if let Some(c) = id
        .as_deref()
        .and_then(|id| id.chars().find(|c| hidden_char(*c)))
    {
        return Err(RowError {
            item: format!("line {line}"),
            reason: format!(
                "the id {:?} holds U+{:04X}, an invisible or direction-changing character; write the id in plain visible characters",
                id.as_deref().unwrap_or_default(),
                c as u32
            ),
        });
    }
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
        description_source: text(m.remove("description_source")),
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
    let is_csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        let text = String::from_utf8(raw).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
            Error::Invalid(format!(
                "{}: line {line} is not UTF-8 text; save the CSV as UTF-8",
                path.display()
            ))
        })?;
        read_csv_text(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    } else {
        Ok(read_jsonl_bytes(&raw))
    }
}

/// JSON Lines from raw bytes: a line that is too long, not UTF-8 or not a JSON object fails
/// alone, naming its line; the others are read.
pub fn read_jsonl_bytes(raw: &[u8]) -> Vec<std::result::Result<ManifestRow, RowError>> {
    raw.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.trim_ascii().is_empty())
        .map(|(i, l)| {
            let line = i + 1;
            if l.len() > MAX_LINE_BYTES {
                return Err(RowError {
                    item: format!("line {line}"),
                    reason: format!(
                        "the line is {} bytes, over the {} byte limit of a manifest line; split it or shorten its fields",
                        l.len(),
                        MAX_LINE_BYTES
                    ),
                });
            }
            match std::str::from_utf8(l) {
                Ok(text) => read_line(line, text),
                Err(e) => Err(RowError {
                    item: format!("line {line}"),
                    reason: format!(
                        "not UTF-8 text (invalid byte at column {}); save the manifest as UTF-8",
                        e.valid_up_to() + 1
                    ),
                }),
            }
        })
        .collect()
}

pub fn read_jsonl(text: &str) -> Vec<std::result::Result<ManifestRow, RowError>> {
    read_jsonl_bytes(text.as_bytes())
}

fn read_line(line: usize, l: &str) -> std::result::Result<ManifestRow, RowError> {
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
}

/// CSV with a header; a record that is too long or malformed fails alone. The error is for
/// the whole manifest (an unreadable header, no `file` column).
pub fn read_csv_text(
    text: &str,
) -> std::result::Result<Vec<std::result::Result<ManifestRow, RowError>>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("unreadable CSV header: {e}"))?
        .iter()
        .map(|h| h.to_lowercase())
        .collect();
    if !headers.iter().any(|h| h == "file") {
        return Err("the CSV header has no 'file' column (expected file,objective,node,results[,caption,campaign])".into());
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2; // the header is line 1
        let rec = match rec {
            Ok(r) if r.as_slice().len() > MAX_LINE_BYTES => {
                out.push(Err(RowError {
                    item: format!("line {line}"),
                    reason: format!(
                        "the record is {} bytes, over the {} byte limit of a manifest line; shorten its fields",
                        r.as_slice().len(),
                        MAX_LINE_BYTES
                    ),
                }));
                continue;
            }
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
