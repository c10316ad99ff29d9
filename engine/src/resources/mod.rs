//! InSpec resources, computed from the target's files.

pub mod config;
pub mod emulated;
pub mod file;
pub mod system;
pub mod table;

use indexmap::IndexMap;

use std::rc::Rc;

use crate::interp::{Closure, Interp, R, raise};
use crate::value::{Class, Key, Object, Value};

/// The target's platform, as InSpec's detection would compute it from files.
#[derive(Debug)]
pub struct Platform {
    /// `debian`, `ubuntu`, … or `linux`.
    pub name: String,
    /// Release (`/etc/debian_version` on Debian).
    pub release: String,
    /// Family.
    pub family: String,
}

/// A resource instance.
#[derive(Debug)]
pub struct Resource {
    /// Registered name (`file`, `passwd`).
    pub name: String,
    /// `to_s` (`File /etc/passwd`).
    pub to_s: String,
    /// Constructor arguments, inspected.
    pub params: String,
    /// `resource_id`.
    pub id: String,
    /// Why it is skipped (`Can't find file: …`).
    pub skipped: Option<String>,
    data: Data,
}

impl Resource {
    /// Ruby's `inspect`: a table row is a Struct (`#<struct user="root", …>`)
    /// whose `to_s` is the table's description; everything else reads as
    /// its `to_s`.
    pub fn inspect(&self) -> String {
        match &self.data {
            Data::Row(row) => {
                let fields: Vec<String> = row
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.inspect()))
                    .collect();
                format!("#<struct {}>", fields.join(", "))
            }
            _ => self.to_s.clone(),
        }
    }
}

#[derive(Debug)]
enum Data {
    File(file::File),
    Os(Rc<Platform>),
    Table(table::Table),
    /// A failed table resource's stand-in: every method returns it.
    Catcher,
    /// etc_group's filtered view.
    GroupView(table::Table),
    /// One table row (a Struct).
    Row(table::Row),
    /// A dpkg package's facts.
    Package(Value),
    /// A mount point's facts.
    Mount(Value),
    /// A record whose methods read its keys (`user`, `group`, `os_env`,
    /// `virtualization`); `name?` reads `name`, `exist?` reads `exists`.
    Record(Value),
    Config(Value),
    None,
}

impl Platform {
    /// The platform's family chain, most specific first (`debian`, `linux`,
    /// `unix`, `os`).
    pub fn families(&self) -> Vec<&str> {
        let mut v = vec![self.family.as_str()];
        for f in ["linux", "unix", "os"] {
            if !v.contains(&f) {
                v.push(f);
            }
        }
        v
    }
}

/// Computes (once) the platform.
pub fn platform(interp: &mut Interp<'_>) -> Rc<Platform> {
    if let Some(p) = &interp.platform {
        return p.clone();
    }
    let read = |p: &str| {
        interp
            .fs
            .read(p, 1 << 20)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let os_release = read("/etc/os-release").unwrap_or_default();
    let field = |k: &str| {
        os_release.lines().find_map(|l| {
            l.strip_prefix(&format!("{k}="))
                .map(|v| v.trim_matches('"').to_string())
        })
    };
    let p = if let Some(v) = read("/etc/debian_version") {
        let id = field("ID").unwrap_or_else(|| "debian".into());
        if id == "ubuntu" {
            Platform {
                name: "ubuntu".into(),
                release: field("VERSION_ID").unwrap_or_default(),
                family: "debian".into(),
            }
        } else {
            Platform {
                name: "debian".into(),
                release: v.trim().to_string(),
                family: "debian".into(),
            }
        }
    } else if let Some(id) = field("ID") {
        Platform {
            name: id,
            release: field("VERSION_ID").unwrap_or_else(|| "unknown".into()),
            family: "linux".into(),
        }
    } else {
        Platform {
            name: "linux".into(),
            release: "unknown".into(),
            family: "linux".into(),
        }
    };
    let p = Rc::new(p);
    interp.platform = Some(p.clone());
    p
}

/// The target's accounts, read once per run.
fn accounts(interp: &mut Interp<'_>) -> Option<Rc<emulated::Accounts>> {
    if let Some(a) = &interp.accounts {
        return a.clone();
    }
    let a = emulated::accounts(interp.fs, interp.limits.file_bytes).map(Rc::new);
    interp.accounts = Some(a.clone());
    a
}

const NO_PASSWD: &str = "The target has no /etc/passwd: dscan reads users and groups from the target's files (getent cannot run there)";

fn params(args: &[Value]) -> String {
    Value::array(args.to_vec()).inspect()
}

fn read_text(interp: &Interp<'_>, path: &str) -> Result<String, String> {
    match interp.fs.read(path, interp.limits.file_bytes) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.is_not_found() => Err(format!("Can't find file: {path}")),
        Err(e) => Err(format!("Can't read file: {path} ({e})")),
    }
}

/// Constructs a resource by name, if `name` is one.
pub fn construct(
    interp: &mut Interp<'_>,
    name: &str,
    args: &[Value],
    line: u32,
) -> R<Option<Value>> {
    let a0 = args.first().map(Value::to_s).unwrap_or_default();
    let res = |name: &str, to_s: String, id: String, skipped: Option<String>, data: Data| {
        Ok(Some(Value::Resource(Rc::new(Resource {
            name: name.into(),
            to_s,
            params: params(args),
            id,
            skipped,
            data,
        }))))
    };
    match name {
        "file" | "directory" => {
            let f = file::File::open(interp.fs, &a0);
            let label = if name == "file" { "File" } else { "Directory" };
            let id = f.path.clone();
            let skipped = f.denied.clone();
            res(name, format!("{label} {a0}"), id, skipped, Data::File(f))
        }
        "os" | "platform" => {
            let p = platform(interp);
            let label = if name == "os" { "Operating System Detection" } else { "Platform Detection" };
            let id = p.name.clone();
            res(name, label.into(), id, None, Data::Os(p))
        }
        "passwd" | "etc_group" | "shadow" | "etc_hosts" => {
            let (default, label) = match name {
                "passwd" => ("/etc/passwd", "/etc/passwd"),
                "etc_group" => ("/etc/group", "/etc/group"),
                "etc_hosts" => ("/etc/hosts", "Hosts File"),
                _ => ("/etc/shadow", "/etc/shadow"),
            };
            let path = if a0.is_empty() {
                default.to_string()
            } else {
                a0.clone()
            };
            let id = if name == "passwd" || name == "etc_hosts" {
                String::new()
            } else {
                path.clone()
            };
            let (text, skipped) = match read_text(interp, &path) {
                Ok(t) => (t, None),
                Err(e) => (String::new(), Some(e)),
            };
            let t = match name {
                "passwd" => table::passwd(&text),
                "etc_group" => table::etc_group(&text),
                "etc_hosts" => table::etc_hosts(&text),
                _ => table::shadow(&text),
            };
            res(name, label.into(), id, skipped, Data::Table(t))
        }
        "login_defs" | "parse_config_file" | "json" | "yaml" | "sshd_config" => {
            let content = match args.first() {
                Some(Value::Hash(h)) => h.borrow().get(&Key::Sym("content".into())).map(Value::to_s),
                _ => None,
            };
            let (label, path) = match (name, &content) {
                ("login_defs", _) => ("login.defs".to_string(), "/etc/login.defs".to_string()),
                ("sshd_config", _) => (
                    "SSHD Configuration".to_string(),
                    if a0.is_empty() { "/etc/ssh/sshd_config".into() } else { a0.clone() },
                ),
                ("json", Some(_)) => ("JSON content".to_string(), "JSON's content".to_string()),
                ("yaml", Some(_)) => ("YAML content".to_string(), "YAML's content".to_string()),
                ("json", None) => (format!("JSON {a0}"), a0.clone()),
                ("yaml", None) => (format!("YAML {a0}"), a0.clone()),
                _ => (format!("Parse Config File {a0}"), a0.clone()),
            };
            let text = match &content {
                Some(c) => Ok(c.clone()),
                None => read_text(interp, &path),
            };
            let text = match text {
                Ok(t) => t,
                Err(e) => return res(name, label, path, Some(e), Data::None),
            };
            let data = match name {
                "json" => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(j) => config::from_json(&j),
                    Err(e) => return res(name, label, path, Some(format!("Unable to parse JSON: {e}")), Data::None),
                },
                "yaml" => match serde_yaml_ng::from_str::<serde_json::Value>(&text) {
                    Ok(j) => config::from_json(&j),
                    Err(e) => return res(name, label, path, Some(format!("Unable to parse YAML: {e}")), Data::None),
                },
                "login_defs" => Value::hash(config::parse(&text, &config::Options::spaced())),
                "sshd_config" => Value::hash(config::parse(&text, &config::Options::ssh())),
                _ => Value::hash(config::parse(
                    &text,
                    &config::options_from(config::Options::equals(), args.get(1)),
                )),
            };
            res(name, label, path, None, Data::Config(data))
        }
        "etc_fstab" => {
            let path = if a0.is_empty() { "/etc/fstab".to_string() } else { a0.clone() };
            let (text, skipped) = match read_text(interp, &path) {
                Ok(t) => (t, None),
                Err(e) => (String::new(), Some(e)),
            };
            res(name, "File System Table File (fstab)".into(), String::new(), skipped, Data::Table(table::etc_fstab(&text)))
        }
        "inetd_conf" | "limits_conf" => {
            let (default, label, opts) = if name == "inetd_conf" {
                ("/etc/inetd.conf", "inetd.conf", config::Options::inetd())
            } else {
                ("/etc/security/limits.conf", "limits.conf", config::Options::limits())
            };
            let path = if a0.is_empty() { default.to_string() } else { a0.clone() };
            match read_text(interp, &path) {
                Ok(text) => res(name, label.into(), path, None, Data::Config(Value::hash(config::parse(&text, &opts)))),
                Err(e) => res(name, label.into(), path, Some(e), Data::Config(Value::hash(IndexMap::new()))),
            }
        }
        "xinetd_conf" => {
            let path = if a0.is_empty() { "/etc/xinetd.conf".to_string() } else { a0.clone() };
            let label = format!("Xinetd config {path}");
            match read_text(interp, &path) {
                Ok(text) => {
                    let t = config::xinetd(interp.fs, &text, interp.limits.file_bytes, label.clone());
                    res(name, label, path, None, Data::Table(t))
                }
                Err(e) => res(name, label.clone(), path, Some(e), Data::Table(config::xinetd(interp.fs, "", 0, label))),
            }
        }
        "user" | "users" | "group" | "groups" => {
            let label = match name {
                "user" => format!("User {a0}"),
                "group" => format!("Group {a0}"),
                "users" => "Users".into(),
                _ => "Groups".into(),
            };
            let Some(a) = accounts(interp) else {
                return res(name, label, a0.clone(), Some(NO_PASSWD.into()), Data::None);
            };
            let data = match name {
                "user" => Data::Record(emulated::user_record(&a, &a0)),
                "group" => Data::Record(emulated::group_record(&a, &a0)),
                "users" => Data::Table(emulated::users_table(&a)),
                _ => Data::Table(emulated::groups_table(&a)),
            };
            res(name, label, a0.clone(), None, data)
        }
        "processes" => {
            let label = format!("Processes {}", match args.first() { Some(v @ Value::Regex(_)) => v.inspect(), Some(v) => v.to_s(), None => String::new() });
            let grep = |c: &str| match args.first() {
                Some(Value::Regex(r)) => r.re.is_match(c),
                Some(v) => c.contains(&v.to_s()),
                None => true,
            };
            match emulated::processes_table(interp.fs, interp.limits.file_bytes, &grep, label.clone()) {
                Some(t) => res(name, label, a0.clone(), None, Data::Table(t)),
                None => res(name, label, a0.clone(), Some("The target's /proc is not visible here, so its processes cannot be listed (ps cannot run there)".into()), Data::None),
            }
        }
        "os_env" => {
            let label = format!("Environment variable {a0}");
            match emulated::environment(interp.fs, interp.limits.file_bytes) {
                Some(env) => {
                    let v = env.into_iter().rfind(|(k, _)| *k == a0).map(|(_, v)| Value::str(&v)).unwrap_or(Value::Nil);
                    let mut h = IndexMap::new();
                    h.insert(Key::Sym("content".into()), v.clone());
                    h.insert(
                        Key::Sym("split".into()),
                        match &v {
                            Value::Nil => Value::array(vec![]),
                            v => Value::array(v.to_s().split(':').map(Value::str).collect()),
                        },
                    );
                    h.insert(Key::Sym("exists".into()), Value::Bool(!matches!(v, Value::Nil)));
                    res(name, label, a0.clone(), None, Data::Record(Value::hash(h)))
                }
                None => res(name, label, a0.clone(), Some("The target's process environment (/proc/1/environ) is not readable here (env cannot run there)".into()), Data::None),
            }
        }
        "virtualization" => {
            let found = emulated::virtualization(interp.fs, interp.limits.file_bytes, interp.virtualization.as_deref());
            let mut h = IndexMap::new();
            let (system, role) = match found {
                Some((s, r)) => (Value::str(&s), Value::str(&r)),
                None => (Value::Nil, Value::Nil),
            };
            h.insert(Key::Sym("system".into()), system);
            h.insert(Key::Sym("role".into()), role.clone());
            h.insert(Key::Sym("guest".into()), Value::Bool(matches!(&role, Value::Str(r) if &**r == "guest")));
            h.insert(Key::Sym("host".into()), Value::Bool(false));
            h.insert(Key::Sym("exists".into()), Value::Bool(true));
            res(name, "Virtualization Detection".into(), String::new(), None, Data::Record(Value::hash(h)))
        }
        "command" => res(
            name,
            format!("Command: `{a0}`"),
            format!("Command: `{a0}`"),
            Some("The command resource cannot run on a shell-less target: dscan never executes commands in the target".into()),
            Data::None,
        ),
        "package" => match system::dpkg(interp.fs, interp.limits.file_bytes) {
            Some(db) => {
                let p = db.into_iter().find(|p| p.name == a0);
                let mut info = IndexMap::new();
                info.insert(Key::Sym("name".into()), Value::str(&a0));
                info.insert(Key::Sym("installed".into()), Value::Bool(p.as_ref().is_some_and(system::Package::installed)));
                if let Some(p) = p.filter(system::Package::installed) {
                    info.insert(Key::Sym("version".into()), Value::str(&p.version));
                    info.insert(Key::Sym("arch".into()), Value::str(&p.arch));
                    info.insert(Key::Sym("type".into()), Value::str("deb"));
                }
                res(name, format!("System Package {a0}"), a0.clone(), None, Data::Package(Value::hash(info)))
            }
            None => res(
                name,
                format!("System Package {a0}"),
                a0.clone(),
                Some("The target has no package database dscan can read (/var/lib/dpkg/status or status.d/)".into()),
                Data::None,
            ),
        },
        "packages" => {
            let label = format!("Packages {}", match args.first() { Some(v @ Value::Regex(_)) => v.inspect(), Some(v) => v.to_s(), None => String::new() });
            match system::dpkg(interp.fs, interp.limits.file_bytes) {
                Some(db) => {
                    let wanted = |n: &str| match args.first() {
                        Some(Value::Regex(r)) => r.re.is_match(n),
                        Some(v) => v.to_s() == n,
                        None => true,
                    };
                    let rows = db
                        .iter()
                        .filter(|p| wanted(&p.name))
                        .map(|p| {
                            let mut r = table::Row::new();
                            r.insert("name".into(), Value::str(&p.name));
                            r.insert("version".into(), Value::str(&p.version));
                            r.insert("status".into(), Value::str(if p.installed() { "installed" } else { &p.status }));
                            r.insert("architecture".into(), Value::str(&p.arch));
                            r
                        })
                        .collect();
                    let t = table::Table {
                        rows,
                        columns: ["names:name", "versions:version", "statuses:status", "architectures:architecture"]
                            .iter()
                            .map(|c| {
                                let (m, f) = c.split_once(':').unwrap_or((c, c));
                                (m.to_string(), f.to_string())
                            })
                            .collect(),
                        custom: None,
                        label: label.clone(),
                        criteria: String::new(),
                        flavor: table::Flavor::Plain,
                    };
                    res(name, label, String::new(), None, Data::Table(t))
                }
                None => res(name, label, String::new(), Some("The target has no package database dscan can read (/var/lib/dpkg/status or status.d/)".into()), Data::None),
            }
        }
        "kernel_parameter" => match system::kernel_parameter(interp.fs, &a0, interp.limits.file_bytes) {
            Some(v) => res(name, format!("Kernel Parameter {a0}"), a0.clone(), None, Data::Config(v)),
            None => res(
                name,
                format!("Kernel Parameter {a0}"),
                a0.clone(),
                Some(format!("Kernel parameter {a0} is not readable in the target's /proc/sys (sysctl cannot run there)")),
                Data::None,
            ),
        },
        "mount" => match system::mounts(interp.fs, interp.limits.file_bytes) {
            Some(m) => {
                let hit = m.into_iter().rfind(|(p, _, _)| *p == a0);
                let mut info = IndexMap::new();
                info.insert(Key::Sym("mounted".into()), Value::Bool(hit.is_some()));
                if let Some((_, ty, opts)) = hit {
                    info.insert(Key::Sym("type".into()), Value::str(&ty));
                    info.insert(Key::Sym("options".into()), Value::array(opts.split(',').map(Value::str).collect()));
                }
                res(name, format!("Mount {a0}"), a0.clone(), None, Data::Mount(Value::hash(info)))
            }
            None => res(
                name,
                format!("Mount {a0}"),
                a0.clone(),
                Some("The target's mount table (/proc/mounts) is not readable here; dscan does not guess whether a path is mounted".into()),
                Data::None,
            ),
        },
        _ if system::unavailable(name).is_some() => {
            let why = system::unavailable(name).unwrap_or_default();
            let label = match name {
                "service" | "systemd_service" | "sysv_service" | "upstart_service" | "runit_service" => format!("Service {a0}"),
                "kernel_module" => format!("Kernel Module {a0}"),
                "port" => format!("Port {a0}"),
                other => format!("{other} {a0}").trim().to_string(),
            };
            res(name, label.clone(), a0.clone(), Some(format!("The {name} resource cannot be evaluated on this target: {why}")), Data::None)
        }
        _ => {
            let _ = line;
            Ok(None)
        }
    }
}

/// `be_readable`/`be_writable`/`be_executable` from mode bits.
pub fn permission(
    interp: &mut Interp<'_>,
    v: &Value,
    what: &str,
    by: Option<&str>,
    by_user: Option<&str>,
    _line: u32,
) -> R<bool> {
    let Value::Resource(r) = v else {
        return Ok(false);
    };
    let Data::File(file::File { stat: Some(st), .. }) = &r.data else {
        return Ok(false);
    };
    let kind = match what {
        "readable" => 0o444,
        "writable" => 0o222,
        _ => 0o111,
    };
    if by_user.is_some() {
        // InSpec runs `su` for this; there is no shell on the target.
        return Ok(false);
    }
    let who = match by {
        Some("owner") => 0o700,
        Some("group") => 0o070,
        Some("others") | Some("other") => 0o007,
        _ => 0o777,
    };
    let _ = interp;
    Ok(st.mode & kind & who != 0)
}

/// Calls a method on a resource.
pub fn call(
    interp: &mut Interp<'_>,
    r: &Rc<Resource>,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    if let Some(reason) = &r.skipped
        && !matches!(name, "to_s" | "resource_skipped?" | "exist?")
    {
        match &r.data {
            // A failed shadow answers with a stand-in that swallows calls.
            Data::Table(_) if r.name == "shadow" || r.name == "xinetd_conf" => {
                let class = if r.name == "shadow" {
                    "Shadow"
                } else {
                    "XinetdConf"
                };
                let shown = format!("Inspec::Resources::{class} ({reason})");
                return Ok(Value::Resource(Rc::new(Resource {
                    name: "Object".into(),
                    to_s: shown.clone(),
                    params: "[]".into(),
                    id: shown,
                    skipped: Some(reason.clone()),
                    data: Data::Catcher,
                })));
            }
            // etc_fstab's table methods read the (empty) rows regardless.
            Data::Table(t) if name == "where" && r.name != "etc_fstab" => {
                let Value::Resource(filtered) =
                    table_answer(interp, r, t, name, args, block, line)?
                else {
                    return raise("Inspec::Exceptions::ResourceSkipped", reason.clone(), line);
                };
                return Ok(Value::Resource(Rc::new(Resource {
                    name: filtered.name.clone(),
                    to_s: filtered.to_s.clone(),
                    params: "[]".into(),
                    id: String::new(),
                    skipped: Some(reason.clone()),
                    data: Data::None,
                })));
            }
            Data::Catcher => return Ok(Value::Resource(r.clone())),
            // A file the reader may not look at is neither there nor absent:
            // using it fails the code that asked.
            Data::File(_) => {
                return raise("Inspec::Exceptions::ResourceSkipped", reason.clone(), line);
            }
            // A command's output is never made up: using it fails the code
            // that asked (the describe of it is a skipped result).
            Data::None
                if r.name == "command"
                    || system::unavailable(&r.name).is_some()
                    || matches!(
                        r.name.as_str(),
                        "package"
                            | "packages"
                            | "kernel_parameter"
                            | "mount"
                            | "user"
                            | "users"
                            | "group"
                            | "groups"
                            | "processes"
                            | "os_env"
                    ) =>
            {
                return raise("Inspec::Exceptions::ResourceSkipped", reason.clone(), line);
            }
            // As InSpec: a resource whose file is missing reads empty (its
            // tables have no rows, its settings are nil); describing it is a
            // skipped result.
            Data::Table(_) => {}
            _ => return Ok(Value::Nil),
        }
    }
    match (&r.data, name) {
        (_, "to_s") => Ok(Value::str(&r.to_s)),
        (_, "resource_id") => Ok(Value::str(&r.id)),
        (_, "resource_skipped?") => Ok(Value::Bool(r.skipped.is_some())),
        (Data::File(f), _) => f.call(interp, name, &args, line),
        (Data::Os(p), _) => match name {
            "name" => Ok(Value::str(&p.name)),
            "release" => Ok(Value::str(&p.release)),
            "family" => Ok(Value::str(&p.family)),
            "arch" => Ok(Value::str(std::env::consts::ARCH)),
            "linux?" | "unix?" => Ok(Value::Bool(true)),
            "windows?" | "darwin?" | "bsd?" | "solaris?" | "aix?" | "hpux?" => {
                Ok(Value::Bool(false))
            }
            "debian?" => Ok(Value::Bool(p.family == "debian")),
            "redhat?" => Ok(Value::Bool(p.family == "redhat")),
            "families" => Ok(Value::array(
                p.families().into_iter().map(Value::str).collect(),
            )),
            "in_family?" => Ok(Value::Bool(args.first().is_some_and(|f| {
                let f = f.to_s();
                f == p.family || f == "linux" || f == "unix"
            }))),
            "[]" => {
                let k = args.first().map(Value::to_s).unwrap_or_default();
                call(interp, r, &k, vec![], block, line)
            }
            "exist?" => Ok(Value::Bool(true)),
            _ => raise(
                "NoMethodError",
                format!("undefined method `{name}' for {}", r.to_s),
                line,
            ),
        },
        (Data::Table(t), _) => table_answer(interp, r, t, name, args, block, line),
        (Data::GroupView(t), _) => match name {
            "groups" | "gids" | "users" | "entries" | "count" => {
                table_answer(interp, r, t, name, args, block, line)
            }
            _ => raise(
                "NoMethodError",
                format!("undefined method `{name}' for {}", r.to_s),
                line,
            ),
        },
        (Data::Catcher, _) => Ok(Value::Resource(r.clone())),
        (Data::Package(info) | Data::Mount(info), _) => {
            let get = |k: &str| match info {
                Value::Hash(h) => h
                    .borrow()
                    .get(&Key::Sym(k.into()))
                    .cloned()
                    .unwrap_or(Value::Nil),
                _ => Value::Nil,
            };
            match name {
                "installed?" => Ok(get("installed")),
                "mounted?" => Ok(get("mounted")),
                "version" | "arch" | "type" | "options" => Ok(get(name)),
                "info" => Ok(info.clone()),
                "exist?" => Ok(Value::Bool(true)),
                _ => raise(
                    "NoMethodError",
                    format!("undefined method `{name}' for {}", r.to_s),
                    line,
                ),
            }
        }
        (Data::Record(info), _) => {
            let Value::Hash(h) = info else {
                return Ok(Value::Nil);
            };
            let key = match name {
                "exist?" | "exists?" => "exists",
                "[]" => {
                    return Ok(h
                        .borrow()
                        .get(&Key::Sym(args.first().map(Value::to_s).unwrap_or_default()))
                        .cloned()
                        .unwrap_or(Value::Nil));
                }
                n => n.trim_end_matches('?'),
            };
            match h.borrow().get(&Key::Sym(key.into())) {
                Some(v) => Ok(v.clone()),
                None => raise(
                    "NoMethodError",
                    format!("undefined method `{name}' for {}", r.to_s),
                    line,
                ),
            }
        }
        (Data::Row(row), _) => match name {
            "[]" => {
                let key = args.first().map(Value::to_s).unwrap_or_default();
                Ok(row.get(&key).cloned().unwrap_or(Value::Nil))
            }
            "to_h" => Ok(Value::hash(
                row.iter()
                    .map(|(k, v)| (Key::Sym(k.clone()), v.clone()))
                    .collect(),
            )),
            field => match row.get(field) {
                Some(v) => Ok(v.clone()),
                None => raise(
                    "NoMethodError",
                    format!("undefined method `{field}' for {}", r.to_s),
                    line,
                ),
            },
        },
        (Data::Config(v), _) => match name {
            "params" => Ok(v.clone()),
            "value" if r.name == "kernel_parameter" => Ok(v.clone()),
            "[]" if args.len() > 1 => interp.send(v, "dig", args, None, line),
            "[]" => interp.send(v, "[]", args, None, line),
            "exist?" => Ok(Value::Bool(true)),
            key => match v {
                Value::Hash(h) => {
                    let got = h.borrow().get(&Key::Str(key.to_string())).cloned();
                    // sshd_config collects repeated keys; one value reads plain.
                    Ok(match got {
                        Some(Value::Array(a))
                            if r.name == "sshd_config" && a.borrow().len() == 1 =>
                        {
                            a.borrow()[0].clone()
                        }
                        Some(v) => v,
                        None => Value::Nil,
                    })
                }
                _ => raise(
                    "NoMethodError",
                    format!("undefined method `{key}' for {}", r.to_s),
                    line,
                ),
            },
        },
        (Data::None, "exist?") => Ok(Value::Bool(false)),
        (Data::None, _) => raise(
            "NoMethodError",
            format!("undefined method `{name}' for {}", r.to_s),
            line,
        ),
    }
}

fn table_answer(
    interp: &mut Interp<'_>,
    r: &Rc<Resource>,
    t: &table::Table,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    answer(interp, Rc::as_ptr(r) as usize, t, name, args, block, line)
}

/// A table's answer as a value; `address` names an EtcGroupView as Ruby
/// would print it.
fn answer(
    interp: &mut Interp<'_>,
    address: usize,
    t: &table::Table,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    Ok(match table::call(interp, t, name, args, block, line)? {
        table::Answer::Value(v) => v,
        table::Answer::Table(next) => table_value(next),
        table::Answer::Rows(rows) => {
            // FilterTable's `entries` rows describe themselves by the table
            // they came from ("/etc/shadow with user == /.+/ one entry").
            let label = if t.criteria.is_empty() {
                format!("{} with one entry", t.label)
            } else {
                format!("{} with {} one entry", t.label, t.criteria)
            };
            Value::array(rows.into_iter().map(|r| row_value(r, &label)).collect())
        }
        table::Answer::Custom(b) => {
            let tv = table_value(t.clone());
            interp.call_block(&b, vec![tv], line)?
        }
        table::Answer::GroupView(next) => {
            // InSpec prints the view object itself (with its address).
            let shown = format!("#<Inspec::Resources::EtcGroupView:0x{address:016x}>");
            Value::Resource(Rc::new(Resource {
                name: "Object".into(),
                to_s: shown,
                params: "[]".into(),
                id: String::new(),
                skipped: None,
                data: Data::GroupView(next),
            }))
        }
    })
}

fn table_value(t: table::Table) -> Value {
    Value::Resource(Rc::new(Resource {
        name: "FilterTable::Table".into(),
        to_s: t.to_s(),
        params: "[]".into(),
        id: String::new(),
        skipped: None,
        data: Data::Table(t),
    }))
}

/// One FilterTable row, as the Struct InSpec hands out.
fn row_value(row: table::Row, label: &str) -> Value {
    Value::Resource(Rc::new(Resource {
        name: "Struct".into(),
        to_s: label.to_string(),
        params: "[]".into(),
        id: String::new(),
        skipped: None,
        data: Data::Row(row),
    }))
}

/// Class-level macros in library resources (`name 'x'`, `desc`, `supports`…).
pub fn class_macro(
    _interp: &mut Interp<'_>,
    c: &Rc<Class>,
    name: &str,
    args: Vec<Value>,
    _block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    match name {
        "name" => {
            *c.resource_name.borrow_mut() = args.first().map(Value::to_s);
            Ok(Value::Nil)
        }
        "desc" | "supports" | "example" | "attr_reader" => Ok(Value::Nil),
        _ => raise(
            "NoMethodError",
            format!("undefined method `{name}' for class {}", c.name),
            line,
        ),
    }
}

/// Methods every library object has (beyond its own).
pub fn object_method(
    interp: &mut Interp<'_>,
    o: &Rc<Object>,
    this: &Value,
    name: &str,
    args: Vec<Value>,
    block: Option<Rc<Closure>>,
    line: u32,
) -> R<Value> {
    match name {
        "to_s" => Ok(Value::str(
            &o.class
                .resource_name
                .borrow()
                .clone()
                .unwrap_or_else(|| o.class.name.clone())
                .to_string(),
        )),
        "skip_resource" => Err(crate::interp::Flow::Skip(
            args.first().map(Value::to_s).unwrap_or_default(),
        )),
        "fail_resource" => raise(
            "Inspec::Exceptions::ResourceFailed",
            args.first().map(Value::to_s).unwrap_or_default(),
            line,
        ),
        "inspec" => Ok(this.clone()),
        "resource_skipped?" => Ok(Value::Bool(o.ivars.borrow().contains_key("@__skipped"))),
        _ => {
            // A FilterTable installed on the class answers its methods.
            let filter = {
                let mut c = Some(o.class.clone());
                let mut found = None;
                while let Some(k) = c {
                    if let Some(f) = k.filter.borrow().clone() {
                        found = Some(f);
                        break;
                    }
                    c = k.superclass.clone();
                }
                found
            };
            if let Some(spec) = filter.filter(|spec| {
                spec.columns.iter().any(|(m, _)| m == name)
                    || spec.customs.iter().any(|(m, _)| m == name)
                    || matches!(
                        name,
                        "where"
                            | "entries"
                            | "raw_data"
                            | "params"
                            | "count"
                            | "exist?"
                            | "exists?"
                    )
            }) {
                let raw = interp.send(this, &spec.from, vec![], None, line)?;
                let label = interp.to_s(this, line)?;
                let t = table::Table {
                    rows: table::rows_from(&raw),
                    columns: spec.columns.clone(),
                    custom: Some(spec.clone()),
                    label,
                    criteria: String::new(),
                    flavor: table::Flavor::Plain,
                };
                return answer(interp, Rc::as_ptr(o) as usize, &t, name, args, block, line);
            }
            // Resources are reachable from library code as functions.
            if let Some(r) = construct(interp, name, &args, line)? {
                return Ok(r);
            }
            raise(
                "NoMethodError",
                format!("undefined method `{name}' for {}", o.class.name),
                line,
            )
        }
    }
}
