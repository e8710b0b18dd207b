//! Durable metadata: the directory tree of streams and consumers and their
//! configuration files (opaque bytes, the JetStream layer's JSON), written atomically.
//!
//! Owns directory layout and `meta.cfg` files; message blocks belong to the file
//! store, consumer state to the consumer store.
//!
//! ```text
//! <root>/streams/<stream>/meta.cfg                       stream config
//! <root>/streams/<stream>/msgs/                           file store (see `file`)
//! <root>/streams/<stream>/consumers/<consumer>/meta.cfg   consumer config
//! <root>/streams/<stream>/consumers/<consumer>/state.log  consumer state (see `consumer`)
//! <root>/streams/.trash-*                                 a stream being deleted
//! ```
//!
//! `meta.cfg`: magic `"RILLMETA"` (8), version u32 = 1, length u32, the bytes, crc32
//! (u32) of everything before. Written as `meta.cfg.tmp`, fsync, rename, fsync of
//! the directory. Deleting renames the directory into trash first, so a crash
//! never leaves half a stream that looks whole.
//!
//! # A second copy
//! Every config is written twice, each copy atomically and one after the other:
//! `meta.cfg`, then the same bytes as `meta.bak`. At every moment at least one
//! copy holds a whole, checksummed config, and `meta.cfg` is never older than
//! `meta.bak`. Reading takes `meta.cfg` when it validates, else `meta.bak`, logs
//! the damaged file by name and writes `meta.cfg` again from the copy. A store
//! from before the copy existed gets its `meta.bak` the first time it is read.
//! Only when both copies are damaged is the entry not restored; its directory is
//! kept as it is, and the error names both files. Creating the stream again
//! (same name, any config) then adopts what is stored there: its messages are
//! kept and served, and both copies are written anew. A consumer created again
//! over damaged copies starts fresh: its old `state.log` is set aside as
//! `state.log.damaged`, since the old positions need not fit the new config. A
//! copy of a newer format version is never overwritten.

use std::path::{Path, PathBuf};

use tracing::warn;

use super::types::StoreError;
use super::vfs::Vfs;

const MAGIC: &[u8; 8] = b"RILLMETA";
const VERSION: u32 = 1;
/// Name of a configuration file.
pub const META_NAME: &str = "meta.cfg";
/// Name of the second copy of a configuration file.
pub const META_BACKUP: &str = "meta.bak";
/// A durable consumer's state log, in its directory (its format: the `consumer` module).
pub const LOG_NAME: &str = "state.log";
const TRASH_PREFIX: &str = ".trash-";

/// What listing found for one stream or consumer: its config bytes, or why not.
pub type Listed = (String, Result<Vec<u8>, StoreError>);

/// Checks that a stream or consumer name is safe as a directory name.
///
/// # Errors
/// `InvalidName` for empty names, names starting with `.`, and names with path
/// separators, whitespace, control characters or `*` / `>`.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.starts_with('.')
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '*' | '>'));
    if bad {
        return Err(StoreError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// Checks at start that JetStream can use `store_dir`: creates `<store_dir>/jetstream`
/// and writes and removes a probe file there. The probe is not fsynced (that cost
/// every start a disk flush): every later fsync is checked before anything is
/// acknowledged, and a failed one refuses writes (see the store's docs).
///
/// # Errors
/// A message naming the path, in nats-server's words where it has them
/// (`could not create storage directory - mkdir <path>: read-only file system`).
pub fn check_store_dir(vfs: &dyn Vfs, store_dir: &Path) -> Result<(), String> {
    let dir = store_dir.join("jetstream");
    let go = crate::config::go_error;
    vfs.create_dir_all(&dir).map_err(|e| {
        format!(
            "could not create storage directory - mkdir {}: {}",
            dir.display(),
            go(&e)
        )
    })?;
    let probe = dir.join(".rill-write-probe");
    let written = vfs.open(&probe, true).and_then(|f| f.write_at(0, b"probe"));
    let _ = vfs.remove_file(&probe);
    written.map_err(|e| {
        format!(
            "storage directory {} is not writable: {}",
            dir.display(),
            go(&e)
        )
    })
}

/// `<root>/streams`.
pub fn streams_dir(root: &Path) -> PathBuf {
    root.join("streams")
}

/// The directory of one stream.
pub fn stream_dir(root: &Path, stream: &str) -> PathBuf {
    streams_dir(root).join(stream)
}

/// The directory holding a stream's message blocks (pass it to `FileStore::open`).
pub fn stream_msgs_dir(root: &Path, stream: &str) -> PathBuf {
    stream_dir(root, stream).join("msgs")
}

/// The directory of one consumer (pass it to `FileConsumerStore::open`).
pub fn consumer_dir(root: &Path, stream: &str, consumer: &str) -> PathBuf {
    stream_dir(root, stream).join("consumers").join(consumer)
}

fn encode(config: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(config.len() + 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(config.len() as u32).to_le_bytes());
    out.extend_from_slice(config);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(path: &Path, data: &[u8]) -> Result<Vec<u8>, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("{}: {why}", path.display()));
    if data.len() < 20 || &data[..8] != MAGIC {
        return Err(corrupt("not a config file"));
    }
    let n = data.len() - 4;
    let crc = u32::from_le_bytes([data[n], data[n + 1], data[n + 2], data[n + 3]]);
    if crc32fast::hash(&data[..n]) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    let len = u32::from_le_bytes([data[12], data[13], data[14], data[15]]) as usize;
    if version > VERSION {
        return Err(corrupt(&format!(
            "written in format version {version}, newer than this server's ({VERSION}); \
             left untouched: run a rill version that reads it"
        )));
    }
    if version != VERSION || 16 + len != n {
        return Err(corrupt("bad version or length"));
    }
    Ok(data[16..n].to_vec())
}

/// Writes `data` to `path` atomically and durably (tmp, fsync, rename, fsync dir).
///
/// # Errors
/// I/O errors.
pub fn write_atomic(vfs: &dyn Vfs, path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let f = vfs.open(&tmp, true)?;
    f.set_len(0)?;
    f.write_at(0, data)?;
    f.sync()?;
    drop(f);
    vfs.rename(&tmp, path)?;
    vfs.sync_dir(dir)?;
    Ok(())
}

/// Writes a config file (with magic and checksum) atomically, then its second copy.
///
/// # Errors
/// I/O errors.
pub fn write_config(vfs: &dyn Vfs, dir: &Path, config: &[u8]) -> Result<(), StoreError> {
    let data = encode(config);
    write_atomic(vfs, &dir.join(META_NAME), &data)?;
    write_atomic(vfs, &dir.join(META_BACKUP), &data)
}

/// A copy's config, or the error and whether the copy is of a newer format.
fn read_copy(vfs: &dyn Vfs, path: &Path) -> Result<Vec<u8>, (StoreError, bool)> {
    let data = vfs.read_file(path).map_err(|e| (e.into(), false))?;
    decode(path, &data).map_err(|e| {
        let newer = data.len() >= 20
            && crc32fast::hash(&data[..data.len() - 4]).to_le_bytes()[..] == data[data.len() - 4..]
            && u32::from_le_bytes([data[8], data[9], data[10], data[11]]) > VERSION;
        (e, newer)
    })
}

/// Reads and verifies a config file, falling back to its second copy (see the
/// module docs); a damaged or missing `meta.cfg` is logged by name and repaired.
///
/// # Errors
/// `Corrupt` naming both files when neither validates, or naming the file of a
/// newer format version; I/O errors (`NotFound`).
pub fn read_config(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<u8>, StoreError> {
    read_checked(vfs, dir).map_err(|(e, _)| e)
}

/// [`read_config`], with whether the failure is a newer format version (never
/// to be overwritten).
fn read_checked(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<u8>, (StoreError, bool)> {
    let path = dir.join(META_NAME);
    let backup = dir.join(META_BACKUP);
    let primary = match read_copy(vfs, &path) {
        Err((e, true)) => return Err((e, true)),
        r => r.map_err(|(e, _)| e),
    };
    if let Ok(config) = &primary {
        if !vfs.exists(&backup)
            && let Err(e) = write_atomic(vfs, &backup, &encode(config))
        {
            warn!(file = %backup.display(), error = %e, "could not write the second copy of a config");
        }
        return primary.map_err(|e| (e, false));
    }
    let config = match read_copy(vfs, &backup) {
        Ok(c) => c,
        Err((e, true)) => return Err((e, true)),
        Err(_) => {
            let e = match primary {
                Err(StoreError::Corrupt(why)) => StoreError::Corrupt(format!(
                    "{why}; its copy {} is damaged or missing too",
                    backup.display()
                )),
                other => other.err().unwrap_or(StoreError::NotFound),
            };
            return Err((e, false));
        }
    };
    let why = primary.err().map(|e| e.to_string()).unwrap_or_default();
    warn!(file = %path.display(), error = %why,
        "configuration file damaged; restored from its copy {}", backup.display());
    if let Err(e) = write_atomic(vfs, &path, &encode(&config)) {
        warn!(file = %path.display(), error = %e, "could not rewrite a damaged config from its copy");
    }
    Ok(config)
}

/// Creates the store root `root` (an account's JetStream directory) at start and makes its
/// entry and those of every directory above it durable, once, so that later creates inside it
/// need only sync the directories they add (see [`create_dir_durable`]).
///
/// # Errors
/// I/O errors creating `root` or syncing a directory inside `store_dir` (`root`'s part of the
/// path that is rill's); syncs above it are best effort.
pub fn create_root(vfs: &dyn Vfs, store_dir: &Path, root: &Path) -> Result<(), StoreError> {
    vfs.create_dir_all(root)?;
    for a in root.ancestors() {
        if let Some(parent) = a.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Directories above the store directory may not be ours to sync: best effort there.
            match vfs.sync_dir(parent) {
                Err(e) if a.starts_with(store_dir) => return Err(e.into()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Creates `dir` and any missing parents, and makes each new directory's entry durable by
/// syncing the directory that holds it. Directories that existed already are not synced
/// again: inside the store they were made durable when created (here, or by [`create_root`]
/// at start), and syncing every ancestor up to `/` cost a stream create eight fsyncs.
fn create_dir_durable(vfs: &dyn Vfs, dir: &Path) -> Result<(), StoreError> {
    let new: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !vfs.exists(a))
        .collect();
    vfs.create_dir_all(dir)?;
    for a in new {
        if let Some(parent) = a.parent().filter(|p| !p.as_os_str().is_empty()) {
            vfs.sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Renames `path` (when it exists) to `<path>.damaged`, durably.
fn set_aside_damaged(vfs: &dyn Vfs, path: &Path) -> Result<(), StoreError> {
    if !vfs.exists(path) {
        return Ok(());
    }
    let mut to = path.as_os_str().to_owned();
    to.push(".damaged");
    vfs.rename(path, Path::new(&to))?;
    Ok(vfs.sync_dir(path.parent().unwrap_or(Path::new(".")))?)
}

fn create_entry(
    vfs: &dyn Vfs,
    dir: &Path,
    config: &[u8],
    subdirs: &[&str],
    set_aside: &[&str],
) -> Result<(), StoreError> {
    if vfs.exists(&dir.join(META_NAME)) || vfs.exists(&dir.join(META_BACKUP)) {
        match read_checked(vfs, dir) {
            Ok(_) => return Err(StoreError::AlreadyExists(dir.display().to_string())),
            Err((e, true)) => return Err(e),
            Err((e, false)) => {
                for name in set_aside {
                    set_aside_damaged(vfs, &dir.join(name))?;
                }
                warn!(dir = %dir.display(), error = %e, kept = ?set_aside,
                    "created again over a configuration that could not be read: the data stored \
                     there is kept and now belongs to the new configuration");
            }
        }
    }
    create_dir_durable(vfs, dir)?;
    for sub in subdirs {
        vfs.create_dir_all(&dir.join(sub))?;
    }
    if !subdirs.is_empty() {
        // Their entries live in `dir`: one sync makes them all durable.
        vfs.sync_dir(dir)?;
    }
    write_config(vfs, dir, config)
}

/// Creates a stream's directories and durable config. Returns the stream directory.
///
/// # Errors
/// `InvalidName`, `AlreadyExists`, I/O errors.
pub fn create_stream(
    vfs: &dyn Vfs,
    root: &Path,
    name: &str,
    config: &[u8],
) -> Result<PathBuf, StoreError> {
    validate_name(name)?;
    let dir = stream_dir(root, name);
    create_entry(vfs, &dir, config, &["msgs", "consumers"], &[])?;
    Ok(dir)
}

/// Replaces a stream's config (stream update).
///
/// # Errors
/// `InvalidName`, I/O errors.
pub fn update_stream_config(
    vfs: &dyn Vfs,
    root: &Path,
    name: &str,
    config: &[u8],
) -> Result<(), StoreError> {
    validate_name(name)?;
    write_config(vfs, &stream_dir(root, name), config)
}

fn list_entries(vfs: &dyn Vfs, dir: &Path) -> Result<Vec<Listed>, StoreError> {
    let names = match vfs.list_dir(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for name in names {
        if name.starts_with(TRASH_PREFIX) {
            // Our own interrupted delete: finish it.
            vfs.remove_dir_all(&dir.join(&name))?;
            vfs.sync_dir(dir)?;
            continue;
        }
        if validate_name(&name).is_err() {
            warn!(dir = %dir.display(), %name, "ignoring unexpected entry");
            continue;
        }
        let cfg = read_config(vfs, &dir.join(&name));
        if let Err(e) = &cfg {
            warn!(dir = %dir.display(), %name, error = %e, "stored configuration unreadable");
        }
        out.push((name, cfg));
    }
    Ok(out)
}

/// Every stored stream with its config bytes (or the error that names the damage).
///
/// # Errors
/// I/O errors listing the directory.
pub fn list_streams(vfs: &dyn Vfs, root: &Path) -> Result<Vec<Listed>, StoreError> {
    list_entries(vfs, &streams_dir(root))
}

/// A stream or consumer directory renamed into the trash: gone for every reader and for
/// a restart (which finishes the removal), its files not yet removed.
#[derive(Debug)]
#[must_use = "remove the trash, or leave it for the next start"]
pub struct Trash {
    parent: PathBuf,
    path: PathBuf,
}

impl Trash {
    /// Removes the trashed directory and its files.
    ///
    /// # Errors
    /// I/O errors (the next start retries).
    pub fn remove(self, vfs: &dyn Vfs) -> Result<(), StoreError> {
        vfs.remove_dir_all(&self.path)?;
        vfs.sync_dir(&self.parent)?;
        Ok(())
    }
}

/// A trash name that never contains the (up to 255 bytes long) entry name, so it is
/// always a valid file name: `.trash-<ns>-<n>`.
fn trash_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{TRASH_PREFIX}{:x}-{n}", super::generic::now_ns())
}

/// The commit point of a delete: renames `parent/name` into the trash, durably.
fn trash_entry(vfs: &dyn Vfs, parent: &Path, name: &str) -> Result<Trash, StoreError> {
    validate_name(name)?;
    let dir = parent.join(name);
    if !vfs.exists(&dir) {
        return Err(StoreError::NotFound);
    }
    let trash = parent.join(trash_name());
    vfs.rename(&dir, &trash)?;
    vfs.sync_dir(parent)?;
    Ok(Trash {
        parent: parent.to_path_buf(),
        path: trash,
    })
}

fn delete_entry(vfs: &dyn Vfs, parent: &Path, name: &str) -> Result<(), StoreError> {
    trash_entry(vfs, parent, name)?.remove(vfs)
}

/// Moves a stream's directory into the trash: after `Ok` the stream is deleted for
/// every restart, even if removing the files ([`Trash::remove`]) fails.
///
/// # Errors
/// `NotFound`, `InvalidName`, I/O errors (then nothing changed).
pub fn trash_stream(vfs: &dyn Vfs, root: &Path, name: &str) -> Result<Trash, StoreError> {
    trash_entry(vfs, &streams_dir(root), name)
}

/// Moves a stream's messages (its `msgs` directory) into the trash of the streams
/// directory, which a restart empties: the stream's config and consumers stay, and its
/// next open finds an empty store (a damaged replica, refilled by its group).
///
/// # Errors
/// `NotFound`, `InvalidName`, I/O errors (then nothing changed).
pub fn trash_messages(vfs: &dyn Vfs, root: &Path, name: &str) -> Result<Trash, StoreError> {
    validate_name(name)?;
    let dir = stream_msgs_dir(root, name);
    if !vfs.exists(&dir) {
        return Err(StoreError::NotFound);
    }
    let parent = streams_dir(root);
    let trash = parent.join(trash_name());
    vfs.rename(&dir, &trash)?;
    vfs.sync_dir(&stream_dir(root, name))?;
    vfs.sync_dir(&parent)?;
    Ok(Trash {
        parent,
        path: trash,
    })
}

/// Moves a consumer's directory into the trash (see [`trash_stream`]).
///
/// # Errors
/// `NotFound`, `InvalidName`, I/O errors (then nothing changed).
pub fn trash_consumer(
    vfs: &dyn Vfs,
    root: &Path,
    stream: &str,
    name: &str,
) -> Result<Trash, StoreError> {
    validate_name(stream)?;
    trash_entry(vfs, &stream_dir(root, stream).join("consumers"), name)
}

/// Deletes a stream with all its messages and consumers.
///
/// # Errors
/// `NotFound`, `InvalidName`, I/O errors.
pub fn delete_stream(vfs: &dyn Vfs, root: &Path, name: &str) -> Result<(), StoreError> {
    delete_entry(vfs, &streams_dir(root), name)
}

/// Creates a consumer's directory and durable config. Returns the consumer directory.
///
/// # Errors
/// `InvalidName`, `AlreadyExists`, I/O errors.
pub fn create_consumer(
    vfs: &dyn Vfs,
    root: &Path,
    stream: &str,
    name: &str,
    config: &[u8],
) -> Result<PathBuf, StoreError> {
    validate_name(stream)?;
    validate_name(name)?;
    let dir = consumer_dir(root, stream, name);
    create_entry(vfs, &dir, config, &[], &[LOG_NAME])?;
    Ok(dir)
}

/// Replaces a consumer's config.
///
/// # Errors
/// `InvalidName`, I/O errors.
pub fn update_consumer_config(
    vfs: &dyn Vfs,
    root: &Path,
    stream: &str,
    name: &str,
    config: &[u8],
) -> Result<(), StoreError> {
    validate_name(name)?;
    write_config(vfs, &consumer_dir(root, stream, name), config)
}

/// Every stored consumer of a stream with its config bytes (or the error).
///
/// # Errors
/// I/O errors listing the directory.
pub fn list_consumers(vfs: &dyn Vfs, root: &Path, stream: &str) -> Result<Vec<Listed>, StoreError> {
    validate_name(stream)?;
    list_entries(vfs, &stream_dir(root, stream).join("consumers"))
}

/// Deletes a consumer and its state.
///
/// # Errors
/// `NotFound`, `InvalidName`, I/O errors.
pub fn delete_consumer(
    vfs: &dyn Vfs,
    root: &Path,
    stream: &str,
    name: &str,
) -> Result<(), StoreError> {
    validate_name(stream)?;
    delete_entry(vfs, &stream_dir(root, stream).join("consumers"), name)
}
