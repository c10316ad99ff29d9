//! Packs a CINC/InSpec profile (a directory, or a `.tar`/`.tar.gz` archive)
//! into a clean tar stream for upload into the debug container.
//!
//! Everything is checked before a byte leaves this machine: no absolute
//! paths, no `..`, no links that point outside the profile, only files,
//! directories and links, and a size cap. Archives are re-packed from what
//! was checked, so the stream sent is exactly the validated tree.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Why a profile cannot be uploaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Reading failed.
    #[error("cannot read the profile at {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An entry would land outside the profile.
    #[error(
        "the profile entry {entry:?} is unsafe ({why}); fix the profile: uploads never leave the profile directory"
    )]
    Unsafe {
        /// The entry.
        entry: String,
        /// What is wrong.
        why: String,
    },
    /// Something other than a file, directory or link.
    #[error(
        "the profile entry {entry:?} is a {kind}; profiles may hold only files, directories and links"
    )]
    Unsupported {
        /// The entry.
        entry: String,
        /// Its kind.
        kind: String,
    },
    /// Over the cap.
    #[error("the profile is larger than {cap} bytes unpacked; remove what the scan does not need")]
    TooLarge {
        /// The cap.
        cap: u64,
    },
    /// Not a profile.
    #[error(
        "{path} is not a CINC/InSpec profile: no inspec.yml at its top (or in its single top-level directory)"
    )]
    NotAProfile {
        /// The path.
        path: String,
    },
    /// Not an archive this packer reads.
    #[error(
        "{path} is neither a directory nor a .tar/.tar.gz archive{hint}; unpack it and pass the directory"
    )]
    UnknownFormat {
        /// The path.
        path: String,
        /// What it looks like.
        hint: String,
    },
}

/// A packed profile.
#[derive(Debug)]
pub struct Packed {
    /// The tar stream.
    pub tar: Vec<u8>,
    /// Regular files in it.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
}

/// Largest number of entries accepted.
const MAX_ENTRIES: usize = 100_000;

/// A relative path with only normal components, or why not.
fn clean(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("it contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => return Err("it is absolute".into()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("it is empty".into());
    }
    Ok(out)
}

/// Whether the symlink at `link` (relative to the profile) stays inside the
/// profile when resolved the way the kernel would resolve it: component by
/// component, expanding every symlink met on the way (`links`: each link in
/// the profile and its target), `..` stepping out of what the components
/// resolved to. A lexical check per link is not enough: with `up -> ..`
/// inside `sub/`, the link `esc -> sub/up/..` looks inside but resolves to
/// the profile's parent. More than 40 expansions (a loop) counts as leaving.
fn link_stays_inside(links: &std::collections::HashMap<PathBuf, PathBuf>, link: &Path) -> bool {
    use std::collections::VecDeque;
    let Some(target) = links.get(link) else {
        return true;
    };
    let mut cur: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let mut todo: VecDeque<Component<'_>> = target.components().collect();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        match c {
            Component::Normal(n) => {
                cur.push(n);
                let here: PathBuf = cur.iter().collect();
                if let Some(next) = links.get(&here) {
                    hops += 1;
                    if hops > 40 {
                        return false;
                    }
                    cur.pop();
                    for c in next.components().rev() {
                        todo.push_front(c);
                    }
                }
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if cur.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

struct Packer {
    builder: tar::Builder<Vec<u8>>,
    files: usize,
    bytes: u64,
    entries: usize,
    cap: u64,
    /// Every symlink and its target, checked together once all are known.
    symlinks: std::collections::HashMap<PathBuf, PathBuf>,
}

impl Packer {
    fn new(cap: u64) -> Self {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        Packer {
            builder,
            files: 0,
            bytes: 0,
            entries: 0,
            cap,
            symlinks: std::collections::HashMap::new(),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h
    }

    fn count(&mut self, size: u64) -> Result<(), ProfileError> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > self.cap || self.entries > MAX_ENTRIES {
            return Err(ProfileError::TooLarge { cap: self.cap });
        }
        Ok(())
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError + '_ {
        move |source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    fn dir(&mut self, rel: &Path) -> Result<(), ProfileError> {
        self.count(0)?;
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.builder
            .append_data(&mut h, rel, std::io::empty())
            .map_err(Self::io(rel))
    }

    fn file(&mut self, rel: &Path, mode: u32, data: &[u8]) -> Result<(), ProfileError> {
        self.count(data.len() as u64)?;
        self.files += 1;
        // Readable by the scanner whatever user it runs as; executable bits kept.
        let mode = (mode & 0o755) | 0o644;
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.builder
            .append_data(&mut h, rel, data)
            .map_err(Self::io(rel))
    }

    fn link(&mut self, rel: &Path, target: &Path, hard: bool) -> Result<(), ProfileError> {
        // Symlinks are resolved together in `finish`, once every link is known.
        let ok = if hard {
            clean(target).is_ok()
        } else {
            !target.is_absolute()
        };
        if !hard {
            self.symlinks
                .insert(rel.to_path_buf(), target.to_path_buf());
        }
        if !ok {
            return Err(ProfileError::Unsafe {
                entry: rel.display().to_string(),
                why: format!("a link to {} leaves the profile", target.display()),
            });
        }
        self.count(0)?;
        let kind = if hard {
            tar::EntryType::Link
        } else {
            tar::EntryType::Symlink
        };
        let mut h = Self::header(kind, 0o777, 0);
        self.builder
            .append_link(&mut h, rel, target)
            .map_err(Self::io(rel))
    }

    fn finish(self) -> Result<Packed, ProfileError> {
        let mut links: Vec<&PathBuf> = self.symlinks.keys().collect();
        links.sort();
        for link in links {
            if !link_stays_inside(&self.symlinks, link) {
                return Err(ProfileError::Unsafe {
                    entry: link.display().to_string(),
                    why: format!(
                        "a link to {} leaves the profile (resolved through the profile's links)",
                        self.symlinks[link].display()
                    ),
                });
            }
        }
        let tar = self
            .builder
            .into_inner()
            .map_err(Self::io(Path::new("<tar>")))?;
        Ok(Packed {
            tar,
            files: self.files,
            bytes: self.bytes,
        })
    }
}

/// Packs the profile at `path`, at most `cap` bytes of file content.
pub fn pack(path: &Path, cap: u64) -> Result<Packed, ProfileError> {
    let meta = std::fs::metadata(path).map_err(Packer::io(path))?;
    if meta.is_dir() {
        if !path.join("inspec.yml").is_file() {
            return Err(ProfileError::NotAProfile {
                path: path.display().to_string(),
            });
        }
        let mut packer = Packer::new(cap);
        pack_dir(&mut packer, path, Path::new(""))?;
        return packer.finish();
    }
    // An archive's headers and padding add to its content, but not twice over:
    // anything larger (packed or unpacked) is over the cap.
    let archive_cap = cap.saturating_mul(2).saturating_add(1 << 20);
    if meta.len() > archive_cap {
        return Err(ProfileError::TooLarge { cap });
    }
    let bytes = std::fs::read(path).map_err(Packer::io(path))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        // Bounded: a small archive must not unpack into memory without limit.
        flate2::read::GzDecoder::new(bytes.as_slice())
            .take(archive_cap + 1)
            .read_to_end(&mut plain)
            .map_err(Packer::io(path))?;
        if plain.len() as u64 > archive_cap {
            return Err(ProfileError::TooLarge { cap });
        }
        return pack_tar(&plain, path, cap);
    }
    if bytes.get(257..262) == Some(b"ustar") {
        return pack_tar(&bytes, path, cap);
    }
    let hint = if bytes.starts_with(b"PK\x03\x04") {
        " (it is a zip archive, which is not supported)".to_string()
    } else {
        String::new()
    };
    Err(ProfileError::UnknownFormat {
        path: path.display().to_string(),
        hint,
    })
}

fn pack_dir(packer: &mut Packer, root: &Path, rel: &Path) -> Result<(), ProfileError> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .map_err(Packer::io(&dir))?
        .collect::<Result<_, _>>()
        .map_err(Packer::io(&dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = rel.join(entry.file_name());
        let path = root.join(&rel);
        let meta = std::fs::symlink_metadata(&path).map_err(Packer::io(&path))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            packer.dir(&rel)?;
            pack_dir(packer, root, &rel)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(Packer::io(&path))?;
            packer.link(&rel, &target, false)?;
        } else if kind.is_file() {
            if meta.len() > packer.cap {
                return Err(ProfileError::TooLarge { cap: packer.cap });
            }
            let data = std::fs::read(&path).map_err(Packer::io(&path))?;
            use std::os::unix::fs::PermissionsExt;
            packer.file(&rel, meta.permissions().mode(), &data)?;
        } else {
            return Err(ProfileError::Unsupported {
                entry: rel.display().to_string(),
                kind: "special file".into(),
            });
        }
    }
    Ok(())
}

fn pack_tar(bytes: &[u8], path: &Path, cap: u64) -> Result<Packed, ProfileError> {
    let io = Packer::io(path);
    let mut archive = tar::Archive::new(bytes);
    let mut items = Vec::new();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(Packer::io(path))?;
        let raw = entry.path().map_err(Packer::io(path))?.into_owned();
        let kind = entry.header().entry_type();
        let name = raw.display().to_string();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let rel = match clean(&raw) {
            Ok(r) => r,
            // A bare "./" entry is the archive's own top.
            Err(_) if raw.components().all(|c| c == Component::CurDir) => continue,
            Err(why) => return Err(ProfileError::Unsafe { entry: name, why }),
        };
        let item = match kind {
            tar::EntryType::Directory => Item::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if entry.size() > cap {
                    return Err(ProfileError::TooLarge { cap });
                }
                let mut data = Vec::new();
                entry.read_to_end(&mut data).map_err(Packer::io(path))?;
                Item::File(entry.header().mode().unwrap_or(0o644), data)
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(Packer::io(path))?
                    .ok_or_else(|| ProfileError::Unsafe {
                        entry: name.clone(),
                        why: "a link without a target".into(),
                    })?
                    .into_owned();
                Item::Link(target, kind == tar::EntryType::Link)
            }
            other => {
                return Err(ProfileError::Unsupported {
                    entry: name,
                    kind: format!("{other:?}"),
                });
            }
        };
        items.push((rel, item));
    }
    // The profile's top: the archive's root, or its single top-level directory.
    let has = |p: &Path| items.iter().any(|(r, _)| r == p);
    let prefix = if has(Path::new("inspec.yml")) {
        PathBuf::new()
    } else {
        let mut tops: Vec<_> = items
            .iter()
            .filter_map(|(r, _)| r.components().next())
            .map(|c| PathBuf::from(c.as_os_str()))
            .collect();
        tops.sort();
        tops.dedup();
        match tops.as_slice() {
            [top] if has(&top.join("inspec.yml")) => top.clone(),
            _ => {
                return Err(ProfileError::NotAProfile {
                    path: path.display().to_string(),
                });
            }
        }
    };
    let mut packer = Packer::new(cap);
    for (rel, item) in items {
        let Ok(rel) = rel.strip_prefix(&prefix).map(Path::to_path_buf) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        match item {
            Item::Dir => packer.dir(&rel)?,
            Item::File(mode, data) => packer.file(&rel, mode, &data)?,
            Item::Link(target, hard) => {
                let target = if hard {
                    match target.strip_prefix(&prefix) {
                        Ok(t) => t.to_path_buf(),
                        Err(_) => {
                            return Err(ProfileError::Unsafe {
                                entry: rel.display().to_string(),
                                why: format!(
                                    "a hard link to {} outside the profile",
                                    target.display()
                                ),
                            });
                        }
                    }
                } else {
                    target
                };
                packer.link(&rel, &target, hard)?;
            }
        }
    }
    packer.finish()
}

enum Item {
    Dir,
    File(u32, Vec<u8>),
    Link(PathBuf, bool),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw tar with one entry, written byte by byte so that names the tar
    /// crate's builder would refuse (`..`, absolute) can be tested.
    fn raw_tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, link, data) in entries {
            let mut h = [0u8; 512];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[100..107].copy_from_slice(b"0000644");
            h[108..115].copy_from_slice(b"0000000");
            h[116..123].copy_from_slice(b"0000000");
            let size = format!("{:011o}", data.len());
            h[124..135].copy_from_slice(size.as_bytes());
            h[136..147].copy_from_slice(b"00000000000");
            h[156] = *kind;
            h[157..157 + link.len()].copy_from_slice(link.as_bytes());
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
            h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
            out.extend_from_slice(&h);
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn write_tar(dir: &Path, entries: &[(&str, u8, &str, &[u8])]) -> PathBuf {
        let path = dir.join("profile.tar");
        std::fs::write(&path, raw_tar(entries)).unwrap();
        path
    }

    fn listing(packed: &Packed) -> Vec<String> {
        let mut a = tar::Archive::new(packed.tar.as_slice());
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn a_directory_profile_is_packed_with_its_internal_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p");
        std::fs::create_dir_all(p.join("controls")).unwrap();
        std::fs::write(p.join("inspec.yml"), "name: p\n").unwrap();
        std::fs::write(p.join("controls/a.rb"), "control 'a'\n").unwrap();
        std::os::unix::fs::symlink("controls/a.rb", p.join("alias.rb")).unwrap();
        let packed = pack(&p, 1 << 20).unwrap();
        assert_eq!(packed.files, 2);
        assert_eq!(
            listing(&packed),
            ["alias.rb", "controls", "controls/a.rb", "inspec.yml"]
        );
    }

    #[test]
    fn links_leaving_a_directory_profile_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p");
        std::fs::create_dir_all(p.join("files")).unwrap();
        std::fs::write(p.join("inspec.yml"), "name: p\n").unwrap();
        std::os::unix::fs::symlink("../../etc/shadow", p.join("files/x")).unwrap();
        let err = pack(&p, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("leaves the profile"), "{err}");
        std::fs::remove_file(p.join("files/x")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", p.join("files/x")).unwrap();
        assert!(matches!(
            pack(&p, 1 << 20).unwrap_err(),
            ProfileError::Unsafe { .. }
        ));
    }

    #[test]
    fn a_chain_of_links_that_resolves_outside_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p");
        std::fs::create_dir_all(p.join("sub")).unwrap();
        std::fs::write(p.join("inspec.yml"), "name: p\n").unwrap();
        // Each link looks inside on its own; together they reach the parent.
        std::os::unix::fs::symlink("..", p.join("sub/up")).unwrap();
        std::os::unix::fs::symlink("sub/up/..", p.join("esc")).unwrap();
        let err = pack(&p, 1 << 20).unwrap_err().to_string();
        assert!(
            err.contains("esc") && err.contains("leaves the profile"),
            "{err}"
        );
        // A loop is refused too.
        std::fs::remove_file(p.join("esc")).unwrap();
        std::os::unix::fs::symlink("b", p.join("a")).unwrap();
        std::os::unix::fs::symlink("a", p.join("b")).unwrap();
        assert!(pack(&p, 1 << 20).is_err());
        // Links that resolve inside are fine, through other links too.
        std::fs::remove_file(p.join("a")).unwrap();
        std::fs::remove_file(p.join("b")).unwrap();
        std::os::unix::fs::symlink("sub/up/inspec.yml", p.join("again.yml")).unwrap();
        assert!(pack(&p, 1 << 20).is_ok());
    }

    #[test]
    fn archives_with_traversal_absolute_paths_or_escaping_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let yml: (&str, u8, &str, &[u8]) = ("inspec.yml", b'0', "", b"name: p\n");
        for (bad, why) in [
            (("../evil", b'0', "", b"x" as &[u8]), "`..`"),
            (("controls/../../evil", b'0', "", b"x"), "`..`"),
            (("/etc/cron.d/evil", b'0', "", b"x"), "absolute"),
            (("up", b'2', "../../etc", b""), "leaves the profile"),
            (("abs", b'2', "/etc/shadow", b""), "leaves the profile"),
            (("hard", b'1', "/etc/shadow", b""), "leaves the profile"),
            (("hard2", b'1', "../x", b""), "leaves the profile"),
        ] {
            let path = write_tar(dir.path(), &[yml, bad]);
            let err = pack(&path, 1 << 20).unwrap_err().to_string();
            assert!(err.contains(why), "{}: {err}", bad.0);
        }
        let dev = write_tar(dir.path(), &[yml, ("null", b'3', "", b"")]);
        assert!(matches!(
            pack(&dev, 1 << 20).unwrap_err(),
            ProfileError::Unsupported { .. }
        ));
    }

    #[test]
    fn an_archive_with_one_top_directory_is_unwrapped_and_gzip_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let tar = raw_tar(&[
            ("prof/", b'5', "", b""),
            ("prof/inspec.yml", b'0', "", b"name: p\n"),
            ("prof/controls/a.rb", b'0', "", b"control 'a'\n"),
            ("prof/link", b'2', "controls/a.rb", b""),
        ]);
        let gz = dir.path().join("p.tar.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &tar).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let packed = pack(&gz, 1 << 20).unwrap();
        assert_eq!(listing(&packed), ["inspec.yml", "controls/a.rb", "link"]);
    }

    #[test]
    fn size_caps_and_non_profiles_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("inspec.yml"), vec![b'#'; 4096]).unwrap();
        assert!(matches!(
            pack(&p, 1000).unwrap_err(),
            ProfileError::TooLarge { cap: 1000 }
        ));
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(matches!(
            pack(&empty, 1000).unwrap_err(),
            ProfileError::NotAProfile { .. }
        ));
        // A small gzip that unpacks far beyond the cap stops at the cap.
        let bomb = dir.path().join("bomb.tar.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &vec![0u8; 4 << 20]).unwrap();
        let packed = enc.finish().unwrap();
        assert!(packed.len() < 64 * 1024);
        std::fs::write(&bomb, packed).unwrap();
        assert!(matches!(
            pack(&bomb, 1000).unwrap_err(),
            ProfileError::TooLarge { cap: 1000 }
        ));
        let zip = dir.path().join("p.zip");
        std::fs::write(&zip, b"PK\x03\x04rest").unwrap();
        assert!(pack(&zip, 1000).unwrap_err().to_string().contains("zip"));
    }
}
