//! Write to a temporary file beside the target, then rename: a reader never
//! sees a half-written artifact, and a failed or interrupted write leaves
//! nothing at the target path.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A file being written under a temporary name in the target's directory.
/// [`AtomicFile::commit`] renames it into place; dropping it uncommitted
/// removes the temporary.
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    pub fn create(target: impl AsRef<Path>) -> Result<Self> {
        let target = target.as_ref().to_path_buf();
        // A symlink, FIFO, socket or device is never replaced. A folder is
        // the caller's to judge: the table writer replaces a dataset folder
        // of its own; onto any other the rename fails, touching nothing.
        if !std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            durable::check_file_target(&target)?;
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |source| Error::Io {
            path: target.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        // Temporaries of killed writers of the same target.
        durable::clean_stale(&target)?;
        let name = target
            .file_name()
            .ok_or_else(|| {
                io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a file path",
                ))
            })?
            .to_string_lossy()
            .into_owned();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
        Ok(Self {
            target,
            tmp,
            file: Some(file),
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flush to disk and rename into place.
    pub fn commit(mut self) -> Result<PathBuf> {
        let file = self.file.take().expect("file present until commit");
        let io = |source| Error::Io {
            path: self.target.clone(),
            source,
        };
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&self.tmp, &self.target).map_err(io)?;
        let dir = durable::parent_of(&self.target);
        durable::sync_dir(&dir).map_err(|_| {
            io(io::Error::other(format!(
                "could not flush {}",
                dir.display()
            )))
        })?;
        Ok(self.target.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Write `bytes` to `path` atomically.
pub fn write_bytes(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|source| Error::Io {
        path: f.target().to_path_buf(),
        source,
    })?;
    f.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.parquet");
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn commit_renames_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/out.txt");
        write_bytes(&target, b"hello").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            1
        );
    }
}
