//! Reading decision logs line by line: never the whole file in memory, every line that cannot
//! be read reported with its number and why (never silently dropped). Empty lines are not
//! decisions and are skipped.

use std::io::BufRead;

use crate::record::{FORMAT_VERSION, Record};

/// Longest line read (1 MiB); a longer one is reported, not read.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// Why.
    pub error: String,
}

/// The records of a log, in order: `Ok((line, record))` or the line's error. An I/O error ends
/// the iteration after it is returned.
pub struct Lines<R> {
    input: R,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    /// Reads records from `input`.
    pub fn new(input: R) -> Self {
        Lines {
            input,
            line: 0,
            buf: Vec::with_capacity(4096),
            done: false,
        }
    }

    /// Reads the next line into `buf` (at most [`MAX_LINE_BYTES`]; the rest of a longer line is
    /// skipped). `Ok(None)` at the end; `Ok(Some(true))` when the line was too long.
    fn next_line(&mut self) -> std::io::Result<Option<bool>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let (used, found) = {
                let avail = self.input.fill_buf()?;
                if avail.is_empty() {
                    break;
                }
                any = true;
                match avail.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        let part = avail.get(..i).unwrap_or_default();
                        if !too_long && self.buf.len() + part.len() <= MAX_LINE_BYTES {
                            self.buf.extend_from_slice(part);
                        } else {
                            too_long = true;
                        }
                        (i + 1, true)
                    }
                    None => {
                        if !too_long && self.buf.len() + avail.len() <= MAX_LINE_BYTES {
                            self.buf.extend_from_slice(avail);
                        } else {
                            too_long = true;
                        }
                        (avail.len(), false)
                    }
                }
            };
            self.input.consume(used);
            if found {
                break;
            }
        }
        Ok(any.then_some(too_long))
    }
}

/// Parses one line of a log.
///
/// # Errors
/// Why the line is not a record of a version this crate reads.
pub fn parse_line(text: &[u8]) -> Result<Record, String> {
    let text = std::str::from_utf8(text)
        .map_err(|e| format!("not UTF-8 (byte {})", e.valid_up_to() + 1))?;
    let text = text.trim_end_matches('\r');
    match serde_json::from_str::<Record>(text) {
        Ok(r) if r.v == FORMAT_VERSION => r.check().map(|()| r),
        Ok(r) => Err(format!(
            "format version {} (this stepup reads version {FORMAT_VERSION})",
            r.v
        )),
        Err(e) => {
            // Say so when the version is the problem, not a field of it.
            let v = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("v").and_then(serde_json::Value::as_u64));
            match v {
                Some(v) if v != u64::from(FORMAT_VERSION) => Err(format!(
                    "format version {v} (this stepup reads version {FORMAT_VERSION})"
                )),
                _ => Err(e.to_string()),
            }
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<(u64, Record), LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let too_long = match self.next_line() {
                Ok(None) => return None,
                Ok(Some(t)) => t,
                Err(e) => {
                    self.done = true;
                    return Some(Err(LineError {
                        line: self.line + 1,
                        error: format!("cannot read: {e}"),
                    }));
                }
            };
            self.line += 1;
            if too_long {
                return Some(Err(LineError {
                    line: self.line,
                    error: format!("longer than {MAX_LINE_BYTES} bytes"),
                }));
            }
            if self.buf.is_empty() || self.buf == b"\r" {
                continue;
            }
            return Some(
                parse_line(&self.buf)
                    .map(|r| (self.line, r))
                    .map_err(|error| LineError {
                        line: self.line,
                        error,
                    }),
            );
        }
    }
}
