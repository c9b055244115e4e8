//! The `attachments` capability: the files of the current send (scanned pages), which the
//! component reads in chunks at offsets, so a 25 MB scan is never whole in its memory.
//! The host counts the bytes read, which drives the progress bar of `mfp-host send`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bindings::attachments::{AttachmentError, AttachmentInfo, Host};

/// The largest chunk handed out by one `read` call.
pub const MAX_READ: u32 = 1 << 20;

/// One file of a send.
#[derive(Debug)]
struct AttachmentFile {
    path: PathBuf,
    /// The content, when it was handed over in memory (`mfp-host serve`'s test email)
    /// rather than as a file.
    memory: Option<Arc<[u8]>>,
    file_name: String,
    size: u64,
    file: Option<File>,
}

/// The files of one send, by id (their position, from 0). Cheap to create; opened lazily.
#[derive(Debug, Default)]
pub struct AttachmentSet {
    files: Vec<AttachmentFile>,
    read: Arc<AtomicU64>,
}

impl AttachmentSet {
    /// The files at `paths`, in order; each must exist and be a regular file.
    pub fn from_paths(paths: &[PathBuf]) -> std::io::Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let meta = std::fs::metadata(path)?;
            if !meta.is_file() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} is not a file", path.display()),
                ));
            }
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(AttachmentFile {
                path: path.clone(),
                memory: None,
                file_name,
                size: meta.len(),
                file: None,
            });
        }
        Ok(Self {
            files,
            read: Arc::default(),
        })
    }

    /// Files held in memory, as (file name, content) in order, e.g. decoded from a request.
    pub fn from_memory(items: Vec<(String, Arc<[u8]>)>) -> Self {
        let files = items
            .into_iter()
            .map(|(file_name, data)| AttachmentFile {
                path: PathBuf::from(&file_name),
                size: data.len() as u64,
                memory: Some(data),
                file_name,
                file: None,
            })
            .collect();
        Self {
            files,
            read: Arc::default(),
        }
    }

    /// The ids to pass in the message, in order.
    pub fn ids(&self) -> Vec<u32> {
        (0..self.files.len() as u32).collect()
    }

    /// Total bytes of all files.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// A counter of bytes read so far, for progress display from another thread.
    pub fn progress(&self) -> Arc<AtomicU64> {
        self.read.clone()
    }

    /// The same files, counting the bytes read into `counter` (from 0): a send that
    /// opens its files again for each attempt keeps one counter to show.
    pub fn counting_into(mut self, counter: Arc<AtomicU64>) -> Self {
        counter.store(0, Ordering::Relaxed);
        self.read = counter;
        self
    }

    fn file(&mut self, id: u32) -> Result<&mut AttachmentFile, AttachmentError> {
        self.files
            .get_mut(id as usize)
            .ok_or(AttachmentError::NotFound(id))
    }
}

fn io_error(path: &Path, err: std::io::Error) -> AttachmentError {
    AttachmentError::Io(format!("{}: {err}", path.display()))
}

impl Host for AttachmentSet {
    fn info(&mut self, id: u32) -> wasmtime::Result<Result<AttachmentInfo, AttachmentError>> {
        Ok(self.file(id).map(|f| AttachmentInfo {
            file_name: f.file_name.clone(),
            size: f.size,
        }))
    }

    fn read(
        &mut self,
        id: u32,
        offset: u64,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, AttachmentError>> {
        Ok(self.read_chunk(id, offset, max))
    }
}

impl AttachmentSet {
    /// Reads at most `max` bytes of attachment `id` from `offset` (empty at the end).
    fn read_chunk(&mut self, id: u32, offset: u64, max: u32) -> Result<Vec<u8>, AttachmentError> {
        let counter = self.read.clone();
        let f = self.file(id)?;
        if offset >= f.size {
            return Ok(Vec::new());
        }
        if let Some(data) = &f.memory {
            let start = offset as usize;
            let end = start
                .saturating_add(max.min(MAX_READ) as usize)
                .min(data.len());
            let chunk = data[start..end].to_vec();
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            return Ok(chunk);
        }
        if f.file.is_none() {
            f.file = Some(File::open(&f.path).map_err(|e| io_error(&f.path, e))?);
        }
        let path = f.path.clone();
        let file = f
            .file
            .as_mut()
            .ok_or_else(|| AttachmentError::Io("file not open".into()))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| io_error(&path, e))?;
        let want = u64::from(max.min(MAX_READ)).min(f.size - offset) as usize;
        let mut buf = vec![0; want];
        let mut filled = 0;
        while filled < want {
            match file
                .read(&mut buf[filled..])
                .map_err(|e| io_error(&path, e))?
            {
                0 => break,
                n => filled += n,
            }
        }
        buf.truncate(filled);
        counter.fetch_add(filled as u64, Ordering::Relaxed);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_chunks_at_offsets_and_counts_progress() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scan.pdf");
        std::fs::write(&path, (0..=255u8).cycle().take(1000).collect::<Vec<u8>>()).unwrap();
        let mut set = AttachmentSet::from_paths(&[path]).unwrap();
        assert_eq!(set.info(0).unwrap().unwrap().file_name, "scan.pdf");
        assert_eq!(set.read_chunk(0, 998, 10).unwrap(), vec![230, 231]);
        assert_eq!(set.read_chunk(0, 1000, 10).unwrap(), Vec::<u8>::new());
        assert_eq!(set.read_chunk(0, 256, 2).unwrap(), vec![0, 1]);
        assert_eq!(set.progress().load(Ordering::Relaxed), 4);
        assert!(matches!(
            set.read_chunk(1, 0, 1),
            Err(AttachmentError::NotFound(1))
        ));
    }

    #[test]
    fn a_set_opened_again_counts_into_the_same_counter_from_zero() {
        let counter = Arc::new(AtomicU64::new(0));
        let open = || AttachmentSet::from_memory(vec![("a.txt".into(), Arc::from(&b"hello"[..]))]);
        let mut first = open().counting_into(counter.clone());
        first.read_chunk(0, 0, 5).unwrap();
        assert_eq!(counter.load(Ordering::Relaxed), 5);
        let mut again = open().counting_into(counter.clone());
        assert_eq!(
            counter.load(Ordering::Relaxed),
            0,
            "a new attempt starts at 0"
        );
        again.read_chunk(0, 0, 2).unwrap();
        assert_eq!(counter.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn reads_files_held_in_memory() {
        let mut set = AttachmentSet::from_memory(vec![("a.txt".into(), Arc::from(&b"hello"[..]))]);
        assert_eq!(set.ids(), vec![0]);
        assert_eq!(set.info(0).unwrap().unwrap().size, 5);
        assert_eq!(set.read_chunk(0, 1, 3).unwrap(), b"ell".to_vec());
        assert_eq!(set.read_chunk(0, 4, 10).unwrap(), b"o".to_vec());
        assert_eq!(set.read_chunk(0, 5, 10).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn a_missing_file_is_refused_up_front() {
        assert!(AttachmentSet::from_paths(&[PathBuf::from("/nonexistent/scan.pdf")]).is_err());
    }
}
