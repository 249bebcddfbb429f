//! Postings: sorted lists of series ids per label pair, and the matcher evaluation that
//! the head's index and every block's index share.
//!
//! A matcher that does not accept the empty string selects the union of the postings of
//! the label's values it accepts (regexes run over the label's *values*, never over all
//! series); those sets are intersected. A matcher that accepts the empty string also
//! selects series without the label, so it is applied as a subtraction: the series whose
//! value it refuses. With no matcher of the first kind the base set is every series (the
//! caller's rule: all-empty-matching selectors select the whole tenant).

use sightline_model::{LabelMatcher, MatchOp};

/// The postings of one label pair: one id inline (labels unique to a series, such as a pod
/// name, are common and cost no allocation), or a sorted vector.
#[derive(Debug, Clone)]
pub enum PostingList {
    One(u32),
    Many(Vec<u32>),
}

impl PostingList {
    pub fn as_slice(&self) -> &[u32] {
        match self {
            PostingList::One(id) => std::slice::from_ref(id),
            PostingList::Many(v) => v,
        }
    }

    /// Adds an id larger than every id present (ids are handed out in increasing order).
    pub fn push(&mut self, id: u32) {
        match self {
            PostingList::One(first) => *self = PostingList::Many(vec![*first, id]),
            PostingList::Many(v) => v.push(id),
        }
    }

    /// Keeps the ids `keep` accepts; returns false when none is left.
    pub fn retain(&mut self, keep: impl Fn(u32) -> bool) -> bool {
        match self {
            PostingList::One(id) => keep(*id),
            PostingList::Many(v) => {
                v.retain(|&id| keep(id));
                match v.len() {
                    0 => false,
                    1 => {
                        *self = PostingList::One(v[0]);
                        true
                    }
                    _ => {
                        v.shrink_to_fit();
                        true
                    }
                }
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            PostingList::One(_) => 0,
            PostingList::Many(v) => v.capacity() * 4,
        }
    }
}

/// The ids in both sorted lists.
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    // Galloping would help very skewed sizes; a binary search per id of the small list
    // does the same job when it is much smaller.
    if small.len() * 16 < large.len() {
        for id in small {
            if large.binary_search(id).is_ok() {
                out.push(*id);
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The ids of `a` that are not in `b` (both sorted).
pub fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &id in a {
        while j < b.len() && b[j] < id {
            j += 1;
        }
        if j >= b.len() || b[j] != id {
            out.push(id);
        }
    }
    out
}

/// The sorted union of sorted lists.
pub fn union(mut lists: Vec<&[u32]>) -> Vec<u32> {
    lists.retain(|l| !l.is_empty());
    match lists.len() {
        0 => Vec::new(),
        1 => lists[0].to_vec(),
        _ => {
            let mut out: Vec<u32> = lists.concat();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// What matcher evaluation needs from an index (the head's or a block's).
pub trait PostingsSource {
    /// Every series id, sorted.
    fn all_ids(&self) -> Vec<u32>;
    /// The ids of series whose label `name` equals `value`, sorted.
    fn postings_eq(&self, name: &str, value: &str) -> Vec<u32>;
    /// The union of the postings of every value of label `name` that `accept` takes.
    fn postings_where(&self, name: &str, accept: &dyn Fn(&str) -> bool) -> Vec<u32>;
}

/// The sorted ids of the series matching all `matchers` (see the module doc).
pub fn select_ids(index: &dyn PostingsSource, matchers: &[LabelMatcher]) -> Vec<u32> {
    // Cheap, selective matchers first: equality lookups cost one probe.
    let mut ordered: Vec<&LabelMatcher> = matchers.iter().collect();
    ordered.sort_by_key(|m| match m.op {
        MatchOp::Equal => 0,
        MatchOp::Regex => 1,
        MatchOp::NotEqual => 2,
        MatchOp::NotRegex => 3,
    });
    let mut positive: Option<Vec<u32>> = None;
    let mut negatives: Vec<Vec<u32>> = Vec::new();
    for m in ordered {
        if matches!(&positive, Some(p) if p.is_empty()) {
            return Vec::new();
        }
        if m.matches_empty() {
            let refused = match m.op {
                MatchOp::NotEqual => index.postings_eq(&m.name, &m.value),
                _ => index.postings_where(&m.name, &|v| !m.matches(v)),
            };
            negatives.push(refused);
        } else {
            let selected = match m.op {
                MatchOp::Equal => index.postings_eq(&m.name, &m.value),
                _ => index.postings_where(&m.name, &|v| m.matches(v)),
            };
            positive = Some(match positive {
                None => selected,
                Some(p) => intersect(&p, &selected),
            });
        }
    }
    let mut ids = positive.unwrap_or_else(|| index.all_ids());
    for neg in negatives {
        if ids.is_empty() {
            break;
        }
        ids = subtract(&ids, &neg);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        let big: Vec<u32> = (0..1000).collect();
        assert_eq!(intersect(&[5, 999, 2000], &big), vec![5, 999]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 9]), vec![1, 3]);
        assert_eq!(union(vec![&[1, 4], &[2, 4, 6], &[]]), vec![1, 2, 4, 6]);
        let mut p = PostingList::One(3);
        p.push(9);
        assert_eq!(p.as_slice(), &[3, 9]);
        assert!(p.retain(|id| id == 9));
        assert!(matches!(p, PostingList::One(9)));
        assert!(!p.retain(|_| false));
    }
}
