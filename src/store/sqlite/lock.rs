//! The run lock: two runs of the same playbook never overlap.
//!
//! An OS file lock (`flock`) on `locks/NAME.lock` in the state directory.
//! The operating system releases it when the process ends, however it ends,
//! so a crash never leaves a stale lock behind. The file names the holder
//! (pid and start time) for the message the second run prints.
//!
//! Because the kernel holds it exactly as long as the process lives, the lock
//! also tells `callbook runs` whether a run recorded as `running` still is:
//! [`probe`] takes a *shared* lock for an instant, which a run never holds, so
//! a run that meets only a prober waits a moment instead of giving up.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::store::{LockHolder as Holder, StoreError};

/// How long a starting run waits out probers (shared holders) before refusing.
const PROBE_PATIENCE: Duration = Duration::from_secs(2);

/// Held for the whole run; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    identity: Option<super::journal::FileIdentity>,
}

impl RunLock {
    /// Which file the lock is held on, so the run can notice it being
    /// deleted (a careless clean-up of a "stale" lock): from then on the lock
    /// excludes nobody and another run may start.
    pub fn identity(&self) -> Option<super::journal::FileIdentity> {
        self.identity.clone()
    }
}

/// Takes the lock of playbook `name` in `state_dir`, or says who holds it.
pub fn acquire(state_dir: &Path, name: &str, started_at: &str) -> Result<RunLock, StoreError> {
    let dir = state_dir.join("locks");
    super::journal::create_private_dir(&dir)?;
    let path = dir.join(format!("{name}.lock"));
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let io = |e: std::io::Error| StoreError::Io {
        what: "lock",
        path: path.clone(),
        reason: crate::playbook::io_reason(&e),
    };
    let mut file = options.open(&path).map_err(io)?;
    super::journal::make_private(&path);
    match lock_exclusive(&file) {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = holder_note(&mut file);
            return Err(StoreError::Locked {
                playbook: name.to_string(),
                holder: (!holder.is_empty()).then_some(holder),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    let note = format!("pid {}, started {started_at}\n", std::process::id());
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(note.as_bytes()))
        .and_then(|()| file.flush());
    written.map_err(io)?;
    let identity = super::journal::FileIdentity::of(&path, &file);
    if identity.as_ref().is_some_and(|i| !i.intact()) {
        // Deleted between opening and locking: that lock excludes nobody.
        return Err(StoreError::LockRemoved(path));
    }
    Ok(RunLock {
        _file: file,
        identity,
    })
}

/// How long a refused run waits for the holder to write its note: a run that
/// started at the same instant may hold the lock but not have written it yet.
const NOTE_PATIENCE: Duration = Duration::from_millis(500);

/// The holder's note (`pid 4242, started …`), waiting a moment for a holder
/// that took the lock an instant ago; empty if it never comes.
fn holder_note(file: &mut File) -> String {
    let start = Instant::now();
    loop {
        let mut note = String::new();
        let read = file.rewind().and_then(|()| file.read_to_string(&mut note));
        let note = note.trim();
        if read.is_err() || !note.is_empty() || start.elapsed() >= NOTE_PATIENCE {
            return note.to_string();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Takes the exclusive lock; a shared holder is only a prober, so wait it out.
fn lock_exclusive(file: &File) -> Result<(), TryLockError> {
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Err(TryLockError::WouldBlock) if start.elapsed() < PROBE_PATIENCE => {}
            done => return done,
        }
        // A shared lock is granted only when no run holds the exclusive one.
        match file.try_lock_shared() {
            Ok(()) => {
                file.unlock().map_err(TryLockError::Error)?;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a run of playbook `name` is in progress, without writing anything
/// (it works on a read-only state directory).
pub fn probe(state_dir: &Path, name: &str) -> Holder {
    let path = state_dir.join("locks").join(format!("{name}.lock"));
    let Ok(mut file) = File::open(&path) else {
        return Holder::Free;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Holder::Free
        }
        Err(TryLockError::WouldBlock) => {
            let mut note = String::new();
            let _ = file.read_to_string(&mut note);
            Holder::Held {
                pid: holder_pid(&note),
            }
        }
        // Cannot tell: claim nothing about the run.
        Err(TryLockError::Error(_)) => Holder::Held { pid: None },
    }
}

/// The pid in a lock note such as `pid 4242, started 2026-11-26T22:00:00Z`.
fn holder_pid(note: &str) -> Option<u32> {
    note.strip_prefix("pid ")?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::{Holder, acquire, holder_pid, probe};

    #[test]
    fn second_holder_is_refused_with_the_first_named() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "disk-full", "2026-11-26T22:00:00Z").unwrap();
        let e = acquire(dir.path(), "disk-full", "later")
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(e.contains("started 2026-11-26T22:00:00Z"), "{e}");
        assert!(acquire(dir.path(), "other", "x").is_ok());
        drop(first);
        assert!(acquire(dir.path(), "disk-full", "x").is_ok());
    }

    #[test]
    fn a_probe_tells_a_held_lock_and_never_blocks_a_run() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(dir.path(), "p"), Holder::Free);
        let held = acquire(dir.path(), "p", "now").unwrap();
        assert_eq!(
            probe(dir.path(), "p"),
            Holder::Held {
                pid: Some(std::process::id())
            }
        );
        drop(held);
        assert_eq!(probe(dir.path(), "p"), Holder::Free);
        // A prober holding its shared lock does not refuse a run, it delays it.
        let path = dir.path().join("locks/p.lock");
        let prober = std::fs::File::open(path).unwrap();
        prober.try_lock_shared().unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(prober);
        });
        assert!(acquire(dir.path(), "p", "now").is_ok());
        releaser.join().unwrap();
    }

    #[test]
    fn a_refused_run_waits_a_moment_for_the_holder_to_name_itself() {
        let dir = tempfile::tempdir().unwrap();
        drop(acquire(dir.path(), "p", "x").unwrap());
        let path = dir.path().join("locks/p.lock");
        std::fs::write(&path, "").unwrap();
        // A holder that took the lock but has not written its note yet.
        let holder = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        holder.try_lock().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            std::fs::write(&path, "pid 4242, started now\n").unwrap();
            holder
        });
        let e = acquire(dir.path(), "p", "later").unwrap_err().to_string();
        assert!(e.contains("(pid 4242, started now)"), "{e}");
        drop(writer.join().unwrap());
    }

    #[test]
    fn lock_notes_name_their_pid() {
        assert_eq!(holder_pid("pid 4242, started x\n"), Some(4242));
        assert_eq!(holder_pid("garbage"), None);
        assert_eq!(holder_pid(""), None);
    }
}
