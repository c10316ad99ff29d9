//! Resources InSpec answers by running programs in the target (dpkg,
//! systemctl, lsmod, sysctl, mount, iptables…). dscan answers from the
//! target's files where those hold the truth (the dpkg database, `/proc`);
//! where they do not, the resource is skipped with the reason — never a
//! made-up "not installed" or "not running".

use crate::fs::TargetFs;
use crate::value::Value;

/// One package of the dpkg database.
#[derive(Debug, Clone)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture.
    pub arch: String,
    /// `Status:` (`install ok installed`, `deinstall ok config-files`…).
    pub status: String,
}

impl Package {
    /// dpkg's "installed" state.
    pub fn installed(&self) -> bool {
        self.status.ends_with(" installed")
    }
}

fn paragraphs(text: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|p| {
            let field = |k: &str| {
                p.lines()
                    .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(':')))
                    .map(|v| v.trim().to_string())
            };
            Some(Package {
                name: field("Package")?,
                version: field("Version").unwrap_or_default(),
                arch: field("Architecture").unwrap_or_default(),
                // distroless's status.d entries may omit Status: they are installed.
                status: field("Status").unwrap_or_else(|| "install ok installed".into()),
            })
        })
        .collect()
}

/// The dpkg database: `/var/lib/dpkg/status` and distroless's
/// `/var/lib/dpkg/status.d/*`; `None` when the target has neither.
pub fn dpkg(fs: &dyn TargetFs, limit: u64) -> Option<Vec<Package>> {
    let mut found = false;
    let mut out = Vec::new();
    if let Ok(b) = fs.read("/var/lib/dpkg/status", limit) {
        found = true;
        out.extend(paragraphs(&String::from_utf8_lossy(&b)));
    }
    if let Ok(names) = fs.read_dir("/var/lib/dpkg/status.d") {
        found = true;
        for n in names.iter().filter(|n| !n.ends_with(".md5sums")) {
            if let Ok(b) = fs.read(&format!("/var/lib/dpkg/status.d/{n}"), limit) {
                out.extend(paragraphs(&String::from_utf8_lossy(&b)));
            }
        }
    }
    found.then_some(out)
}

/// A kernel parameter from the target's `/proc/sys`, typed as sysctl
/// prints it (an integer when it is one).
pub fn kernel_parameter(fs: &dyn TargetFs, name: &str, limit: u64) -> Option<Value> {
    if name.contains("..") {
        return None;
    }
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let text = String::from_utf8_lossy(&fs.read(&path, limit).ok()?)
        .trim()
        .to_string();
    Some(match text.parse::<i64>() {
        Ok(i) => Value::Int(i),
        Err(_) => Value::str(&text),
    })
}

/// Mount points from the target's `/proc/mounts` (its own mount
/// namespace when scanned live); `None` when it is not readable.
pub fn mounts(fs: &dyn TargetFs, limit: u64) -> Option<Vec<(String, String, String)>> {
    let b = fs.read("/proc/mounts", limit).ok()?;
    Some(
        String::from_utf8_lossy(&b)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((
                    f.get(1)?.to_string(),
                    f.get(2)?.to_string(),
                    f.get(3)?.to_string(),
                ))
            })
            .collect(),
    )
}

/// Why a program-backed resource cannot be evaluated from files.
pub fn unavailable(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "service" | "systemd_service" | "sysv_service" | "upstart_service" | "runit_service" => {
            "it asks the target's init system (systemctl and the like), which a distroless container does not run"
        }
        "kernel_module" => {
            "it runs lsmod and modprobe in the target, which has no shell or kernel module tools"
        }
        "iptables" | "ip6tables" | "nftables" => {
            "it runs the firewall tools in the target, which has none"
        }
        "port" | "auditd" | "crontab" | "bash" | "sh" | "powershell" | "x509_certificate"
        | "http" | "host" => "it runs programs in the target, which has no shell",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dpkg_database_and_distroless_status_d_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("var/lib/dpkg/status.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("base-files"),
            "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n",
        )
        .unwrap();
        std::fs::write(d.join("base-files.md5sums"), "0123  etc/issue\n").unwrap();
        std::fs::write(
            dir.path().join("var/lib/dpkg/status"),
            "Package: telnetd\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: bash\nStatus: install ok installed\nVersion: 5.2\n",
        )
        .unwrap();
        let fs = crate::fs::RootDir::open(dir.path()).unwrap();
        let db = dpkg(&fs, 1 << 20).unwrap();
        let state = |n: &str| db.iter().find(|p| p.name == n).map(Package::installed);
        assert_eq!(state("bash"), Some(true));
        assert_eq!(
            state("telnetd"),
            Some(false),
            "config-files only is not installed"
        );
        assert_eq!(
            state("base-files"),
            Some(true),
            "status.d entries are installed"
        );
        assert_eq!(db.len(), 3, "md5sums files are not packages");
        let empty = tempfile::tempdir().unwrap();
        assert!(dpkg(&crate::fs::RootDir::open(empty.path()).unwrap(), 1 << 20).is_none());
        assert!(kernel_parameter(&fs, "../../etc/passwd", 100).is_none());
        std::fs::create_dir_all(dir.path().join("proc/sys/fs")).unwrap();
        std::fs::write(dir.path().join("proc/sys/fs/suid_dumpable"), "0\n").unwrap();
        assert!(matches!(
            kernel_parameter(&fs, "fs.suid_dumpable", 100),
            Some(Value::Int(0))
        ));
    }
}
