//! The schema-version guard, shared by every backend.
//!
//! Purpose: refuse a database that a newer Postern migrated, before anything touches it.
//! Non-goal: running migrations (sqlx's `Migrator` does) or downgrading.
//! Key decision: "newer" means "has an applied version this binary does not embed", not merely a
//! higher number, so a hole in the numbering is caught too; the error still reports the highest
//! unknown version and the highest known one, which is what an operator needs to read.

use crate::StoreError;

/// Fails with [`StoreError::NewerSchema`] if `applied` holds a version missing from `known`.
pub(crate) fn ensure_not_newer(applied: &[i64], known: &[i64]) -> Result<(), StoreError> {
    let unknown = applied
        .iter()
        .copied()
        .filter(|version| !known.contains(version))
        .max();
    match unknown {
        None => Ok(()),
        Some(found) => Err(StoreError::NewerSchema {
            found,
            known: known.iter().copied().max().unwrap_or(0),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    #[test]
    fn an_older_or_equal_schema_is_accepted() {
        assert!(ensure_not_newer(&[], &[1, 2]).is_ok());
        assert!(ensure_not_newer(&[1], &[1, 2]).is_ok());
        assert!(ensure_not_newer(&[1, 2], &[1, 2]).is_ok());
    }

    #[test]
    fn an_unknown_applied_version_is_refused_with_both_versions() {
        let err = ensure_not_newer(&[1, 2, 7], &[1, 2]).unwrap_err();
        assert!(matches!(
            err,
            StoreError::NewerSchema { found: 7, known: 2 }
        ));
    }
}
