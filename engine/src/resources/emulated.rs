//! Resources InSpec answers by running programs in the target (`getent`,
//! `id`, `chage`, `ps`, `env`), answered here from the files those programs
//! read: the target's `/etc/passwd`, `/etc/group`, `/etc/shadow` and its
//! `/proc`. Each is a documented deviation (InSpec on a shell-less target
//! sees no users and no processes at all); where the files are missing the
//! resource is skipped, never answered with a guess.

use indexmap::IndexMap;

use crate::fs::TargetFs;
use crate::resources::table::{Row, Table};
use crate::value::{Key, Value};

/// One account, as InSpec's `user` resource reports it.
#[derive(Debug, Clone)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// Numeric user id.
    pub uid: Option<i64>,
    /// Primary group id.
    pub gid: Option<i64>,
    /// Primary group name.
    pub group: Option<String>,
    /// Every group the user is in (primary first).
    pub groups: Vec<String>,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// `/etc/shadow` ageing fields, when that file is readable.
    pub min_days: Option<i64>,
    /// See `min_days`.
    pub max_days: Option<i64>,
    /// See `min_days`.
    pub warn_days: Option<i64>,
}

/// One group.
#[derive(Debug, Clone)]
pub struct GroupEntry {
    /// Name.
    pub name: String,
    /// Numeric id.
    pub gid: Option<i64>,
    /// Members listed in `/etc/group`.
    pub members: Vec<String>,
}

/// The target's account database, read once per run.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// Users in `/etc/passwd` order.
    pub users: Vec<Account>,
    /// Groups in `/etc/group` order.
    pub groups: Vec<GroupEntry>,
}

fn lines(fs: &dyn TargetFs, path: &str, limit: u64) -> Option<Vec<Vec<String>>> {
    let b = fs.read(path, limit).ok()?;
    Some(
        String::from_utf8_lossy(&b)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| l.split(':').map(str::to_string).collect())
            .collect(),
    )
}

/// Reads the account database; `None` when the target has no `/etc/passwd`.
pub fn accounts(fs: &dyn TargetFs, limit: u64) -> Option<Accounts> {
    let passwd = lines(fs, "/etc/passwd", limit)?;
    let group = lines(fs, "/etc/group", limit).unwrap_or_default();
    let shadow = lines(fs, "/etc/shadow", limit).unwrap_or_default();
    let field = |f: &[String], i: usize| f.get(i).cloned().unwrap_or_default();
    let number = |f: &[String], i: usize| f.get(i).and_then(|s| s.trim().parse::<i64>().ok());
    let groups: Vec<GroupEntry> = group
        .iter()
        .map(|f| GroupEntry {
            name: field(f, 0),
            gid: number(f, 2),
            members: field(f, 3)
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
        })
        .collect();
    let users = passwd
        .iter()
        .map(|f| {
            let name = field(f, 0);
            let gid = number(f, 3);
            let primary = groups.iter().find(|g| g.gid.is_some() && g.gid == gid);
            let mut member_of: Vec<String> = primary.map(|g| g.name.clone()).into_iter().collect();
            for g in &groups {
                if g.members.contains(&name) && !member_of.contains(&g.name) {
                    member_of.push(g.name.clone());
                }
            }
            let ageing = shadow.iter().find(|s| s.first() == Some(&name));
            Account {
                uid: number(f, 2),
                gid,
                group: primary.map(|g| g.name.clone()),
                groups: member_of,
                home: field(f, 5),
                shell: field(f, 6),
                min_days: ageing.and_then(|s| number(s, 3)),
                max_days: ageing.and_then(|s| number(s, 4)),
                warn_days: ageing.and_then(|s| number(s, 5)),
                name,
            }
        })
        .collect();
    Some(Accounts { users, groups })
}

fn opt(v: Option<i64>) -> Value {
    v.map(Value::Int).unwrap_or(Value::Nil)
}

impl Account {
    /// The fields InSpec's `user` resource and `users` table expose.
    pub fn row(&self) -> Row {
        let mut r = Row::new();
        r.insert("username".into(), Value::str(&self.name));
        r.insert("uid".into(), opt(self.uid));
        r.insert("gid".into(), opt(self.gid));
        r.insert(
            "groupname".into(),
            self.group.as_deref().map(Value::str).unwrap_or(Value::Nil),
        );
        r.insert(
            "groups".into(),
            Value::array(self.groups.iter().map(|g| Value::str(g)).collect()),
        );
        r.insert("home".into(), Value::str(&self.home));
        r.insert("shell".into(), Value::str(&self.shell));
        r.insert("mindays".into(), opt(self.min_days));
        r.insert("maxdays".into(), opt(self.max_days));
        r.insert("warndays".into(), opt(self.warn_days));
        r
    }
}

impl GroupEntry {
    fn row(&self) -> Row {
        let mut r = Row::new();
        r.insert("name".into(), Value::str(&self.name));
        r.insert("gid".into(), opt(self.gid));
        r.insert(
            "members".into(),
            Value::array(self.members.iter().map(|m| Value::str(m)).collect()),
        );
        r
    }
}

fn columns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(m, f)| (m.to_string(), f.to_string()))
        .collect()
}

/// `users`: the account table.
pub fn users_table(a: &Accounts) -> Table {
    Table {
        rows: a.users.iter().map(Account::row).collect(),
        columns: columns(&[
            ("usernames", "username"),
            ("uids", "uid"),
            ("gids", "gid"),
            ("groupnames", "groupname"),
            ("groups", "groups"),
            ("homes", "home"),
            ("shells", "shell"),
            ("mindays", "mindays"),
            ("maxdays", "maxdays"),
            ("warndays", "warndays"),
        ]),
        custom: None,
        label: "Users".into(),
        criteria: String::new(),
        flavor: crate::resources::table::Flavor::Plain,
    }
}

/// `groups`: the group table.
pub fn groups_table(a: &Accounts) -> Table {
    Table {
        rows: a.groups.iter().map(GroupEntry::row).collect(),
        columns: columns(&[("names", "name"), ("gids", "gid"), ("members", "members")]),
        custom: None,
        label: "Groups".into(),
        criteria: String::new(),
        flavor: crate::resources::table::Flavor::Plain,
    }
}

/// A record for `user(name)`/`group(name)`: the row's fields and
/// `exists`; an absent one has only its `name_key` and `exists: false`.
fn record(row: Option<Row>, name_key: &str, name: &str) -> Value {
    let mut h: IndexMap<Key, Value> = IndexMap::new();
    h.insert(Key::Sym("exists".into()), Value::Bool(row.is_some()));
    match row {
        Some(r) => h.extend(r.into_iter().map(|(k, v)| (Key::Sym(k), v))),
        None => {
            h.insert(Key::Sym(name_key.into()), Value::str(name));
        }
    }
    Value::hash(h)
}

/// `user(name)`: the record its methods read (`exists` false when absent).
pub fn user_record(a: &Accounts, name: &str) -> Value {
    record(
        a.users.iter().find(|u| u.name == name).map(Account::row),
        "username",
        name,
    )
}

/// `group(name)`: the record its methods read.
pub fn group_record(a: &Accounts, name: &str) -> Value {
    record(
        a.groups
            .iter()
            .find(|g| g.name == name)
            .map(GroupEntry::row),
        "name",
        name,
    )
}

/// One process of the target's `/proc`.
#[derive(Debug, Clone)]
struct Process {
    pid: i64,
    uid: Option<i64>,
    state: String,
    command: String,
}

/// The target's processes (`/proc/<pid>`), `None` when its `/proc` is
/// not visible (a directory scan of an image has none).
fn processes(fs: &dyn TargetFs, limit: u64) -> Option<Vec<Process>> {
    let names = fs.read_dir("/proc").ok()?;
    let mut out = Vec::new();
    for n in names
        .iter()
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
    {
        let Ok(pid) = n.parse::<i64>() else { continue };
        // A process may exit between the listing and the read: skip it.
        let Ok(status) = fs.read(&format!("/proc/{n}/status"), limit) else {
            continue;
        };
        let status = String::from_utf8_lossy(&status);
        let get = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim().to_string())
        };
        let cmdline = fs
            .read(&format!("/proc/{n}/cmdline"), limit)
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .split('\0')
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let name = get("Name:").unwrap_or_default();
        out.push(Process {
            pid,
            uid: get("Uid:").and_then(|u| u.split_whitespace().next()?.parse().ok()),
            state: get("State:")
                .and_then(|s| s.split_whitespace().next().map(str::to_string))
                .unwrap_or_default(),
            // Kernel threads have no command line; `ps` shows their name in brackets.
            command: if cmdline.is_empty() {
                format!("[{name}]")
            } else {
                cmdline
            },
        });
    }
    out.sort_by_key(|p| p.pid);
    Some(out)
}

/// `processes(grep)`: the process table filtered by command, with user
/// names resolved in the target's own `/etc/passwd`.
pub fn processes_table(
    fs: &dyn TargetFs,
    limit: u64,
    grep: &dyn Fn(&str) -> bool,
    label: String,
) -> Option<Table> {
    let procs = processes(fs, limit)?;
    let names = accounts(fs, limit).unwrap_or_default();
    let rows = procs
        .into_iter()
        .filter(|p| grep(&p.command))
        .map(|p| {
            let user = names
                .users
                .iter()
                .find(|u| u.uid.is_some() && u.uid == p.uid)
                .map(|u| Value::str(&u.name))
                .or(p.uid.map(|u| Value::str(&u.to_string())))
                .unwrap_or(Value::Nil);
            let mut r = Row::new();
            r.insert("pid".into(), Value::Int(p.pid));
            r.insert("user".into(), user);
            r.insert("stat".into(), Value::str(&p.state));
            r.insert("command".into(), Value::str(&p.command));
            r
        })
        .collect();
    Some(Table {
        rows,
        columns: columns(&[
            ("pids", "pid"),
            ("users", "user"),
            ("states", "stat"),
            ("commands", "command"),
        ]),
        custom: None,
        label,
        criteria: String::new(),
        flavor: crate::resources::table::Flavor::Plain,
    })
}

/// The environment of the target's first process (`/proc/1/environ`, as
/// the target sees it). Never `/proc/self`: through the target's root
/// that names the reader, i.e. dscan itself.
pub fn environment(fs: &dyn TargetFs, limit: u64) -> Option<Vec<(String, String)>> {
    let b = fs.read("/proc/1/environ", limit).ok()?;
    Some(
        String::from_utf8_lossy(&b)
            .split('\0')
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect(),
    )
}

/// What `virtualization` reports: `(system, role)`. A hint from the
/// caller (who knows it is scanning a Kubernetes container) wins; then
/// the marks container runtimes leave in the filesystem.
pub fn virtualization(
    fs: &dyn TargetFs,
    limit: u64,
    hint: Option<&str>,
) -> Option<(String, String)> {
    if let Some(h) = hint {
        return Some((h.to_string(), "guest".into()));
    }
    if fs.lstat("/.dockerenv").is_ok() {
        return Some(("docker".into(), "guest".into()));
    }
    if fs.lstat("/run/.containerenv").is_ok() {
        return Some(("podman".into(), "guest".into()));
    }
    if let Ok(b) = fs.read("/proc/1/cgroup", limit) {
        let text = String::from_utf8_lossy(&b);
        for (mark, system) in [
            ("kubepods", "kubepods"),
            ("docker", "docker"),
            ("lxc", "lxc"),
        ] {
            if text.contains(mark) {
                return Some((system.into(), "guest".into()));
            }
        }
    }
    if let Some(env) = environment(fs, limit)
        && let Some((_, v)) = env.iter().find(|(k, _)| k == "container")
    {
        return Some((v.clone(), "guest".into()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(files: &[(&str, &str)]) -> (tempfile::TempDir, crate::fs::RootDir) {
        let dir = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let path = dir.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let fs = crate::fs::RootDir::open(dir.path()).unwrap();
        (dir, fs)
    }

    #[test]
    fn accounts_come_from_passwd_group_and_shadow() {
        let (_d, fs) = root(&[
            (
                "/etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n",
            ),
            (
                "/etc/group",
                "root:x:0:\nnonroot:x:65532:\nadm:x:4:nonroot,root\n",
            ),
            ("/etc/shadow", "root:*:19000:0:99999:7:::\n"),
        ]);
        let a = accounts(&fs, 1 << 20).unwrap();
        let root_user = &a.users[0];
        assert_eq!(root_user.uid, Some(0));
        assert_eq!(root_user.groups, vec!["root", "adm"]);
        assert_eq!(root_user.max_days, Some(99999));
        let nonroot = &a.users[1];
        assert_eq!(nonroot.group.as_deref(), Some("nonroot"));
        assert_eq!(nonroot.groups, vec!["nonroot", "adm"]);
        assert_eq!(nonroot.max_days, None, "no shadow entry: unknown, not 0");
        assert!(
            matches!(user_record(&a, "ghost"), Value::Hash(h) if matches!(h.borrow().get(&Key::Sym("exists".into())), Some(Value::Bool(false))))
        );
        assert_eq!(users_table(&a).rows.len(), 2);
        assert_eq!(groups_table(&a).rows.len(), 3);
        let (_e, empty) = root(&[]);
        assert!(
            accounts(&empty, 1 << 20).is_none(),
            "no passwd: skipped, not 'no users'"
        );
    }

    #[test]
    fn processes_environment_and_virtualization_read_the_target_proc() {
        let (_d, fs) = root(&[
            ("/etc/passwd", "app:x:1000:1000::/:/sbin/nologin\n"),
            (
                "/proc/1/status",
                "Name:\tserver\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\n",
            ),
            ("/proc/1/cmdline", "/server\0--port\08080\0"),
            ("/proc/1/environ", "PATH=/usr/bin:/bin\0container=oci\0"),
            ("/proc/1/cgroup", "0::/kubepods/burstable/pod1/abc\n"),
            ("/proc/self/environ", "SECRET=host\0"),
        ]);
        let t = processes_table(
            &fs,
            1 << 20,
            &|c| c.contains("server"),
            "Processes server".into(),
        )
        .unwrap();
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0]["user"].to_s(), "app");
        assert_eq!(t.rows[0]["command"].to_s(), "/server --port 8080");
        let env = environment(&fs, 1 << 20).unwrap();
        assert_eq!(env[0], ("PATH".to_string(), "/usr/bin:/bin".to_string()));
        assert!(env.iter().all(|(k, _)| k != "SECRET"), "never /proc/self");
        assert_eq!(virtualization(&fs, 1 << 20, None).unwrap().0, "kubepods");
        assert_eq!(
            virtualization(&fs, 1 << 20, Some("docker")).unwrap().0,
            "docker"
        );
        let (_e, bare) = root(&[]);
        assert!(processes_table(&bare, 1 << 20, &|_| true, String::new()).is_none());
        assert!(virtualization(&bare, 1 << 20, None).is_none());
    }
}
