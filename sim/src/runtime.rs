//! The container runtime helper: a separate, single-threaded process the
//! kubelet starts for each container and each exec (the way a kubelet drives
//! runc). It needs root.
//!
//! `run`: new mount, PID, UTS and IPC namespaces (or, for an ephemeral
//! container, the target's PID/IPC/UTS namespaces and a new mount namespace),
//! an overlay of the image directory with a private upper layer, a fresh
//! `/proc` for the PID namespace, a minimal `/dev`, `pivot_root`, then the
//! security context (bounding set, groups, GID, UID, no_new_privs) and `execve`.
//! Its stdout carries JSON control lines; the container's output goes to a log.
//!
//! `exec`: joins a running container's namespaces, applies the container's
//! security context and runs a command with the caller's stdio; the outcome
//! (exit code, or why the command could not start) goes to a status file.
//!
//! Namespace and credential calls must happen in a single-threaded process,
//! which is why this is a process of its own and not code in the kubelet.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{
    ForkResult, Gid, Pid, Uid, chdir, execve, fork, pipe2, pivot_root, setgid, setgroups,
    sethostname, setuid,
};
use serde::{Deserialize, Serialize};

/// The process to start inside a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessSpec {
    /// argv (`args[0]` is looked up in `PATH` when it has no slash).
    pub args: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: String,
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The capability bounding set (`None`: all, for privileged containers).
    pub capabilities: Option<Vec<String>>,
    /// Set `no_new_privs` (allowPrivilegeEscalation: false).
    pub no_new_privs: bool,
}

/// Starts a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    /// The image's root filesystem directory (the overlay's lower layer).
    pub rootfs: PathBuf,
    /// A private directory for the overlay's upper/work layers and mount point.
    pub state_dir: PathBuf,
    /// Hostname (the pod name) for a new UTS namespace.
    pub hostname: String,
    /// Join this process's PID, IPC and UTS namespaces instead of creating new
    /// ones (ephemeral containers, shared process namespaces).
    pub join_pid: Option<i32>,
    /// Stay in the host's PID namespace (`hostPID: true` pods): no new PID
    /// namespace, so `/proc` shows the node's processes and PID 1 is its init.
    #[serde(default)]
    pub host_pid: bool,
    /// Mount the root read-only.
    pub read_only_root: bool,
    /// Where the container's stdout and stderr go.
    pub log_path: PathBuf,
    /// What to run.
    pub process: ProcessSpec,
}

/// Runs a command in a running container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Host PID of a process in the container (its init).
    pub pid: i32,
    /// What to run.
    pub process: ProcessSpec,
    /// Where the outcome is written as JSON.
    pub status_path: PathBuf,
}

/// A control line from `run`, or the content of an exec status file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// The container process runs, with this host PID.
    Started {
        /// Host PID.
        pid: i32,
    },
    /// The process could not be started.
    Failed {
        /// Why, in the words of the container runtime.
        message: String,
    },
    /// The process ended.
    Exited {
        /// Exit code (128 + signal for a signal).
        code: i32,
    },
}

/// Entry point of the helper (`<program> run --spec JSON` / `exec --spec JSON`).
pub fn main(args: &[String]) -> i32 {
    let result = match args {
        [mode, flag, spec] if flag == "--spec" && mode == "run" => {
            serde_json::from_str::<RunSpec>(spec)
                .map_err(|e| e.to_string())
                .and_then(|s| run(&s))
        }
        [mode, flag, spec] if flag == "--spec" && mode == "exec" => {
            serde_json::from_str::<ExecSpec>(spec)
                .map_err(|e| e.to_string())
                .and_then(|s| exec(&s))
        }
        _ => Err("usage: run|exec --spec JSON".into()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("dscan-sim runtime: {message}");
            emit(&Report::Failed { message });
            125
        }
    }
}

fn emit(report: &Report) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, report);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn ctx<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + use<'_, E> {
    move |e| format!("{what}: {e}")
}

fn open_ns(pid: i32, ns: &str) -> Result<File, String> {
    File::open(format!("/proc/{pid}/ns/{ns}")).map_err(|e| format!("open /proc/{pid}/ns/{ns}: {e}"))
}

fn run(spec: &RunSpec) -> Result<i32, String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(ctx("set parent-death signal"))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)
        .map_err(ctx("open log"))?;
    let devnull = File::open("/dev/null").map_err(ctx("open /dev/null"))?;
    if let Some(pid) = spec.join_pid {
        for (ns, flag) in [
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("pid", CloneFlags::CLONE_NEWPID),
        ] {
            setns(open_ns(pid, ns)?, flag).map_err(ctx("join namespace"))?;
        }
    } else {
        // The mount namespace is the child's alone (see `setup_container`),
        // as with a real runtime, whose shim stays in the host's.
        let mut flags = CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
        if !spec.host_pid {
            flags |= CloneFlags::CLONE_NEWPID;
        }
        unshare(flags).map_err(ctx("unshare namespaces"))?;
    }
    let (err_r, err_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("pipe"))?;
    // SAFETY: this helper is single-threaded (no threads are ever started), so
    // the child may run arbitrary code after fork.
    match unsafe { fork() }.map_err(ctx("fork"))? {
        ForkResult::Child => {
            drop(err_r);
            let message = match setup_container(spec, &log, &devnull) {
                Ok(never) => match never {},
                Err(m) => m,
            };
            let mut w = File::from(err_w);
            let _ = w.write_all(message.as_bytes());
            std::process::exit(127);
        }
        ForkResult::Parent { child } => {
            drop(err_w);
            let mut message = String::new();
            let _ = File::from(err_r).read_to_string(&mut message);
            if !message.is_empty() {
                let _ = waitpid(child, None);
                emit(&Report::Failed { message });
                return Ok(128);
            }
            emit(&Report::Started {
                pid: child.as_raw(),
            });
            let code = wait_code(child);
            emit(&Report::Exited { code });
            Ok(code)
        }
    }
}

fn wait_code(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

enum Never {}

fn setup_container(spec: &RunSpec, log: &File, devnull: &File) -> Result<Never, String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(ctx("set parent-death signal"))?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(ctx("unshare mount namespace"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(ctx("make mounts private"))?;
    let upper = spec.state_dir.join("upper");
    let work = spec.state_dir.join("work");
    let merged = spec.state_dir.join("merged");
    // Not create_dir_all: the kubelet made the state directory, and a
    // container still starting when the simulator shuts down must not
    // recreate the removed tree.
    for d in [&upper, &work, &merged] {
        match std::fs::create_dir(d) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(format!("create state dir {}: {e}", d.display()));
            }
            _ => {}
        }
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        spec.rootfs.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(ctx("mount the root filesystem (overlay)"))?;
    let proc_dir = merged.join("proc");
    std::fs::create_dir_all(&proc_dir).map_err(ctx("create /proc"))?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(ctx("mount /proc"))?;
    setup_dev(&merged.join("dev"))?;
    chdir(&merged).map_err(ctx("chdir to the new root"))?;
    pivot_root(".", ".").map_err(ctx("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(ctx("detach the old root"))?;
    chdir("/").map_err(ctx("chdir /"))?;
    if spec.read_only_root {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(ctx("remount / read-only"))?;
    }
    if spec.join_pid.is_none() {
        sethostname(&spec.hostname).map_err(ctx("sethostname"))?;
    }
    nix::unistd::dup2_stdin(devnull).map_err(ctx("stdin"))?;
    nix::unistd::dup2_stdout(log.as_fd()).map_err(ctx("stdout"))?;
    nix::unistd::dup2_stderr(log.as_fd()).map_err(ctx("stderr"))?;
    start_process(&spec.process)
}

fn setup_dev(dev: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dev).map_err(ctx("create /dev"))?;
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=65536k"),
    )
    .map_err(ctx("mount /dev"))?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let target = dev.join(node);
        File::create(&target).map_err(ctx("create device node"))?;
        mount(
            Some(Path::new("/dev").join(node).as_path()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(ctx("bind device node"))?;
    }
    std::fs::create_dir_all(dev.join("shm")).map_err(ctx("create /dev/shm"))?;
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link)).map_err(ctx("create /dev link"))?;
    }
    Ok(())
}

/// Applies the security context and execs; only returns on failure.
fn start_process(p: &ProcessSpec) -> Result<Never, String> {
    if let Some(keep) = &p.capabilities {
        let keep: Vec<caps::Capability> = keep.iter().filter_map(|c| parse_cap(c)).collect();
        for cap in caps::all() {
            if !keep.contains(&cap) {
                caps::drop(None, caps::CapSet::Bounding, cap).map_err(ctx("drop capability"))?;
            }
        }
    }
    caps::clear(None, caps::CapSet::Inheritable).map_err(ctx("clear inheritable capabilities"))?;
    let groups: Vec<Gid> = p.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(ctx("setgroups"))?;
    setgid(Gid::from_raw(p.gid)).map_err(ctx("setgid"))?;
    setuid(Uid::from_raw(p.uid)).map_err(ctx("setuid"))?;
    if p.no_new_privs {
        nix::sys::prctl::set_no_new_privs().map_err(ctx("no_new_privs"))?;
    }
    chdir(p.cwd.as_str()).map_err(|e| format!("chdir to {:?}: {e}", p.cwd))?;
    let program = resolve(p)?;
    let cstr = |s: &str| CString::new(s).map_err(|_| format!("argument {s:?} contains a NUL byte"));
    let argv = p
        .args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = p
        .env
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let path = cstr(&program)?;
    let err = execve(&path, &argv, &envp).err();
    Err(format!(
        "exec failed: unable to start container process: exec: {:?}: {}",
        program,
        err.map(|e| e.desc().to_lowercase()).unwrap_or_default()
    ))
}

fn resolve(p: &ProcessSpec) -> Result<String, String> {
    let name = p.args.first().ok_or("no command given")?;
    if name.contains('/') {
        return Ok(name.clone());
    }
    let path = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|dir| format!("{dir}/{name}"))
        .find(|candidate| Path::new(candidate).is_file())
        .ok_or_else(|| format!("exec failed: unable to start container process: exec: {name:?}: executable file not found in $PATH"))
}

fn parse_cap(name: &str) -> Option<caps::Capability> {
    let name = name.to_ascii_uppercase();
    let full = if name.starts_with("CAP_") {
        name
    } else {
        format!("CAP_{name}")
    };
    full.parse().ok()
}

fn exec(spec: &ExecSpec) -> Result<i32, String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(ctx("set parent-death signal"))?;
    let mut status = File::create(&spec.status_path).map_err(ctx("create status file"))?;
    let namespaces = [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let files = namespaces
        .iter()
        .map(|(ns, _)| open_ns(spec.pid, ns))
        .collect::<Result<Vec<_>, _>>()?;
    for (file, (_, flag)) in files.iter().zip(namespaces.iter()) {
        setns(file, *flag).map_err(ctx("join the container's namespaces"))?;
    }
    let (err_r, err_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ctx("pipe"))?;
    // SAFETY: single-threaded helper, see `run`.
    match unsafe { fork() }.map_err(ctx("fork"))? {
        ForkResult::Child => {
            drop(err_r);
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            let message = match start_process(&spec.process) {
                Ok(never) => match never {},
                Err(m) => m,
            };
            let _ = File::from(err_w).write_all(message.as_bytes());
            std::process::exit(127);
        }
        ForkResult::Parent { child } => {
            drop(err_w);
            let mut message = String::new();
            let _ = File::from(err_r).read_to_string(&mut message);
            let code = wait_code(child);
            let report = if message.is_empty() {
                Report::Exited { code }
            } else {
                Report::Failed { message }
            };
            serde_json::to_writer(&mut status, &report).map_err(ctx("write status"))?;
            Ok(code)
        }
    }
}
