//! Snapshot files: a consistent copy of the state machine's column families.
//!
//! Layout: magic, length-prefixed header (JSON), then records `(cf name, key, value)`, an end
//! tag, and a SHA-256 over everything before it. Format 1 (`TKTSNAP1`, what binaries before
//! versions wrote): the header is the snapshot meta. Format 2 (`TKTSNAP2`, written once the
//! cluster is at version 2): the header is `{"meta": .., "column_families": {name: version}}`,
//! every column family of the records with the version of its encoding. A reader refuses a
//! format, a column family or a column family version it does not know, naming it. Files are written under a temporary name, fsynced,
//! renamed into place and the directory fsynced, so a crash leaves either the old snapshot or the
//! new one, never a torn file. The bytes of a file are what is streamed to a follower.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use openraft::alias::SnapshotMetaOf;
use sha2::{Digest, Sha256};

use crate::codec::{decode, encode};
use crate::TypeConfig;

/// The magic of every format but its last byte, the format's digit.
const MAGIC_PREFIX: &[u8; 7] = b"TKTSNAP";
const TAG_RECORD: u8 = 1;
const TAG_END: u8 = 0;
/// Bound on one key or value in a snapshot file, against corrupt length fields.
const FIELD_MAX_BYTES: u32 = 64 << 20;
/// Snapshots kept on disk besides the newest one.
const KEEP_OLDER: usize = 1;

/// The snapshot data openraft moves around: a handle to a complete, fsynced file.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    /// Where the file is.
    pub path: PathBuf,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Bytes a snapshot writer leaves unsynced at most: every this many it waits for them to be on
/// disk. A whole snapshot (hundreds of MB) left to the final fsync reaches the disk as one burst
/// that the nodes' log fsyncs, on the same disk, wait behind for hundreds of ms.
pub const SYNC_EVERY_BYTES: u64 = 8 << 20;

/// Writes a snapshot file record by record, hashing as it goes.
pub struct SnapshotWriter {
    out: BufWriter<File>,
    hasher: Sha256,
    tmp_path: PathBuf,
    records: u64,
    unsynced: u64,
}

impl SnapshotWriter {
    /// Starts a file of format 1 at `tmp_path` with `meta` in its header.
    pub fn create(tmp_path: PathBuf, meta: &SnapshotMetaOf<TypeConfig>) -> io::Result<Self> {
        Self::create_at(tmp_path, meta, crate::version::LEGACY)
    }

    /// Starts a file of format `format` (see the module) at `tmp_path` with `meta` in its
    /// header; format 2 lists every state column family with its version.
    pub fn create_at(
        tmp_path: PathBuf,
        meta: &SnapshotMetaOf<TypeConfig>,
        format: u32,
    ) -> io::Result<Self> {
        let out = BufWriter::with_capacity(1 << 20, File::create(&tmp_path)?);
        let mut w = Self {
            out,
            hasher: Sha256::new(),
            tmp_path,
            records: 0,
            unsynced: 0,
        };
        let (digit, meta_bytes) = match format {
            0 | 1 => (b'1', encode(meta)?),
            2 => (b'2', encode(&HeaderV2::current(meta))?),
            other => {
                return Err(bad(format!(
                    "snapshot format {other} is not one this binary writes"
                )))
            }
        };
        w.put(MAGIC_PREFIX)?;
        w.put(&[digit])?;
        w.put(&(meta_bytes.len() as u32).to_be_bytes())?;
        w.put(&meta_bytes)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)?;
        self.unsynced += bytes.len() as u64;
        if self.unsynced >= SYNC_EVERY_BYTES {
            self.out.flush()?;
            self.out.get_ref().sync_data()?;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Adds one key-value pair of column family `cf`.
    pub fn record(&mut self, cf: &str, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.put(&[TAG_RECORD, cf.len() as u8])?;
        self.put(cf.as_bytes())?;
        self.put(&(key.len() as u32).to_be_bytes())?;
        self.put(key)?;
        self.put(&(value.len() as u32).to_be_bytes())?;
        self.put(value)?;
        self.records += 1;
        Ok(())
    }

    /// Ends the file, fsyncs it, renames it to `final_path` and fsyncs the directory.
    pub fn finish(mut self, final_path: &Path) -> io::Result<u64> {
        self.put(&[TAG_END])?;
        let digest = self.hasher.finalize_reset();
        self.out.write_all(&digest)?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.tmp_path, final_path)?;
        sync_dir(final_path)?;
        Ok(self.records)
    }
}

/// Fsyncs the directory holding `path`, making a rename in it durable.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| bad("path has no parent"))?;
    File::open(dir)?.sync_all()
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    fn exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.hasher.update(&*buf);
        Ok(())
    }

    fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    fn field(&mut self) -> io::Result<Vec<u8>> {
        let len = self.u32()?;
        if len > FIELD_MAX_BYTES {
            return Err(bad(format!(
                "snapshot field of {len} bytes exceeds the bound"
            )));
        }
        let mut v = vec![0u8; len as usize];
        self.exact(&mut v)?;
        Ok(v)
    }
}

/// Reads a snapshot file's meta only.
pub fn read_meta(path: &Path) -> io::Result<SnapshotMetaOf<TypeConfig>> {
    let mut r = HashingReader {
        inner: BufReader::new(File::open(path)?),
        hasher: Sha256::new(),
    };
    Ok(read_header(&mut r)?.0)
}

/// The header of a format 2 file.
#[derive(serde::Serialize, serde::Deserialize)]
struct HeaderV2 {
    meta: SnapshotMetaOf<TypeConfig>,
    column_families: BTreeMap<String, u32>,
}

impl HeaderV2 {
    fn current(meta: &SnapshotMetaOf<TypeConfig>) -> Self {
        HeaderV2 {
            meta: meta.clone(),
            column_families: ticketd_store::COLUMN_FAMILIES
                .iter()
                .filter_map(|cf| {
                    ticketd_store::version::column_family_version(cf).map(|v| (cf.to_string(), v))
                })
                .collect(),
        }
    }
}

/// Checks that this binary reads every column family `header` lists, at its version.
fn check_column_families(header: &HeaderV2) -> io::Result<()> {
    for (name, &v) in &header.column_families {
        match ticketd_store::version::column_family_version(name) {
            None => {
                return Err(bad(format!(
                    "the snapshot carries column family {name} (version {v}), which this binary \
                     (version {}) does not know: upgrade this node's binary",
                    crate::version::BINARY_VERSION
                )))
            }
            Some(known) if v > known => {
                return Err(bad(crate::version::too_new(
                    &format!("the snapshot's column family {name}"),
                    v,
                    known,
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A file's meta and, from format 2 on, the column families it may carry.
type Header = (SnapshotMetaOf<TypeConfig>, Option<BTreeMap<String, u32>>);

fn read_header<R: Read>(r: &mut HashingReader<R>) -> io::Result<Header> {
    let mut magic = [0u8; 8];
    r.exact(&mut magic)?;
    let (prefix, digit) = magic.split_at(7);
    if prefix != MAGIC_PREFIX || !digit[0].is_ascii_digit() {
        return Err(bad("not a ticketd snapshot file"));
    }
    let format = u32::from(digit[0] - b'0');
    let header = r.field()?;
    match format {
        1 => Ok((decode(&header)?, None)),
        2 => {
            let h: HeaderV2 = decode(&header)?;
            check_column_families(&h)?;
            Ok((h.meta, Some(h.column_families)))
        }
        other => Err(bad(crate::version::too_new(
            "the snapshot file format",
            other,
            crate::version::SNAPSHOT_FORMAT_MAX,
        ))),
    }
}

/// Reads a whole snapshot file, verifying its checksum; calls `visit` for every record.
/// Nothing read is to be trusted before this returns `Ok`.
pub fn read_all(
    path: &Path,
    mut visit: impl FnMut(&str, Vec<u8>, Vec<u8>) -> io::Result<()>,
) -> io::Result<SnapshotMetaOf<TypeConfig>> {
    let mut r = HashingReader {
        inner: BufReader::new(File::open(path)?),
        hasher: Sha256::new(),
    };
    let (meta, listed) = read_header(&mut r)?;
    loop {
        let mut tag = [0u8; 1];
        r.exact(&mut tag)?;
        match tag[0] {
            TAG_END => break,
            TAG_RECORD => {
                let mut len = [0u8; 1];
                r.exact(&mut len)?;
                let mut name = vec![0u8; len[0] as usize];
                r.exact(&mut name)?;
                let name = String::from_utf8(name).map_err(|_| bad("column family name"))?;
                if listed.as_ref().is_some_and(|l| !l.contains_key(&name)) {
                    return Err(bad(format!(
                        "the snapshot has records of column family {name}, which its header \
                         does not list"
                    )));
                }
                let key = r.field()?;
                let value = r.field()?;
                visit(&name, key, value)?;
            }
            other => return Err(bad(format!("unknown snapshot tag {other}"))),
        }
    }
    let expected = r.hasher.finalize();
    let mut got = [0u8; 32];
    r.inner.read_exact(&mut got)?;
    if got[..] != expected[..] {
        return Err(bad("snapshot checksum mismatch"));
    }
    Ok(meta)
}

/// The canonical file name of a snapshot: names sort by the log index they cover.
pub fn file_name(meta: &SnapshotMetaOf<TypeConfig>) -> String {
    match &meta.last_log_id {
        Some(l) => format!("snapshot-{:020}.snap", l.index),
        None => "snapshot-none.snap".to_string(),
    }
}

/// Complete snapshot files in `dir`, oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".snap"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Removes all but the newest snapshot and [`KEEP_OLDER`] before it, and leftover temporary files.
pub fn prune(dir: &Path) -> io::Result<()> {
    let files = list(dir)?;
    let keep_from = files.len().saturating_sub(KEEP_OLDER + 1);
    for old in &files[..keep_from] {
        fs::remove_file(old)?;
    }
    Ok(())
}

/// Removes temporary files a crash may have left (unfinished builds and receives).
pub fn remove_partial(dir: &Path) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "part") {
            fs::remove_file(p)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::log_id;

    fn meta(index: u64) -> SnapshotMetaOf<TypeConfig> {
        SnapshotMetaOf::<TypeConfig> {
            last_log_id: Some(log_id::<TypeConfig>(2, 1, index)),
            last_membership: Default::default(),
        }
    }

    fn write(dir: &Path, index: u64, records: usize) -> PathBuf {
        let mut w =
            SnapshotWriter::create(dir.join(format!("w{index}.part")), &meta(index)).unwrap();
        for i in 0..records {
            w.record("sm_test", format!("key{i:06}").as_bytes(), &[i as u8; 100])
                .unwrap();
        }
        let path = dir.join(file_name(&meta(index)));
        assert_eq!(w.finish(&path).unwrap(), records as u64);
        path
    }

    #[test]
    fn files_round_trip_and_any_corruption_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), 7, 30_000);
        assert!(
            std::fs::metadata(&path).unwrap().len() > 3 * (1 << 20),
            "spans several stream chunks"
        );
        let mut n = 0;
        let m = read_all(&path, |cf, k, v| {
            assert_eq!(cf, "sm_test");
            assert_eq!(k, format!("key{n:06}").into_bytes());
            assert_eq!(v.len(), 100);
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 30_000);
        assert_eq!(m, meta(7));
        assert_eq!(read_meta(&path).unwrap(), meta(7));

        let bytes = std::fs::read(&path).unwrap();
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        assert!(
            read_all(&path, |_, _, _| Ok(())).is_err(),
            "a flipped bit fails the checksum"
        );
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        assert!(
            read_all(&path, |_, _, _| Ok(())).is_err(),
            "a truncated file is refused"
        );
    }

    #[test]
    fn prune_keeps_the_newest_and_one_before_it() {
        let dir = tempfile::tempdir().unwrap();
        for i in [5, 50, 500] {
            write(dir.path(), i, 1);
        }
        std::fs::write(dir.path().join("recv-1-1.part"), b"partial").unwrap();
        prune(dir.path()).unwrap();
        remove_partial(dir.path()).unwrap();
        let names: Vec<_> = list(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [file_name(&meta(50)), file_name(&meta(500))].map(std::ffi::OsString::from)
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
