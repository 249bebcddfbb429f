//! Log patterns at ingest: every indexed line gets the id of its template, mined per tenant
//! and service by `sightline-patterns`, in the `pattern` fast field.
//!
//! Each tenant's miners live in `<root>/<tenant>/patterns.bin` (the tenant is in the path,
//! as for every stored thing). The file is rewritten (temporary file, fsync, rename) before
//! an index commit whenever a pattern was created since the last save, and at least once a
//! minute while counts change: the ids of every committed line are then in the saved state,
//! so they stay valid across restarts. Lines replayed from the WAL after a crash are mined
//! again against the saved state.
//!
//! Pattern ids start at 1 and are unique per (tenant, service); 0 in the field means the
//! line was indexed with mining off. Reading patterns back (counts per bucket, templates,
//! samples) is `pattern_summaries.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sightline_model::TenantId;
use sightline_patterns::{MinerConfig, Pattern, PatternId, PatternStore, PatternsError};

use crate::error::IndexerError;

/// File name of a tenant's saved miners, inside the tenant's log directory.
pub const PATTERNS_FILE: &str = "patterns.bin";
/// Longest time unsaved count updates (no new pattern) are kept only in memory.
const SAVE_COUNTS_EVERY: Duration = Duration::from_secs(60);

struct TenantMiners {
    store: PatternStore,
    /// A pattern was created since the last save.
    new_patterns: bool,
    /// Lines were mined since the last save.
    mined: bool,
    saved_at: Instant,
}

/// The miners of every tenant, owned by the indexing thread.
pub(crate) struct IngestPatterns {
    root: PathBuf,
    config: MinerConfig,
    tenants: HashMap<TenantId, TenantMiners>,
}

fn patterns_error(path: &Path, source: PatternsError) -> IndexerError {
    IndexerError::Patterns {
        path: path.to_path_buf(),
        source,
    }
}

impl IngestPatterns {
    pub fn new(root: &Path, config: MinerConfig) -> Self {
        Self {
            root: root.to_path_buf(),
            config,
            tenants: HashMap::new(),
        }
    }

    fn file(&self, tenant: &TenantId) -> PathBuf {
        self.root.join(tenant.as_str()).join(PATTERNS_FILE)
    }

    fn miners(&mut self, tenant: &TenantId) -> Result<&mut TenantMiners, IndexerError> {
        if !self.tenants.contains_key(tenant) {
            let path = self.file(tenant);
            let store = match std::fs::read(&path) {
                Ok(bytes) => PatternStore::load(self.config.clone(), &bytes)
                    .map_err(|e| patterns_error(&path, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    PatternStore::new(self.config.clone()).map_err(|e| patterns_error(&path, e))?
                }
                Err(source) => return Err(IndexerError::Io { path, source }),
            };
            self.tenants.insert(
                tenant.clone(),
                TenantMiners {
                    store,
                    new_patterns: false,
                    mined: false,
                    saved_at: Instant::now(),
                },
            );
        }
        Ok(self.tenants.get_mut(tenant).expect("inserted above"))
    }

    /// The pattern id of one line of `service` in `tenant`.
    pub fn mine(
        &mut self,
        tenant: &TenantId,
        service: &str,
        line: &str,
        timestamp_ns: i64,
    ) -> Result<u64, IndexerError> {
        let miners = self.miners(tenant)?;
        let outcome = miners
            .store
            .mine(tenant.as_str(), service, line, timestamp_ns / 1_000_000);
        miners.mined = true;
        miners.new_patterns |= outcome.first_seen;
        Ok(outcome.pattern.0)
    }

    /// Saves the tenants whose state must be durable before the next index commit.
    pub fn save_due(&mut self) -> Result<(), IndexerError> {
        let root = self.root.clone();
        for (tenant, miners) in &mut self.tenants {
            let due = miners.new_patterns
                || (miners.mined && miners.saved_at.elapsed() >= SAVE_COUNTS_EVERY);
            if !due {
                continue;
            }
            let path = root.join(tenant.as_str()).join(PATTERNS_FILE);
            let bytes = miners.store.save().map_err(|e| patterns_error(&path, e))?;
            write_atomically(&path, &bytes)?;
            miners.new_patterns = false;
            miners.mined = false;
            miners.saved_at = Instant::now();
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), IndexerError> {
    use std::io::Write;
    let io = |source| IndexerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("bin.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

impl IngestPatterns {
    /// The pattern `id` of `service` in `tenant` (or the one it was merged into).
    pub fn pattern(
        &mut self,
        tenant: &TenantId,
        service: &str,
        id: u64,
    ) -> Result<Option<Pattern>, IndexerError> {
        let miners = self.miners(tenant)?;
        Ok(miners
            .store
            .miner(tenant.as_str(), service)
            .and_then(|m| m.pattern(PatternId(id))))
    }
}
