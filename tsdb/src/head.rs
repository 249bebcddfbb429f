//! The in-memory head: per tenant, its series ([`MemSeries`]), the label-set lookup, the
//! inverted index (postings) and the symbol table.
//!
//! Memory per series is what this layout is for: labels are `u32` symbol pairs, the
//! label-set lookup is a `HashTable` of bare `u32` ids (hashes are recomputed from the
//! strings, nothing is duplicated), series live in one vector sorted by id (found by binary
//! search, no hash map entry each), and postings of labels unique to one series cost no
//! allocation ([`PostingList::One`]).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use sightline_model::{Labels, TenantId};

use crate::postings::{PostingList, PostingsSource, union};
use crate::series::MemSeries;
use crate::symbols::Symbols;

/// One tenant's head.
pub struct TenantHead {
    pub symbols: Symbols,
    /// Sorted by id (ids are handed out in increasing order).
    pub series: Vec<MemSeries>,
    by_labels: HashTable<u32>,
    /// name symbol → value symbol → series ids.
    postings: HashMap<u32, HashMap<u32, PostingList>>,
    /// Samples before this time are in blocks: appends before it are refused as too old.
    pub boundary: i64,
    /// Wall-clock time (ms) of the last append, or of the head's creation or restore: a
    /// tenant is idle when nothing was appended for a while, whatever its samples' times
    /// (a client backfilling hours-old samples is not idle).
    pub last_append_wall_ms: i64,
}

/// Wall-clock milliseconds since the epoch.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One hasher (random seed) for every label-set hash of the process, so that a hash
/// computed once per appended series serves every lookup.
static HASHER: LazyLock<DefaultHashBuilder> = LazyLock::new(DefaultHashBuilder::default);

/// The hash of a label set, as [`TenantHead::find_hashed`] takes it.
pub fn labels_hash(labels: &Labels) -> u64 {
    hash_pairs(labels.iter())
}

/// Hashes `name 0xff value 0xff …` (0xff never occurs in UTF-8). The pieces are gathered
/// in a stack buffer and hashed in few calls: one hasher call per piece cost a fifth of
/// the append path.
fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = HASHER.build_hasher();
    let mut buf = [0u8; 256];
    let mut len = 0;
    for (k, v) in pairs {
        for part in [k.as_bytes(), v.as_bytes()] {
            if len + part.len() + 1 > buf.len() {
                h.write(&buf[..len]);
                len = 0;
                if part.len() + 1 > buf.len() {
                    h.write(part);
                    h.write_u8(0xff);
                    continue;
                }
            }
            buf[len..len + part.len()].copy_from_slice(part);
            buf[len + part.len()] = 0xff;
            len += part.len() + 1;
        }
    }
    h.write(&buf[..len]);
    h.finish()
}

fn series_pairs<'a>(
    symbols: &'a Symbols,
    labels: &'a [u32],
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    labels
        .chunks_exact(2)
        .map(|p| (symbols.get(p[0]), symbols.get(p[1])))
}

fn find_index(series: &[MemSeries], id: u32) -> Option<usize> {
    series.binary_search_by_key(&id, |s| s.id).ok()
}

impl Default for TenantHead {
    fn default() -> Self {
        Self {
            symbols: Symbols::new(),
            series: Vec::new(),
            by_labels: HashTable::new(),
            postings: HashMap::new(),
            boundary: i64::MIN,
            last_append_wall_ms: wall_ms(),
        }
    }
}

impl TenantHead {
    /// The id of the series with exactly these labels.
    pub fn find(&self, labels: &Labels) -> Option<u32> {
        self.find_hashed(labels_hash(labels), labels)
    }

    /// [`TenantHead::find`] with the hash already computed ([`labels_hash`]).
    pub fn find_hashed(&self, hash: u64, labels: &Labels) -> Option<u32> {
        self.by_labels
            .find(hash, |&id| {
                find_index(&self.series, id).is_some_and(|i| {
                    let s = &self.series[i];
                    s.labels.len() == labels.len() * 2
                        && series_pairs(&self.symbols, &s.labels).eq(labels.iter())
                })
            })
            .copied()
    }

    pub fn get(&self, id: u32) -> Option<&MemSeries> {
        find_index(&self.series, id).map(|i| &self.series[i])
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut MemSeries> {
        find_index(&self.series, id).map(move |i| &mut self.series[i])
    }

    /// Adds a series (the caller checked it does not exist).
    pub fn create(&mut self, id: u32, labels: &Labels) {
        let syms: Box<[u32]> = labels
            .iter()
            .flat_map(|(k, v)| [k, v])
            .map(|s| self.symbols.intern(s))
            .collect();
        self.index_series(id, &syms);
        let series = MemSeries::new(id, syms);
        self.insert_series(series);
    }

    /// Adds a restored series (from a snapshot).
    pub fn insert_restored(&mut self, series: MemSeries) {
        self.index_series(series.id, &series.labels);
        self.insert_series(series);
    }

    fn insert_series(&mut self, series: MemSeries) {
        let id = series.id;
        match self.series.last() {
            Some(last) if last.id >= id => {
                let at = self.series.partition_point(|s| s.id < id);
                self.series.insert(at, series);
            }
            _ => {
                // Grow by an eighth, not double: this vector is most of the fixed cost per
                // series, and doubling would leave up to half of it unused.
                if self.series.len() == self.series.capacity() {
                    self.series.reserve_exact((self.series.len() / 8).max(16));
                }
                self.series.push(series)
            }
        }
        let hash = hash_pairs({
            let s = self.get(id).expect("just inserted");
            series_pairs(&self.symbols, &s.labels)
        });
        let Self {
            by_labels,
            series,
            symbols,
            ..
        } = self;
        by_labels.insert_unique(hash, id, |&other| {
            let s = &series[find_index(series, other).expect("indexed series exists")];
            hash_pairs(series_pairs(symbols, &s.labels))
        });
    }

    fn index_series(&mut self, id: u32, syms: &[u32]) {
        for p in syms.chunks_exact(2) {
            let values = self.postings.entry(p[0]).or_default();
            match values.get_mut(&p[1]) {
                Some(list) if list.as_slice().last().is_some_and(|&l| l < id) => list.push(id),
                Some(list) => {
                    // Out-of-order id (restore from an unsorted source): keep it sorted.
                    let mut v = list.as_slice().to_vec();
                    if let Err(at) = v.binary_search(&id) {
                        v.insert(at, id);
                    }
                    *list = PostingList::Many(v);
                }
                None => {
                    values.insert(p[1], PostingList::One(id));
                }
            }
        }
    }

    pub fn labels_of(&self, s: &MemSeries) -> Labels {
        Labels::from_pairs(series_pairs(&self.symbols, &s.labels))
    }

    /// Label pairs of a series as strings.
    pub fn pairs<'a>(&'a self, s: &'a MemSeries) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        series_pairs(&self.symbols, &s.labels)
    }

    /// Removes the series with these ids (sorted) from every structure; rebuilds the symbol
    /// table when most of it is garbage.
    pub fn remove(&mut self, ids: &[u32]) {
        if ids.is_empty() {
            return;
        }
        let gone = |id: u32| ids.binary_search(&id).is_ok();
        for values in self.postings.values_mut() {
            values.retain(|_, list| list.retain(|id| !gone(id)));
        }
        self.postings.retain(|_, values| !values.is_empty());
        for &id in ids {
            let Some(i) = find_index(&self.series, id) else {
                continue;
            };
            let hash = hash_pairs(series_pairs(&self.symbols, &self.series[i].labels));
            if let Ok(entry) = self.by_labels.find_entry(hash, |&x| x == id) {
                entry.remove();
            }
        }
        self.series.retain(|s| !gone(s.id));
        self.by_labels.shrink_to_fit(|&id| {
            let s = &self.series[find_index(&self.series, id).expect("indexed series exists")];
            hash_pairs(series_pairs(&self.symbols, &s.labels))
        });
        self.maybe_rebuild_symbols();
    }

    /// Re-interns every live label when fewer than half of the symbols are still used
    /// (series churn: pod names that come and go).
    fn maybe_rebuild_symbols(&mut self) {
        let mut used = vec![false; self.symbols.len()];
        for s in &self.series {
            for &sym in s.labels.iter() {
                used[sym as usize] = true;
            }
        }
        let live = used.iter().filter(|&&u| u).count();
        if live * 2 >= self.symbols.len() {
            return;
        }
        let mut fresh = Symbols::new();
        let mut map = vec![u32::MAX; self.symbols.len()];
        for s in &mut self.series {
            let relabeled: Box<[u32]> = s
                .labels
                .iter()
                .map(|&sym| {
                    if map[sym as usize] == u32::MAX {
                        map[sym as usize] = fresh.intern(self.symbols.get(sym));
                    }
                    map[sym as usize]
                })
                .collect();
            s.labels = relabeled;
        }
        self.symbols = fresh;
        self.postings = HashMap::new();
        let labels: Vec<(u32, Box<[u32]>)> = self
            .series
            .iter()
            .map(|s| (s.id, s.labels.clone()))
            .collect();
        for (id, syms) in labels {
            self.index_series(id, &syms);
        }
    }

    /// Heap bytes of the index structures (series data excluded).
    pub fn index_heap_bytes(&self) -> usize {
        let mut n = self.symbols.heap_bytes()
            + self.series.capacity() * std::mem::size_of::<MemSeries>()
            + self.by_labels.capacity() * 5;
        for values in self.postings.values() {
            n += values.capacity() * (4 + std::mem::size_of::<PostingList>() + 1);
            n += values.values().map(PostingList::heap_bytes).sum::<usize>();
        }
        n + self.postings.capacity() * 64
    }

    /// Label names with at least one series, sorted.
    pub fn label_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.postings.keys().map(|&n| self.symbols.get(n)).collect();
        names.sort_unstable();
        names
    }
}

impl PostingsSource for TenantHead {
    fn all_ids(&self) -> Vec<u32> {
        self.series.iter().map(|s| s.id).collect()
    }

    fn postings_eq(&self, name: &str, value: &str) -> Vec<u32> {
        let (Some(n), Some(v)) = (self.symbols.find(name), self.symbols.find(value)) else {
            return Vec::new();
        };
        self.postings
            .get(&n)
            .and_then(|values| values.get(&v))
            .map_or_else(Vec::new, |l| l.as_slice().to_vec())
    }

    fn postings_where(&self, name: &str, accept: &dyn Fn(&str) -> bool) -> Vec<u32> {
        let Some(values) = self.symbols.find(name).and_then(|n| self.postings.get(&n)) else {
            return Vec::new();
        };
        union(
            values
                .iter()
                .filter(|&(&v, _)| accept(self.symbols.get(v)))
                .map(|(_, l)| l.as_slice())
                .collect(),
        )
    }
}

/// Every tenant's head.
#[derive(Default)]
pub struct Head {
    pub tenants: BTreeMap<TenantId, TenantHead>,
}

impl Head {
    pub fn tenant_mut(&mut self, tenant: &TenantId) -> &mut TenantHead {
        if !self.tenants.contains_key(tenant) {
            self.tenants.insert(tenant.clone(), TenantHead::default());
        }
        self.tenants.get_mut(tenant).expect("inserted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postings::select_ids;
    use sightline_model::{LabelMatcher, MatchOp};

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn lookup_postings_and_removal() {
        let mut h = TenantHead::default();
        h.create(1, &l(&[("__name__", "up"), ("job", "api")]));
        h.create(2, &l(&[("__name__", "up"), ("job", "db")]));
        h.create(
            3,
            &l(&[("__name__", "errors"), ("job", "api"), ("code", "500")]),
        );
        assert_eq!(h.find(&l(&[("job", "db"), ("__name__", "up")])), Some(2));
        assert_eq!(h.find(&l(&[("__name__", "up")])), None);
        let m = |n: &str, op, v: &str| LabelMatcher::new(n, op, v).unwrap();
        assert_eq!(
            select_ids(&h, &[m("__name__", MatchOp::Equal, "up")]),
            vec![1, 2]
        );
        assert_eq!(
            select_ids(&h, &[m("job", MatchOp::Regex, "a.*|d.")]),
            vec![1, 2, 3]
        );
        assert_eq!(select_ids(&h, &[m("code", MatchOp::Equal, "")]), vec![1, 2]);
        assert_eq!(
            select_ids(
                &h,
                &[
                    m("job", MatchOp::NotEqual, "api"),
                    m("code", MatchOp::NotRegex, "5..")
                ]
            ),
            vec![2]
        );
        h.remove(&[1, 3]);
        assert_eq!(h.find(&l(&[("__name__", "up"), ("job", "api")])), None);
        assert_eq!(h.find(&l(&[("__name__", "up"), ("job", "db")])), Some(2));
        assert_eq!(select_ids(&h, &[m("job", MatchOp::Regex, ".+")]), vec![2]);
        assert_eq!(h.label_names(), vec!["__name__", "job"]);
        assert_eq!(
            h.labels_of(h.get(2).unwrap()),
            l(&[("__name__", "up"), ("job", "db")])
        );
        // Churn: most symbols become garbage and the table is rebuilt, still consistent.
        for id in 10..110 {
            h.create(id, &l(&[("__name__", "up"), ("pod", &format!("p{id}"))]));
        }
        h.remove(&(10..110).collect::<Vec<_>>());
        assert!(h.symbols.len() <= 5, "{}", h.symbols.len());
        assert_eq!(h.find(&l(&[("__name__", "up"), ("job", "db")])), Some(2));
        assert_eq!(select_ids(&h, &[m("job", MatchOp::Equal, "db")]), vec![2]);
    }
}
