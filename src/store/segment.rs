//! Journal segment files (`journal/<n>.log`, n as 20 zero-padded digits): opened without
//! following symlinks and without blocking on FIFOs, regular files only, read line by line with
//! a bound on a line's length (SPEC §5.3).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

/// The journal's folder inside the receipts folder.
pub(crate) const JOURNAL_DIR: &str = "journal";
/// A new segment is started once the current one is past this size.
pub(crate) const SEGMENT_MAX: u64 = 64 * 1024 * 1024;
/// A line longer than this is a corrupt record (and is never buffered whole).
pub(crate) const MAX_RECORD: usize = 16 * 1024 * 1024;

/// A position in the journal: segment number and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub segment: u64,
    pub offset: u64,
}

/// Where one record's line lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub segment: u64,
    pub offset: u64,
    /// Length without the newline.
    pub len: u64,
}

impl Span {
    pub fn end(&self) -> Pos {
        Pos {
            segment: self.segment,
            offset: self.offset + self.len + 1,
        }
    }
}

pub(crate) fn segment_name(n: u64) -> String {
    format!("{n:020}.log")
}

pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

pub(crate) fn segment_path(journal: &Path, n: u64) -> PathBuf {
    journal.join(segment_name(n))
}

/// Flags that make an open safe in a folder an attacker may have prepared: a symlink is an
/// error (ELOOP), and a FIFO does not block the open (it is then refused as not regular).
fn hostile_flags() -> i32 {
    (OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits() as i32
}

fn ensure_regular(file: &File, path: &Path) -> io::Result<()> {
    let meta = file.metadata()?;
    if meta.file_type().is_file() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`{}` is not a regular file",
            path.display()
        )))
    }
}

fn with_path(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            io::Error::other(format!(
                "`{}` is a symlink, which is never followed",
                path.display()
            ))
        } else {
            e
        }
    }
}

/// Opens a regular file for reading.
pub(crate) fn open_read(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(hostile_flags())
        .open(path)
        .map_err(with_path(path))?;
    ensure_regular(&file, path)?;
    Ok(file)
}

/// Opens (optionally creating, never truncating) a regular file for appending.
pub(crate) fn open_append(path: &Path, create: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(create)
        .mode(0o600)
        .custom_flags(hostile_flags())
        .open(path)
        .map_err(with_path(path))?;
    ensure_regular(&file, path)?;
    Ok(file)
}

/// Opens a regular file for in-place writes (the head record).
pub(crate) fn open_write(path: &Path, create: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .custom_flags(hostile_flags())
        .open(path)
        .map_err(with_path(path))?;
    ensure_regular(&file, path)?;
    Ok(file)
}

/// The segment numbers present, ascending. Names that are not segments are returned apart.
pub(crate) fn list(journal: &Path) -> io::Result<(Vec<u64>, Vec<String>)> {
    let mut segments = Vec::new();
    let mut others = Vec::new();
    for entry in fs::read_dir(journal)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        match parse_segment_name(&name) {
            Some(n) => segments.push(n),
            None => others.push(name),
        }
    }
    segments.sort_unstable();
    others.sort();
    Ok((segments, others))
}

/// One line read from a segment.
pub(crate) enum Line {
    /// A complete line (without its newline).
    Record(Span, Vec<u8>),
    /// A line over [`MAX_RECORD`]: skipped, never buffered.
    TooLong(Span),
    /// Bytes at the end of the segment with no newline: a write in progress, or torn by a
    /// crash. Not consumed.
    Partial(Pos),
}

/// Reads the lines of one segment from `offset` on.
pub(crate) struct Reader {
    segment: u64,
    offset: u64,
    inner: BufReader<File>,
    done: bool,
}

impl Reader {
    pub fn open(journal: &Path, segment: u64, offset: u64) -> io::Result<Reader> {
        let path = segment_path(journal, segment);
        let mut file = open_read(&path)?;
        // A large buffer for loading a journal, a small one for the few new lines an append
        // reads (allocating 256 KiB per append would cost more than the read).
        let left = file.metadata()?.len().saturating_sub(offset);
        let capacity = left.clamp(8 * 1024, 256 * 1024) as usize;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Reader {
            segment,
            offset,
            inner: BufReader::with_capacity(capacity, file),
            done: false,
        })
    }

    /// The next line, or `None` at the end of the segment.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        if self.done {
            return Ok(None);
        }
        let start = self.offset;
        let mut line = Vec::new();
        let mut len: u64 = 0;
        let mut too_long = false;
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                self.done = true;
                if len == 0 {
                    return Ok(None);
                }
                return Ok(Some(Line::Partial(Pos {
                    segment: self.segment,
                    offset: start,
                })));
            }
            let (chunk, found) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (&buf[..i], true),
                None => (buf, false),
            };
            len += chunk.len() as u64;
            if !too_long {
                if line.len() + chunk.len() > MAX_RECORD {
                    too_long = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            let used = chunk.len() + usize::from(found);
            self.inner.consume(used);
            if found {
                self.offset = start + len + 1;
                let span = Span {
                    segment: self.segment,
                    offset: start,
                    len,
                };
                return Ok(Some(if too_long {
                    Line::TooLong(span)
                } else {
                    Line::Record(span, line)
                }));
            }
        }
    }
}

/// Reads the bytes of one record (for look-ups by position).
pub(crate) fn read_span(journal: &Path, span: Span) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    if span.len as usize > MAX_RECORD {
        return Err(io::Error::other("record over 16 MiB"));
    }
    let file = open_read(&segment_path(journal, span.segment))?;
    let mut buf = vec![0; span.len as usize];
    file.read_exact_at(&mut buf, span.offset)?;
    Ok(buf)
}

/// Allocates `len` bytes of disk from `offset` on without changing the file's size, so later
/// appends into that range cannot fail for lack of space. A filesystem that cannot preallocate
/// is not an error (the append then simply has no reservation).
pub(crate) fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Makes a folder's entries durable (a created segment).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
