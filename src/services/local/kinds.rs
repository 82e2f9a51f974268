//! What kind of thing each ImageNet-1k class is: the common names of its WordNet 3.0 hypernyms
//! ("golden retriever" -> dog, domestic animal, animal, mammal), nearest first. The table
//! (data/imagenet-kinds.json, WordNet's licence in data/WORDNET-LICENSE) was generated once by
//! scripts/make-imagenet-kinds.py and is compiled in; the classifier's ImageNet labels rarely
//! use the words a brief uses ("dog", "food"), and the kinds bring those words into the
//! documents the text embedder indexes.
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

const TABLE: &str = include_str!("../../../data/imagenet-kinds.json");

#[derive(Deserialize)]
struct Table {
    classes: Vec<Class>,
}

#[derive(Deserialize)]
struct Class {
    name: String,
    kinds: Vec<String>,
}

/// Class name (lower case) -> its kinds; a name two classes share ("sunglasses") has the
/// kinds of both, in order, once each.
fn table() -> &'static HashMap<String, Vec<String>> {
    static MAP: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    MAP.get_or_init(|| {
        // The table is compiled in and checked by a test; a broken one gives no kinds rather
        // than a panic.
        let parsed: Table = serde_json::from_str(TABLE).unwrap_or(Table {
            classes: Vec::new(),
        });
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for c in parsed.classes {
            let kinds = map.entry(c.name.to_lowercase()).or_default();
            for k in c.kinds {
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
        map
    })
}

/// The kinds of an ImageNet class by the name the classifier reports (any case); none for a
/// name the table does not know.
pub fn kinds_of(label: &str) -> &'static [String] {
    table()
        .get(&label.trim().to_lowercase())
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Every class name the table knows (lower case, each once, sorted) with its kinds.
pub fn classes() -> Vec<(&'static str, &'static [String])> {
    let mut all: Vec<(&'static str, &'static [String])> = table()
        .iter()
        .map(|(n, k)| (n.as_str(), k.as_slice()))
        .collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_table_has_every_class() {
        let parsed: Table = serde_json::from_str(TABLE).unwrap();
        assert_eq!(parsed.classes.len(), 1000);
    }

    #[test]
    fn a_dog_breed_is_a_dog_and_an_animal() {
        let k = kinds_of("Golden Retriever");
        assert_eq!(k.first().map(String::as_str), Some("dog"), "{k:?}");
        assert!(k.iter().any(|k| k == "animal"), "{k:?}");
    }

    #[test]
    fn a_name_two_classes_share_has_the_kinds_of_both_once() {
        // Two ImageNet classes are called "missile": [rocket, weapon, vehicle, instrument]
        // and [weapon, instrument].
        assert_eq!(
            kinds_of("missile"),
            ["rocket", "weapon", "vehicle", "instrument"]
        );
    }

    #[test]
    fn an_unknown_name_has_no_kinds() {
        assert!(kinds_of("not a class").is_empty());
    }
}
