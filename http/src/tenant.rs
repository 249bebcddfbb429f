//! Tenant from the `X-Scope-OrgID` header or gRPC metadata (the Loki/Mimir/Tempo convention).

use axum::http::HeaderMap;
use sightline_model::{TenantError, TenantId};

use crate::ApiError;

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

/// The tenant of an HTTP request (`default` without the header); an invalid one is a bad
/// request naming the header.
pub fn tenant_from_headers(headers: &HeaderMap) -> Result<TenantId, ApiError> {
    tenant_from_header(headers.get(TENANT_HEADER).map(|v| v.as_bytes()))
        .map_err(|e| ApiError::bad_request(format!("invalid {TENANT_HEADER} header: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn absent_header_is_the_default_tenant_and_a_bad_one_is_named() {
        let mut headers = HeaderMap::new();
        assert_eq!(tenant_from_headers(&headers).unwrap().as_str(), "default");
        headers.insert(TENANT_HEADER, " team-a ".parse().unwrap());
        assert_eq!(tenant_from_headers(&headers).unwrap().as_str(), "team-a");
        headers.insert(TENANT_HEADER, "a/b".parse().unwrap());
        let err = tenant_from_headers(&headers).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(
            err.message.starts_with("invalid X-Scope-OrgID header: "),
            "{err}"
        );
    }
}
