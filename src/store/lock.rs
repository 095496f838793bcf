//! Exclusive locks on lock files, held across processes (an OS file lock) and across the
//! threads of this process (a registry of held paths).
//!
//! The OS lock alone would do on the platforms std supports (`flock` / `LockFileEx` lock per
//! open file, so two opens in one process exclude each other), but std leaves locking twice
//! from one process unspecified; the in-process registry makes thread exclusion explicit and
//! portable. The guard holds no `MutexGuard`, so it is `Send` and may live across `.await`.

use std::collections::BTreeSet;
use std::fs::TryLockError;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The lock files currently held by this process.
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
/// Signalled whenever a path leaves [`HELD`].
static RELEASED: Condvar = Condvar::new();

/// An exclusive lock on one lock file; released on drop.
#[derive(Debug)]
pub(crate) struct Exclusive {
    // Field order is drop order: close the file (releasing the OS lock) before letting the
    // next thread of this process in.
    _file: File,
    _in_process: InProcess,
}

/// Blocks until this thread holds `path` exclusively, against other threads and processes.
/// The file is created if missing and never removed: deleting a lock file while another
/// process waits on it would let a third process lock a fresh file beside it.
pub(crate) fn exclusive(path: &Path) -> io::Result<Exclusive> {
    let in_process = InProcess::acquire(path);
    let file = open_lock_file(path)?;
    os_lock(&file)?;
    Ok(Exclusive {
        _file: file,
        _in_process: in_process,
    })
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn os_lock(file: &File) -> io::Result<()> {
    file.lock()
}

/// Like [`exclusive`], but gives up after `timeout` (another process holding the lock for that
/// long is a fault: the caller fails closed rather than waiting forever).
pub(crate) fn exclusive_timeout(path: &Path, timeout: Duration) -> io::Result<Exclusive> {
    let deadline = Instant::now() + timeout;
    let held_elsewhere = || {
        io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "the lock `{}` is held by another process (waited {} ms)",
                path.display(),
                timeout.as_millis()
            ),
        )
    };
    let in_process = InProcess::acquire_until(path, deadline).ok_or_else(held_elsewhere)?;
    let file = open_lock_file(path)?;
    let mut pause = Duration::from_micros(200);
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Err(held_elsewhere());
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
    }
    Ok(Exclusive {
        _file: file,
        _in_process: in_process,
    })
}

/// One path held by one thread of this process.
#[derive(Debug)]
struct InProcess {
    path: PathBuf,
}

impl InProcess {
    /// Like `acquire`, giving up at `deadline`.
    fn acquire_until(path: &Path, deadline: Instant) -> Option<InProcess> {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(path) {
            let left = deadline.checked_duration_since(Instant::now())?;
            held = RELEASED
                .wait_timeout(held, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        held.insert(path.to_path_buf());
        Some(InProcess {
            path: path.to_path_buf(),
        })
    }

    fn acquire(path: &Path) -> InProcess {
        // A poisoned registry only means another thread panicked while holding the mutex; the
        // set itself is still consistent (insert/remove are single calls).
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        while held.contains(path) {
            held = RELEASED.wait(held).unwrap_or_else(PoisonError::into_inner);
        }
        held.insert(path.to_path_buf());
        InProcess {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        held.remove(&self.path);
        RELEASED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn threads_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join(".lock"));
        let inside = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (path, inside, max_seen) = (path.clone(), inside.clone(), max_seen.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _guard = exclusive(&path).unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(max_seen.load(Ordering::SeqCst), 1);
    }
}
