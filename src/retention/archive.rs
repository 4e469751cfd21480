//! The prune archive: gzip-compressed NDJSON, one line per removed row,
//! `{"table": "...", "row": {...}}`. Each batch is a complete gzip member, written and synced to disk
//! before the batch is deleted, so whatever was removed is in the file even if pruning stops half way.
//! Concatenated members are one valid gzip file (`zcat`, `gzip -d`, `flate2::read::MultiGzDecoder`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value as Json;

/// An archive file being written.
pub struct Archive {
    path: PathBuf,
    file: File,
    rows: u64,
}

impl Archive {
    /// Creates `path`; an existing file is refused, never overwritten.
    ///
    /// # Errors
    /// The file exists or cannot be created.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        // The new name itself must survive a crash, or "archived before deleted" would not hold.
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
        Ok(Self {
            path: path.to_owned(),
            file,
            rows: 0,
        })
    }

    /// Appends one gzip member holding `rows` of `table` and syncs it to disk.
    ///
    /// # Errors
    /// Write errors.
    pub fn write_batch<'a>(
        &mut self,
        table: &str,
        rows: impl IntoIterator<Item = &'a Json>,
    ) -> std::io::Result<()> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        let mut count = 0;
        for row in rows {
            let line = serde_json::json!({ "table": table, "row": row });
            serde_json::to_writer(&mut encoder, &line)?;
            encoder.write_all(b"\n")?;
            count += 1;
        }
        self.file.write_all(&encoder.finish()?)?;
        self.file.sync_data()?;
        self.rows += count;
        Ok(())
    }

    /// Ends the archive. One with no rows still gets an (empty) gzip member, so it reads as gzip.
    ///
    /// # Errors
    /// Write errors.
    pub fn finish(mut self) -> std::io::Result<u64> {
        if self.rows == 0 {
            self.write_batch("", [])?;
        }
        Ok(self.rows)
    }

    /// Removes the file of an archive nothing was written to (a run that failed before its first batch).
    ///
    /// # Errors
    /// The file cannot be removed.
    pub fn discard_if_empty(self) -> std::io::Result<()> {
        if self.rows == 0 {
            std::fs::remove_file(&self.path)?;
        }
        Ok(())
    }

    /// Where the archive is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
