//! The head snapshot: the whole head written to one file, so that the WAL before it can be
//! deleted and a restart replays only what came after.
//!
//! ```text
//! file   := magic "SLHEAD\0\0\x01" · body · crc:u32 LE (CRC-32 of body)
//! body   := wal_seq:u64 LE · next_id:uvarint · ntenants:uvarint · tenant*
//! tenant := name:str · boundary:svarint · nseries:uvarint · series*
//! series := id:uvarint · nlabels:uvarint · (name:str · value:str)* · packed:bytes · sealed:bytes · open:bytes
//! bytes  := len:uvarint · raw bytes   (packed: pco columns or empty; sealed: framed Gorilla
//!           chunks; open: one Gorilla chunk)
//! ```
//!
//! `wal_seq` is the last WAL record the snapshot reflects; `boundary` the tenant's minimum
//! valid time (data before it is in blocks). The file is written to `head.snapshot.tmp`,
//! fsynced and renamed, so a crash leaves either the old or the new snapshot.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use sightline_model::{Labels, TenantId};

use crate::codec::{Reader, put_bytes, put_str, put_svarint, put_uvarint};
use crate::error::{TsdbError, corrupt, io_err};
use crate::head::Head;
use crate::series::MemSeries;

pub const MAGIC: &[u8; 8] = b"SLHEAD\0\x01";
pub const FILE_NAME: &str = "head.snapshot";

/// Writes and checksums while passing bytes on.
struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Serialises the head into `file` (not synced: the caller syncs after releasing locks).
pub fn write(
    head: &Head,
    wal_seq: u64,
    next_id: u32,
    file: &File,
    path: &Path,
) -> Result<(), TsdbError> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(MAGIC).map_err(io_err(path))?;
    let mut w = CrcWriter {
        inner: out,
        crc: crc32fast::Hasher::new(),
    };
    let mut buf = Vec::with_capacity(1 << 16);
    buf.extend_from_slice(&wal_seq.to_le_bytes());
    put_uvarint(&mut buf, u64::from(next_id));
    put_uvarint(&mut buf, head.tenants.len() as u64);
    for (tenant, th) in &head.tenants {
        put_str(&mut buf, tenant.as_str());
        put_svarint(&mut buf, th.boundary);
        put_uvarint(&mut buf, th.series.len() as u64);
        for s in &th.series {
            put_uvarint(&mut buf, u64::from(s.id));
            put_uvarint(&mut buf, (s.labels.len() / 2) as u64);
            for (k, v) in th.pairs(s) {
                put_str(&mut buf, k);
                put_str(&mut buf, v);
            }
            let (packed, sealed, open) = s.parts();
            put_bytes(&mut buf, packed.unwrap_or_default());
            put_bytes(&mut buf, sealed);
            put_bytes(&mut buf, &open);
            if buf.len() >= 1 << 16 {
                w.write_all(&buf).map_err(io_err(path))?;
                buf.clear();
            }
        }
    }
    w.write_all(&buf).map_err(io_err(path))?;
    let crc = w.crc.finalize();
    let mut out = w.inner;
    out.write_all(&crc.to_le_bytes()).map_err(io_err(path))?;
    out.flush().map_err(io_err(path))?;
    Ok(())
}

/// A snapshot read back: the head, the last WAL sequence number it reflects, the next
/// series id.
pub struct Restored {
    pub head: Head,
    pub wal_seq: u64,
    pub next_id: u32,
}

pub fn read(path: &Path) -> Result<Option<Restored>, TsdbError> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    if data.len() < MAGIC.len() + 4 || &data[..MAGIC.len()] != MAGIC {
        return Err(corrupt(path, "not a head snapshot (bad magic)"));
    }
    let body = &data[MAGIC.len()..data.len() - 4];
    let crc = u32::from_le_bytes(data[data.len() - 4..].try_into().expect("4 bytes"));
    if crc32fast::hash(body) != crc {
        return Err(corrupt(path, "checksum mismatch"));
    }
    parse(body)
        .map(Some)
        .map_err(|detail| corrupt(path, detail))
}

fn parse(body: &[u8]) -> Result<Restored, String> {
    let mut r = Reader::new(body);
    let wal_seq = r.u64_le("wal sequence")?;
    let next_id = r.u32_varint("next series id")?;
    let limit = body.len();
    let mut head = Head::default();
    for _ in 0..r.len("tenant count", limit)? {
        let tenant = TenantId::new(r.str("tenant")?).map_err(|e| e.to_string())?;
        let th = head.tenant_mut(&tenant);
        th.boundary = r.svarint("boundary")?;
        for _ in 0..r.len("series count", limit)? {
            let id = r.u32_varint("series id")?;
            let nl = r.len("label count", limit)?;
            let mut pairs = Vec::with_capacity(nl);
            for _ in 0..nl {
                pairs.push((r.str("label name")?, r.str("label value")?));
            }
            let labels = Labels::from_pairs(pairs);
            let syms: Box<[u32]> = labels
                .iter()
                .flat_map(|(k, v)| [k, v])
                .map(|s| th.symbols.intern(s))
                .collect();
            let packed = r.len_bytes("packed samples")?;
            let sealed = r.len_bytes("sealed chunks")?;
            let open = r.len_bytes("open chunk")?;
            let series = MemSeries::from_parts(
                id,
                syms,
                (!packed.is_empty()).then(|| packed.to_vec()),
                sealed.to_vec(),
                open,
            )
            .map_err(|e| format!("series {id}: {e}"))?;
            th.insert_restored(series);
        }
    }
    if !r.is_empty() {
        return Err("trailing bytes after the last tenant".into());
    }
    Ok(Restored {
        head,
        wal_seq,
        next_id,
    })
}
