//! The embedded index's columns: each one owned in memory (built from the store, or the rows
//! changed since a snapshot) or a slice of a memory-mapped snapshot file (`snapshot.rs`). A
//! mapped column is read-only: writes go to the live index's in-memory delta, never into a
//! published file.
use std::fs::File;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytemuck::Pod;
use memmap2::Mmap;

use crate::{Error, Result};

/// A column of plain values.
pub enum Col<T: Pod> {
    Owned(Vec<T>),
    /// `len` values starting at byte `start` of the map (the snapshot checked that the range
    /// lies inside the file and is aligned for `T`).
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
    },
}

impl<T: Pod> Default for Col<T> {
    fn default() -> Self {
        Col::Owned(Vec::new())
    }
}

impl<T: Pod> Deref for Col<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Col::Owned(v) => v,
            Col::Mapped { map, start, len } => {
                let bytes = len
                    .checked_mul(std::mem::size_of::<T>())
                    .and_then(|n| start.checked_add(n))
                    .and_then(|end| map.get(*start..end));
                // Checked when the snapshot was opened; an empty column is the safe fallback.
                bytes
                    .and_then(|b| bytemuck::try_cast_slice(b).ok())
                    .unwrap_or(&[])
            }
        }
    }
}

impl<T: Pod> Col<T> {
    /// The owned values to change; a mapped column refuses (it belongs to a published file).
    pub fn vec_mut(&mut self) -> Result<&mut Vec<T>> {
        match self {
            Col::Owned(v) => Ok(v),
            Col::Mapped { .. } => Err(Error::Invalid(
                "internal: a snapshot's columns are read-only; write through the live index".into(),
            )),
        }
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self, Col::Mapped { .. })
    }
}

/// Asset ids by row, and rows by id.
pub enum Ids {
    Owned {
        ids: Vec<String>,
        rows: std::collections::HashMap<String, usize>,
    },
    /// Row `r`'s id is `bytes[offsets[r]..offsets[r + 1]]`; `sorted` lists rows in id order
    /// (lookups by binary search, so opening builds no hash map).
    Mapped {
        offsets: Col<u64>,
        bytes: Col<u8>,
        sorted: Col<u32>,
    },
}

impl Default for Ids {
    fn default() -> Self {
        Ids::Owned {
            ids: Vec::new(),
            rows: Default::default(),
        }
    }
}

impl Ids {
    pub fn len(&self) -> usize {
        match self {
            Ids::Owned { ids, .. } => ids.len(),
            Ids::Mapped { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `r`'s id ("" past the end, or for bytes that are not UTF-8, which the snapshot's
    /// checksum and checks at open rule out).
    pub fn get(&self, r: usize) -> &str {
        match self {
            Ids::Owned { ids, .. } => ids.get(r).map_or("", String::as_str),
            Ids::Mapped { offsets, bytes, .. } => {
                let (Some(&a), Some(&b)) = (offsets.get(r), offsets.get(r + 1)) else {
                    return "";
                };
                let (Ok(a), Ok(b)) = (usize::try_from(a), usize::try_from(b)) else {
                    return "";
                };
                bytes
                    .get(a..b)
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .unwrap_or("")
            }
        }
    }

    pub fn row_of(&self, id: &str) -> Option<usize> {
        match self {
            Ids::Owned { rows, .. } => rows.get(id).copied(),
            Ids::Mapped { sorted, .. } => {
                let i = sorted
                    .binary_search_by(|&r| self.get(r as usize).cmp(id))
                    .ok()?;
                sorted.get(i).map(|&r| r as usize)
            }
        }
    }

    /// The owned ids and their rows to change; mapped ids refuse.
    pub fn owned_mut(
        &mut self,
    ) -> Result<(
        &mut Vec<String>,
        &mut std::collections::HashMap<String, usize>,
    )> {
        match self {
            Ids::Owned { ids, rows } => Ok((ids, rows)),
            Ids::Mapped { .. } => Err(Error::Invalid(
                "internal: a snapshot's ids are read-only; write through the live index".into(),
            )),
        }
    }
}

/// The full-precision vectors: in memory (owned or mapped: scanned whole by f32 storage), or
/// left in the snapshot file and read row by row with `pread` for the exact re-rank of the
/// compact storages, so the process never holds them (resident memory stays near the compact
/// codes' size; the page cache keeps the hot rows).
pub enum Vectors {
    Mem(Col<f32>),
    Disk {
        file: File,
        /// Byte offset of row 0.
        offset: u64,
        rows: usize,
        path: PathBuf,
    },
}

impl Default for Vectors {
    fn default() -> Self {
        Vectors::Mem(Col::default())
    }
}

impl Vectors {
    /// All rows in memory (None: left on disk).
    pub fn mem(&self) -> Option<&[f32]> {
        match self {
            Vectors::Mem(c) => Some(c),
            Vectors::Disk { .. } => None,
        }
    }

    /// Row `r` of `dim` values: a slice of memory, or read from the file into `buf`.
    pub fn row<'a>(&'a self, r: usize, dim: usize, buf: &'a mut Vec<f32>) -> Result<&'a [f32]> {
        match self {
            Vectors::Mem(c) => c
                .get(r * dim..(r + 1) * dim)
                .ok_or_else(|| Error::Invalid(format!("internal: row {r} is past the index"))),
            Vectors::Disk {
                file,
                offset,
                rows,
                path,
            } => {
                if r >= *rows {
                    return Err(Error::Invalid(format!(
                        "internal: row {r} is past the index"
                    )));
                }
                buf.resize(dim, 0.0);
                let bytes: &mut [u8] = bytemuck::cast_slice_mut(buf.as_mut_slice());
                let at = (r as u64)
                    .checked_mul(bytes.len() as u64)
                    .and_then(|b| b.checked_add(*offset))
                    .ok_or_else(|| Error::Invalid("internal: row offset overflows".into()))?;
                file.read_exact_at(bytes, at).map_err(|e| {
                    Error::Invalid(format!(
                        "cannot read vector row {r} of the index snapshot {}: {e}; delete the file and search again (it is rebuilt from the library)",
                        path.display()
                    ))
                })?;
                Ok(buf.as_slice())
            }
        }
    }
}

/// A set of rows (hidden rows of a snapshot: changed or removed since it was written).
#[derive(Debug, Clone, Default)]
pub struct RowSet {
    words: Vec<u64>,
    count: usize,
}

impl RowSet {
    #[inline]
    pub fn contains(&self, r: usize) -> bool {
        self.words
            .get(r / 64)
            .is_some_and(|w| w & (1u64 << (r % 64)) != 0)
    }

    /// Adds `r`; false when it was already there.
    pub fn insert(&mut self, r: usize) -> bool {
        if self.words.len() <= r / 64 {
            self.words.resize(r / 64 + 1, 0);
        }
        let bit = 1u64 << (r % 64);
        let w = &mut self.words[r / 64];
        if *w & bit != 0 {
            return false;
        }
        *w |= bit;
        self.count += 1;
        true
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_set_counts_each_row_once() {
        let mut s = RowSet::default();
        assert!(s.insert(3));
        assert!(s.insert(130));
        assert!(!s.insert(3));
        assert_eq!(s.len(), 2);
        assert!(s.contains(130) && s.contains(3) && !s.contains(4) && !s.contains(10_000));
    }
}
