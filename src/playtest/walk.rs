//! Finding test files: the paths given, and every `*.test.yaml` under the
//! directories given.
//!
//! The walk is bounded: at most [`MAX_TEST_FILES`] files and
//! [`MAX_WALK_DEPTH`] directory levels, and symbolic links to directories
//! are not followed, so a link loop (`a/loop -> ..`) ends the walk instead
//! of running forever. Hidden directories (`.git`) and `target` are skipped.

use std::path::{Path, PathBuf};

use super::file::is_test_file;

/// Most test files one `callbook test` runs.
pub const MAX_TEST_FILES: usize = 10_000;

/// Deepest directory level searched below a path given.
pub const MAX_WALK_DEPTH: usize = 32;

/// Why the walk could not find the files asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkError {
    /// A path given does not exist or cannot be read.
    Unreadable {
        /// The path.
        path: PathBuf,
        /// A short lowercase reason.
        reason: String,
    },
    /// More than [`MAX_TEST_FILES`] test files.
    TooMany,
}

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalkError::Unreadable { path, reason } => {
                write!(f, "cannot read `{}`: {reason}", path.display())
            }
            WalkError::TooMany => write!(
                f,
                "more than {MAX_TEST_FILES} test files: give fewer files or directories"
            ),
        }
    }
}

/// Every test file among `paths`: files as given (whatever their name),
/// directories searched for `*.test.yaml`, sorted within each directory.
///
/// # Errors
/// A path that cannot be read, or too many files.
pub fn find(paths: &[PathBuf]) -> Result<Vec<PathBuf>, WalkError> {
    let mut found = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| WalkError::Unreadable {
            path: path.clone(),
            reason: crate::playbook::io_reason(&e),
        })?;
        if meta.is_dir() {
            walk(path, 0, &mut found)?;
        } else {
            push(path.clone(), &mut found)?;
        }
    }
    Ok(found)
}

fn push(path: PathBuf, found: &mut Vec<PathBuf>) -> Result<(), WalkError> {
    if found.len() >= MAX_TEST_FILES {
        return Err(WalkError::TooMany);
    }
    found.push(path);
    Ok(())
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), WalkError> {
    if depth > MAX_WALK_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| WalkError::Unreadable {
        path: dir.to_path_buf(),
        reason: crate::playbook::io_reason(&e),
    })?;
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        // Not followed: a link to a directory may loop back to an ancestor.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if meta.is_dir() {
            if !name.starts_with('.') && name != "target" {
                walk(&path, depth + 1, found)?;
            }
        } else if is_test_file(&path) && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            push(path, found)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_loop_ends_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("x.test.yaml"), "").unwrap();
        std::fs::write(sub.join("x.yaml"), "").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path(), sub.join("loop")).unwrap();
        let found = find(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(found, vec![sub.join("x.test.yaml")]);
    }
}
