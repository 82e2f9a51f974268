//! The embedded index persisted next to the library's database, one file per embedder, opened
//! by mapping it (no rebuild from SQLite). SQLite stays the record of truth: a snapshot is a
//! cache of one embedder's vectors up to a change-feed sequence number, and anything wrong with
//! it (missing, truncated, a flipped byte, another format, embedder, library or dimension) is
//! reported as a reason, and the caller rebuilds it from the store.
//!
//! Layout (little-endian): `CSINDEX\0`, the format version (u32), the length and CRC-32 of a
//! JSON header (u32 each), the JSON header (embedder, library id, dimension, count, highest
//! sequence number, storage, and each section's offset, length and CRC-32), then the sections,
//! each at a 4096-byte boundary so it can be mapped as a typed slice and advised on its own:
//! f32 vectors, the compact codes (1-bit sketches, int8 codes, or both for int8),
//! the sketch centre, objective and node codes, KPIs (NaN: unknown), versions, ids (offsets,
//! bytes, rows in id order) and the code table (JSON). Every section's checksum is verified on
//! open; the f32 rows of a large compact index are verified with reads, not through the map, so
//! they never become resident in the process (a small one's are mapped: MAP_VECTORS_MAX_BYTES).
//!
//! A snapshot is written to a temporary file in the same folder, synced, renamed over the old
//! one and the folder synced: readers that still map the old file keep a valid mapping.
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::columns::{Col, Ids, Vectors};
use super::exact_index::{ExactIndex, keeps_sketch, quantise, sketch_into};
use super::partition::{self, Partition};
use crate::config::VectorStorage;
use crate::domain::EmbedderId;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"CSINDEX\0";
/// Bumped whenever the layout changes; a snapshot of another version is rebuilt. 2: int8
/// snapshots of 768 or more dimensions hold sketches too (`keeps_sketch`); 3: int8 snapshots
/// of any dimension do; 4: large compact snapshots store their rows list by list, with the
/// lists' centroids and offsets (`partition`).
pub const FORMAT: u32 = 4;
const ALIGN: u64 = 4096;
/// A compact index's f32 rows up to this size are mapped like an f32 index's, above it read
/// with `pread` per re-ranked row. Small indexes gain most from mapping (a re-rank of 42 rows
/// at 10k x 384 cost more in `pread` calls than the int8 scan) and lose little memory by it:
/// only the pages of re-ranked rows become resident.
const MAP_VECTORS_MAX_BYTES: usize = 64 << 20;
/// The fixed part before the JSON header: magic, format, JSON length, JSON CRC.
const PREFIX: usize = 20;
const MAX_HEADER: usize = ALIGN as usize - PREFIX;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Section {
    pub name: String,
    pub offset: u64,
    pub len: u64,
    pub crc32: u32,
}

/// What a snapshot says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub embedder: String,
    pub library_id: String,
    pub dim: usize,
    pub count: usize,
    /// The highest change-feed sequence number the snapshot holds.
    pub seq: i64,
    pub storage: VectorStorage,
    /// Lists of the coarse partition (0: none; `partition`).
    #[serde(default)]
    pub lists: usize,
    /// Seconds since the Unix epoch.
    pub created_unix: u64,
    pub sections: Vec<Section>,
}

impl Header {
    fn section(&self, name: &str) -> std::result::Result<&Section, String> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("it has no '{name}' section"))
    }
}

/// What a snapshot must be to be used.
pub struct Expect<'a> {
    pub embedder: &'a EmbedderId,
    pub library_id: &'a str,
    /// The dimension of the library's vectors from this embedder (None: not checked).
    pub dim: Option<usize>,
}

/// Why a snapshot was not used.
#[derive(Debug, Clone, PartialEq)]
pub enum Unusable {
    Missing,
    /// Truncated, corrupt, another format, embedder, library or dimension: the reason.
    Invalid(String),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Missing => f.write_str("no snapshot yet"),
            Unusable::Invalid(why) => f.write_str(why),
        }
    }
}

/// The snapshot file of `embedder` in `dir`: a readable slug and a hash of the whole id, so
/// two ids never share a file.
pub fn path_for(dir: &Path, embedder: &EmbedderId) -> PathBuf {
    use sha2::Digest;
    let slug: String = embedder
        .as_str()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect();
    let hash = hex::encode(&sha2::Sha256::digest(embedder.as_str().as_bytes())[..4]);
    dir.join(format!("{slug}-{hash}.index"))
}

/// Reads only the header (for `library stats`): cheap, verifies the header's own checksum.
pub fn read_header(path: &Path) -> std::result::Result<Header, Unusable> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Missing),
        Err(e) => return Err(Unusable::Invalid(format!("cannot read it: {e}"))),
    };
    let mut head = vec![0u8; ALIGN as usize];
    let got = read_up_to(&file, &mut head, 0)
        .map_err(|e| Unusable::Invalid(format!("cannot read it: {e}")))?;
    parse_header(&head[..got]).map_err(Unusable::Invalid)
}

fn read_up_to(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn parse_header(b: &[u8]) -> std::result::Result<Header, String> {
    if b.len() < PREFIX {
        return Err(format!("it is truncated ({} bytes)", b.len()));
    }
    if &b[..8] != MAGIC {
        return Err("it is not an index snapshot (wrong magic bytes)".into());
    }
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let format = word(8);
    if format != FORMAT {
        return Err(format!(
            "it has format {format}; this version reads format {FORMAT}"
        ));
    }
    let len = word(12) as usize;
    if len > MAX_HEADER {
        return Err(format!("its header claims {len} bytes"));
    }
    let json = b
        .get(PREFIX..PREFIX + len)
        .ok_or_else(|| format!("it is truncated ({} bytes)", b.len()))?;
    if crc32fast::hash(json) != word(16) {
        return Err("its header fails its checksum".into());
    }
    serde_json::from_slice(json).map_err(|e| format!("its header does not parse: {e}"))
}

/// Bytes per row of each section, by name; None: a section of fixed size.
fn expected_len(h: &Header, name: &str) -> Option<u64> {
    let n = h.count as u64;
    let d = h.dim as u64;
    let words = d.div_ceil(64);
    let v = match name {
        "vectors" => n.checked_mul(d)?.checked_mul(4)?,
        "sketch" => n.checked_mul(words)?.checked_mul(8)?,
        "q8" => n.checked_mul(d)?,
        "q8_scale" => n.checked_mul(4)?,
        "centre" => d.checked_mul(4)?,
        "objective" | "node" => n.checked_mul(2)?,
        "kpi" | "versions" => n.checked_mul(8)?,
        "id_offsets" => n.checked_add(1)?.checked_mul(8)?,
        "id_sorted" => n.checked_mul(4)?,
        "centroids" => (h.lists as u64).checked_mul(d)?.checked_mul(4)?,
        "list_offsets" => (h.lists as u64).checked_add(1)?.checked_mul(8)?,
        _ => return None,
    };
    Some(v)
}

/// The sections a snapshot of `storage` holds (with a partition of `lists` lists), in file order.
fn sections_for(storage: VectorStorage, lists: usize) -> Vec<&'static str> {
    let int8: &[&'static str] = match storage {
        VectorStorage::Int8 => &["q8", "q8_scale"],
        _ => &[],
    };
    let sketch: &[&'static str] = if keeps_sketch(storage) {
        &["sketch"]
    } else {
        &[]
    };
    let rest = [
        "centre",
        "objective",
        "node",
        "kpi",
        "versions",
        "id_offsets",
        "id_bytes",
        "id_sorted",
        "codes",
    ];
    let partition: &[&'static str] = if lists > 0 {
        &["centroids", "list_offsets"]
    } else {
        &[]
    };
    std::iter::once("vectors")
        .chain(sketch.iter().copied())
        .chain(int8.iter().copied())
        .chain(rest)
        .chain(partition.iter().copied())
        .collect()
}

/// Opens and verifies a snapshot as a read-only index.
pub fn open(
    path: &Path,
    expect: &Expect<'_>,
    pool: Option<Arc<rayon::ThreadPool>>,
) -> std::result::Result<(ExactIndex, Header), Unusable> {
    let header = read_header(path)?;
    let bad = Unusable::Invalid;
    if header.embedder != expect.embedder.as_str() {
        return Err(bad(format!(
            "it holds embedder {}, not {}",
            header.embedder, expect.embedder
        )));
    }
    if header.library_id != expect.library_id {
        return Err(bad(format!(
            "it belongs to library {}, not this library ({})",
            header.library_id, expect.library_id
        )));
    }
    if let Some(d) = expect.dim
        && d != header.dim
    {
        return Err(bad(format!(
            "it holds {}-d vectors; the library's are {d}-d",
            header.dim
        )));
    }
    if header.dim == 0 || header.dim > 1 << 16 || header.count > u32::MAX as usize {
        return Err(bad(format!(
            "it claims {} vectors of {} dimensions",
            header.count, header.dim
        )));
    }
    if !matches!(
        header.storage,
        VectorStorage::F32 | VectorStorage::Int8 | VectorStorage::Sketch
    ) {
        return Err(bad("its storage is not a concrete one".into()));
    }
    if header.lists > header.count || (header.lists > 0 && !keeps_sketch(header.storage)) {
        return Err(bad(format!(
            "it claims {} lists for {} {:?} rows",
            header.lists, header.count, header.storage
        )));
    }
    let file = File::open(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let file_len = file
        .metadata()
        .map_err(|e| bad(format!("cannot read it: {e}")))?
        .len();
    for name in sections_for(header.storage, header.lists) {
        let s = header.section(name).map_err(bad)?;
        if s.offset % ALIGN != 0 || s.offset < ALIGN {
            return Err(bad(format!("its '{name}' section is misplaced")));
        }
        if let Some(want) = expected_len(&header, name)
            && s.len != want
        {
            return Err(bad(format!(
                "its '{name}' section holds {} bytes, {want} expected",
                s.len
            )));
        }
        if s.offset.checked_add(s.len).is_none_or(|end| end > file_len) {
            return Err(bad(format!(
                "it is truncated ({file_len} bytes; its '{name}' section ends past that)"
            )));
        }
    }
    // SAFETY: the file is never written in place (a new snapshot is a new file renamed over
    // it), so the mapping does not change under us; a file truncated by hand is caught by the
    // length checks above before any column is read.
    let map =
        Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| bad(format!("cannot map it: {e}")))?);
    let compact = header.storage != VectorStorage::F32;
    // A small compact index's f32 rows are mapped, and checked through the map (which also
    // faults their pages in now rather than during the first searches' re-rank).
    let vectors_on_disk = compact
        && header.count.saturating_mul(header.dim).saturating_mul(4) > MAP_VECTORS_MAX_BYTES;
    for name in sections_for(header.storage, header.lists) {
        let s = header.section(name).map_err(bad)?;
        let crc = if name == "vectors" && vectors_on_disk {
            crc_by_reads(&file, s.offset, s.len).map_err(|e| bad(format!("cannot read it: {e}")))?
        } else {
            let (a, b) = (s.offset as usize, (s.offset + s.len) as usize);
            crc_in_parts(map.get(a..b).unwrap_or(&[]))
        };
        if crc != s.crc32 {
            return Err(bad(format!("its '{name}' section fails its checksum")));
        }
    }
    let n = header.count;
    let col =
        |name: &str, len: usize| -> std::result::Result<(Arc<Mmap>, usize, usize), Unusable> {
            let s = header.section(name).map_err(bad)?;
            Ok((map.clone(), s.offset as usize, len))
        };
    macro_rules! mapped {
        ($name:expr, $len:expr) => {{
            let (map, start, len) = col($name, $len)?;
            Col::Mapped { map, start, len }
        }};
    }
    let id_bytes = header.section("id_bytes").map_err(bad)?.len as usize;
    let ids = Ids::Mapped {
        offsets: mapped!("id_offsets", n + 1),
        bytes: mapped!("id_bytes", id_bytes),
        sorted: mapped!("id_sorted", n),
    };
    check_ids(&ids, n).map_err(bad)?;
    let codes_s = header.section("codes").map_err(bad)?;
    let codes: Vec<String> = serde_json::from_slice(
        map.get(codes_s.offset as usize..(codes_s.offset + codes_s.len) as usize)
            .unwrap_or(&[]),
    )
    .map_err(|e| bad(format!("its code table does not parse: {e}")))?;
    let objective: Col<u16> = mapped!("objective", n);
    let node: Col<u16> = mapped!("node", n);
    if objective
        .iter()
        .chain(node.iter())
        .any(|&c| c as usize >= codes.len())
    {
        return Err(bad("a row's filter code is not in its code table".into()));
    }
    let centre: Col<f32> = mapped!("centre", header.dim);
    let vectors = if vectors_on_disk {
        let s = header.section("vectors").map_err(bad)?;
        Vectors::Disk {
            file,
            offset: s.offset,
            rows: n,
            path: path.to_path_buf(),
        }
    } else {
        Vectors::Mem(mapped!("vectors", n * header.dim))
    };
    let words = header.dim.div_ceil(64);
    let mut ix = ExactIndex::with_pool(
        EmbedderId::new(header.embedder.clone()),
        header.dim,
        header.storage,
        pool,
    );
    ix.ids = ids;
    ix.vectors = vectors;
    ix.centre = centre.to_vec();
    ix.objective = objective;
    ix.node = node;
    ix.kpi = mapped!("kpi", n);
    ix.versions = mapped!("versions", n);
    ix.codes = codes;
    if keeps_sketch(header.storage) {
        ix.sketch = mapped!("sketch", n * words);
    }
    if header.storage == VectorStorage::Int8 {
        ix.q8 = mapped!("q8", n * header.dim);
        ix.q8_scale = mapped!("q8_scale", n);
    }
    if header.lists > 0 {
        let p = Partition {
            centroids: mapped!("centroids", header.lists * header.dim),
            offsets: mapped!("list_offsets", header.lists + 1),
        };
        if !p.is_consistent(n) {
            return Err(bad("its list offsets are inconsistent".into()));
        }
        ix.partition = Some(p);
    }
    ix.build_head();
    // The compact codes are read by every query: ask the kernel to read them in now.
    for name in ["sketch", "q8", "objective", "node"] {
        if let Ok(s) = header.section(name) {
            let _ = map.advise_range(memmap2::Advice::WillNeed, s.offset as usize, s.len as usize);
        }
    }
    Ok((ix, header))
}

/// Offsets rise and stay inside the bytes; `sorted` is a permutation of rows in id order.
fn check_ids(ids: &Ids, n: usize) -> std::result::Result<(), String> {
    let Ids::Mapped {
        offsets,
        bytes,
        sorted,
    } = ids
    else {
        return Ok(());
    };
    if offsets.first() != Some(&0)
        || offsets.windows(2).any(|w| w[0] > w[1])
        || offsets.last().copied() != Some(bytes.len() as u64)
    {
        return Err("its id offsets are inconsistent".into());
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err("its ids are not UTF-8".into());
    }
    let mut seen = vec![false; n];
    for &r in sorted.iter() {
        match seen.get_mut(r as usize) {
            Some(s) if !*s => *s = true,
            _ => return Err("its id order is not a permutation of its rows".into()),
        }
    }
    if sorted
        .windows(2)
        .any(|w| ids.get(w[0] as usize) >= ids.get(w[1] as usize))
    {
        return Err("its ids are not in order".into());
    }
    Ok(())
}

/// Sections above this size are checked by two threads (the open time of a large library is
/// mostly this check; the two halves' checksums are combined).
const PARALLEL_CRC_BYTES: u64 = 8 << 20;

fn crc_in_parts(bytes: &[u8]) -> u32 {
    if (bytes.len() as u64) < PARALLEL_CRC_BYTES {
        return crc32fast::hash(bytes);
    }
    let (a, b) = bytes.split_at(bytes.len() / 2);
    let (mut ha, hb) = std::thread::scope(|s| {
        let tb = s.spawn(|| {
            let mut h = crc32fast::Hasher::new();
            h.update(b);
            h
        });
        let mut h = crc32fast::Hasher::new();
        h.update(a);
        (h, tb.join())
    });
    match hb {
        Ok(hb) => {
            ha.combine(&hb);
            ha.finalize()
        }
        // A checker thread that could not finish: check it all here.
        Err(_) => crc32fast::hash(bytes),
    }
}

/// The checksum of `len` bytes at `offset`, read with `pread` (by two threads when large), so
/// the rows never become resident in this process.
fn crc_by_reads(file: &File, offset: u64, len: u64) -> std::io::Result<u32> {
    let part = |from: u64, to: u64| -> std::io::Result<crc32fast::Hasher> {
        let mut h = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = from;
        while at < to {
            let want = ((to - at) as usize).min(buf.len());
            file.read_exact_at(&mut buf[..want], at)?;
            h.update(&buf[..want]);
            at += want as u64;
        }
        Ok(h)
    };
    let end = offset + len;
    if len < PARALLEL_CRC_BYTES {
        return Ok(part(offset, end)?.finalize());
    }
    let mid = offset + len / 2;
    let (ha, hb) = std::thread::scope(|s| {
        let tb = s.spawn(|| part(mid, end));
        (part(offset, mid), tb.join())
    });
    let mut ha = ha?;
    let hb = hb.unwrap_or_else(|_| part(mid, end))?;
    ha.combine(&hb);
    Ok(ha.finalize())
}

/// What to write.
pub struct WriteSpec<'a> {
    pub embedder: &'a EmbedderId,
    pub library_id: &'a str,
    pub dim: usize,
    pub seq: i64,
    /// A concrete storage.
    pub storage: VectorStorage,
    /// The sketch centre to keep (None: the mean of the rows).
    pub centre: Option<&'a [f32]>,
    /// A partition's centroids to keep (`lists x dim`; None: trained on the rows when they are
    /// partitioned). Rows of an index partitioned by these keep their list.
    pub centroids: Option<&'a [f32]>,
    /// Snapshots of compact storage with at least this many rows are partitioned
    /// (`partition::PARTITION_MIN_ROWS`; tests lower it).
    pub partition_min_rows: usize,
}

/// A row to write: an index and one of its rows.
pub type RowRef<'a> = (&'a ExactIndex, usize);

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct SectionWriter<'p, W: Write> {
    path: &'p Path,
    out: W,
    pos: u64,
    crc: crc32fast::Hasher,
    start: u64,
    sections: Vec<Section>,
}

impl<W: Write> SectionWriter<'_, W> {
    fn begin(&mut self) -> Result<()> {
        let pad = (ALIGN - self.pos % ALIGN) % ALIGN;
        self.out
            .write_all(&vec![0u8; pad as usize])
            .map_err(io(self.path))?;
        self.pos += pad;
        self.start = self.pos;
        self.crc = crc32fast::Hasher::new();
        Ok(())
    }
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(io(self.path))?;
        self.crc.update(b);
        self.pos += b.len() as u64;
        Ok(())
    }
    fn end(&mut self, name: &str) {
        let crc = std::mem::take(&mut self.crc).finalize();
        self.sections.push(Section {
            name: name.into(),
            offset: self.start,
            len: self.pos - self.start,
            crc32: crc,
        });
    }
}

/// Writes `rows` as a snapshot at `path` (atomically: a temporary file renamed over it).
pub fn write(path: &Path, spec: &WriteSpec<'_>, rows: &[RowRef<'_>]) -> Result<Header> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("no folder for {}", path.display())))?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let result = write_to(&tmp, spec, rows).and_then(|h| {
        std::fs::rename(&tmp, path).map_err(io(path))?;
        // The rename is durable once the folder is synced.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(h)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Deletes temporary files a writer that died left in `dir`.
pub fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Only files older than a minute: another process may be writing one now.
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 60);
        if name.starts_with('.') && name.contains(".index.tmp-") && old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn write_to(tmp: &Path, spec: &WriteSpec<'_>, rows: &[RowRef<'_>]) -> Result<Header> {
    let dim = spec.dim;
    let n = rows.len();
    if let Some((ix, _)) = rows.iter().find(|(ix, _)| ix.dim != dim) {
        return Err(Error::Invalid(format!(
            "internal: a {}-d row in a {dim}-d snapshot",
            ix.dim
        )));
    }
    let storage = spec.storage.concrete();
    let sketched = keeps_sketch(storage);
    let words = dim.div_ceil(64);
    // A large compact snapshot stores its rows list by list.
    let (rows, centroids, list_offsets) = if sketched && n >= spec.partition_min_rows.max(1) {
        let (order, centroids, offsets) = partition_rows(spec, rows)?;
        let rows: Vec<RowRef<'_>> = order.iter().map(|&i| rows[i]).collect();
        (rows, centroids, offsets)
    } else {
        (rows.to_vec(), Vec::new(), Vec::new())
    };
    let rows = &rows[..];
    let lists = list_offsets.len().saturating_sub(1);
    let mut buf = Vec::new();
    let centre: Vec<f32> = match spec.centre {
        Some(c) if sketched && c.len() == dim => c.to_vec(),
        _ if sketched && n > 0 => {
            let mut acc = vec![0f64; dim];
            for (ix, r) in rows {
                let v = ix.vectors.row(*r, dim, &mut buf)?;
                acc.iter_mut().zip(v).for_each(|(a, x)| *a += f64::from(*x));
            }
            acc.iter().map(|a| (a / n as f64) as f32).collect()
        }
        _ => vec![0.0; dim],
    };
    let file = File::create(tmp).map_err(io(tmp))?;
    let mut w = SectionWriter {
        path: tmp,
        out: BufWriter::with_capacity(1 << 20, &file),
        pos: 0,
        crc: crc32fast::Hasher::new(),
        start: 0,
        sections: Vec::new(),
    };
    w.put(&[0u8; ALIGN as usize])?; // the header, written last
    // Vectors, with the compact codes made on the way.
    let mut sketch = Vec::new();
    let mut q8 = Vec::new();
    let mut q8_scale = Vec::new();
    w.begin()?;
    let mut s = vec![0u64; words];
    let mut q = vec![0i8; dim];
    for (ix, r) in rows {
        let v = ix.vectors.row(*r, dim, &mut buf)?;
        w.put(bytemuck::cast_slice(v))?;
        if sketched {
            sketch_into(v, &centre, &mut s);
            sketch.extend_from_slice(&s);
        }
        if storage == VectorStorage::Int8 {
            q8_scale.push(quantise(v, &mut q));
            q8.extend_from_slice(&q);
        }
    }
    w.end("vectors");
    if sketched {
        w.begin()?;
        w.put(bytemuck::cast_slice(&sketch))?;
        w.end("sketch");
    }
    if storage == VectorStorage::Int8 {
        w.begin()?;
        w.put(bytemuck::cast_slice(&q8))?;
        w.end("q8");
        w.begin()?;
        w.put(bytemuck::cast_slice(&q8_scale))?;
        w.end("q8_scale");
    }
    drop((sketch, q8, q8_scale));
    w.begin()?;
    w.put(bytemuck::cast_slice(&centre))?;
    w.end("centre");
    // One code table for every source.
    let mut codes: Vec<String> = Vec::new();
    let mut code_of = |s: &str| -> Result<u16> {
        if let Some(i) = codes.iter().position(|c| c == s) {
            return Ok(i as u16);
        }
        codes.push(s.to_string());
        u16::try_from(codes.len() - 1)
            .map_err(|_| Error::Invalid("more than 65536 objectives and nodes".into()))
    };
    let metas: Vec<_> = rows.iter().map(|(ix, r)| ix.meta(*r)).collect();
    let mut obj = Vec::with_capacity(n);
    let mut node = Vec::with_capacity(n);
    for m in &metas {
        obj.push(code_of(&m.objective)?);
        node.push(code_of(&m.node)?);
    }
    for (name, col) in [("objective", &obj), ("node", &node)] {
        w.begin()?;
        w.put(bytemuck::cast_slice(col))?;
        w.end(name);
    }
    let kpi: Vec<f64> = metas.iter().map(|m| m.kpi.unwrap_or(f64::NAN)).collect();
    w.begin()?;
    w.put(bytemuck::cast_slice(&kpi))?;
    w.end("kpi");
    let versions: Vec<i64> = rows.iter().map(|(ix, r)| ix.version(*r)).collect();
    w.begin()?;
    w.put(bytemuck::cast_slice(&versions))?;
    w.end("versions");
    let ids: Vec<&str> = rows.iter().map(|(ix, r)| ix.id(*r)).collect();
    let mut offsets = Vec::with_capacity(n + 1);
    let mut at = 0u64;
    offsets.push(0);
    for id in &ids {
        at += id.len() as u64;
        offsets.push(at);
    }
    w.begin()?;
    w.put(bytemuck::cast_slice(&offsets))?;
    w.end("id_offsets");
    w.begin()?;
    for id in &ids {
        w.put(id.as_bytes())?;
    }
    w.end("id_bytes");
    let mut sorted: Vec<u32> = (0..n as u32).collect();
    sorted.sort_by(|a, b| ids[*a as usize].cmp(ids[*b as usize]));
    if sorted
        .windows(2)
        .any(|p| ids[p[0] as usize] == ids[p[1] as usize])
    {
        return Err(Error::Invalid("internal: an id twice in a snapshot".into()));
    }
    w.begin()?;
    w.put(bytemuck::cast_slice(&sorted))?;
    w.end("id_sorted");
    w.begin()?;
    w.put(&serde_json::to_vec(&codes)?)?;
    w.end("codes");
    if lists > 0 {
        w.begin()?;
        w.put(bytemuck::cast_slice(&centroids))?;
        w.end("centroids");
        w.begin()?;
        w.put(bytemuck::cast_slice(&list_offsets))?;
        w.end("list_offsets");
    }
    let header = Header {
        embedder: spec.embedder.to_string(),
        library_id: spec.library_id.to_string(),
        dim,
        count: n,
        seq: spec.seq,
        storage,
        lists,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        sections: w.sections,
    };
    let mut out = w.out.into_inner().map_err(|e| io(tmp)(e.into_error()))?;
    let json = serde_json::to_vec(&header)?;
    if json.len() > MAX_HEADER {
        return Err(Error::Invalid("internal: snapshot header too long".into()));
    }
    let mut head = Vec::with_capacity(PREFIX + json.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT.to_le_bytes());
    head.extend_from_slice(&(json.len() as u32).to_le_bytes());
    head.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    head.extend_from_slice(&json);
    out.seek(SeekFrom::Start(0))
        .and_then(|_| out.write_all(&head))
        .and_then(|_| out.flush())
        .and_then(|_| file.sync_all())
        .map_err(io(tmp))?;
    Ok(header)
}

/// The partition of `rows`: the order to write them in (list by list, each list's rows in the
/// order given), the centroids and each list's first row (plus the count). The centroids are
/// the spec's where given and still sized for the rows (lists within a factor of two of
/// `lists_for`), with each row of an index partitioned by them kept in its list; otherwise
/// trained on a sample of the rows spread over them. Every other row goes to its nearest centroid
/// (split over the threads: the cost is rows x lists x dimensions).
fn partition_rows(
    spec: &WriteSpec<'_>,
    rows: &[RowRef<'_>],
) -> Result<(Vec<usize>, Vec<f32>, Vec<u64>)> {
    use rayon::prelude::*;
    let (dim, n) = (spec.dim, rows.len());
    let want = partition::lists_for(n);
    let reused = spec.centroids.filter(|c| {
        let lists = c.len() / dim.max(1);
        c.len() == lists * dim && lists > 0 && lists * 2 >= want && lists <= want * 2
    });
    let centroids = match reused {
        Some(c) => c.to_vec(),
        None => {
            let m = partition::sample_size(want, n);
            let mut sample = Vec::with_capacity(m.saturating_mul(dim));
            let mut buf = Vec::new();
            for i in partition::spread(m, n) {
                let (ix, r) = rows[i];
                sample.extend_from_slice(ix.vectors.row(r, dim, &mut buf)?);
            }
            partition::train(&sample, dim, want)
        }
    };
    let lists = centroids.len() / dim.max(1);
    // Rows of an index partitioned by the same centroids keep their list (the indexes are
    // told apart by address: the rows come from one or two).
    let mut seen: Vec<usize> = Vec::new();
    let mut same: Vec<usize> = Vec::new();
    for &(ix, _) in rows {
        let at = std::ptr::from_ref(ix) as usize;
        if !seen.contains(&at) {
            seen.push(at);
            let by_these = ix
                .partition
                .as_ref()
                .is_some_and(|p| p.centroids[..] == centroids[..]);
            if reused.is_some() && by_these {
                same.push(at);
            }
        }
    }
    let kept = |ix: &ExactIndex, r: usize| -> Option<u32> {
        if !same.contains(&(std::ptr::from_ref(ix) as usize)) {
            return None;
        }
        ix.partition.as_ref()?.list_of(r)
    };
    let assigned: Vec<u32> = rows
        .par_iter()
        .map_init(Vec::new, |buf, &(ix, r)| -> Result<u32> {
            match kept(ix, r) {
                Some(l) => Ok(l),
                None => Ok(partition::nearest(
                    &centroids,
                    dim,
                    ix.vectors.row(r, dim, buf)?,
                )),
            }
        })
        .collect::<Result<_>>()?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| assigned[i]);
    let mut offsets = vec![0u64; lists + 1];
    for &l in &assigned {
        if let Some(o) = offsets.get_mut(l as usize + 1) {
            *o += 1;
        }
    }
    for l in 0..lists {
        offsets[l + 1] += offsets[l];
    }
    Ok((order, centroids, offsets))
}
