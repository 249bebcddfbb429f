//! Interned label strings of one tenant's head.
//!
//! A series stores its labels as pairs of `u32` symbol ids instead of two `String`s per
//! label: most names and values repeat across thousands of series (`__name__`, `job`,
//! `instance`), so each distinct string is stored once. Strings live back to back in one
//! arena (no allocation per string); a `HashTable` of ids finds them by content.

use std::hash::{BuildHasher, Hasher};

use hashbrown::{DefaultHashBuilder, HashTable};

/// A symbol table: string ↔ dense `u32` id.
#[derive(Default)]
pub struct Symbols {
    arena: String,
    /// `(offset, len)` of each symbol in `arena`, indexed by id.
    spans: Vec<(u32, u32)>,
    lookup: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Symbols {
    pub fn new() -> Self {
        Self::default()
    }

    fn hash(&self, s: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(s.as_bytes());
        h.finish()
    }

    pub fn get(&self, id: u32) -> &str {
        let (off, len) = self.spans[id as usize];
        &self.arena[off as usize..(off + len) as usize]
    }

    /// The id of `s` if interned.
    pub fn find(&self, s: &str) -> Option<u32> {
        let hash = self.hash(s);
        self.lookup.find(hash, |&id| self.get(id) == s).copied()
    }

    /// The id of `s`, interning it if new.
    pub fn intern(&mut self, s: &str) -> u32 {
        let hash = self.hash(s);
        let Self {
            arena,
            spans,
            lookup,
            hasher,
        } = self;
        let get = |id: u32| {
            let (off, len) = spans[id as usize];
            &arena[off as usize..(off + len) as usize]
        };
        if let Some(&id) = lookup.find(hash, |&id| get(id) == s) {
            return id;
        }
        let id = spans.len() as u32;
        spans.push((arena.len() as u32, s.len() as u32));
        arena.push_str(s);
        let spans = &*spans;
        let arena = &*arena;
        lookup.insert_unique(hash, id, |&id| {
            let (off, len) = spans[id as usize];
            let mut h = hasher.build_hasher();
            h.write(&arena.as_bytes()[off as usize..(off + len) as usize]);
            h.finish()
        });
        id
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Heap bytes held (capacities): for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.spans.capacity() * 8 + self.lookup.capacity() * 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_deduplicated() {
        let mut s = Symbols::new();
        let a = s.intern("job");
        let b = s.intern("api");
        assert_eq!(s.intern("job"), a);
        assert_ne!(a, b);
        assert_eq!(s.get(b), "api");
        assert_eq!(s.find("api"), Some(b));
        assert_eq!(s.find("nope"), None);
        for i in 0..10_000 {
            s.intern(&format!("value-{i}"));
        }
        assert_eq!(s.len(), 10_002);
        assert_eq!(s.get(s.find("value-9999").unwrap()), "value-9999");
    }
}
