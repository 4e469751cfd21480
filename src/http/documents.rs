//! The parsed GraphQL documents the server keeps: clients send the same few documents over and
//! over with other variables, and parsing one was 18 % of the server's instructions for a
//! `createTask`. A document is kept by its exact text; the least recently used go first once the
//! texts kept add up to the budget (`--parsed-document-cache-bytes`), and a text longer than a
//! thirty-second of the budget is never kept (a parsed document takes tens of times its text's
//! bytes, up to about a hundred for one of nothing but fields). Validation, limits and execution
//! still run on every request: only the parse is skipped.

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// Parsed documents by their text, within a budget of text bytes.
pub(crate) struct DocumentCache {
    budget: usize,
    kept: Mutex<Kept>,
}

/// What the cache holds, behind its lock.
struct Kept {
    /// The bytes of the texts in `documents`.
    bytes: usize,
    documents: LruCache<String, Arc<ExecutableDocument>>,
}

impl DocumentCache {
    /// A cache keeping documents whose texts add up to at most `budget` bytes (none when 0).
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            kept: Mutex::new(Kept {
                bytes: 0,
                documents: LruCache::unbounded(),
            }),
        }
    }

    /// Whether a document parsed from `text` would be kept: a text of at most a thirty-second of the
    /// budget (none with a budget of 0).
    pub(crate) fn keeps(&self, text: &str) -> bool {
        !text.is_empty() && text.len() <= self.budget / 32
    }

    /// The document parsed from `text` before, if kept.
    pub(crate) fn get(&self, text: &str) -> Option<ExecutableDocument> {
        if !self.keeps(text) {
            return None;
        }
        let kept = {
            let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            kept.documents.get(text).cloned()
        };
        // Copied outside the lock: the next request's lookup does not wait for it.
        kept.map(|document| (*document).clone())
    }

    /// Keeps `document`, parsed from `text`, dropping the least recently used until the texts fit
    /// the budget; nothing when the cache [does not keep](Self::keeps) such a text.
    pub(crate) fn put(&self, text: &str, document: ExecutableDocument) {
        if !self.keeps(text) {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.documents.contains(text) {
            return;
        }
        while kept.bytes + text.len() > self.budget {
            match kept.documents.pop_lru() {
                Some((old, _)) => kept.bytes -= old.len(),
                None => break,
            }
        }
        kept.bytes += text.len();
        kept.documents.put(text.to_owned(), Arc::new(document));
    }

    /// How many documents are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .documents
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn parsed(text: &str) -> ExecutableDocument {
        parse_query(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_document_kept_is_given_back_for_the_same_text_only() {
        let cache = DocumentCache::new(32 * 1024);
        let text = "{ projects { nodes { id } } }";
        cache.put(text, parsed(text));
        let again = cache.get(text).map(|d| format!("{:?}", d.operations));
        assert_eq!(again, Some(format!("{:?}", parsed(text).operations)));
        assert!(cache.get("{ projects { nodes { name } } }").is_none());
    }

    #[test]
    fn the_least_recently_used_go_first_once_the_texts_exceed_the_budget() {
        // 33 texts of 7 bytes, a budget of 32 of them.
        let texts: Vec<String> = (0..33).map(|i| format!("{{ f{i:02} }}")).collect();
        let cache = DocumentCache::new(32 * 7);
        for text in &texts[..32] {
            cache.put(text, parsed(text));
        }
        assert_eq!(cache.len(), 32);
        assert!(
            cache.get(&texts[0]).is_some(),
            "the first is now the most recently used"
        );
        cache.put(&texts[32], parsed(&texts[32]));
        assert_eq!(cache.len(), 32);
        assert!(
            cache.get(&texts[1]).is_none(),
            "the second was the least recently used"
        );
        assert!(cache.get(&texts[0]).is_some() && cache.get(&texts[32]).is_some());
    }

    #[test]
    fn nothing_is_kept_with_a_budget_of_zero_or_a_text_over_a_thirty_second_of_it() {
        let off = DocumentCache::new(0);
        off.put("{ a }", parsed("{ a }"));
        assert_eq!(off.len(), 0);
        assert!(off.get("{ a }").is_none());
        // "{ a }" is five bytes: kept with a budget of 32 × 5, not of 32 × 5 − 1.
        let small = DocumentCache::new(32 * 5 - 1);
        small.put("{ a }", parsed("{ a }"));
        assert_eq!(small.len(), 0);
        let enough = DocumentCache::new(32 * 5);
        enough.put("{ a }", parsed("{ a }"));
        assert_eq!(enough.len(), 1);
    }
}
