//! Immutable on-disk blocks: one file per tenant and time range holding every series'
//! samples in the range and an index over them.
//!
//! # File format (version 1)
//!
//! ```text
//! file     := magic "SLTSBLK\x01" · data · index · footer
//! data     := column*                       pco columns, each followed by crc:u32 LE
//! index    := symbols · series · postings
//! symbols  := n:uvarint · str*              every label name and value, sorted, unique
//! series   := n:uvarint · entry*            sorted by label set; a series' id is its position
//! entry    := nlabels:uvarint · (name:uvarint · value:uvarint)* · mint:svarint
//!             · span:uvarint (maxt − mint) · samples:uvarint
//!             · t_off:uvarint · t_len:uvarint · v_off:uvarint · v_len:uvarint
//! postings := nnames:uvarint · (name:uvarint · nvalues:uvarint
//!             · (value:uvarint · n:uvarint · id_delta:uvarint*)*)*
//! footer   := mint:i64 · maxt:i64 · level:u32 · nseries:u64 · nsamples:u64
//!             · index_off:u64 · index_len:u64 · index_crc:u32 · magic       (all LE, 68 bytes)
//! str      := len:uvarint · UTF-8 bytes
//! ```
//!
//! A series' samples are two columns in the data section: its timestamps (`t_off`,
//! `t_len`: pco `i64`) and its values (`v_off`, `v_len`: pco `f64`), see
//! [`crate::columns`]; offsets are from the start of the file and lengths include the
//! column's CRC-32. Series with identical timestamps (everything one scrape target
//! exposes) point at one shared timestamp column, which makes timestamps nearly free even
//! with scrape jitter. Label and postings references are symbol ids (positions in
//! `symbols`); names and values appear in symbol (= string) order, ids in postings
//! ascending. The footer's `mint`/`maxt` are the block's time range, `[mint, maxt)`; an
//! entry's are its first and last sample. `level` is 1 for a block cut from the head and
//! grows by one per compaction. `index_crc` is CRC-32 over the index. The format is pinned
//! by `testdata/block_v1.blk` (`tests::golden_block_*`).
//!
//! Writing goes to `<name>.tmp`, fsynced and renamed to `<name>.blk`. Only the footer is read
//! when a block is opened; the index is loaded on the first query that needs it and
//! dropped again after a maintenance round without use; series data is read per series
//! with positioned reads (`pread`), never the whole file.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sightline_model::Labels;

use crate::codec::{Reader, put_str, put_svarint, put_uvarint};
use crate::columns;
use crate::compact::Run;
use crate::error::{TsdbError, corrupt, io_err};
use crate::postings::{PostingsSource, union};

pub const MAGIC: &[u8; 8] = b"SLTSBLK\x01";
const FOOTER_LEN: u64 = 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8;
pub const EXTENSION: &str = "blk";

/// What the footer says about a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    /// Time range `[mint, maxt)`.
    pub mint: i64,
    pub maxt: i64,
    pub level: u32,
    pub num_series: u64,
    pub num_samples: u64,
    index_off: u64,
    index_len: u64,
    index_crc: u32,
}

/// The file name of a block: its range, readable and unique per tenant.
pub fn file_name(mint: i64, maxt: i64) -> String {
    format!("{mint}_{maxt}.{EXTENSION}")
}

/// Writes one block. Series must be added in label-set order.
pub struct BlockWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    _guard: TmpGuard,
    pos: u64,
    /// Provisional symbol ids (in order of first use); sorted at `finish`.
    symbols: HashMap<String, u32>,
    entries: Vec<PendingEntry>,
    last: Option<Labels>,
    samples: u64,
    /// Timestamp columns written, by content key, for sharing.
    ts_columns: HashMap<TsKey, (u64, u64)>,
}

/// Identifies a timestamp column by content: length, ends and two independent 64-bit
/// hashes (a collision would need both to collide on columns with equal ends).
#[derive(Hash, PartialEq, Eq)]
struct TsKey {
    n: usize,
    first: i64,
    last: i64,
    sip: u64,
    crc: u32,
}

impl TsKey {
    fn of(ts: &[i64]) -> Self {
        use std::hash::{Hash, Hasher};
        #[allow(deprecated)] // SipHasher with fixed keys: stable across runs.
        let mut h = std::hash::SipHasher::new_with_keys(0x736c_7473, 0x6462_7473);
        ts.hash(&mut h);
        let mut crc = crc32fast::Hasher::new();
        for t in ts {
            crc.update(&t.to_le_bytes());
        }
        Self {
            n: ts.len(),
            first: ts[0],
            last: ts[ts.len() - 1],
            sip: h.finish(),
            crc: crc.finalize(),
        }
    }
}

struct PendingEntry {
    labels: Vec<u32>,
    mint: i64,
    maxt: i64,
    samples: u64,
    t: (u64, u64),
    v: (u64, u64),
}

impl BlockWriter {
    /// Starts `dir/<mint>_<maxt>.blk` (written as `.tmp` until [`BlockWriter::finish`]).
    pub fn create(dir: &Path, mint: i64, maxt: i64) -> Result<Self, TsdbError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(file_name(mint, maxt));
        let tmp = path.with_extension("tmp");
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC).map_err(io_err(&tmp))?;
        Ok(Self {
            _guard: TmpGuard(tmp.clone()),
            tmp,
            path,
            out,
            pos: MAGIC.len() as u64,
            symbols: HashMap::new(),
            entries: Vec::new(),
            last: None,
            samples: 0,
            ts_columns: HashMap::new(),
        })
    }

    /// Adds a series' samples (time-ordered, no duplicate timestamps); empty runs are
    /// skipped.
    pub fn add(&mut self, labels: &Labels, ts: &[i64], vs: &[f64]) -> Result<(), TsdbError> {
        if ts.is_empty() {
            return Ok(());
        }
        if self.last.as_ref().is_some_and(|l| l >= labels) {
            return Err(TsdbError::Encode(format!(
                "block series out of order: {} after {}",
                labels.to_canonical(),
                self.last
                    .as_ref()
                    .map(Labels::to_canonical)
                    .unwrap_or_default()
            )));
        }
        let key = TsKey::of(ts);
        let t = match self.ts_columns.get(&key) {
            Some(&loc) => loc,
            None => {
                let col = columns::encode_timestamps(ts, columns::BLOCK_LEVEL)
                    .map_err(TsdbError::Encode)?;
                let loc = self.write_column(&col)?;
                self.ts_columns.insert(key, loc);
                loc
            }
        };
        let col = columns::encode_values(vs, columns::BLOCK_LEVEL).map_err(TsdbError::Encode)?;
        let v = self.write_column(&col)?;
        let mut syms = Vec::with_capacity(labels.len() * 2);
        for (k, v) in labels.iter() {
            for s in [k, v] {
                let next = self.symbols.len() as u32;
                syms.push(*self.symbols.entry(s.to_string()).or_insert(next));
            }
        }
        self.entries.push(PendingEntry {
            labels: syms,
            mint: ts[0],
            maxt: ts[ts.len() - 1],
            samples: ts.len() as u64,
            t,
            v,
        });
        self.samples += ts.len() as u64;
        self.last = Some(labels.clone());
        Ok(())
    }

    /// Appends a column and its CRC to the data section; returns (offset, length).
    fn write_column(&mut self, col: &[u8]) -> Result<(u64, u64), TsdbError> {
        let at = self.pos;
        self.out.write_all(col).map_err(io_err(&self.tmp))?;
        self.out
            .write_all(&crc32fast::hash(col).to_le_bytes())
            .map_err(io_err(&self.tmp))?;
        let len = col.len() as u64 + 4;
        self.pos += len;
        Ok((at, len))
    }

    pub fn series_count(&self) -> usize {
        self.entries.len()
    }

    /// Writes the index and footer, syncs and renames the file into place. Returns the
    /// final path and meta.
    pub fn finish(
        mut self,
        mint: i64,
        maxt: i64,
        level: u32,
    ) -> Result<(PathBuf, BlockMeta), TsdbError> {
        let mut sorted: Vec<(&str, u32)> = self
            .symbols
            .iter()
            .map(|(s, &id)| (s.as_str(), id))
            .collect();
        sorted.sort_unstable();
        let mut remap = vec![0u32; sorted.len()];
        for (final_id, (_, provisional)) in sorted.iter().enumerate() {
            remap[*provisional as usize] = final_id as u32;
        }
        let mut index = Vec::new();
        put_uvarint(&mut index, sorted.len() as u64);
        for (s, _) in &sorted {
            put_str(&mut index, s);
        }
        put_uvarint(&mut index, self.entries.len() as u64);
        // name → value → ids, all in final symbol order.
        let mut postings: std::collections::BTreeMap<
            u32,
            std::collections::BTreeMap<u32, Vec<u32>>,
        > = Default::default();
        for (i, e) in self.entries.iter().enumerate() {
            put_uvarint(&mut index, (e.labels.len() / 2) as u64);
            for p in e.labels.chunks_exact(2) {
                let (n, v) = (remap[p[0] as usize], remap[p[1] as usize]);
                put_uvarint(&mut index, u64::from(n));
                put_uvarint(&mut index, u64::from(v));
                postings
                    .entry(n)
                    .or_default()
                    .entry(v)
                    .or_default()
                    .push(i as u32);
            }
            put_svarint(&mut index, e.mint);
            put_uvarint(&mut index, e.maxt.wrapping_sub(e.mint) as u64);
            put_uvarint(&mut index, e.samples);
            for x in [e.t.0, e.t.1, e.v.0, e.v.1] {
                put_uvarint(&mut index, x);
            }
        }
        put_uvarint(&mut index, postings.len() as u64);
        for (name, values) in &postings {
            put_uvarint(&mut index, u64::from(*name));
            put_uvarint(&mut index, values.len() as u64);
            for (value, ids) in values {
                put_uvarint(&mut index, u64::from(*value));
                put_uvarint(&mut index, ids.len() as u64);
                let mut prev = 0u32;
                for &id in ids {
                    put_uvarint(&mut index, u64::from(id - prev));
                    prev = id;
                }
            }
        }
        let meta = BlockMeta {
            mint,
            maxt,
            level,
            num_series: self.entries.len() as u64,
            num_samples: self.samples,
            index_off: self.pos,
            index_len: index.len() as u64,
            index_crc: crc32fast::hash(&index),
        };
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&meta.mint.to_le_bytes());
        footer.extend_from_slice(&meta.maxt.to_le_bytes());
        footer.extend_from_slice(&meta.level.to_le_bytes());
        footer.extend_from_slice(&meta.num_series.to_le_bytes());
        footer.extend_from_slice(&meta.num_samples.to_le_bytes());
        footer.extend_from_slice(&meta.index_off.to_le_bytes());
        footer.extend_from_slice(&meta.index_len.to_le_bytes());
        footer.extend_from_slice(&meta.index_crc.to_le_bytes());
        footer.extend_from_slice(MAGIC);
        let tmp = self.tmp.clone();
        self.out.write_all(&index).map_err(io_err(&tmp))?;
        self.out.write_all(&footer).map_err(io_err(&tmp))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_err(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        Ok((self.path, meta))
    }
}

/// Removes a temporary file when dropped: an abandoned (failed) block leaves nothing
/// behind; after the rename the name no longer exists and this is a no-op.
struct TmpGuard(PathBuf);

impl Drop for TmpGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

pub fn sync_dir(dir: &Path) -> Result<(), TsdbError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// One series of a block's index.
#[derive(Debug, Clone, Copy)]
pub struct BlockSeries {
    labels_start: u32,
    nlabels: u32,
    pub mint: i64,
    pub maxt: i64,
    pub samples: u64,
    t: (u64, u64),
    v: (u64, u64),
}

/// A label value's postings: value symbol, start and length in [`BlockIndex`]'s ids.
type ValuePostings = (u32, u32, u32);

/// A block's index, loaded.
#[derive(Debug)]
pub struct BlockIndex {
    symbols: Vec<Box<str>>,
    /// Label symbol pairs of every series, back to back.
    labels: Vec<u32>,
    pub series: Vec<BlockSeries>,
    /// name symbol, sorted → (value symbol, sorted, start and length in `ids`).
    postings: Vec<(u32, Vec<ValuePostings>)>,
    ids: Vec<u32>,
}

impl BlockIndex {
    fn parse(bytes: &[u8], data_end: u64) -> Result<Self, String> {
        let mut r = Reader::new(bytes);
        let limit = bytes.len();
        let nsym = r.len("symbol count", limit)?;
        let mut symbols = Vec::with_capacity(nsym);
        for _ in 0..nsym {
            symbols.push(Box::from(r.str("symbol")?));
        }
        let sym = |id: u32, what: &str| -> Result<u32, String> {
            if (id as usize) < nsym {
                Ok(id)
            } else {
                Err(format!("{what} symbol {id} out of range"))
            }
        };
        let nseries = r.len("series count", limit)?;
        let mut series = Vec::with_capacity(nseries);
        let mut labels = Vec::new();
        let column = |r: &mut Reader<'_>, what: &str| -> Result<(u64, u64), String> {
            let off = r.uvarint(what)?;
            let len = r.uvarint(what)?;
            if off < MAGIC.len() as u64
                || len < 4
                || off.checked_add(len).is_none_or(|end| end > data_end)
            {
                return Err(format!("{what} at {off} (+{len}) outside the data section"));
            }
            Ok((off, len))
        };
        for _ in 0..nseries {
            let nl = r.len("label count", limit)?;
            let start = labels.len() as u32;
            for _ in 0..nl {
                labels.push(sym(r.u32_varint("label name")?, "label name")?);
                labels.push(sym(r.u32_varint("label value")?, "label value")?);
            }
            let mint = r.svarint("series mint")?;
            let maxt = mint.wrapping_add(r.uvarint("series span")? as i64);
            let samples = r.uvarint("series samples")?;
            let t = column(&mut r, "timestamp column")?;
            let v = column(&mut r, "value column")?;
            series.push(BlockSeries {
                labels_start: start,
                nlabels: nl as u32,
                mint,
                maxt,
                samples,
                t,
                v,
            });
        }
        let nnames = r.len("postings name count", limit)?;
        let mut postings = Vec::with_capacity(nnames);
        let mut ids = Vec::new();
        for _ in 0..nnames {
            let name = sym(r.u32_varint("postings name")?, "postings name")?;
            let nvalues = r.len("postings value count", limit)?;
            let mut values = Vec::with_capacity(nvalues);
            for _ in 0..nvalues {
                let value = sym(r.u32_varint("postings value")?, "postings value")?;
                let n = r.len("postings length", nseries)?;
                let start = ids.len() as u32;
                let mut id = 0u32;
                for _ in 0..n {
                    id = id
                        .checked_add(r.u32_varint("postings id")?)
                        .filter(|&i| (i as usize) < nseries)
                        .ok_or("postings id out of range")?;
                    ids.push(id);
                }
                values.push((value, start, n as u32));
            }
            postings.push((name, values));
        }
        if !r.is_empty() {
            return Err("trailing bytes after the postings".into());
        }
        Ok(Self {
            symbols,
            labels,
            series,
            postings,
            ids,
        })
    }

    fn find_symbol(&self, s: &str) -> Option<u32> {
        self.symbols
            .binary_search_by(|x| x.as_ref().cmp(s))
            .ok()
            .map(|i| i as u32)
    }

    fn values_of(&self, name: &str) -> &[ValuePostings] {
        let Some(n) = self.find_symbol(name) else {
            return &[];
        };
        match self.postings.binary_search_by_key(&n, |(name, _)| *name) {
            Ok(i) => &self.postings[i].1,
            Err(_) => &[],
        }
    }

    pub fn pairs(&self, i: usize) -> impl Iterator<Item = (&str, &str)> + '_ {
        let s = &self.series[i];
        self.labels[s.labels_start as usize..(s.labels_start + 2 * s.nlabels) as usize]
            .chunks_exact(2)
            .map(|p| (&*self.symbols[p[0] as usize], &*self.symbols[p[1] as usize]))
    }

    pub fn labels(&self, i: usize) -> Labels {
        Labels::from_pairs(self.pairs(i))
    }

    pub fn heap_bytes(&self) -> usize {
        self.symbols.iter().map(|s| s.len() + 32).sum::<usize>()
            + self.labels.capacity() * 4
            + self.series.capacity() * std::mem::size_of::<BlockSeries>()
            + self.ids.capacity() * 4
            + self
                .postings
                .iter()
                .map(|(_, v)| 40 + v.capacity() * 12)
                .sum::<usize>()
    }
}

impl PostingsSource for BlockIndex {
    fn all_ids(&self) -> Vec<u32> {
        (0..self.series.len() as u32).collect()
    }

    fn postings_eq(&self, name: &str, value: &str) -> Vec<u32> {
        let Some(v) = self.find_symbol(value) else {
            return Vec::new();
        };
        let values = self.values_of(name);
        match values.binary_search_by_key(&v, |e| e.0) {
            Ok(i) => {
                let (_, start, n) = values[i];
                self.ids[start as usize..(start + n) as usize].to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    fn postings_where(&self, name: &str, accept: &dyn Fn(&str) -> bool) -> Vec<u32> {
        union(
            self.values_of(name)
                .iter()
                .filter(|(v, _, _)| accept(&self.symbols[*v as usize]))
                .map(|&(_, start, n)| &self.ids[start as usize..(start + n) as usize])
                .collect(),
        )
    }
}

/// An open block.
pub struct Block {
    pub path: PathBuf,
    file: File,
    pub meta: BlockMeta,
    pub file_bytes: u64,
    index: Mutex<Option<Arc<BlockIndex>>>,
    used: AtomicBool,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .finish()
    }
}

impl Block {
    /// Opens a block, reading and checking only its footer.
    pub fn open(path: &Path) -> Result<Self, TsdbError> {
        let file = File::open(path).map_err(io_err(path))?;
        let file_bytes = file.metadata().map_err(io_err(path))?.len();
        if file_bytes < MAGIC.len() as u64 + FOOTER_LEN {
            return Err(corrupt(
                path,
                format!("block file of {file_bytes} bytes is too short"),
            ));
        }
        let mut head = [0u8; 8];
        file.read_exact_at(&mut head, 0).map_err(io_err(path))?;
        let mut footer = vec![0u8; FOOTER_LEN as usize];
        file.read_exact_at(&mut footer, file_bytes - FOOTER_LEN)
            .map_err(io_err(path))?;
        if &head != MAGIC || &footer[FOOTER_LEN as usize - 8..] != MAGIC {
            return Err(corrupt(path, "not a sightline block v1 (bad magic)"));
        }
        let le64 = |o: usize| u64::from_le_bytes(footer[o..o + 8].try_into().expect("8 bytes"));
        let le32 = |o: usize| u32::from_le_bytes(footer[o..o + 4].try_into().expect("4 bytes"));
        let meta = BlockMeta {
            mint: le64(0) as i64,
            maxt: le64(8) as i64,
            level: le32(16),
            num_series: le64(20),
            num_samples: le64(28),
            index_off: le64(36),
            index_len: le64(44),
            index_crc: le32(52),
        };
        if meta.index_off < MAGIC.len() as u64
            || meta.index_off.checked_add(meta.index_len) != Some(file_bytes - FOOTER_LEN)
        {
            return Err(corrupt(
                path,
                "index location in the footer is inconsistent",
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            meta,
            file_bytes,
            index: Mutex::new(None),
            used: AtomicBool::new(false),
        })
    }

    /// The index, loaded on first use.
    pub fn index(&self) -> Result<Arc<BlockIndex>, TsdbError> {
        self.used.store(true, Ordering::Relaxed);
        let mut slot = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ix) = &*slot {
            return Ok(ix.clone());
        }
        let mut bytes = vec![0u8; self.meta.index_len as usize];
        self.file
            .read_exact_at(&mut bytes, self.meta.index_off)
            .map_err(io_err(&self.path))?;
        if crc32fast::hash(&bytes) != self.meta.index_crc {
            return Err(corrupt(&self.path, "index checksum mismatch"));
        }
        let ix = Arc::new(
            BlockIndex::parse(&bytes, self.meta.index_off)
                .map_err(|d| corrupt(&self.path, format!("index: {d}")))?,
        );
        if ix.series.len() as u64 != self.meta.num_series {
            return Err(corrupt(&self.path, "series count differs from the footer"));
        }
        *slot = Some(ix.clone());
        Ok(ix)
    }

    /// Reads one column and checks its CRC.
    fn read_column(&self, (off, len): (u64, u64), i: usize) -> Result<Vec<u8>, TsdbError> {
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, off)
            .map_err(io_err(&self.path))?;
        let crc = buf.split_off(buf.len() - 4);
        if crc32fast::hash(&buf) != u32::from_le_bytes(crc[..].try_into().expect("4 bytes")) {
            return Err(corrupt(
                &self.path,
                format!("series {i} column at {off}: checksum mismatch"),
            ));
        }
        Ok(buf)
    }

    /// Reads and decodes series `i` of `index`.
    pub fn read_series(&self, index: &BlockIndex, i: usize) -> Result<Run, TsdbError> {
        let s = index.series[i];
        let ts = columns::decode_timestamps(&self.read_column(s.t, i)?)
            .map_err(|d| corrupt(&self.path, format!("series {i}: {d}")))?;
        let vs = columns::decode_values(&self.read_column(s.v, i)?)
            .map_err(|d| corrupt(&self.path, format!("series {i}: {d}")))?;
        if ts.len() != vs.len() || ts.len() as u64 != s.samples {
            return Err(corrupt(
                &self.path,
                format!(
                    "series {i}: {} timestamps and {} values for {} samples",
                    ts.len(),
                    vs.len(),
                    s.samples
                ),
            ));
        }
        Ok((ts, vs))
    }

    /// Drops the loaded index unless it was used since the last call.
    pub fn evict_if_idle(&self) {
        if !self.used.swap(false, Ordering::Relaxed) {
            *self.index.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    pub fn loaded_index_bytes(&self) -> usize {
        self.index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |ix| ix.heap_bytes())
    }

    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.mint <= maxt && self.meta.maxt > mint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postings::select_ids;
    use sightline_model::{LabelMatcher, MatchOp, STALE_NAN_BITS};

    const T0: i64 = 1_699_920_000_000;

    /// Four series in label order: a jittered counter ending in a staleness marker, a
    /// second counter of the same scrape, a sparse series, a gauge with NaN and ±Inf.
    fn golden_input() -> Vec<(Labels, Vec<i64>, Vec<f64>)> {
        let counter: (Vec<i64>, Vec<f64>) = (0..480)
            .map(|i| {
                let t = T0 + i * 15_000 + [0, 2, -1, 0, 1][i as usize % 5];
                let v = if i == 479 {
                    f64::from_bits(STALE_NAN_BITS)
                } else {
                    (i * 7 % 13 + i * 10) as f64
                };
                (t, v)
            })
            .unzip();
        let gauge: (Vec<i64>, Vec<f64>) = (0..240)
            .map(|i| {
                let v = match i {
                    10 => f64::NAN,
                    11 => f64::INFINITY,
                    12 => f64::NEG_INFINITY,
                    _ => 40.0 + f64::from(i as u32 % 17) * 0.25,
                };
                (T0 + i * 30_000, v)
            })
            .unzip();
        let not_found: Vec<f64> = (0..480).map(|i| f64::from(i / 60)).collect();
        vec![
            (
                Labels::from_pairs([
                    ("__name__", "http_requests_total"),
                    ("code", "200"),
                    ("job", "api"),
                ]),
                counter.0.clone(),
                counter.1,
            ),
            // Scraped with the series above: shares its timestamp column.
            (
                Labels::from_pairs([
                    ("__name__", "http_requests_total"),
                    ("code", "404"),
                    ("job", "api"),
                ]),
                counter.0,
                not_found,
            ),
            (
                Labels::from_pairs([
                    ("__name__", "http_requests_total"),
                    ("code", "500"),
                    ("job", "api"),
                ]),
                vec![T0 + 5_000, T0 + 3_600_000],
                vec![1.0, 2.0],
            ),
            (
                Labels::from_pairs([("__name__", "temperature_celsius"), ("job", "sensors")]),
                gauge.0,
                gauge.1,
            ),
        ]
    }

    fn write_golden(dir: &Path) -> PathBuf {
        let mut w = BlockWriter::create(dir, T0, T0 + 7_200_000).unwrap();
        for (l, ts, vs) in golden_input() {
            w.add(&l, &ts, &vs).unwrap();
        }
        w.finish(T0, T0 + 7_200_000, 1).unwrap().0
    }

    fn golden_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/block_v1.blk")
    }

    /// Writing the golden input gives exactly the stored bytes. To regenerate after a
    /// deliberate format change (which also needs a new magic), delete
    /// `testdata/block_v1.blk` and run this test once.
    #[test]
    fn golden_block_writing_is_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let written = fs::read(write_golden(dir.path())).unwrap();
        let golden = golden_path();
        if !golden.exists() {
            fs::write(&golden, &written).unwrap();
        }
        assert!(
            written == fs::read(&golden).unwrap(),
            "block format changed (or pco's output did)"
        );
    }

    #[test]
    fn golden_block_reads_back() {
        let golden = golden_path();
        if !golden.exists() {
            let dir = tempfile::tempdir().unwrap();
            fs::copy(write_golden(dir.path()), &golden).unwrap();
        }
        let b = Block::open(&golden).unwrap();
        let ix = b.index().unwrap();
        assert_eq!(
            (b.meta.mint, b.meta.maxt, b.meta.level),
            (T0, T0 + 7_200_000, 1)
        );
        assert_eq!((b.meta.num_series, b.meta.num_samples), (4, 1202));
        assert_eq!(
            ix.series[0].t, ix.series[1].t,
            "one shared timestamp column"
        );
        for (i, (labels, ts, vs)) in golden_input().into_iter().enumerate() {
            assert_eq!(ix.labels(i), labels);
            let (t2, v2) = b.read_series(&ix, i).unwrap();
            assert_eq!(t2, ts);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&v2), bits(&vs));
            assert_eq!(
                (ix.series[i].mint, ix.series[i].maxt),
                (ts[0], ts[ts.len() - 1])
            );
        }
        let m = |n: &str, op, v: &str| LabelMatcher::new(n, op, v).unwrap();
        assert_eq!(
            select_ids(&*ix, &[m("job", MatchOp::Equal, "api")]),
            vec![0, 1, 2]
        );
        assert_eq!(
            select_ids(&*ix, &[m("code", MatchOp::Regex, "5..")]),
            vec![2]
        );
        assert_eq!(select_ids(&*ix, &[m("code", MatchOp::Equal, "")]), vec![3]);
        // 1202 samples of scraped data: well under Gorilla's ~2 bytes a sample.
        assert!(b.file_bytes < 1100, "{} bytes", b.file_bytes);
    }

    #[test]
    fn corrupt_blocks_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_golden(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        // A flipped bit in the first series' data: caught by its checksum.
        bytes[20] ^= 0x10;
        fs::write(&path, &bytes).unwrap();
        let b = Block::open(&path).unwrap();
        let ix = b.index().unwrap();
        let err = b.read_series(&ix, 0).unwrap_err().to_string();
        assert!(err.contains("checksum") && err.contains(".blk"), "{err}");
        // A truncated file fails at open.
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = Block::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad magic") || err.contains("inconsistent"),
            "{err}"
        );
        // A damaged index fails its checksum.
        let mut bytes = fs::read(write_golden(dir.path())).unwrap();
        let n = bytes.len();
        bytes[n - FOOTER_LEN as usize - 2] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = Block::open(&path).unwrap().index().unwrap_err().to_string();
        assert!(err.contains("index checksum"), "{err}");
    }
}
