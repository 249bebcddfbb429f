//! [`StoreError`]: a store's failure as it crosses a query seam ([`crate::LogSource`], and
//! the PromQL engine's series source), with the store's own error kept.
//!
//! Query engines know nothing of the stores behind their traits, so they cannot name the
//! stores' error types; flattening them to a `String` would lose the cause chain (the path,
//! the I/O error beneath). The store's error is boxed instead: `Display` and `source()` are
//! the store error's own, and [`StoreError::store_error`] gives it back for downcasting.

use std::error::Error;
use std::sync::Arc;

/// A store failure, passed through a query engine to its caller unchanged.
///
/// Shared (an `Arc`, not a `Box`) so that the engines' error types stay `Clone`.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct StoreError(Arc<dyn Error + Send + Sync + 'static>);

impl StoreError {
    /// Wraps a store's error.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// A failure described only by a message, for stores without an error type of their
    /// own (test doubles, in-memory sources).
    pub fn msg(message: impl Into<String>) -> Self {
        let boxed: Box<dyn Error + Send + Sync> = message.into().into();
        Self(Arc::from(boxed))
    }

    /// The store's error, e.g. to downcast it to the store's own type.
    pub fn store_error(&self) -> &(dyn Error + Send + Sync + 'static) {
        self.0.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("split /x failed")]
    struct SplitError {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn the_store_error_and_its_chain_are_kept() {
        let err = StoreError::new(SplitError {
            source: std::io::Error::other("disk on fire"),
        });
        assert_eq!(err.to_string(), "split /x failed");
        assert_eq!(err.source().unwrap().to_string(), "disk on fire");
        assert!(err.store_error().downcast_ref::<SplitError>().is_some());
        assert_eq!(StoreError::msg("gone").to_string(), "gone");
    }
}
