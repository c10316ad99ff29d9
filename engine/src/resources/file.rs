//! The `file` and `directory` resources: metadata and content read
//! through the target filesystem, owners named by the target's own
//! `/etc/passwd` and `/etc/group`.

use indexmap::IndexMap;

use crate::fs::{FileKind, Stat, TargetFs, canonicalize, clean};
use crate::interp::{Interp, R, raise};
use crate::value::Value;

/// A file as the resource sees it.
#[derive(Debug)]
pub struct File {
    /// The path as the profile named it.
    pub given: String,
    /// The path the resource reports: for a symlink its resolved target
    /// (Train follows links; empty for a loop), else the given path.
    pub path: String,
    /// `stat -L`.
    pub stat: Option<Stat>,
    /// `lstat`.
    pub lstat: Option<Stat>,
    /// Why the path could not even be looked at: the reader lacks the
    /// permission (a non-root scan sees what the target's user sees). Such
    /// a file is neither there nor absent, so every check of it is skipped.
    pub denied: Option<String>,
}

impl File {
    /// Reads a path's metadata.
    pub fn open(fs: &dyn TargetFs, given: &str) -> File {
        let stat = fs.stat(given);
        let lstat = fs.lstat(given);
        let denied = [&stat, &lstat].iter().find_map(|r| match r {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Some(format!("{given}: {e}"))
            }
            _ => None,
        });
        let (stat, lstat) = (stat.ok(), lstat.ok());
        let path = match &lstat {
            // `readlink -f`: a dangling link names its target, a loop nothing.
            Some(l) if l.kind == FileKind::Symlink => canonicalize(fs, given).unwrap_or_default(),
            _ => given.to_string(),
        };
        File {
            given: given.to_string(),
            path,
            stat,
            lstat,
            denied,
        }
    }

    /// Calls a file resource method.
    pub fn call(&self, interp: &mut Interp<'_>, name: &str, args: &[Value], line: u32) -> R<Value> {
        let path = self.path.as_str();
        let stat = self.stat.as_ref();
        let lstat = self.lstat.as_ref();
        let names = |file: &str| user_names(interp, file);
        let kind_is = |k: FileKind| Value::Bool(stat.is_some_and(|s| s.kind == k));
        let mode = stat.map(|s| s.mode).unwrap_or(0);
        Ok(match name {
            "exist?" | "exists?" => Value::Bool(lstat.is_some() && stat.is_some()),
            "file?" => kind_is(FileKind::File),
            "directory?" => kind_is(FileKind::Directory),
            "symlink?" => Value::Bool(lstat.is_some_and(|s| s.kind == FileKind::Symlink)),
            "pipe?" => kind_is(FileKind::Pipe),
            "socket?" => kind_is(FileKind::Socket),
            "block_device?" => kind_is(FileKind::BlockDevice),
            "character_device?" => kind_is(FileKind::CharDevice),
            // Train's `type` follows links (`stat -L`); a broken link has none.
            "type" => match stat {
                Some(s) => Value::Sym(s.kind.inspec_name().into()),
                None => Value::Nil,
            },
            "mode" => stat
                .map(|s| Value::Int(s.mode as i64))
                .unwrap_or(Value::Nil),
            "uid" => stat.map(|s| Value::Int(s.uid as i64)).unwrap_or(Value::Nil),
            "gid" => stat.map(|s| Value::Int(s.gid as i64)).unwrap_or(Value::Nil),
            "size" => stat
                .map(|s| Value::Int(s.size as i64))
                .unwrap_or(Value::Nil),
            "mtime" => stat.map(|s| Value::Int(s.mtime)).unwrap_or(Value::Nil),
            "owner" => match stat {
                Some(s) => Value::str(
                    names("/etc/passwd")
                        .get(&s.uid)
                        .map(String::as_str)
                        .unwrap_or("UNKNOWN"),
                ),
                None => Value::Nil,
            },
            "group" => match stat {
                Some(s) => Value::str(
                    names("/etc/group")
                        .get(&s.gid)
                        .map(String::as_str)
                        .unwrap_or("UNKNOWN"),
                ),
                None => Value::Nil,
            },
            "owned_by?" => Value::Bool(stat.is_some_and(|s| {
                names("/etc/passwd").get(&s.uid).map(String::as_str)
                    == args.first().map(Value::to_s).as_deref()
            })),
            "grouped_into?" => Value::Bool(stat.is_some_and(|s| {
                names("/etc/group").get(&s.gid).map(String::as_str)
                    == args.first().map(Value::to_s).as_deref()
            })),
            // InSpec computes `(mode & bit) > 0`; a missing file's nil mode
            // makes that `false > 0`, a NoMethodError.
            "setuid?" | "suid" | "setgid?" | "sgid" | "sticky?" | "sticky" if stat.is_none() => {
                return raise(
                    "NoMethodError",
                    "undefined method `>' for false:FalseClass",
                    line,
                );
            }
            "setuid?" | "suid" => Value::Bool(mode & 0o4000 != 0),
            "setgid?" | "sgid" => Value::Bool(mode & 0o2000 != 0),
            "sticky?" | "sticky" => Value::Bool(mode & 0o1000 != 0),
            "mode?" => Value::Bool(
                args.first()
                    .is_some_and(|m| matches!(m, Value::Int(i) if *i as u32 == mode)),
            ),
            "selinux_label" => Value::Nil,
            "path" => Value::str(path),
            "basename" => Value::str(path.rsplit('/').next().unwrap_or("")),
            "link_path" => match lstat {
                // `readlink -f`: a loop prints nothing.
                Some(l) if l.kind == FileKind::Symlink => {
                    Value::str(&canonicalize(interp.fs, &self.given).unwrap_or_default())
                }
                _ => Value::Nil,
            },
            "shallow_link_path" => match lstat {
                Some(l) if l.kind == FileKind::Symlink => interp
                    .fs
                    .read_link(&self.given)
                    .map(|p| Value::str(&p))
                    .unwrap_or(Value::Nil),
                _ => Value::Nil,
            },
            "linked_to?" => Value::Bool(
                lstat.is_some_and(|l| l.kind == FileKind::Symlink)
                    && canonicalize(interp.fs, &self.given)
                        == args.first().map(|a| clean(&a.to_s())),
            ),
            "content" => match stat {
                Some(s) if s.kind == FileKind::File => match interp
                    .fs
                    .read(path, interp.limits.file_bytes)
                {
                    Ok(b) => Value::str(&String::from_utf8_lossy(&b)),
                    Err(e) => {
                        return raise("Inspec::Exceptions::ResourceFailed", format!("{e}"), line);
                    }
                },
                _ => Value::Nil,
            },
            "sha256sum" | "md5sum" => match stat {
                Some(s) if s.kind == FileKind::File => {
                    match interp.fs.read(path, interp.limits.file_bytes) {
                        Ok(b) if name == "sha256sum" => {
                            use sha2::Digest;
                            Value::str(&hex::encode(sha2::Sha256::digest(&b)))
                        }
                        Ok(b) => {
                            use md5::Digest;
                            Value::str(&hex::encode(md5::Md5::digest(&b)))
                        }
                        Err(e) => {
                            return raise(
                                "Inspec::Exceptions::ResourceFailed",
                                format!("{e}"),
                                line,
                            );
                        }
                    }
                }
                _ => Value::Nil,
            },
            "readable?" | "writable?" | "executable?" => {
                let kind = match name {
                    "readable?" => 0o444,
                    "writable?" => 0o222,
                    _ => 0o111,
                };
                Value::Bool(mode & kind != 0)
            }
            "more_permissive_than?" if stat.is_none() => Value::Nil,
            "more_permissive_than?" => {
                let max = args.first().map(Value::to_s).unwrap_or_default();
                let digits = max
                    .strip_prefix('0')
                    .filter(|d| d.len() == 3)
                    .unwrap_or(&max);
                let valid = digits.len() == 3 && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
                let (true, Ok(max)) = (valid, u32::from_str_radix(digits, 8)) else {
                    return raise(
                        "ArgumentError",
                        "The value of the `maximum permission target` should be a valid file mode in 4-digit octal format: for example, `0644` or `0777`",
                        line,
                    );
                };
                Value::Bool((0o777 ^ max) & mode != 0)
            }
            _ => {
                return raise(
                    "NoMethodError",
                    format!("undefined method `{name}' for File {path}"),
                    line,
                );
            }
        })
    }
}

/// Names by id from a passwd- or group-format file of the target, read
/// once per run (every owner and group lookup asks).
pub fn user_names(interp: &Interp<'_>, file: &str) -> std::rc::Rc<IndexMap<u32, String>> {
    if let Some(m) = interp.names.borrow().get(file) {
        return m.clone();
    }
    let m = std::rc::Rc::new(read_names(interp, file));
    interp
        .names
        .borrow_mut()
        .insert(file.to_string(), m.clone());
    m
}

fn read_names(interp: &Interp<'_>, file: &str) -> IndexMap<u32, String> {
    let mut m = IndexMap::new();
    if let Ok(b) = interp.fs.read(file, interp.limits.file_bytes) {
        for l in String::from_utf8_lossy(&b).lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() > 2
                && let Ok(id) = f[2].parse()
            {
                m.entry(id).or_insert_with(|| f[0].to_string());
            }
        }
    }
    m
}
