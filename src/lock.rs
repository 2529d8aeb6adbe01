//! The run lock: two runs of the same playbook never overlap.
//!
//! An OS file lock (`flock`) on `locks/NAME.lock` in the state directory.
//! The operating system releases it when the process ends, however it ends,
//! so a crash never leaves a stale lock behind. The file names the holder
//! (pid and start time) for the message the second run prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

/// Held for the whole run; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock of playbook `name` in `state_dir`, or says who holds it.
pub fn acquire(state_dir: &Path, name: &str, started_at: &str) -> Result<RunLock, String> {
    let dir = state_dir.join("locks");
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "state directory `{}`: {}",
            dir.display(),
            crate::playbook::io_reason(&e)
        )
    })?;
    let path = dir.join(format!("{name}.lock"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            format!(
                "lock `{}`: {}",
                path.display(),
                crate::playbook::io_reason(&e)
            )
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_string()
            } else {
                holder.to_string()
            };
            return Err(format!(
                "another run of `{name}` is in progress ({who}): nothing was called"
            ));
        }
        Err(TryLockError::Error(e)) => {
            return Err(format!(
                "lock `{}`: {}",
                path.display(),
                crate::playbook::io_reason(&e)
            ));
        }
    }
    let note = format!("pid {}, started {started_at}\n", std::process::id());
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(note.as_bytes()))
        .and_then(|()| file.flush());
    written.map_err(|e| {
        format!(
            "lock `{}`: {}",
            path.display(),
            crate::playbook::io_reason(&e)
        )
    })?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::acquire;

    #[test]
    fn second_holder_is_refused_with_the_first_named() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "disk-full", "2026-11-26T22:00:00Z").unwrap();
        let e = acquire(dir.path(), "disk-full", "later").unwrap_err();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(e.contains("started 2026-11-26T22:00:00Z"), "{e}");
        assert!(acquire(dir.path(), "other", "x").is_ok());
        drop(first);
        assert!(acquire(dir.path(), "disk-full", "x").is_ok());
    }
}
