//! The parsed GraphQL documents the server keeps: clients send the same few documents over and
//! over with other variables, and parsing one is the largest single cost of a small request in the
//! server (about a sixth of its instructions for a `createTask`). A document is kept by its exact
//! text; the least recently used go first once the texts kept add up to the budget
//! (`--parsed-document-cache-bytes`). Validation, limits and execution still run on every request:
//! only the parse is skipped.

use std::sync::{Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// Parsed documents by their text, within a budget of text bytes.
pub(crate) struct DocumentCache {
    budget: usize,
    kept: Mutex<Kept>,
}

struct Kept {
    /// The bytes of the texts in `documents`.
    bytes: usize,
    documents: LruCache<String, ExecutableDocument>,
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

    /// The document parsed from `text` before, if kept.
    pub(crate) fn get(&self, text: &str) -> Option<ExecutableDocument> {
        if self.budget == 0 {
            return None;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.documents.get(text).cloned()
    }

    /// Keeps `document`, parsed from `text`, dropping the least recently used until the texts fit
    /// the budget. A text larger than the whole budget is not kept.
    pub(crate) fn put(&self, text: &str, document: ExecutableDocument) {
        if text.len() > self.budget {
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
        kept.documents.put(text.to_owned(), document);
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
        let cache = DocumentCache::new(1024);
        let text = "{ projects { nodes { id } } }";
        cache.put(text, parsed(text));
        let again = cache.get(text).map(|d| format!("{:?}", d.operations));
        assert_eq!(again, Some(format!("{:?}", parsed(text).operations)));
        assert!(cache.get("{ projects { nodes { name } } }").is_none());
    }

    #[test]
    fn the_least_recently_used_go_first_once_the_texts_exceed_the_budget() {
        let (a, b, c) = ("{ a }", "{ b }", "{ c }");
        let cache = DocumentCache::new(a.len() + b.len());
        cache.put(a, parsed(a));
        cache.put(b, parsed(b));
        assert!(cache.get(a).is_some(), "a is now the most recently used");
        cache.put(c, parsed(c));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(b).is_none(), "b was the least recently used");
        assert!(cache.get(a).is_some() && cache.get(c).is_some());
    }

    #[test]
    fn nothing_is_kept_with_a_budget_of_zero_or_a_text_larger_than_the_budget() {
        let off = DocumentCache::new(0);
        off.put("{ a }", parsed("{ a }"));
        assert_eq!(off.len(), 0);
        assert!(off.get("{ a }").is_none());
        let small = DocumentCache::new(4);
        small.put("{ a }", parsed("{ a }"));
        assert_eq!(small.len(), 0);
    }
}
