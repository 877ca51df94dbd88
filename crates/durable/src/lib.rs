//! Outputs that are whole or absent, whatever kills the writer.
//!
//! Every stage writes beside its destination under a temporary name
//! (`.NAME.tmp-PID`), flushes the data and the directory to disk, then
//! swaps it in with one atomic step:
//!
//! - a file or a new directory: `rename(2)`;
//! - a directory that replaces an existing one: `renameat2(2)` with
//!   `RENAME_EXCHANGE` (Linux: ext4, xfs, btrfs, tmpfs, overlayfs), so the
//!   destination holds the old version or the new one at every instant,
//!   never nothing; the old version, now at the temporary name, is removed
//!   after. Where the filesystem cannot exchange, the old version is first
//!   renamed to `.NAME.old-PID` and the next writer of the same
//!   destination puts it back if the process died between the two renames.
//!
//! Temporaries of processes that no longer run are removed by the next
//! writer of the same destination ([`clean_stale`]).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory a path lives in (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn name_of(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Refused {
            path: path.to_path_buf(),
            reason: "does not name a file or directory".into(),
        })
}

/// Whether `a` and `b` name the same existing file (through links and
/// relative paths): an output that is one of the stage's inputs.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// An error unless a file may be written at `target`: it does not exist,
/// or it is a regular file. A symlink, a FIFO, a socket, a device node or
/// a directory is never replaced by a file.
pub fn check_file_target(target: &Path) -> Result<()> {
    let Ok(m) = std::fs::symlink_metadata(target) else {
        return Ok(());
    };
    let t = m.file_type();
    if t.is_file() {
        return Ok(());
    }
    use std::os::unix::fs::FileTypeExt;
    let kind = if t.is_symlink() {
        "a symlink"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file"
    };
    Err(Error::Refused {
        path: target.to_path_buf(),
        reason: format!("exists and is not a regular file ({kind}); not replacing it"),
    })
}

/// Where `path` is, through symlinks and `..`, whether it exists or not:
/// its nearest existing ancestor made canonical, and the rest of it.
fn resolved(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut rest = Vec::new();
    let mut at = abs.as_path();
    loop {
        if let Ok(c) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(c, |p: PathBuf, part| p.join(part));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            // `..` or `.` at the end of a path that does not exist.
            _ => return abs,
        }
    }
}

/// An error when `output` is one of `inputs`, lies inside one, or holds
/// one: the same path, the same place through a symlink or `..`, or the
/// same file through a hard link. Every stage asks it of every output
/// before it reads anything. (`-`, standard input or output, is no path.)
pub fn check_not_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if output.as_os_str() == "-" {
        return Ok(());
    }
    let out = resolved(output);
    let out_meta = std::fs::metadata(output).ok();
    for input in inputs {
        if input.as_os_str() == "-" || input.as_os_str().is_empty() {
            continue;
        }
        let inp = resolved(input);
        let same_inode = match (&out_meta, std::fs::metadata(input)) {
            (Some(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        let how = if same_inode && out != inp {
            "the same file as"
        } else if same_inode || out == inp {
            "the same path as"
        } else if out.starts_with(&inp) {
            "inside"
        } else if inp.starts_with(&out) {
            "a folder holding"
        } else {
            continue;
        };
        return Err(Error::Refused {
            path: output.to_path_buf(),
            reason: format!(
                "is an input ({how} {}); write the output elsewhere",
                input.display()
            ),
        });
    }
    Ok(())
}

/// An advisory lock on a folder (`flock(2)` on the folder itself, so no
/// file is left behind), held until dropped: writers that read, modify
/// and rewrite a file in it (the metrics file) take it around that.
pub struct DirLock {
    _dir: File,
}

/// Wait for, then hold, the lock of the folder `dir`.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    use std::os::fd::AsRawFd;
    let f = File::open(dir).map_err(io_err(dir))?;
    loop {
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(DirLock { _dir: f });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: e,
            });
        }
    }
}

/// The temporary sibling this process writes `target` under.
pub fn temp_sibling(target: &Path) -> Result<PathBuf> {
    let name = name_of(target)?;
    Ok(parent_of(target).join(format!(".{name}.tmp-{}", std::process::id())))
}

fn old_sibling(target: &Path) -> Result<PathBuf> {
    let name = name_of(target)?;
    Ok(parent_of(target).join(format!(".{name}.old-{}", std::process::id())))
}

/// Whether process `pid` is running (on this machine). A killed process
/// that its parent has not reaped yet (a zombie) is not.
pub fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for the process.
    let r = unsafe { libc::kill(pid, 0) };
    if r != 0 {
        return io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    }
    // /proc/PID/stat: "pid (comm) S ...", S the state; Z and X are dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

/// Remove the temporaries that writers of `target` left when they were
/// killed (`.NAME.tmp-PID`, `.NAME.old-PID` of a PID that no longer runs),
/// after putting back an old version whose replacement never arrived.
/// Returns what was removed.
pub fn clean_stale(target: &Path) -> Result<Vec<PathBuf>> {
    let name = name_of(target)?;
    let dir = parent_of(target);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    let (tmp_prefix, old_prefix) = (format!(".{name}.tmp-"), format!(".{name}.old-"));
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let (is_old, pid) = if let Some(p) = file.strip_prefix(&tmp_prefix) {
            (false, p)
        } else if let Some(p) = file.strip_prefix(&old_prefix) {
            (true, p)
        } else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let path = entry.path();
        if is_old && std::fs::symlink_metadata(target).is_err() {
            // Killed between the two renames of the fallback swap.
            std::fs::rename(&path, target).map_err(io_err(target))?;
            sync_dir(&dir)?;
            continue;
        }
        remove_any(&path)?;
        removed.push(path);
    }
    Ok(removed)
}

fn remove_any(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let r = if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    r.map_err(io_err(path))
}

/// Flush a directory's entries (new names, renames) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

/// Flush every file of `dir` (not recursive) and the directory itself.
pub fn sync_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&path))?;
        }
    }
    sync_dir(dir)
}

/// Swap the directory `new` into `dest` atomically: `dest` holds its old
/// contents or the new ones at every instant. Afterwards `new` holds the
/// old contents (when there were any) or no longer exists.
fn exchange(new: &Path, dest: &Path) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
        let (a, b) = (c(new)?, c(dest)?);
        // SAFETY: two valid NUL-terminated paths relative to the cwd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => Ok(false),
            _ => Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (new, dest);
        Ok(false)
    }
}

/// An error unless a directory may be written at `dest`: it does not
/// exist, or it is a directory `replaceable` accepts. [`DirWriter::begin`]
/// asks it; a stage can ask it before any work.
pub fn may_replace(
    dest: &Path,
    replaceable: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    let refused = |reason: String| Error::Refused {
        path: dest.to_path_buf(),
        reason,
    };
    match std::fs::symlink_metadata(dest) {
        Err(_) => Ok(()),
        Ok(m) if !m.is_dir() => Err(refused(
            "exists and is not a directory; not replacing it".into(),
        )),
        Ok(_) => replaceable(dest).map_err(refused),
    }
}

/// A directory being written under a temporary name beside `dest`;
/// [`DirWriter::commit`] swaps it in, dropping it uncommitted removes it.
pub struct DirWriter {
    dest: PathBuf,
    tmp: PathBuf,
    done: bool,
}

impl DirWriter {
    /// Start writing `dest`. `replaceable(dest)` is asked first when
    /// `dest` exists: an `Err(reason)` refuses (nothing is touched), so a
    /// writer never replaces what it does not recognise as its own.
    /// Stale temporaries of `dest` are cleaned first.
    pub fn begin(
        dest: impl AsRef<Path>,
        replaceable: impl FnOnce(&Path) -> std::result::Result<(), String>,
    ) -> Result<DirWriter> {
        let dest = dest.as_ref().to_path_buf();
        let parent = parent_of(&dest);
        std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        clean_stale(&dest)?;
        may_replace(&dest, replaceable)?;
        let tmp = temp_sibling(&dest)?;
        remove_any(&tmp)?;
        std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        Ok(DirWriter {
            dest,
            tmp,
            done: false,
        })
    }

    /// Where to write the files.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flush every file and the directory to disk, then swap it in.
    pub fn commit(mut self) -> Result<PathBuf> {
        sync_tree(&self.tmp)?;
        let parent = parent_of(&self.dest);
        let exists = std::fs::symlink_metadata(&self.dest).is_ok();
        if !exists {
            std::fs::rename(&self.tmp, &self.dest).map_err(io_err(&self.dest))?;
        } else if exchange(&self.tmp, &self.dest).map_err(io_err(&self.dest))? {
            // self.tmp now holds the old version.
        } else {
            let old = old_sibling(&self.dest)?;
            std::fs::rename(&self.dest, &old).map_err(io_err(&self.dest))?;
            std::fs::rename(&self.tmp, &self.dest).map_err(io_err(&self.dest))?;
            std::fs::rename(&old, &self.tmp).map_err(io_err(&old))?;
        }
        sync_dir(&parent)?;
        self.done = true;
        remove_any(&self.tmp)?;
        Ok(self.dest.clone())
    }
}

impl Drop for DirWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = remove_any(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn a_new_directory_appears_whole() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("ckpt");
        let w = DirWriter::begin(&dest, |_| Ok(())).unwrap();
        write(w.path(), "a", "1");
        assert!(!dest.exists(), "visible before commit");
        w.commit().unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn replacing_swaps_and_leaves_no_temporaries() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("ckpt");
        std::fs::create_dir(&dest).unwrap();
        write(&dest, "a", "old");
        write(&dest, "only-old", "x");
        let w = DirWriter::begin(&dest, |_| Ok(())).unwrap();
        write(w.path(), "a", "new");
        w.commit().unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "new");
        assert!(!dest.join("only-old").exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    /// A reader watching the destination while it is replaced 200 times
    /// always finds a whole version (the old two-rename swap left a
    /// window with nothing there).
    #[test]
    fn a_replaced_directory_is_never_missing() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("ckpt");
        std::fs::create_dir(&dest).unwrap();
        write(&dest, "a", "0");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (dest, stop) = (dest.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut looks = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert!(dest.join("a").exists(), "missing after {looks} looks");
                    looks += 1;
                }
                looks
            })
        };
        for i in 1..=200 {
            let w = DirWriter::begin(&dest, |_| Ok(())).unwrap();
            write(w.path(), "a", &i.to_string());
            w.commit().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(watcher.join().unwrap() > 0);
        assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "200");
    }

    #[test]
    fn refused_destination_is_untouched() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("run");
        std::fs::create_dir(&dest).unwrap();
        write(&dest, "notes.txt", "mine");
        let e = DirWriter::begin(&dest, |_| Err("not a checkpoint".into()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("not a checkpoint"), "{e}");
        assert!(dest.join("notes.txt").exists());
        std::fs::write(root.path().join("file"), "x").unwrap();
        assert!(DirWriter::begin(root.path().join("file"), |_| Ok(())).is_err());
        assert_eq!(
            std::fs::read_to_string(root.path().join("file")).unwrap(),
            "x"
        );
    }

    #[test]
    fn uncommitted_writer_leaves_the_old_version() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("ckpt");
        std::fs::create_dir(&dest).unwrap();
        write(&dest, "a", "old");
        {
            let w = DirWriter::begin(&dest, |_| Ok(())).unwrap();
            write(w.path(), "a", "new");
        }
        assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "old");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);
    }

    #[test]
    fn only_a_regular_file_is_replaced_by_a_file() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("f");
        write(root.path(), "f", "x");
        assert!(check_file_target(&file).is_ok());
        assert!(check_file_target(&root.path().join("new")).is_ok());
        std::os::unix::fs::symlink(&file, root.path().join("link")).unwrap();
        let e = check_file_target(&root.path().join("link")).unwrap_err();
        assert!(
            e.to_string().contains("not a regular file (a symlink)"),
            "{e}"
        );
        let e = check_file_target(root.path()).unwrap_err();
        assert!(e.to_string().contains("(a directory)"), "{e}");
    }

    #[test]
    fn an_output_that_is_or_holds_or_lies_inside_an_input_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("ck/sub")).unwrap();
        write(r, "in.parquet", "x");
        std::fs::hard_link(r.join("in.parquet"), r.join("hard.parquet")).unwrap();
        std::os::unix::fs::symlink(r.join("ck"), r.join("ck-link")).unwrap();
        let refused = |out: PathBuf, input: PathBuf, how: &str| {
            let e = check_not_input(&out, &[&input]).unwrap_err().to_string();
            assert!(e.contains("is an input") && e.contains(how), "{out:?}: {e}");
        };
        refused(r.join("ck"), r.join("ck"), "the same path as");
        refused(r.join("ck-link"), r.join("ck"), "the same path as");
        refused(r.join("ck/sub/../../ck"), r.join("ck"), "the same path as");
        refused(r.join("ck/model.safetensors"), r.join("ck"), "inside");
        refused(r.join("ck/new/deeper"), r.join("ck-link"), "inside");
        refused(r.to_path_buf(), r.join("ck"), "a folder holding");
        refused(
            r.join("hard.parquet"),
            r.join("in.parquet"),
            "the same file as",
        );
        assert!(check_not_input(&r.join("out"), &[&r.join("ck"), &r.join("in.parquet")]).is_ok());
        assert!(check_not_input(&r.join("ck2"), &[&r.join("ck")]).is_ok());
        assert!(check_not_input(Path::new("-"), &[Path::new("-")]).is_ok());
    }

    /// A pid no process has: above the kernel's pid_max (at most 2^22).
    const DEAD: u32 = 1 << 23;

    #[test]
    fn temporaries_of_dead_processes_are_cleaned_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("ckpt");
        let dead = root.path().join(format!(".ckpt.tmp-{DEAD}"));
        let live = root
            .path()
            .join(format!(".ckpt.tmp-{}", std::process::id()));
        let other = root.path().join(format!(".other.tmp-{DEAD}"));
        for d in [&dead, &live, &other] {
            std::fs::create_dir(d).unwrap();
        }
        let removed = clean_stale(&dest).unwrap();
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && other.exists());
    }

    #[test]
    fn a_killed_child_not_yet_reaped_is_not_alive() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(alive(pid));
        child.kill().unwrap();
        // Not waited for: a zombie until reaped.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!alive(pid));
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn an_old_version_orphaned_between_two_renames_is_put_back() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("ckpt");
        let old = root.path().join(format!(".ckpt.old-{DEAD}"));
        std::fs::create_dir(&old).unwrap();
        write(&old, "a", "old");
        clean_stale(&dest).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "old");
        assert!(!old.exists());
    }
}
