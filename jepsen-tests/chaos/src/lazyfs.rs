//! A FUSE layer over a backing directory that keeps the file data written since a file's last
//! fsync in memory, so a crash can be made to lose exactly what was never made durable: the data
//! a kernel may still hold in its page cache when the power goes.
//!
//! What survives [`LazyMount::lose_unsynced`] (the model of a disk under a crash):
//! - `write` lands in memory, per file, in order; reads through the mount see it.
//! - `fsync`/`fdatasync` of a file writes its pending data to the backing file, in order, then
//!   fsyncs the backing file. That data survives.
//! - [`LazyMount::lose_unsynced`] throws away every file's pending data: what the backing
//!   directory holds is what the restarted process finds. Call it after the writing process is
//!   killed and reaped, before it starts again.
//! - Namespace operations (create, rename, unlink, mkdir, rmdir, truncate, chmod) go to the
//!   backing directory at once and survive, as on a journaling filesystem that commits metadata
//!   promptly: only file data is lazy.
//! - A file that collects more than [`MAX_PENDING_BYTES`] of pending data has its oldest writes
//!   written back (without fsync), as a kernel's writeback would; that bounds the memory, and
//!   such data may or may not survive a crash on a real disk too.
//!
//! Every open is direct I/O (no kernel page cache) and no attribute or entry is cached by the
//! kernel, so what a process sees is what this layer holds. Needs root and `/dev/fuse`; one
//! thread serves each mount.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// Pending (un-fsynced) bytes one file may hold before its oldest writes are written back.
pub const MAX_PENDING_BYTES: u64 = 64 << 20;
/// A sequential write extends the previous pending write up to this size.
const MAX_COALESCED: usize = 1 << 20;
/// How the mounts' source reads in /proc/mounts (then the backing directory).
const SOURCE_PREFIX: &str = "ticketd-lazyfs:";
/// Nothing is cached by the kernel.
const TTL: Duration = Duration::ZERO;

/// Counters of one mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LazyStats {
    /// fsync/fdatasync calls on files.
    pub fsyncs: u64,
    /// Bytes made durable by them.
    pub synced_bytes: u64,
    /// Bytes written back early because a file held too much pending data.
    pub written_back_bytes: u64,
    /// Calls of [`LazyMount::lose_unsynced`].
    pub losses: u64,
    /// Files that had pending data when it was lost.
    pub lost_files: u64,
    /// Pending bytes lost.
    pub lost_bytes: u64,
}

/// What one [`LazyMount::lose_unsynced`] threw away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lost {
    /// Files that had pending data.
    pub files: u64,
    /// Pending bytes.
    pub bytes: u64,
    /// The largest losses: path under the mount (`?` once unlinked) and bytes, largest first,
    /// at most [`LOST_LISTED`].
    pub largest: Vec<(String, u64)>,
}

/// Files named in [`Lost::largest`].
pub const LOST_LISTED: usize = 4;

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} B in {} files", self.bytes, self.files)?;
        for (i, (path, bytes)) in self.largest.iter().enumerate() {
            write!(f, "{}{path} {bytes} B", if i == 0 { " (" } else { ", " })?;
        }
        if !self.largest.is_empty() {
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// One write not yet fsynced.
struct PendingWrite {
    off: u64,
    data: Vec<u8>,
}

/// A file's writes since its last fsync.
struct Pending {
    writes: VecDeque<PendingWrite>,
    /// The file's size as processes see it.
    size: u64,
    bytes: u64,
}

/// An inode: its path relative to the backing root (`None` once unlinked) and the kernel's
/// lookup count.
struct Node {
    path: Option<PathBuf>,
    lookups: u64,
}

struct Handle {
    ino: u64,
    file: File,
}

struct Inner {
    root: PathBuf,
    nodes: HashMap<u64, Node>,
    by_path: HashMap<PathBuf, u64>,
    next_ino: u64,
    pending: HashMap<u64, Pending>,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    stats: LazyStats,
}

type Res<T> = Result<T, Errno>;

fn errno(e: io::Error) -> Errno {
    Errno::from(e)
}

fn kind_of(meta: &Metadata) -> FileType {
    FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile)
}

impl Inner {
    fn new(root: PathBuf) -> Self {
        let mut nodes = HashMap::new();
        let mut by_path = HashMap::new();
        nodes.insert(
            INodeNo::ROOT.0,
            Node {
                path: Some(PathBuf::new()),
                lookups: 1,
            },
        );
        by_path.insert(PathBuf::new(), INodeNo::ROOT.0);
        Inner {
            root,
            nodes,
            by_path,
            next_ino: INodeNo::ROOT.0 + 1,
            pending: HashMap::new(),
            handles: HashMap::new(),
            next_fh: 1,
            stats: LazyStats::default(),
        }
    }

    fn rel(&self, ino: u64) -> Res<PathBuf> {
        self.nodes
            .get(&ino)
            .and_then(|n| n.path.clone())
            .ok_or(Errno::ENOENT)
    }

    fn real(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    fn child(&self, parent: u64, name: &OsStr) -> Res<PathBuf> {
        Ok(self.rel(parent)?.join(name))
    }

    /// The inode of `rel`, counting one more kernel lookup of it.
    fn intern(&mut self, rel: PathBuf) -> u64 {
        if let Some(&ino) = self.by_path.get(&rel) {
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.lookups += 1;
            }
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.by_path.insert(rel.clone(), ino);
        self.nodes.insert(
            ino,
            Node {
                path: Some(rel),
                lookups: 1,
            },
        );
        ino
    }

    /// Forgets an inode nobody can reach any more: unlinked and not known to the kernel.
    fn collect(&mut self, ino: u64) {
        let gone = self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.path.is_none() && n.lookups == 0);
        let open = self.handles.values().any(|h| h.ino == ino);
        if gone && !open {
            self.nodes.remove(&ino);
            self.pending.remove(&ino);
        }
    }

    /// `rel` no longer names its inode (unlinked, or replaced by a rename).
    fn unname(&mut self, rel: &Path) {
        if let Some(ino) = self.by_path.remove(rel) {
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.path = None;
            }
            self.collect(ino);
        }
    }

    fn attr(&self, ino: u64, meta: &Metadata) -> FileAttr {
        let size = self.pending.get(&ino).map_or(meta.len(), |p| p.size);
        let time = |s: i64, ns: i64| {
            UNIX_EPOCH + Duration::new(s.max(0) as u64, ns.clamp(0, 999_999_999) as u32)
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: kind_of(meta),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: 4096,
            flags: 0,
        }
    }

    fn stat(&self, ino: u64, fh: Option<u64>) -> Res<FileAttr> {
        let meta = match fh.and_then(|fh| self.handles.get(&fh)) {
            Some(h) => h.file.metadata(),
            None => std::fs::symlink_metadata(self.real(&self.rel(ino)?)),
        }
        .map_err(errno)?;
        Ok(self.attr(ino, &meta))
    }

    fn file(&self, fh: u64) -> Res<&File> {
        self.handles.get(&fh).map(|h| &h.file).ok_or(Errno::EBADF)
    }

    fn read(&self, ino: u64, fh: u64, off: u64, len: usize) -> Res<Vec<u8>> {
        let file = self.file(fh)?;
        let size = match self.pending.get(&ino) {
            Some(p) => p.size,
            None => file.metadata().map_err(errno)?.len(),
        };
        if off >= size {
            return Ok(Vec::new());
        }
        let n = len.min((size - off) as usize);
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match file.read_at(&mut buf[got..], off + got as u64) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno(e)),
            }
        }
        if let Some(p) = self.pending.get(&ino) {
            let end = off + n as u64;
            for w in &p.writes {
                let w_end = w.off + w.data.len() as u64;
                if w_end <= off || w.off >= end {
                    continue;
                }
                let from = w.off.max(off);
                let to = w_end.min(end);
                buf[(from - off) as usize..(to - off) as usize]
                    .copy_from_slice(&w.data[(from - w.off) as usize..(to - w.off) as usize]);
            }
        }
        Ok(buf)
    }

    fn write(&mut self, ino: u64, fh: u64, off: u64, data: &[u8]) -> Res<()> {
        let file = &self.handles.get(&fh).ok_or(Errno::EBADF)?.file;
        let p = match self.pending.entry(ino) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            // The file's size is read once, when it starts to hold pending data.
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Pending {
                writes: VecDeque::new(),
                size: file.metadata().map_err(errno)?.len(),
                bytes: 0,
            }),
        };
        match p.writes.back_mut() {
            Some(last)
                if last.off + last.data.len() as u64 == off
                    && last.data.len() + data.len() <= MAX_COALESCED =>
            {
                last.data.extend_from_slice(data);
            }
            _ => p.writes.push_back(PendingWrite {
                off,
                data: data.to_vec(),
            }),
        }
        p.size = p.size.max(off + data.len() as u64);
        p.bytes += data.len() as u64;
        if p.bytes > MAX_PENDING_BYTES {
            let mut written = 0;
            while p.bytes > MAX_PENDING_BYTES / 2 {
                let Some(w) = p.writes.pop_front() else { break };
                file.write_all_at(&w.data, w.off).map_err(errno)?;
                p.bytes -= w.data.len() as u64;
                written += w.data.len() as u64;
            }
            self.stats.written_back_bytes += written;
        }
        Ok(())
    }

    /// Writes `ino`'s pending data to the backing file and fsyncs it.
    fn sync(&mut self, ino: u64, fh: u64, datasync: bool) -> Res<()> {
        let file = self.file(fh)?;
        let mut bytes = 0;
        if let Some(p) = self.pending.get(&ino) {
            for w in &p.writes {
                file.write_all_at(&w.data, w.off).map_err(errno)?;
                bytes += w.data.len() as u64;
            }
            if file.metadata().map_err(errno)?.len() < p.size {
                file.set_len(p.size).map_err(errno)?;
            }
        }
        if datasync {
            file.sync_data()
        } else {
            file.sync_all()
        }
        .map_err(errno)?;
        self.pending.remove(&ino);
        self.stats.fsyncs += 1;
        self.stats.synced_bytes += bytes;
        Ok(())
    }

    /// Sets the size (a metadata change: the backing file at once) and trims pending writes.
    fn truncate(&mut self, ino: u64, fh: Option<u64>, size: u64) -> Res<()> {
        match fh.and_then(|fh| self.handles.get(&fh)) {
            Some(h) => h.file.set_len(size),
            None => OpenOptions::new()
                .write(true)
                .open(self.real(&self.rel(ino)?))
                .and_then(|f| f.set_len(size)),
        }
        .map_err(errno)?;
        if let Some(p) = self.pending.get_mut(&ino) {
            p.writes.retain_mut(|w| {
                if w.off >= size {
                    return false;
                }
                w.data
                    .truncate((size - w.off).min(w.data.len() as u64) as usize);
                true
            });
            p.bytes = p.writes.iter().map(|w| w.data.len() as u64).sum();
            p.size = size;
        }
        Ok(())
    }

    fn open_handle(&mut self, ino: u64, file: File) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, file });
        fh
    }

    fn lose(&mut self) -> Lost {
        let mut largest: Vec<(String, u64)> = self
            .pending
            .iter()
            .map(|(ino, p)| {
                let path = self.nodes.get(ino).and_then(|n| n.path.as_ref());
                let name = path.map_or("?".into(), |p| p.display().to_string());
                (name, p.bytes)
            })
            .collect();
        largest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let lost = Lost {
            files: largest.len() as u64,
            bytes: largest.iter().map(|l| l.1).sum(),
            largest: largest.into_iter().take(LOST_LISTED).collect(),
        };
        self.pending.clear();
        self.stats.losses += 1;
        self.stats.lost_files += lost.files;
        self.stats.lost_bytes += lost.bytes;
        lost
    }

    fn rename(&mut self, from: PathBuf, to: PathBuf) -> Res<()> {
        std::fs::rename(self.real(&from), self.real(&to)).map_err(errno)?;
        self.unname(&to);
        let moved: Vec<PathBuf> = self
            .by_path
            .keys()
            .filter(|p| p.starts_with(&from))
            .cloned()
            .collect();
        for old in moved {
            let Some(ino) = self.by_path.remove(&old) else {
                continue;
            };
            let new = match old.strip_prefix(&from) {
                Ok(tail) if tail.as_os_str().is_empty() => to.clone(),
                Ok(tail) => to.join(tail),
                Err(_) => continue,
            };
            if let Some(n) = self.nodes.get_mut(&ino) {
                n.path = Some(new.clone());
            }
            self.by_path.insert(new, ino);
        }
        Ok(())
    }
}

/// The FUSE side of a mount.
struct LazyFs {
    inner: Arc<Mutex<Inner>>,
}

impl LazyFs {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn entry(&self, reply: ReplyEntry, f: impl FnOnce(&mut Inner) -> Res<PathBuf>) {
        let mut s = self.lock();
        let res = f(&mut s).and_then(|rel| {
            let meta = std::fs::symlink_metadata(s.real(&rel)).map_err(errno)?;
            let ino = s.intern(rel);
            Ok(s.attr(ino, &meta))
        });
        match res {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn empty(&self, reply: ReplyEmpty, f: impl FnOnce(&mut Inner) -> Res<()>) {
        match f(&mut self.lock()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.entry(reply, |s| s.child(parent.0, name));
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // ENOSYS: the kernel stops asking and grants access (only root uses the mounts).
        reply.error(Errno::ENOSYS);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        // No extended attributes; ENOSYS makes the kernel stop asking.
        reply.error(Errno::ENOSYS);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut s = self.lock();
        if let Some(n) = s.nodes.get_mut(&ino.0) {
            n.lookups = n.lookups.saturating_sub(nlookup);
        }
        s.collect(ino.0);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.lock().stat(ino.0, fh.map(|f| f.0)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut s = self.lock();
        let fh = fh.map(|f| f.0);
        let res = (|| {
            if let Some(size) = size {
                s.truncate(ino.0, fh, size)?;
            }
            if let Some(mode) = mode {
                let path = s.real(&s.rel(ino.0)?);
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(errno)?;
            }
            s.stat(ino.0, fh)
        })();
        match res {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.entry(reply, |s| {
            let rel = s.child(parent.0, name)?;
            std::fs::DirBuilder::new()
                .mode(mode & !umask & 0o7777)
                .create(s.real(&rel))
                .map_err(errno)?;
            Ok(rel)
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |s| {
            let rel = s.child(parent.0, name)?;
            std::fs::remove_file(s.real(&rel)).map_err(errno)?;
            s.unname(&rel);
            Ok(())
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |s| {
            let rel = s.child(parent.0, name)?;
            std::fs::remove_dir(s.real(&rel)).map_err(errno)?;
            s.unname(&rel);
            Ok(())
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.empty(reply, |s| {
            if !flags.is_empty() {
                return Err(Errno::EINVAL);
            }
            let from = s.child(parent.0, name)?;
            let to = s.child(newparent.0, newname)?;
            s.rename(from, to)
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut s = self.lock();
        let res = (|| {
            let path = s.real(&s.rel(ino.0)?);
            // Opened read-write whatever the caller asked, so fsync can write back pending
            // data through any handle; the kernel has checked the caller's access already.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .or_else(|_| File::open(&path))
                .map_err(errno)?;
            let fh = s.open_handle(ino.0, file);
            if flags.0 & libc::O_TRUNC != 0 {
                s.truncate(ino.0, Some(fh), 0)?;
            }
            Ok(fh)
        })();
        match res {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.lock().read(ino.0, fh.0, offset, size as usize) {
            Ok(buf) => reply.data(&buf),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.lock().write(ino.0, fh.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut s = self.lock();
        s.handles.remove(&fh.0);
        s.collect(ino.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.empty(reply, |s| s.sync(ino.0, fh.0, datasync));
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let s = self.lock();
        let res = (|| {
            let rel = s.rel(ino.0)?;
            let mut entries = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            let mut children = Vec::new();
            for e in std::fs::read_dir(s.real(&rel)).map_err(errno)? {
                let e = e.map_err(errno)?;
                let meta = e.metadata().map_err(errno)?;
                let name = e.file_name();
                let child = s.by_path.get(&rel.join(&name)).copied();
                // The kernel looks entries up before use; an unknown one shows its backing
                // inode number (never 0, which readdir treats as a hole).
                children.push((child.unwrap_or(meta.ino().max(2)), kind_of(&meta), name));
            }
            children.sort_by(|a, b| a.2.cmp(&b.2));
            entries.extend(children);
            Ok::<_, Errno>(entries)
        })();
        match res {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.empty(reply, |s| {
            File::open(s.real(&s.rel(ino.0)?))
                .and_then(|d| d.sync_all())
                .map_err(errno)
        });
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut s = self.lock();
        let res = (|| {
            let rel = s.child(parent.0, name)?;
            let path = s.real(&rel);
            let mut opts = OpenOptions::new();
            opts.read(true).write(true).mode(mode & !umask & 0o7777);
            if flags & libc::O_EXCL != 0 {
                opts.create_new(true);
            } else {
                opts.create(true);
            }
            let file = opts.open(&path).map_err(errno)?;
            let meta = file.metadata().map_err(errno)?;
            let ino = s.intern(rel);
            let fh = s.open_handle(ino, file);
            if flags & libc::O_TRUNC != 0 {
                s.truncate(ino, Some(fh), 0)?;
            }
            Ok((s.attr(ino, &meta), fh))
        })();
        match res {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.empty(reply, |s| {
            if mode == libc::FALLOC_FL_KEEP_SIZE {
                // A preallocation hint that changes nothing a process can see.
                return Ok(());
            }
            if mode != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            let end = offset + length;
            if end > s.stat(ino.0, Some(fh.0))?.size {
                s.truncate(ino.0, Some(fh.0), end)?;
            }
            Ok(())
        });
    }
}

/// A mounted layer; unmounted on drop (stop the processes using it first).
pub struct LazyMount {
    inner: Arc<Mutex<Inner>>,
    mountpoint: PathBuf,
    session: Option<fuser::BackgroundSession>,
}

impl LazyMount {
    /// Mounts a layer over `backing` (created if missing) at `mountpoint` (created if missing).
    pub fn mount(backing: &Path, mountpoint: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(backing)
            .with_context(|| format!("create {}", backing.display()))?;
        std::fs::create_dir_all(mountpoint)
            .with_context(|| format!("create {}", mountpoint.display()))?;
        let inner = Arc::new(Mutex::new(Inner::new(backing.canonicalize()?)));
        let mut config = fuser::Config::default();
        config.mount_options = vec![MountOption::FSName(format!(
            "{SOURCE_PREFIX}{}",
            backing.display()
        ))];
        let fs = LazyFs {
            inner: inner.clone(),
        };
        let session = fuser::spawn_mount(fs, mountpoint, &config)
            .with_context(|| format!("mount the lazyfs layer at {}", mountpoint.display()))?;
        Ok(LazyMount {
            inner,
            mountpoint: mountpoint.to_path_buf(),
            session: Some(session),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Throws away every file's un-fsynced data (the crash). The writer must be dead.
    pub fn lose_unsynced(&self) -> Lost {
        self.lock().lose()
    }

    /// The mount's counters.
    pub fn stats(&self) -> LazyStats {
        self.lock().stats
    }

    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }
}

impl Drop for LazyMount {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if let Err(e) = s.umount_and_join() {
                tracing::warn!(error = %e, mountpoint = %self.mountpoint.display(), "lazyfs unmount failed; detaching");
                detach(&self.mountpoint);
            }
        }
    }
}

/// Lazily detaches a mount (it goes once nothing uses it).
fn detach(path: &Path) {
    let _ = std::process::Command::new("umount")
        .arg("-l")
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status();
}

/// Whether a layer can be mounted here (root, `/dev/fuse`): mounts one over a scratch
/// directory and unmounts it. The error says why not.
pub fn probe() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("ticketd-lazyfs-")
        .tempdir()?;
    let m = LazyMount::mount(&dir.path().join("disk"), &dir.path().join("mnt"))?;
    std::fs::write(dir.path().join("mnt/probe"), b"probe").context("write through the layer")?;
    drop(m);
    Ok(())
}

/// Detaches lazyfs mounts left by a harness that died; returns their mount points.
pub fn cleanup_stale() -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut out = Vec::new();
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(source), Some(point), Some("fuse")) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if source.starts_with(SOURCE_PREFIX) {
            // /proc/mounts escapes spaces as \040; the harness's paths have none.
            detach(Path::new(point));
            out.push(format!("lazyfs mount {point}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// Mounts a layer in a scratch directory; returns (dir, mount, mountpoint, backing).
    fn scratch() -> (tempfile::TempDir, LazyMount, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("disk");
        let mnt = dir.path().join("mnt");
        let m = LazyMount::mount(&backing, &mnt).expect(
            "mount lazyfs (needs root and /dev/fuse; the chaos suite needs them for lose-unsynced)",
        );
        (dir, m, mnt, backing)
    }

    #[test]
    fn unsynced_data_is_lost_and_synced_data_survives() {
        let (_dir, m, mnt, backing) = scratch();
        let mut f = File::create(mnt.join("wal")).unwrap();
        f.write_all(b"durable ").unwrap();
        f.sync_data().unwrap();
        f.write_all(b"volatile").unwrap();
        // Processes see their writes; the disk does not have them yet.
        assert_eq!(std::fs::read(mnt.join("wal")).unwrap(), b"durable volatile");
        assert_eq!(std::fs::read(backing.join("wal")).unwrap(), b"durable ");
        drop(f);
        let lost = m.lose_unsynced();
        assert_eq!((lost.files, lost.bytes), (1, 8));
        assert_eq!(lost.to_string(), "8 B in 1 files (wal 8 B)");
        assert_eq!(std::fs::read(mnt.join("wal")).unwrap(), b"durable ");
        assert_eq!(std::fs::metadata(mnt.join("wal")).unwrap().len(), 8);
        let s = m.stats();
        assert_eq!((s.fsyncs, s.synced_bytes, s.lost_bytes), (1, 8, 8));
    }

    #[test]
    fn overwrites_holes_and_truncation_read_back_as_written() {
        let (_dir, m, mnt, backing) = scratch();
        let path = mnt.join("f");
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        f.write_all_at(b"0123456789", 0).unwrap();
        f.sync_all().unwrap();
        f.write_all_at(b"ab", 3).unwrap();
        f.write_all_at(b"Z", 14).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"012ab56789\0\0\0\0Z");
        f.set_len(12).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"012ab56789\0\0");
        f.sync_data().unwrap();
        assert_eq!(std::fs::read(backing.join("f")).unwrap(), b"012ab56789\0\0");
        f.write_all_at(b"xy", 0).unwrap();
        drop(f);
        m.lose_unsynced();
        assert_eq!(std::fs::read(&path).unwrap(), b"012ab56789\0\0");
    }

    #[test]
    fn namespace_operations_reach_the_disk_at_once() {
        let (_dir, m, mnt, backing) = scratch();
        std::fs::create_dir(mnt.join("d")).unwrap();
        let mut f = File::create(mnt.join("d/tmp")).unwrap();
        f.write_all(b"CURRENT-1").unwrap();
        f.sync_all().unwrap();
        drop(f);
        std::fs::rename(mnt.join("d/tmp"), mnt.join("d/CURRENT")).unwrap();
        std::fs::write(mnt.join("d/old"), b"x").unwrap();
        std::fs::remove_file(mnt.join("d/old")).unwrap();
        File::open(mnt.join("d")).unwrap().sync_all().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(mnt.join("d"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["CURRENT"]);
        m.lose_unsynced();
        assert_eq!(
            std::fs::read(backing.join("d/CURRENT")).unwrap(),
            b"CURRENT-1"
        );
        assert_eq!(std::fs::read(mnt.join("d/CURRENT")).unwrap(), b"CURRENT-1");
        assert!(!backing.join("d/tmp").exists() && !backing.join("d/old").exists());
        // A renamed directory keeps its files reachable under the new name.
        std::fs::rename(mnt.join("d"), mnt.join("e")).unwrap();
        assert_eq!(std::fs::read(mnt.join("e/CURRENT")).unwrap(), b"CURRENT-1");
    }

    #[test]
    fn a_file_written_and_never_synced_is_written_back_past_the_bound() {
        let (_dir, m, mnt, backing) = scratch();
        let mut f = File::create(mnt.join("log")).unwrap();
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..(MAX_PENDING_BYTES >> 20) + 1 {
            f.write_all(&chunk).unwrap();
        }
        let on_disk = std::fs::metadata(backing.join("log")).unwrap().len();
        assert!(on_disk >= MAX_PENDING_BYTES / 2, "written back: {on_disk}");
        assert_eq!(m.stats().written_back_bytes, on_disk);
        let lost = m.lose_unsynced();
        assert_eq!(on_disk + lost.bytes, MAX_PENDING_BYTES + (1 << 20));
    }
}
