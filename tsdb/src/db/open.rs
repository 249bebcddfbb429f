//! Opening the store: blocks first, then the head snapshot, then the WAL written after the
//! snapshot's position, replayed into the head (samples older than a tenant's newest block
//! are skipped: they are in it).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use sightline_model::{Sample, TenantId};
use sightline_wal::{Wal, WalOptions};

use super::append::apply_sample;
use super::{Tsdb, TsdbOptions, Writer};
use crate::block::{self, Block};
use crate::error::{TsdbError, corrupt, io_err};
use crate::head::{Head, TenantHead};
use crate::snapshot;
use crate::wal_records::{self, KIND_APPEND};

impl Tsdb {
    /// Opens the store in `options.dir`: loads blocks, restores the head from its snapshot
    /// and replays the WAL written after it.
    pub fn open(options: TsdbOptions) -> Result<Tsdb, TsdbError> {
        if options.block_duration_ms <= 0 {
            return Err(TsdbError::InvalidOptions(
                "block_duration_ms must be positive".into(),
            ));
        }
        if options.retention_ms <= 0 || options.out_of_order_window_ms < 0 {
            return Err(TsdbError::InvalidOptions(
                "retention_ms must be positive and out_of_order_window_ms not negative".into(),
            ));
        }
        let dir = options.dir.clone();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let blocks = load_blocks(&dir.join("blocks"))?;

        let snap_path = dir.join(snapshot::FILE_NAME);
        let _ = fs::remove_file(snap_path.with_extension("snapshot.tmp"));
        let (mut head, snap_seq, mut next_id) = match snapshot::read(&snap_path)? {
            Some(r) => (r.head, r.wal_seq, r.next_id),
            None => (Head::default(), 0, 0),
        };
        for (tenant, list) in &blocks {
            if let Some(maxt) = list.iter().map(|b| b.meta.maxt).max() {
                let th = head.tenant_mut(tenant);
                th.boundary = th.boundary.max(maxt);
            }
        }

        let wal_dir = dir.join("wal");
        let mut replay_error: Option<TsdbError> = None;
        let mut replayed = 0u64;
        let wal = Wal::open(
            &wal_dir,
            WalOptions {
                segment_bytes: options.wal_segment_bytes,
            },
            |rec| {
                if rec.seq <= snap_seq || replay_error.is_some() {
                    return;
                }
                if rec.kind != KIND_APPEND {
                    tracing::warn!(
                        seq = rec.seq,
                        kind = rec.kind,
                        "skipping unknown tsdb wal record kind"
                    );
                    return;
                }
                match wal_records::decode_append(&rec.payload) {
                    Ok(r) => {
                        replayed += 1;
                        if let Err(e) = replay_record(&mut head, r, &mut next_id) {
                            replay_error =
                                Some(corrupt(&wal_dir, format!("record {}: {e}", rec.seq)));
                        }
                    }
                    Err(e) => {
                        replay_error = Some(corrupt(&wal_dir, format!("record {}: {e}", rec.seq)));
                    }
                }
            },
        )?;
        if let Some(e) = replay_error {
            return Err(e);
        }
        tracing::info!(
            dir = %dir.display(),
            replayed,
            series = head.tenants.values().map(|t| t.series.len()).sum::<usize>(),
            blocks = blocks.values().map(Vec::len).sum::<usize>(),
            "tsdb opened"
        );
        Ok(Tsdb {
            options,
            writer: Mutex::new(Writer {
                wal,
                next_id,
                wal_bytes_since_snapshot: 0,
            }),
            head: RwLock::new(head),
            blocks: RwLock::new(blocks),
            maintain_lock: Mutex::new(()),
            appended: AtomicU64::new(0),
            refused: Default::default(),
        })
    }
}

/// Applies one replayed WAL record.
fn replay_record(
    head: &mut Head,
    rec: wal_records::AppendRecord,
    next_id: &mut u32,
) -> Result<(), String> {
    let th: &mut TenantHead = head.tenant_mut(&rec.tenant);
    let mut remap: HashMap<u32, u32> = HashMap::new();
    for (id, labels) in &rec.new_series {
        *next_id = (*next_id).max(id.saturating_add(1));
        match th.find(labels) {
            Some(existing) if existing != *id => {
                remap.insert(*id, existing);
            }
            Some(_) => {}
            None if th.get(*id).is_some() => {
                return Err(format!("series id {id} is defined twice"));
            }
            None => th.create(*id, labels),
        }
    }
    let boundary = th.boundary;
    for (id, samples) in rec.sets {
        let id = remap.get(&id).copied().unwrap_or(id);
        let Some(s) = th.get_mut(id) else {
            // A series dropped from the head (all its samples are in blocks) while this
            // record was still in the WAL: its samples are older than the boundary.
            if samples.iter().any(|x| x.t >= boundary) {
                return Err(format!("samples for unknown series id {id}"));
            }
            continue;
        };
        for Sample { t, v } in samples {
            if t >= boundary {
                apply_sample(s, t, v)?;
            }
        }
    }
    Ok(())
}

/// Opens every tenant's blocks, removing unfinished (`.tmp`) files and blocks that lie
/// inside another block's range (inputs of a compaction that finished before a crash).
fn load_blocks(dir: &Path) -> Result<BTreeMap<TenantId, Vec<Arc<Block>>>, TsdbError> {
    let mut out = BTreeMap::new();
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let tdir = entry.path();
        if !tdir.is_dir() {
            continue;
        }
        let Some(tenant) = entry
            .file_name()
            .to_str()
            .and_then(|n| TenantId::new(n).ok())
        else {
            tracing::warn!(path = %tdir.display(), "ignoring a directory that is not a tenant id");
            continue;
        };
        let mut list: Vec<Arc<Block>> = Vec::new();
        for f in fs::read_dir(&tdir).map_err(io_err(&tdir))? {
            let path = f.map_err(io_err(&tdir))?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("tmp") => {
                    let _ = fs::remove_file(&path);
                }
                Some(block::EXTENSION) => list.push(Arc::new(Block::open(&path)?)),
                _ => {}
            }
        }
        list.sort_by(|a, b| {
            (
                a.meta.mint,
                std::cmp::Reverse(a.meta.maxt),
                std::cmp::Reverse(a.meta.level),
                &a.path,
            )
                .cmp(&(
                    b.meta.mint,
                    std::cmp::Reverse(b.meta.maxt),
                    std::cmp::Reverse(b.meta.level),
                    &b.path,
                ))
        });
        let mut kept: Vec<Arc<Block>> = Vec::new();
        for b in list {
            if let Some(outer) = kept
                .iter()
                .find(|k| k.meta.mint <= b.meta.mint && b.meta.maxt <= k.meta.maxt)
            {
                tracing::info!(
                    path = %b.path.display(),
                    inside = %outer.path.display(),
                    "removing a block already compacted into another"
                );
                fs::remove_file(&b.path).map_err(io_err(&b.path))?;
                continue;
            }
            kept.push(b);
        }
        kept.sort_by_key(|b| (b.meta.mint, b.meta.maxt));
        if !kept.is_empty() {
            out.insert(tenant, kept);
        }
    }
    Ok(out)
}
