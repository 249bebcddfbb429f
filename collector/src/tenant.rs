//! Tenant from the `X-Scope-OrgID` header or gRPC metadata (the Loki/Mimir/Tempo convention).

use sightline_model::{TenantError, TenantId};

/// The header (and gRPC metadata key, lower-cased) that names the tenant.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// The tenant named by a header value, `default` when the header is absent.
pub fn tenant_from_header(value: Option<&[u8]>) -> Result<TenantId, TenantError> {
    match value {
        None => Ok(TenantId::default_tenant()),
        Some(bytes) => {
            let s = String::from_utf8_lossy(bytes);
            TenantId::new(s.trim())
        }
    }
}
