//! Query embeddings cached within a session: the studio re-runs a search for every KPI weight
//! change, filter change and return to a brief, and embedding the brief is most of what the
//! user waits for (multilingual-e5-small: ~30 ms per brief on these cores, by
//! `cargo bench --bench index`). Documents are never cached (each is embedded once, at ingest).
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use super::{Embedder, TextRole};
use crate::Result;
use crate::domain::EmbedderId;

pub struct QueryCache {
    inner: Arc<dyn Embedder>,
    cache: Mutex<lru::LruCache<String, Vec<f32>>>,
}

impl QueryCache {
    pub fn new(inner: Arc<dyn Embedder>, capacity: usize) -> Self {
        QueryCache {
            inner,
            cache: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// Queries held.
    pub fn len(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Embedder for QueryCache {
    fn id(&self) -> &EmbedderId {
        self.inner.id()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn embed_texts(&self, texts: &[String], role: TextRole) -> Result<Vec<Vec<f32>>> {
        if role != TextRole::Query {
            return self.inner.embed_texts(texts, role);
        }
        let mut out: Vec<Option<Vec<f32>>> = {
            let mut c = self.cache.lock().map_err(|_| poisoned())?;
            texts.iter().map(|t| c.get(t).cloned()).collect()
        };
        let mut missing: Vec<String> = texts
            .iter()
            .zip(&out)
            .filter(|(_, v)| v.is_none())
            .map(|(t, _)| t.clone())
            .collect();
        missing.sort();
        missing.dedup();
        if !missing.is_empty() {
            let vectors = self.inner.embed_texts(&missing, role)?;
            let mut c = self.cache.lock().map_err(|_| poisoned())?;
            for (t, v) in missing.iter().zip(vectors) {
                for (slot, text) in out.iter_mut().zip(texts) {
                    if slot.is_none() && text == t {
                        *slot = Some(v.clone());
                    }
                }
                c.put(t.clone(), v);
            }
        }
        out.into_iter()
            .zip(texts)
            .map(|(v, t)| {
                v.ok_or_else(|| {
                    crate::Error::Inference(format!("the embedder returned no vector for {t:?}"))
                })
            })
            .collect()
    }
    fn embed_image(&self, image: &image::DynamicImage) -> Option<Result<Vec<f32>>> {
        self.inner.embed_image(image)
    }
    fn embeds_images(&self) -> bool {
        self.inner.embeds_images()
    }
    fn english_only_text(&self) -> bool {
        self.inner.english_only_text()
    }
    fn batches_texts(&self) -> bool {
        self.inner.batches_texts()
    }
    fn element_fit_threshold(&self, english_brief: bool) -> Option<f32> {
        self.inner.element_fit_threshold(english_brief)
    }
    fn strength_thresholds(&self, english_query: bool) -> Option<super::StrengthThresholds> {
        self.inner.strength_thresholds(english_query)
    }
    fn label_space(&self) -> Option<f32> {
        self.inner.label_space()
    }
    fn language_offsets(&self) -> bool {
        self.inner.language_offsets()
    }

    fn translates_queries(&self) -> bool {
        self.inner.translates_queries()
    }
    fn uncached(&self) -> Option<&dyn Embedder> {
        Some(self.inner.as_ref())
    }
}

fn poisoned() -> crate::Error {
    crate::Error::Inference("a query embedding panicked earlier in this session".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the texts it embeds.
    struct Counting(AtomicUsize, EmbedderId);

    impl Embedder for Counting {
        fn id(&self) -> &EmbedderId {
            &self.1
        }
        fn dim(&self) -> usize {
            2
        }
        fn embed_texts(&self, texts: &[String], _: TextRole) -> Result<Vec<Vec<f32>>> {
            self.0.fetch_add(texts.len(), Ordering::SeqCst);
            Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
        }
    }

    fn cache(capacity: usize) -> (Arc<Counting>, QueryCache) {
        let inner = Arc::new(Counting(AtomicUsize::new(0), EmbedderId::new("count")));
        let c = QueryCache::new(inner.clone(), capacity);
        (inner, c)
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_cache_declares_what_its_model_declares() {
        struct Measured(EmbedderId);
        impl Embedder for Measured {
            fn id(&self) -> &EmbedderId {
                &self.0
            }
            fn dim(&self) -> usize {
                2
            }
            fn embed_texts(&self, texts: &[String], _: TextRole) -> Result<Vec<Vec<f32>>> {
                Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
            }
            fn element_fit_threshold(&self, english_brief: bool) -> Option<f32> {
                english_brief.then_some(2.4)
            }
            fn strength_thresholds(
                &self,
                english_query: bool,
            ) -> Option<crate::services::StrengthThresholds> {
                english_query.then_some(crate::services::StrengthThresholds {
                    strong_z: 3.0,
                    fair_z: 2.0,
                })
            }
            fn label_space(&self) -> Option<f32> {
                Some(0.4)
            }
            fn language_offsets(&self) -> bool {
                true
            }
        }
        let c = QueryCache::new(Arc::new(Measured(EmbedderId::new("m"))), 4);
        assert_eq!(c.element_fit_threshold(true), Some(2.4));
        assert_eq!(c.element_fit_threshold(false), None);
        assert_eq!(c.strength_thresholds(true).map(|t| t.strong_z), Some(3.0));
        assert_eq!(c.strength_thresholds(false), None);
        assert!(c.language_offsets());
        assert_eq!(c.uncached().map(|e| e.id().to_string()), Some("m".into()));
        assert_eq!(c.label_space(), Some(0.4));
    }

    #[test]
    fn a_repeated_query_is_embedded_once() {
        let (inner, c) = cache(8);
        let a = c
            .embed_texts(&s(&["dog on a beach"]), TextRole::Query)
            .unwrap();
        let b = c
            .embed_texts(&s(&["dog on a beach"]), TextRole::Query)
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_batch_keeps_its_order_and_embeds_only_new_distinct_queries() {
        let (inner, c) = cache(8);
        c.embed_texts(&s(&["bb"]), TextRole::Query).unwrap();
        let got = c
            .embed_texts(&s(&["a", "bb", "a", "cccc"]), TextRole::Query)
            .unwrap();
        let lens: Vec<f32> = got.iter().map(|v| v[0]).collect();
        assert_eq!(lens, vec![1.0, 2.0, 1.0, 4.0]);
        assert_eq!(inner.0.load(Ordering::SeqCst), 1 + 2);
    }

    #[test]
    fn documents_are_never_cached() {
        let (inner, c) = cache(8);
        c.embed_texts(&s(&["doc"]), TextRole::Document).unwrap();
        c.embed_texts(&s(&["doc"]), TextRole::Document).unwrap();
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
        assert!(c.is_empty());
    }

    #[test]
    fn the_least_recently_used_query_leaves_a_full_cache() {
        let (inner, c) = cache(2);
        for q in ["a", "b", "a", "c", "a", "b"] {
            c.embed_texts(&s(&[q]), TextRole::Query).unwrap();
        }
        // a, b, (a hit), c evicts b, (a hit), b again.
        assert_eq!(inner.0.load(Ordering::SeqCst), 4);
        assert_eq!(c.len(), 2);
    }
}
