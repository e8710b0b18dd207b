//! [`SimDisk`]: an in-memory [`Vfs`] that can lose power.
//!
//! Owns a model of what a real disk guarantees after a crash:
//! - file data is durable up to the last `sync()` of that file;
//! - a directory entry (a created, removed or renamed file or subdirectory) is
//!   durable only after `sync_dir()` of its parent directory;
//! - a directory that was never created through this disk is assumed to exist durably.
//!
//! [`SimDisk::crash`] throws away everything not durable. Handles opened before a
//! crash must not be used after it (the stores are dropped first).

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::vfs::{SharedVfs, VFile, Vfs};

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// After a failed fsync: the ranges written since. Like Linux, the pages
    /// dirty at the failure are then clean, so a later fsync persists only these.
    since_failed_sync: Option<Vec<(usize, usize)>>,
}

type InodeRef = Arc<Mutex<Inode>>;

#[derive(Debug, Default)]
struct State {
    files: HashMap<PathBuf, InodeRef>,
    durable_files: HashMap<PathBuf, InodeRef>,
    dirs: BTreeSet<PathBuf>,
    durable_dirs: BTreeSet<PathBuf>,
    known_dirs: BTreeSet<PathBuf>,
    fail_writes: bool,
    fail_syncs: bool,
    fail_dir_syncs: bool,
}

/// An in-memory disk with durable and pending state, for crash tests.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", p.display()),
    )
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// A shared handle for the stores.
    pub fn shared(&self) -> SharedVfs {
        Arc::new(self.clone())
    }

    /// Power loss: everything not made durable is gone.
    pub fn crash(&self) {
        self.crash_inner(None);
    }

    /// Power loss where each file also keeps a seed-chosen part of its unsynced
    /// appended bytes (a torn write), as a real disk may.
    pub fn crash_torn(&self, seed: u64) {
        self.crash_inner(Some(seed));
    }

    fn crash_inner(&self, torn: Option<u64>) {
        let mut st = lock(&self.state);
        let durable_dirs = st.durable_dirs.clone();
        let known = st.known_dirs.clone();
        let dir_ok = |p: &Path| {
            p.ancestors()
                .skip(1)
                .all(|a| !known.contains(a) || durable_dirs.contains(a))
        };
        let files: HashMap<PathBuf, InodeRef> = st
            .durable_files
            .iter()
            .filter(|(p, _)| dir_ok(p))
            .map(|(p, i)| (p.clone(), i.clone()))
            .collect();
        for (n, inode) in files.values().enumerate() {
            let mut i = lock(inode);
            let keep = match torn {
                Some(seed) if i.data.starts_with(&i.durable) => {
                    let extra = (i.data.len() - i.durable.len()) as u64;
                    let mix = seed
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .wrapping_add(n as u64);
                    i.durable.len() + (mix % (extra + 1)) as usize
                }
                _ => i.durable.len(),
            };
            let mut data = i.durable.clone();
            if keep > i.durable.len() {
                data.extend_from_slice(&i.data[i.durable.len()..keep]);
            }
            i.data = data.clone();
            i.durable = data;
        }
        st.durable_files = files.clone();
        st.files = files;
        st.dirs = durable_dirs.iter().filter(|d| dir_ok(d)).cloned().collect();
        st.durable_dirs = st.dirs.clone();
    }

    /// Every durable and pending file, for tests that want to look.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = lock(&self.state).files.keys().cloned().collect();
        v.sort();
        v
    }

    /// Makes every later file fsync fail (and forget the dirty data, as Linux does).
    pub fn set_fail_syncs(&self, fail: bool) {
        lock(&self.state).fail_syncs = fail;
    }

    /// Makes every later directory fsync fail (nothing in the directory becomes durable).
    pub fn set_fail_dir_syncs(&self, fail: bool) {
        lock(&self.state).fail_dir_syncs = fail;
    }

    /// Makes every later write fail (a full or dying disk).
    pub fn set_fail_writes(&self, fail: bool) {
        lock(&self.state).fail_writes = fail;
    }

    fn inode(&self, path: &Path) -> io::Result<InodeRef> {
        lock(&self.state)
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| not_found(path))
    }
}

fn moved(p: &Path, from: &Path, to: &Path) -> PathBuf {
    p.strip_prefix(from)
        .map_or_else(|_| p.to_path_buf(), |rest| to.join(rest))
}

fn rename_tree(st: &mut State, from: &Path, to: &Path) {
    for map in [&mut st.files, &mut st.durable_files] {
        let old: Vec<PathBuf> = map
            .keys()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for p in old {
            if let Some(i) = map.remove(&p) {
                map.insert(moved(&p, from, to), i);
            }
        }
    }
    for set in [&mut st.dirs, &mut st.durable_dirs, &mut st.known_dirs] {
        let old: Vec<PathBuf> = set
            .iter()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for p in old {
            set.remove(&p);
            set.insert(moved(&p, from, to));
        }
    }
}

#[derive(Debug)]
struct SimFile {
    inode: InodeRef,
    disk: SimDisk,
}

impl SimFile {
    fn check_writable(&self) -> io::Result<()> {
        if lock(&self.disk.state).fail_writes {
            return Err(io::Error::other("simulated write failure"));
        }
        Ok(())
    }
}

impl VFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.inode).data.len() as u64)
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let i = lock(&self.inode);
        let start = usize::try_from(off).map_err(io::Error::other)?;
        let end = start
            .checked_add(buf.len())
            .ok_or_else(|| io::Error::other("overflow"))?;
        let src = i
            .data
            .get(start..end)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()> {
        self.check_writable()?;
        let mut i = lock(&self.inode);
        let start = usize::try_from(off).map_err(io::Error::other)?;
        let end = start + data.len();
        if i.data.len() < end {
            i.data.resize(end, 0);
        }
        i.data[start..end].copy_from_slice(data);
        if let Some(r) = i.since_failed_sync.as_mut() {
            r.push((start, end));
        }
        Ok(())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        lock(&self.inode).data.resize(len, 0);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.check_writable()?;
        let fail = lock(&self.disk.state).fail_syncs;
        let mut i = lock(&self.inode);
        if fail {
            i.since_failed_sync = Some(Vec::new());
            return Err(io::Error::other("simulated fsync failure"));
        }
        match i.since_failed_sync.take() {
            None => i.durable = i.data.clone(),
            Some(ranges) => {
                let mut durable = std::mem::take(&mut i.durable);
                durable.resize(i.data.len(), 0);
                for (a, b) in ranges {
                    let b = b.min(i.data.len());
                    if a < b {
                        durable[a..b].copy_from_slice(&i.data[a..b]);
                    }
                }
                i.durable = durable;
            }
        }
        Ok(())
    }
}

impl Vfs for SimDisk {
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn VFile>> {
        let inode = {
            let mut st = lock(&self.state);
            match st.files.get(path) {
                Some(i) => i.clone(),
                None if create => {
                    if st.fail_writes {
                        return Err(io::Error::other("simulated write failure"));
                    }
                    let parent = path.parent().unwrap_or(Path::new(""));
                    if st.known_dirs.contains(parent) && !st.dirs.contains(parent) {
                        return Err(not_found(parent));
                    }
                    let i = InodeRef::default();
                    st.files.insert(path.to_path_buf(), i.clone());
                    i
                }
                None => return Err(not_found(path)),
            }
        };
        Ok(Box::new(SimFile {
            inode,
            disk: self.clone(),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        lock(&self.state)
            .files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        if st.dirs.contains(from) {
            // Simplification: a directory rename is durable at once (files and entries move).
            rename_tree(&mut st, from, to);
            return Ok(());
        }
        let inode = st.files.remove(from).ok_or_else(|| not_found(from))?;
        st.files.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = lock(&self.state);
        if st.known_dirs.contains(dir) && !st.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let child = |p: &PathBuf| {
            (p.parent() == Some(dir))
                .then(|| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .flatten()
        };
        let mut out: Vec<String> = st.files.keys().filter_map(child).collect();
        out.extend(st.dirs.iter().filter_map(child));
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        for a in dir.ancestors() {
            if a.parent().is_none_or(|p| p.as_os_str().is_empty()) {
                // The root (or a relative path's base) always exists.
                continue;
            }
            st.dirs.insert(a.to_path_buf());
            st.known_dirs.insert(a.to_path_buf());
        }
        Ok(())
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.files.retain(|p, _| !p.starts_with(dir));
        st.dirs.retain(|p| !p.starts_with(dir));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        if st.fail_writes {
            return Err(io::Error::other("simulated write failure"));
        }
        if st.fail_dir_syncs {
            return Err(io::Error::other("simulated directory fsync failure"));
        }
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        let names: BTreeSet<PathBuf> = st
            .files
            .keys()
            .chain(st.durable_files.keys())
            .filter(|p| in_dir(p))
            .cloned()
            .collect();
        for p in names {
            match st.files.get(&p).cloned() {
                Some(i) => st.durable_files.insert(p, i),
                None => st.durable_files.remove(&p),
            };
        }
        let dirs: BTreeSet<PathBuf> = st
            .dirs
            .iter()
            .chain(st.durable_dirs.iter())
            .filter(|p| in_dir(p))
            .cloned()
            .collect();
        for d in dirs {
            if st.dirs.contains(&d) {
                st.durable_dirs.insert(d);
            } else {
                st.durable_dirs.remove(&d);
                st.durable_files.retain(|p, _| !p.starts_with(&d));
            }
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let st = lock(&self.state);
        st.files.contains_key(path) || st.dirs.contains(path)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let inode = self.inode(path)?;
        let data = lock(&inode).data.clone();
        Ok(data)
    }
}
