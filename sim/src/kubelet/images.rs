//! The simulator's "images": root-filesystem directories with a small config
//! (user, entrypoint), registered by name and addressable by digest.
//!
//! - `sim.local/distroless:latest` / `:nonroot` — like Google's distroless
//!   Debian 12: passwd/group/os-release, dpkg `status.d` entries, CA
//!   certificates, no shell and no package manager, plus one static program
//!   (`/app/server`) that just runs. `:nonroot` runs as 65532.
//! - `sim.local/busybox:1.35` — a debug image: Debian's static busybox with
//!   every applet linked in `/bin`.
//! - `sim.local/shell-app:latest` — a target that has a shell (not distroless).
//! - `sim.local/cinc-auditor:standin` — a scanner image for the graft
//!   strategy: busybox plus a *stand-in* `/opt/cinc-auditor/bin/cinc-auditor`
//!   (a script, not CINC) that reports what it sees at `/` as HDF.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::SimError;

/// The static program of the distroless images.
const PAUSE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sim-pause"));

/// The distroless image's name.
pub const DISTROLESS: &str = "sim.local/distroless:latest";
/// The non-root distroless variant.
pub const DISTROLESS_NONROOT: &str = "sim.local/distroless:nonroot";
/// The busybox debug image.
pub const BUSYBOX: &str = "sim.local/busybox:1.35";
/// An image with a shell.
pub const SHELL_APP: &str = "sim.local/shell-app:latest";
/// The scanner image with a stand-in CINC Auditor.
pub const CINC_STANDIN: &str = "sim.local/cinc-auditor:standin";
/// [`CINC_STANDIN`] with a dynamically linked (glibc) interpreter, as the
/// real CINC Auditor's Ruby is: its ELF interpreter path names a loader the
/// graft's view would take from the target.
pub const CINC_DYNAMIC: &str = "sim.local/cinc-auditor:dynamic";

/// A hostile root target: distroless, plus a `/fake` tree (its own
/// os-release says "Fake"); its PID 1 chroots into `/fake` once
/// `/dscan-test-trigger` exists (the tests write it through
/// `/proc/<pid>/root`), steering `/proc/<pid>/root` to a tree it chose.
pub const HOSTILE_CHROOT: &str = "sim.local/hostile:chroot-later";
/// A hostile target for the graft strategy: distroless with `/opt` a
/// symlink to `/data/opt` (a graft of `/opt/cinc-auditor` that followed it
/// would create directories in the target's own tree).
pub const HOSTILE_OPT_LINK: &str = "sim.local/hostile:opt-link";
/// A hostile target that plants programs where a careless scanner would
/// run them from: `/bin/cat`, the x86-64 glibc and musl ELF interpreters
/// `/lib64/ld-linux-x86-64.so.2` and `/lib/ld-musl-x86_64.so.1`, and
/// `/etc/ld.so.preload` naming the first. Each
/// planted program appends its name to `/dscan-planted-ran` when run.
pub const HOSTILE_PLANTED: &str = "sim.local/hostile:planted";
/// A busybox debug image like docker-library's default `busybox` (the glibc
/// variant): a dynamically linked busybox with its loader and libc, and no
/// standalone shell (applets are found through `PATH`). Built from Debian's
/// dynamic `busybox` package unpacked by `scripts/system-packages` into
/// `/var/cache/dscan-sim/busybox-glibc` (or `$DSCAN_SIM_BUSYBOX_GLIBC`).
pub const BUSYBOX_GLIBC: &str = "sim.local/busybox:glibc";
/// A busybox debug image built against musl, as Alpine builds it: dynamically
/// linked (its loader `/lib/ld-musl-x86_64.so.1` in the image), default
/// configuration, so no standalone shell. Built from Debian's busybox source
/// by `scripts/system-packages` into `/var/cache/dscan-sim/busybox-musl` (or
/// `$DSCAN_SIM_BUSYBOX_MUSL`, the directory holding `bin/` and `lib/`).
pub const BUSYBOX_MUSL: &str = "sim.local/busybox:musl";
/// The stand-in scanner script of [`CINC_STANDIN`].
const STANDIN_SCANNER: &str = include_str!("../../fixtures/standin-cinc-auditor.sh");

/// One image.
#[derive(Debug, Clone)]
pub struct Image {
    /// Root filesystem.
    pub rootfs: PathBuf,
    /// `sha256:<hex>` over the tree and config.
    pub digest: String,
    /// Default user (`uid`, `gid`).
    pub user: (u32, u32),
    /// ENTRYPOINT.
    pub entrypoint: Vec<String>,
    /// CMD.
    pub cmd: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
}

/// All images, by `repository:tag`.
#[derive(Debug, Clone, Default)]
pub struct Images {
    by_name: BTreeMap<String, Image>,
    /// Why some images are missing (busybox-static not found…).
    pub missing: BTreeMap<String, String>,
}

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Images {
    /// Builds the fixture images under `dir`.
    pub fn build(dir: &Path) -> Result<Self, SimError> {
        let mut images = Images::default();
        let distroless = dir.join("distroless");
        build_distroless(&distroless)?;
        images.add(
            DISTROLESS,
            distroless.clone(),
            (0, 0),
            vec!["/app/server".into()],
            vec![],
        )?;
        images.add(
            DISTROLESS_NONROOT,
            distroless,
            (65532, 65532),
            vec!["/app/server".into()],
            vec![],
        )?;
        let hostile = dir.join("hostile-chroot");
        build_distroless(&hostile)?;
        dir_all(&hostile, "fake/etc")?;
        write(
            &hostile,
            "fake/etc/os-release",
            b"PRETTY_NAME=\"Fake\"\nID=fake\n",
            0o644,
        )?;
        images.add(
            HOSTILE_CHROOT,
            hostile,
            (0, 0),
            vec![
                "/app/server".into(),
                "--chroot-on-trigger".into(),
                "/fake".into(),
            ],
            vec![],
        )?;
        let planted = dir.join("hostile-planted");
        build_distroless(&planted)?;
        write(&planted, "bin/cat", PAUSE, 0o755)?;
        write(&planted, "lib64/ld-linux-x86-64.so.2", PAUSE, 0o755)?;
        write(&planted, MUSL_LOADER, PAUSE, 0o755)?;
        write(
            &planted,
            "etc/ld.so.preload",
            b"/lib64/ld-linux-x86-64.so.2\n",
            0o644,
        )?;
        images.add(
            HOSTILE_PLANTED,
            planted,
            (0, 0),
            vec!["/app/server".into()],
            vec![],
        )?;
        let opt_link = dir.join("hostile-opt-link");
        build_distroless(&opt_link)?;
        dir_all(&opt_link, "data/opt")?;
        std::os::unix::fs::symlink("/data/opt", opt_link.join("opt")).map_err(io(&opt_link))?;
        images.add(
            HOSTILE_OPT_LINK,
            opt_link,
            (0, 0),
            vec!["/app/server".into()],
            vec![],
        )?;
        match find_glibc_busybox() {
            Ok(bb) => {
                let root = dir.join("busybox-glibc");
                build_busybox(&root, &bb, None)?;
                // The loader and libraries it names, as the image ships them.
                for (from, to) in [
                    ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
                    (
                        "/lib/x86_64-linux-gnu/libc.so.6",
                        "lib/x86_64-linux-gnu/libc.so.6",
                    ),
                    (
                        "/lib/x86_64-linux-gnu/libresolv.so.2",
                        "lib/x86_64-linux-gnu/libresolv.so.2",
                    ),
                ] {
                    let bytes = fs::read(from).map_err(io(Path::new(from)))?;
                    write(&root, to, &bytes, 0o755)?;
                }
                images.add(BUSYBOX_GLIBC, root, (0, 0), vec![], vec!["sh".into()])?;
            }
            Err(why) => {
                images.missing.insert(BUSYBOX_GLIBC.into(), why);
            }
        }
        match find_musl_busybox() {
            Ok(built) => {
                let root = dir.join("busybox-musl");
                let loader = built.join(MUSL_LOADER);
                build_busybox_with(&root, &built.join("bin/busybox"), None, Some(&loader))?;
                let bytes = fs::read(&loader).map_err(io(&loader))?;
                write(&root, MUSL_LOADER, &bytes, 0o755)?;
                images.add(BUSYBOX_MUSL, root, (0, 0), vec![], vec!["sh".into()])?;
            }
            Err(why) => {
                images.missing.insert(BUSYBOX_MUSL.into(), why);
            }
        }
        match find_busybox() {
            Ok(busybox) => {
                let bb = dir.join("busybox");
                build_busybox(&bb, &busybox, None)?;
                images.add(BUSYBOX, bb, (0, 0), vec![], vec!["sh".into()])?;
                let shell = dir.join("shell-app");
                build_busybox(&shell, &busybox, Some(DEBIAN_OS_RELEASE))?;
                images.add(
                    SHELL_APP,
                    shell,
                    (0, 0),
                    vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        "trap 'exit 0' TERM; while :; do sleep 1; done".into(),
                    ],
                    vec![],
                )?;
                let cinc = dir.join("cinc-auditor");
                build_busybox(&cinc, &busybox, Some(DEBIAN_OS_RELEASE))?;
                let bytes = fs::read(&busybox).map_err(io(&busybox))?;
                write(
                    &cinc,
                    "opt/cinc-auditor/embedded/bin/busybox",
                    &bytes,
                    0o755,
                )?;
                write(
                    &cinc,
                    "opt/cinc-auditor/bin/cinc-auditor",
                    STANDIN_SCANNER.as_bytes(),
                    0o755,
                )?;
                images.add(CINC_STANDIN, cinc, (0, 0), vec![], vec!["sh".into()])?;
                match find_glibc_busybox() {
                    Ok(glibc) => {
                        let dynamic = dir.join("cinc-auditor-dynamic");
                        build_busybox(&dynamic, &busybox, Some(DEBIAN_OS_RELEASE))?;
                        let bytes = fs::read(&glibc).map_err(io(&glibc))?;
                        write(
                            &dynamic,
                            "opt/cinc-auditor/embedded/bin/busybox",
                            &bytes,
                            0o755,
                        )?;
                        write(
                            &dynamic,
                            "opt/cinc-auditor/bin/cinc-auditor",
                            STANDIN_SCANNER.as_bytes(),
                            0o755,
                        )?;
                        images.add(CINC_DYNAMIC, dynamic, (0, 0), vec![], vec!["sh".into()])?;
                    }
                    Err(why) => {
                        images.missing.insert(CINC_DYNAMIC.into(), why);
                    }
                }
            }
            Err(why) => {
                images.missing.insert(BUSYBOX.into(), why.clone());
                images.missing.insert(SHELL_APP.into(), why.clone());
                images.missing.insert(CINC_STANDIN.into(), why.clone());
                images.missing.insert(CINC_DYNAMIC.into(), why);
            }
        }
        Ok(images)
    }

    /// Registers a directory as an image (tests add their own, e.g. a stand-in scanner image).
    pub fn add(
        &mut self,
        name: &str,
        rootfs: PathBuf,
        user: (u32, u32),
        entrypoint: Vec<String>,
        cmd: Vec<String>,
    ) -> Result<(), SimError> {
        let digest = tree_digest(&rootfs, &format!("{user:?}{entrypoint:?}{cmd:?}"))?;
        self.by_name.insert(
            name.to_string(),
            Image {
                rootfs,
                digest,
                user,
                entrypoint,
                cmd,
                env: vec![PATH_ENV.to_string()],
            },
        );
        Ok(())
    }

    /// Resolves `repo:tag`, `repo@sha256:…` or `repo:tag@sha256:…`.
    pub fn resolve(&self, reference: &str) -> Option<(&str, &Image)> {
        if let Some((repo, digest)) = reference.split_once('@') {
            let repo = repo
                .rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))
                .map_or(repo, |(r, _)| r);
            return self
                .by_name
                .iter()
                .find(|(name, image)| {
                    image.digest == digest && name.rsplit_once(':').map(|(r, _)| r) == Some(repo)
                })
                .map(|(n, i)| (n.as_str(), i));
        }
        let name = if reference
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
        {
            reference.to_string()
        } else {
            format!("{reference}:latest")
        };
        self.by_name
            .get_key_value(&name)
            .map(|(n, i)| (n.as_str(), i))
    }

    /// `repo@sha256:…` for an image name (to pin by digest).
    pub fn pinned(&self, name: &str) -> Option<String> {
        let (n, image) = self.resolve(name)?;
        let repo = n.rsplit_once(':').map_or(n, |(r, _)| r);
        Some(format!("{repo}@{}", image.digest))
    }

    /// Why an image is not available, for the pull error.
    pub fn missing_reason(&self, reference: &str) -> Option<&str> {
        self.missing.get(reference).map(String::as_str)
    }
}

const DISTROLESS_OS_RELEASE: &str = r#"PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="12"
VERSION="Debian GNU/Linux 12 (bookworm)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"
BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"
"#;

const DEBIAN_OS_RELEASE: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |e| SimError::Image(format!("{}: {e}", path.display()))
}

fn write(root: &Path, rel: &str, content: &[u8], mode: u32) -> Result<(), SimError> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    fs::write(&path, content).map_err(io(&path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io(&path))
}

fn dir(root: &Path, rel: &str, mode: u32, owner: Option<u32>) -> Result<(), SimError> {
    let path = root.join(rel);
    fs::create_dir_all(&path).map_err(io(&path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io(&path))?;
    if let Some(uid) = owner {
        std::os::unix::fs::chown(&path, Some(uid), Some(uid)).map_err(io(&path))?;
    }
    Ok(())
}

fn dpkg_entry(package: &str, version: &str, arch: &str) -> String {
    format!(
        "Package: {package}\nStatus: install ok installed\nPriority: required\nSection: misc\nMaintainer: Debian Maintainers\nArchitecture: {arch}\nVersion: {version}\nDescription: {package} (distroless layer)\n"
    )
}

fn dir_all(root: &Path, rel: &str) -> Result<(), SimError> {
    let path = root.join(rel);
    fs::create_dir_all(&path).map_err(io(&path))
}

fn build_distroless(root: &Path) -> Result<(), SimError> {
    for (rel, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("etc", 0o755),
        ("var/lib/dpkg/status.d", 0o755),
    ] {
        dir(root, rel, mode, None)?;
    }
    dir(root, "tmp", 0o1777, None)?;
    dir(root, "root", 0o700, None)?;
    dir(root, "home/nonroot", 0o700, Some(65532))?;
    write(root, "etc/passwd", PASSWD.as_bytes(), 0o644)?;
    write(root, "etc/group", GROUP.as_bytes(), 0o644)?;
    write(
        root,
        "etc/os-release",
        DISTROLESS_OS_RELEASE.as_bytes(),
        0o644,
    )?;
    write(
        root,
        "etc/nsswitch.conf",
        b"passwd: files\ngroup: files\nhosts: files dns\n",
        0o644,
    )?;
    for (pkg, version, arch) in [
        ("base-files", "12.4+deb12u10", "amd64"),
        ("netbase", "6.4", "all"),
        ("tzdata", "2025b-0+deb12u1", "all"),
        ("media-types", "10.0.0", "all"),
    ] {
        write(
            root,
            &format!("var/lib/dpkg/status.d/{pkg}"),
            dpkg_entry(pkg, version, arch).as_bytes(),
            0o644,
        )?;
    }
    let certs = fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    write(root, "etc/ssl/certs/ca-certificates.crt", &certs, 0o644)?;
    write(root, "app/server", PAUSE, 0o755)?;
    Ok(())
}

/// Finds the unpacked dynamic (glibc) busybox.
fn find_glibc_busybox() -> Result<PathBuf, String> {
    if std::env::consts::ARCH != "x86_64" {
        return Err("the glibc busybox image is modelled on x86-64 only".into());
    }
    let path = std::env::var_os("DSCAN_SIM_BUSYBOX_GLIBC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/dscan-sim/busybox-glibc/bin/busybox"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no dynamic busybox at {} (scripts/system-packages unpacks Debian's busybox package there)",
            path.display()
        ))
    }
}

/// The musl loader's path in an image (x86-64).
const MUSL_LOADER: &str = "lib/ld-musl-x86_64.so.1";

/// Finds the busybox built against musl and its loader.
fn find_musl_busybox() -> Result<PathBuf, String> {
    if std::env::consts::ARCH != "x86_64" {
        return Err("the musl busybox image is modelled on x86-64 only".into());
    }
    let dir = std::env::var_os("DSCAN_SIM_BUSYBOX_MUSL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/dscan-sim/busybox-musl"));
    if dir.join("bin/busybox").is_file() && dir.join(MUSL_LOADER).is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "no musl busybox and loader in {} (scripts/system-packages builds them there)",
            dir.display()
        ))
    }
}

/// Finds a statically linked busybox (Debian's `busybox-static`).
fn find_busybox() -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = std::env::var_os("DSCAN_SIM_BUSYBOX")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/busybox", "/bin/busybox"].map(PathBuf::from))
        .collect();
    for c in candidates {
        if fs::read(&c).is_ok_and(|bytes| is_static_elf(&bytes)) {
            return Ok(c);
        }
    }
    Err("no statically linked busybox found: install Debian's busybox-static (apt-get install busybox-static) or set DSCAN_SIM_BUSYBOX".into())
}

/// An ELF executable without a `PT_INTERP` header needs no dynamic loader.
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if bytes.get(0..4) != Some(b"\x7fELF") || bytes.get(4) != Some(&2) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let at = phoff + i * usize::from(phentsize);
        bytes
            .get(at..at + 4)
            .map(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]))
            != Some(3)
    })
}

fn build_busybox(root: &Path, busybox: &Path, os_release: Option<&str>) -> Result<(), SimError> {
    build_busybox_with(root, busybox, os_release, None)
}

/// [`build_busybox`] for a busybox whose loader the host may lack: its
/// applets are listed by running it through `loader`.
fn build_busybox_with(
    root: &Path,
    busybox: &Path,
    os_release: Option<&str>,
    loader: Option<&Path>,
) -> Result<(), SimError> {
    for (rel, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("bin", 0o755),
        ("root", 0o700),
    ] {
        dir(root, rel, mode, None)?;
    }
    dir(root, "tmp", 0o1777, None)?;
    let bytes = fs::read(busybox).map_err(io(busybox))?;
    write(root, "bin/busybox", &bytes, 0o755)?;
    write(root, "etc/passwd", PASSWD.as_bytes(), 0o644)?;
    write(root, "etc/group", GROUP.as_bytes(), 0o644)?;
    if let Some(text) = os_release {
        write(root, "etc/os-release", text.as_bytes(), 0o644)?;
    }
    let mut list = match loader {
        Some(loader) => {
            let mut c = std::process::Command::new(loader);
            c.arg(busybox);
            c
        }
        None => std::process::Command::new(busybox),
    };
    let list = list
        .arg("--list")
        .output()
        .map_err(|e| SimError::Image(format!("{} --list: {e}", busybox.display())))?;
    if !list.status.success() {
        return Err(SimError::Image(format!(
            "{} --list failed: {}",
            busybox.display(),
            String::from_utf8_lossy(&list.stderr).trim()
        )));
    }
    for applet in String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let link = root.join("bin").join(applet);
        if !link.exists() {
            symlink("busybox", &link).map_err(io(&link))?;
        }
    }
    Ok(())
}

fn tree_digest(root: &Path, config: &str) -> Result<String, SimError> {
    let mut hasher = Sha256::new();
    hasher.update(config.as_bytes());
    let mut stack = vec![root.to_path_buf()];
    let mut entries = vec![];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
            if meta.is_dir() {
                stack.push(path.clone());
            }
            entries.push((path, meta));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, meta) in entries {
        let rel = path.strip_prefix(root).unwrap_or(&path);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(meta.permissions().mode().to_le_bytes());
        if meta.is_file() {
            hasher.update(fs::read(&path).map_err(io(&path))?);
        } else if meta.file_type().is_symlink() {
            hasher.update(
                fs::read_link(&path)
                    .map_err(io(&path))?
                    .to_string_lossy()
                    .as_bytes(),
            );
        }
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distroless_has_no_shell_and_resolves_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let images = Images::build(dir.path()).unwrap();
        let (_, d) = images.resolve(DISTROLESS).unwrap();
        assert!(!d.rootfs.join("bin/sh").exists());
        assert!(d.rootfs.join("etc/os-release").is_file());
        assert!(is_static_elf(
            &fs::read(d.rootfs.join("app/server")).unwrap()
        ));
        let pinned = images.pinned(DISTROLESS).unwrap();
        assert!(
            pinned.starts_with("sim.local/distroless@sha256:"),
            "{pinned}"
        );
        assert_eq!(images.resolve(&pinned).unwrap().0, DISTROLESS);
        assert!(images.resolve("sim.local/distroless@sha256:0000").is_none());
        assert_eq!(
            images.resolve(DISTROLESS_NONROOT).unwrap().1.user,
            (65532, 65532)
        );
    }

    #[test]
    fn a_dynamic_executable_is_not_static() {
        assert!(!is_static_elf(&fs::read("/bin/ls").unwrap()));
    }
}
