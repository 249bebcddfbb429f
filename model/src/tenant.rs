//! Tenant identifiers.
//!
//! A tenant id is part of every storage path and every query, so it must be safe as a single
//! directory name. The accepted alphabet follows Loki/Mimir's rules for `X-Scope-OrgID`
//! (alphanumerics and `!-_.*'()`), minus the characters that are awkward in paths, and is
//! at most 150 bytes long.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest tenant id accepted, in bytes (Mimir's limit).
pub const MAX_TENANT_LEN: usize = 150;

/// The tenant used when a request names none.
pub const DEFAULT_TENANT: &str = "default";

/// Why a string is not a valid tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is {len} bytes long, the limit is {MAX_TENANT_LEN}")]
    TooLong { len: usize },
    #[error(
        "tenant id {id:?} has the illegal character {ch:?} at byte {position}; allowed are letters, digits and -_."
    )]
    IllegalCharacter {
        id: String,
        ch: char,
        position: usize,
    },
    #[error("tenant id {0:?} is reserved")]
    Reserved(String),
}

/// A validated tenant id; safe to use as one path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// Validates `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<Self, TenantError> {
        let id = id.into();
        if id.is_empty() {
            return Err(TenantError::Empty);
        }
        if id.len() > MAX_TENANT_LEN {
            return Err(TenantError::TooLong { len: id.len() });
        }
        if id == "." || id == ".." {
            return Err(TenantError::Reserved(id));
        }
        if let Some((position, ch)) = id
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        {
            return Err(TenantError::IllegalCharacter { id, ch, position });
        }
        Ok(Self(id))
    }

    /// The `default` tenant.
    pub fn default_tenant() -> Self {
        Self(DEFAULT_TENANT.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TenantId {
    type Error = TenantError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in ["default", "team-a", "vendor_42", "a.b"] {
            assert_eq!(TenantId::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_path_tricks_and_odd_characters() {
        assert_eq!(TenantId::new(""), Err(TenantError::Empty));
        assert!(matches!(TenantId::new(".."), Err(TenantError::Reserved(_))));
        assert!(matches!(
            TenantId::new("a/b"),
            Err(TenantError::IllegalCharacter {
                ch: '/',
                position: 1,
                ..
            })
        ));
        assert!(matches!(
            TenantId::new("x y"),
            Err(TenantError::IllegalCharacter { .. })
        ));
        assert!(matches!(
            TenantId::new("a".repeat(151)),
            Err(TenantError::TooLong { len: 151 })
        ));
    }
}
