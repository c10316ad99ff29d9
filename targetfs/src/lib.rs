//! A target's root filesystem, as dscan reads it: the engine's only view
//! of the system, served locally ([`RootDir`]) or from inside the target's
//! pod by the file agent ([`wire`]).
//!
//! Every path is resolved as the target would resolve it: absolute symlinks
//! are re-rooted at the target root and `..` stops at it (Linux `openat2`
//! with `RESOLVE_IN_ROOT`), so nothing outside the root is ever reached.
//! Reads never block (FIFOs and devices are refused) and are size-capped.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

pub mod wire;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (only from [`TargetFs::lstat`]).
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A FIFO.
    Pipe,
    /// A socket.
    Socket,
    /// Anything else.
    Unknown,
}

impl FileKind {
    /// InSpec's name for the type (`file`, `directory`, `symlink`…).
    pub fn inspec_name(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
            FileKind::CharDevice => "character_device",
            FileKind::BlockDevice => "block_device",
            FileKind::Pipe => "pipe",
            FileKind::Socket => "socket",
            FileKind::Unknown => "unknown",
        }
    }
}

/// The metadata the resources need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The file type.
    pub kind: FileKind,
    /// Permission bits with setuid/setgid/sticky (`st_mode & 07777`).
    pub mode: u32,
    /// Owner UID.
    pub uid: u32,
    /// Group GID.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The path does not exist or cannot be reached.
    #[error("{path}: {source}")]
    Io {
        /// The path as asked.
        path: String,
        /// The system error.
        source: io::Error,
    },
    /// The file is larger than the cap.
    #[error("{path} is larger than the {limit}-byte read limit")]
    TooLarge {
        /// The path as asked.
        path: String,
        /// The cap.
        limit: u64,
    },
    /// Not a regular file (a FIFO or device would block or never end).
    #[error("{path} is a {kind}, not a regular file; it is not read")]
    NotRegular {
        /// The path as asked.
        path: String,
        /// What it is.
        kind: &'static str,
    },
}

impl FsError {
    /// Whether the path simply does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// A target's root filesystem, as the engine reads it.
pub trait TargetFs {
    /// Metadata of `path`, following symlinks (within the root).
    fn stat(&self, path: &str) -> io::Result<Stat>;
    /// Metadata of `path` itself (a final symlink is not followed).
    fn lstat(&self, path: &str) -> io::Result<Stat>;
    /// The content of a regular file, at most `limit` bytes.
    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, FsError>;
    /// The names in a directory (without `.` and `..`), sorted.
    fn read_dir(&self, path: &str) -> io::Result<Vec<String>>;
    /// The target of a symlink, as stored.
    fn read_link(&self, path: &str) -> io::Result<String>;
    /// A hint: these paths will be asked about. A remote filesystem fetches
    /// them ahead in few round trips; a local one ignores it.
    fn prefetch(&self, _paths: &[String]) {}
    /// Whether [`TargetFs::prefetch`] does anything (so a caller spends
    /// nothing naming paths for a local root).
    fn fetches_ahead(&self) -> bool {
        false
    }
}

/// A directory on this machine taken as the target's root.
#[derive(Debug)]
pub struct RootDir {
    root: OwnedFd,
}

impl RootDir {
    /// Opens `dir` as a target root.
    pub fn open(dir: &Path) -> io::Result<RootDir> {
        let root = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(RootDir { root })
    }

    /// The names in a directory as stored (bytes, sorted), without `.` and
    /// `..`; `None` when there are more than `max`.
    pub fn read_dir_raw(&self, path: &str, max: u64) -> io::Result<Option<Vec<Vec<u8>>>> {
        let fd = self.resolve(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                if names.len() as u64 >= max {
                    return Ok(None);
                }
                names.push(name.to_vec());
            }
        }
        names.sort();
        Ok(Some(names))
    }

    /// A symlink's target as stored (bytes).
    pub fn read_link_raw(&self, path: &str) -> io::Result<Vec<u8>> {
        let fd = self.resolve(path, OFlags::PATH | OFlags::NOFOLLOW)?;
        Ok(rustix::fs::readlinkat(&fd, "", Vec::new())?.into_bytes())
    }

    fn resolve(&self, path: &str, flags: OFlags) -> io::Result<OwnedFd> {
        let rel = if path.is_empty() { "." } else { path };
        loop {
            match rustix::fs::openat2(
                self.root.as_fd(),
                rel,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                // The kernel asks to retry when a rename raced the lookup.
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

fn stat_of(fd: &OwnedFd) -> io::Result<Stat> {
    let st = rustix::fs::fstat(fd)?;
    let fmt = st.st_mode & 0o170000;
    let kind = match fmt {
        0o100000 => FileKind::File,
        0o040000 => FileKind::Directory,
        0o120000 => FileKind::Symlink,
        0o020000 => FileKind::CharDevice,
        0o060000 => FileKind::BlockDevice,
        0o010000 => FileKind::Pipe,
        0o140000 => FileKind::Socket,
        _ => FileKind::Unknown,
    };
    Ok(Stat {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        mtime: st.st_mtime,
    })
}

impl TargetFs for RootDir {
    fn stat(&self, path: &str) -> io::Result<Stat> {
        stat_of(&self.resolve(path, OFlags::PATH)?)
    }

    fn lstat(&self, path: &str) -> io::Result<Stat> {
        stat_of(&self.resolve(path, OFlags::PATH | OFlags::NOFOLLOW)?)
    }

    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        let io_err = |source| FsError::Io {
            path: path.to_string(),
            source,
        };
        // O_PATH first: opening a FIFO for reading would block, a device
        // could do anything; only regular files are opened for reading.
        let probe = self.resolve(path, OFlags::PATH).map_err(io_err)?;
        let st = stat_of(&probe).map_err(io_err)?;
        if st.kind != FileKind::File {
            return Err(FsError::NotRegular {
                path: path.to_string(),
                kind: st.kind.inspec_name(),
            });
        }
        // A file that says it is larger is refused before a byte is read
        // (a 2 GB sparse file costs nothing); files that report size 0 and
        // have content (procfs) are still capped by the loop below.
        if st.size > limit {
            return Err(FsError::TooLarge {
                path: path.to_string(),
                limit,
            });
        }
        let fd = self
            .resolve(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY)
            .map_err(io_err)?;
        // The file may have been swapped between the two opens.
        if stat_of(&fd).map_err(io_err)?.kind != FileKind::File {
            return Err(FsError::NotRegular {
                path: path.to_string(),
                kind: "special file",
            });
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match rustix::io::read(&fd, &mut buf) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(io_err(e.into())),
            };
            if n == 0 {
                return Ok(out);
            }
            if out.len() as u64 + n as u64 > limit {
                return Err(FsError::TooLarge {
                    path: path.to_string(),
                    limit,
                });
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let names = self
            .read_dir_raw(path, u64::MAX)?
            .unwrap_or_default()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        Ok(names)
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        Ok(String::from_utf8_lossy(&self.read_link_raw(path)?).into_owned())
    }
}

/// Normalises an absolute target path lexically (`//`, `.`, trailing `/`).
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Resolves every symlink in `path` as the target would (`readlink -f`),
/// within the root; `None` when a component before the last is missing or
/// links loop.
pub fn canonicalize(fs: &dyn TargetFs, path: &str) -> Option<String> {
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_string).collect();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let here = format!("/{}", {
            let mut v = done.clone();
            v.push(part.clone());
            v.join("/")
        });
        let st = match fs.lstat(&here) {
            Ok(st) => st,
            // `readlink -f`: only the last component may be missing.
            Err(_) if pending.iter().all(|p| p.is_empty() || p == ".") => {
                done.push(part);
                break;
            }
            Err(_) => return None,
        };
        if st.kind == FileKind::Symlink {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = fs.read_link(&here).ok()?;
            if target.starts_with('/') {
                done.clear();
            }
            pending.extend(target.split('/').rev().map(str::to_string));
        } else {
            done.push(part);
        }
    }
    Some(format!("/{}", done.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, RootDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let fs = RootDir::open(dir.path()).unwrap();
        (dir, fs)
    }

    #[test]
    fn links_resolve_inside_the_root_and_dotdot_stops_there() {
        let (dir, fs) = root();
        symlink("/etc/passwd", dir.path().join("abs")).unwrap();
        symlink("../../../../etc/passwd", dir.path().join("etc/up")).unwrap();
        // A link to a host file that does not exist in the root.
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), "host secret").unwrap();
        symlink(outside.path(), dir.path().join("escape")).unwrap();
        assert!(
            String::from_utf8(fs.read("/abs", 100).unwrap())
                .unwrap()
                .starts_with("root")
        );
        assert!(
            String::from_utf8(fs.read("/etc/up", 100).unwrap())
                .unwrap()
                .starts_with("root")
        );
        assert!(fs.read("/escape", 100).unwrap_err().is_not_found());
        // `..` stops at the root: this is the root's own /etc/passwd.
        let up = fs.read("/../../../../etc/passwd", 100).unwrap();
        assert!(String::from_utf8(up).unwrap().starts_with("root"));
        assert_eq!(fs.lstat("/abs").unwrap().kind, FileKind::Symlink);
        assert_eq!(fs.stat("/abs").unwrap().kind, FileKind::File);
        assert_eq!(canonicalize(&fs, "/etc/up").as_deref(), Some("/etc/passwd"));
    }

    #[test]
    fn loops_fifos_and_large_files_are_refused_without_blocking() {
        let (dir, fs) = root();
        symlink("/b", dir.path().join("a")).unwrap();
        symlink("/a", dir.path().join("b")).unwrap();
        assert!(fs.stat("/a").is_err());
        assert_eq!(canonicalize(&fs, "/a"), None);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(matches!(
            fs.read("/fifo", 100),
            Err(FsError::NotRegular { kind: "pipe", .. })
        ));
        std::fs::write(dir.path().join("big"), vec![b'x'; 5000]).unwrap();
        assert!(matches!(
            fs.read("/big", 4096),
            Err(FsError::TooLarge { .. })
        ));
        assert_eq!(fs.read("/big", 5000).unwrap().len(), 5000);
        assert_eq!(
            fs.read_dir("/").unwrap(),
            vec!["a", "b", "big", "etc", "fifo"]
        );
    }
}
