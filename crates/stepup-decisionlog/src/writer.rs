//! Appends decision-log lines to a file, rotating it by size: when the next line would take the
//! file past the limit, `log.jsonl` becomes `log.jsonl.1` (`.1` becomes `.2`, and so on; the
//! oldest beyond `keep` is removed) and a new `log.jsonl` is started. A line is never split
//! across files. Services share one writer behind a mutex; each line is written whole.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use stepup_engine::{Decision, Request, State};

use crate::pseudo::Pseudonymizer;
use crate::record::Record;

/// When to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Largest size of one file, in bytes (`None`: never rotate).
    pub max_bytes: Option<u64>,
    /// How many rotated files to keep (`log.1` … `log.N`).
    pub keep: usize,
}

impl Default for Rotation {
    /// 256 MiB per file, 8 files kept.
    fn default() -> Self {
        Rotation {
            max_bytes: Some(256 * 1024 * 1024),
            keep: 8,
        }
    }
}

impl Rotation {
    /// Never rotate.
    #[must_use]
    pub const fn never() -> Self {
        Rotation {
            max_bytes: None,
            keep: 0,
        }
    }
}

/// A decision-log writer.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    rotation: Rotation,
    pseudo: Option<Pseudonymizer>,
    out: BufWriter<File>,
    size: u64,
    lines: u64,
}

fn open(path: &Path) -> std::io::Result<(BufWriter<File>, u64)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    let size = f.metadata()?.len();
    Ok((BufWriter::with_capacity(64 * 1024, f), size))
}

/// The name of the `n`th rotated file (`log.jsonl.3`).
#[must_use]
pub fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl Writer {
    /// Appends to `path` (created, with its directory, when missing).
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(
        path: &Path,
        rotation: Rotation,
        pseudo: Option<Pseudonymizer>,
    ) -> std::io::Result<Self> {
        let (out, size) = open(path)?;
        Ok(Writer {
            path: path.to_path_buf(),
            rotation,
            pseudo,
            out,
            size,
            lines: 0,
        })
    }

    /// Logs one decision: `state` is the state it was decided on (`None`: the store could not
    /// be read), as [`stepup_engine::Engine::process_for_log`] returns it.
    ///
    /// # Errors
    /// When the line cannot be written, or the record could not be read back (see
    /// [`Record::check`]): a decision given without its state (only a refusal for
    /// `store_unavailable` is made without one), or a time before 1970 or after year 9999.
    pub fn write(
        &mut self,
        req: &Request,
        state: Option<&State>,
        d: &Decision,
    ) -> std::io::Result<()> {
        let record = Record::new(req, state, d, self.pseudo.as_ref());
        self.write_record(&record)
    }

    /// Writes a record as one line (pseudonymised first when the writer has a key).
    ///
    /// # Errors
    /// When the line cannot be written, or would not be read back ([`Record::check`]).
    pub fn write_record(&mut self, record: &Record) -> std::io::Result<()> {
        record
            .check()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let line = match &self.pseudo {
            Some(p) if !record.pseudonymised => {
                let mut r = record.clone();
                r.pseudonymise(p);
                r.to_line()
            }
            _ => record.to_line(),
        }
        .map_err(std::io::Error::other)?;
        let len = line.len() as u64 + 1;
        if let Some(max) = self.rotation.max_bytes
            && self.size > 0
            && self.size + len > max
        {
            self.rotate()?;
        }
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.size += len;
        self.lines += 1;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        if self.rotation.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let oldest = rotated(&self.path, self.rotation.keep);
            if oldest.exists() {
                std::fs::remove_file(&oldest)?;
            }
            for n in (1..self.rotation.keep).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        let (out, size) = open(&self.path)?;
        self.out = out;
        self.size = size;
        Ok(())
    }

    /// Writes buffered lines to the file.
    ///
    /// # Errors
    /// When they cannot be written.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Lines written by this writer.
    #[must_use]
    pub const fn lines(&self) -> u64 {
        self.lines
    }

    /// The file written to.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}
