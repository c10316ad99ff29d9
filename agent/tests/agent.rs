//! The file agent as a process: every answer it gives over the wire equals
//! what the local `RootDir` answers for the same root, hostile shapes
//! included, and its memory stays bounded.

use std::io::{BufReader, BufWriter};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use dscan_targetfs::wire::RemoteFs;
use dscan_targetfs::{FileKind, FsError, RootDir, TargetFs};

type Remote = RemoteFs<BufReader<ChildStdout>, BufWriter<ChildStdin>>;

fn agent(root: &Path) -> (Child, Remote) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dscan-agent"))
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let inp = BufWriter::new(child.stdin.take().expect("stdin"));
    let fs = RemoteFs::connect(out, inp).expect("the agent greets");
    (child, fs)
}

/// The agent's peak resident memory (VmHWM), KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
}

#[test]
fn the_agent_answers_as_the_local_root_does_and_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    symlink("/etc/passwd", root.join("abs")).unwrap();
    symlink("../../../../etc/passwd", root.join("etc/up")).unwrap();
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "host secret").unwrap();
    symlink(outside.path(), root.join("escape")).unwrap();
    symlink("/b", root.join("a")).unwrap();
    symlink("/a", root.join("b")).unwrap();
    mkfifo(&root.join("fifo"));
    // A 2 GB sparse file: refused by its size, without reading it.
    std::fs::File::create(root.join("sparse"))
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    // A directory of 100k entries.
    std::fs::create_dir(root.join("many")).unwrap();
    for i in 0..100_000 {
        std::fs::File::create(root.join(format!("many/f{i:06}"))).unwrap();
    }
    // A name that is not UTF-8.
    let bad = std::ffi::OsStr::from_bytes(b"bad\xffname");
    std::fs::write(root.join("etc").join(bad), "x").unwrap();

    let local = RootDir::open(root).unwrap();
    let (mut child, remote) = agent(root);
    let paths = [
        "/",
        "/etc",
        "/etc/passwd",
        "/abs",
        "/etc/up",
        "/escape",
        "/a",
        "/fifo",
        "/sparse",
        "/many",
        "/nope",
        "/../../etc/passwd",
        "",
    ];
    for p in paths {
        assert_eq!(
            remote.stat(p).map_err(|e| e.raw_os_error()),
            local.stat(p).map_err(|e| e.raw_os_error()),
            "stat {p}"
        );
        assert_eq!(
            remote.lstat(p).map_err(|e| e.raw_os_error()),
            local.lstat(p).map_err(|e| e.raw_os_error()),
            "lstat {p}"
        );
        let shape = |r: Result<Vec<u8>, FsError>| match r {
            Ok(b) => format!("ok {}", String::from_utf8_lossy(&b)),
            Err(FsError::Io { source, .. }) => format!("io {:?}", source.raw_os_error()),
            Err(FsError::TooLarge { limit, .. }) => format!("too large {limit}"),
            Err(FsError::NotRegular { kind, .. }) => format!("not regular {kind}"),
        };
        assert_eq!(
            shape(remote.read(p, 1 << 20)),
            shape(local.read(p, 1 << 20)),
            "read {p}"
        );
        assert_eq!(
            remote.read_link(p).map_err(|e| e.raw_os_error()),
            local.read_link(p).map_err(|e| e.raw_os_error()),
            "read_link {p}"
        );
    }
    // What each hostile shape answers, spelt out.
    assert!(
        remote.read("/escape", 100).unwrap_err().is_not_found(),
        "no way out of the root"
    );
    assert_eq!(
        remote.read("/abs", 100).unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(
        remote.stat("/a").unwrap_err().raw_os_error(),
        Some(40),
        "ELOOP"
    );
    assert!(matches!(
        remote.read("/fifo", 100),
        Err(FsError::NotRegular { kind: "pipe", .. })
    ));
    assert!(matches!(
        remote.read("/sparse", 16 << 20),
        Err(FsError::TooLarge { .. })
    ));
    assert_eq!(remote.stat("/sparse").unwrap().size, 2 << 30);
    let many = remote.read_dir("/many").unwrap();
    assert_eq!(many.len(), 100_000);
    assert_eq!(many, local.read_dir("/many").unwrap());
    let etc = remote.read_dir("/etc").unwrap();
    assert_eq!(etc, local.read_dir("/etc").unwrap());
    assert!(etc.iter().any(|n| n == "bad\u{fffd}name"), "{etc:?}");
    assert_eq!(remote.stat("/etc/passwd").unwrap().kind, FileKind::File);

    let peak = peak_rss_kib(child.id());
    println!("agent: {} requests, peak RSS {peak} KiB", remote.requests());
    // The 100k-name listing is the largest answer (about 1.2 MB).
    assert!(peak < 32 * 1024, "the agent's peak RSS is {peak} KiB");
    drop(remote);
    assert!(
        child.wait().unwrap().success(),
        "the agent ends when its input does"
    );
    // And on BYE, with its input still open.
    let (mut child, remote) = agent(root);
    assert!(remote.stat("/etc").is_ok());
    remote.bye().unwrap();
    assert!(child.wait().unwrap().success(), "the agent ends on BYE");
    drop(remote);
}

#[test]
fn a_bad_root_or_greeting_is_an_error_not_a_hang() {
    let out = Command::new(env!("CARGO_BIN_EXE_dscan-agent"))
        .arg("/nonexistent-root")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
    // A stream that is not an agent is refused at the greeting.
    let mut not_agent: &[u8] = b"\x05\x00\x00\x00hello";
    assert!(RemoteFs::connect(&mut not_agent, Vec::new()).is_err());
    let mut empty: &[u8] = b"";
    assert!(RemoteFs::connect(&mut empty, Vec::new()).is_err());
}

#[test]
#[ignore = "needs root: creating a device node (./scripts/test runs these as root)"]
fn a_device_node_is_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    // A character device like /dev/zero: reading it would never end.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("zero"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 5),
    )
    .expect("mknod (root)");
    let (mut child, remote) = agent(dir.path());
    assert!(matches!(
        remote.read("/zero", 1 << 20),
        Err(FsError::NotRegular {
            kind: "character_device",
            ..
        })
    ));
    assert_eq!(remote.stat("/zero").unwrap().kind, FileKind::CharDevice);
    drop(remote);
    assert!(child.wait().unwrap().success());
}

/// Drops what differs between two runs of the same scan: times, and the
/// object addresses InSpec prints (`#<…:0x00007f…>`).
fn timeless(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            while let Some(i) = s.find("0x00") {
                let end = s[i + 2..]
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .map_or(s.len(), |n| i + 2 + n);
                s.replace_range(i..end, "ADDRESS");
            }
        }
        serde_json::Value::Object(m) => {
            for k in ["run_time", "start_time", "duration"] {
                m.remove(k);
            }
            m.values_mut().for_each(timeless);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(timeless),
        _ => {}
    }
}

/// Where two JSON documents first differ, for the failure message.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: String) -> String {
    use serde_json::Value as J;
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if v != w => return first_difference(v, w, format!("{at}/{k}")),
                    None => return format!("{at}/{k}: only on the left"),
                    _ => {}
                }
            }
            format!("{at}: keys differ")
        }
        (J::Array(x), J::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (v, w))| v != w)
            .map(|(i, (v, w))| first_difference(v, w, format!("{at}/{i}")))
            .unwrap_or_default(),
        _ => format!("{at}: {a} != {b}"),
    }
}

#[test]
fn the_engine_through_the_agent_reports_what_it_reports_locally() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/inspec");
    for (profile, image) in [
        ("profiles/conformance", "rootfs/debian-slim-like.tar"),
        (
            "profiles/dev-sec/cis-dil-benchmark",
            "rootfs/distroless-static.tar",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("tar")
            .arg("-xf")
            .arg(fixtures.join(image))
            .arg("-C")
            .arg(dir.path())
            .status()
            .expect("tar");
        assert!(status.success());
        let options = dscan_engine::Options {
            profile_ref: profile.to_string(),
            ..Default::default()
        };
        let local = RootDir::open(dir.path()).unwrap();
        let mut here = dscan_engine::run(&fixtures.join(profile), &local, &options).unwrap();
        let (mut child, remote) = agent(dir.path());
        let mut there = dscan_engine::run(&fixtures.join(profile), &remote, &options).unwrap();
        timeless(&mut here);
        timeless(&mut there);
        assert!(
            here == there,
            "{profile} on {image}: {}",
            first_difference(&here, &there, String::new())
        );
        println!(
            "{profile} on {image}: {} agent requests in {} round trips",
            remote.requests(),
            remote.round_trips()
        );
        // Fetching ahead answers most questions in a few pipelined batches.
        assert!(
            remote.round_trips() * 2 < remote.requests(),
            "{} round trips for {} requests",
            remote.round_trips(),
            remote.requests()
        );
        drop(remote);
        assert!(child.wait().unwrap().success());
    }
}
