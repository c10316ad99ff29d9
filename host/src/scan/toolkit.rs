//! The static toolkit the chroot wrapper runs inside the target's root.
//!
//! Every command the wrapper runs is `chroot TARGET-ROOT TOOLKIT sh -c CMD`.
//! After the chroot the kernel resolves the toolkit's ELF interpreter, and
//! the shell resolves command names, *inside the target*: a dynamically
//! linked busybox (docker-library's default `busybox` is the glibc variant)
//! would get its loader and libc from the target — a hostile target's loader
//! would run with the debug container's credentials, and on a static
//! distroless target nothing runs at all; a shell without busybox's
//! standalone mode (the musl variant) looks `cat`, `stat`, `find` up on the
//! target's PATH. So the toolkit is not taken from the debug image: dscan
//! uploads one it has verified on this machine — a static ELF for the node's
//! architecture (no `PT_INTERP`) whose shell runs applets without PATH — into
//! the debug container, checks its digest there, and the wrapper uses only
//! that.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The largest toolkit accepted (a static busybox is 1–3 MiB).
const MAX_BYTES: u64 = 16 << 20;

/// A verified toolkit.
#[derive(Debug, Clone)]
pub struct Toolkit {
    /// Where it was found on this machine.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: std::sync::Arc<Vec<u8>>,
    /// Hex SHA-256.
    pub sha256: String,
}

/// The ELF machine number of this build's architecture.
fn elf_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "aarch64" => Some(183),
        _ => None,
    }
}

/// Checks that `bytes` is a 64-bit little-endian ELF executable for this
/// architecture with no program interpreter (statically linked).
pub fn check_static_elf(bytes: &[u8]) -> Result<(), String> {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("it is not an ELF executable".into());
    }
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return Err("it is not a 64-bit little-endian ELF".into());
    }
    let machine = u16_at(18).ok_or("truncated ELF header")?;
    if Some(machine) != elf_machine() {
        return Err(format!(
            "it is built for ELF machine {machine}, not this machine's {}",
            std::env::consts::ARCH
        ));
    }
    let phoff = usize::try_from(u64_at(0x20).ok_or("truncated ELF header")?)
        .map_err(|_| "bad program header offset")?;
    let phentsize = usize::from(u16_at(0x36).ok_or("truncated ELF header")?);
    let phnum = usize::from(u16_at(0x38).ok_or("truncated ELF header")?);
    if phentsize < 4 || phnum == 0 {
        return Err("it has no program headers".into());
    }
    for i in 0..phnum {
        let p_type = u32_at(phoff + i * phentsize).ok_or("truncated program headers")?;
        // PT_INTERP: the kernel would load this interpreter — from the
        // target's root, after the chroot.
        if p_type == 3 {
            return Err(
                "it is dynamically linked (it names an ELF interpreter, which would be loaded from the target's root)"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Whether the busybox at `path` runs applets without PATH (standalone
/// shell): with PATH pointing nowhere, `cat` must still run.
fn check_standalone(path: &Path) -> Result<(), String> {
    let out = std::process::Command::new(path)
        .args(["sh", "-c", "cat </dev/null && echo standalone"])
        .env_clear()
        .env("PATH", "/dscan-no-such-directory")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run it: {e}"))?;
    if out.status.success() && out.stdout.starts_with(b"standalone") {
        Ok(())
    } else {
        Err(
            "its shell does not run applets without PATH (no standalone shell): commands would be looked up on the target's PATH"
                .into(),
        )
    }
}

/// Reads and verifies a toolkit candidate.
pub fn verify(path: &Path) -> Result<Toolkit, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_BYTES {
        return Err(format!("{} is over {MAX_BYTES} bytes", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    check_static_elf(&bytes).map_err(|why| format!("{}: {why}", path.display()))?;
    check_standalone(path).map_err(|why| format!("{}: {why}", path.display()))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(Toolkit {
        path: path.to_path_buf(),
        bytes: std::sync::Arc::new(bytes),
        sha256,
    })
}

/// The toolkit to upload: `explicit` (`--toolkit`), else `$DSCAN_TOOLKIT`,
/// else the first verified busybox among `/usr/bin/busybox` and
/// `/bin/busybox` (Debian's and Ubuntu's `busybox-static` qualifies).
pub fn find(explicit: Option<&Path>) -> Result<Toolkit, String> {
    if let Some(p) = explicit {
        return verify(p);
    }
    if let Some(p) = std::env::var_os("DSCAN_TOOLKIT") {
        return verify(Path::new(&p));
    }
    let mut why = vec![];
    for candidate in ["/usr/bin/busybox", "/bin/busybox"] {
        match verify(Path::new(candidate)) {
            Ok(t) => return Ok(t),
            Err(e) => why.push(e),
        }
    }
    Err(format!(
        "the chroot-wrapper strategy needs a static busybox with a standalone shell on this machine, to run inside the target's root \
         (Debian/Ubuntu: apt-get install busybox-static), or --toolkit PATH; none found: {}",
        why.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(interp: bool) -> Vec<u8> {
        let mut b = vec![0u8; 0x40 + 2 * 56];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&elf_machine().unwrap_or(62).to_le_bytes());
        b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        b[0x40..0x44].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        let second: u32 = if interp { 3 } else { 1 };
        b[0x40 + 56..0x40 + 60].copy_from_slice(&second.to_le_bytes());
        b
    }

    #[test]
    fn only_static_elves_for_this_machine_pass() {
        assert!(check_static_elf(&elf(false)).is_ok());
        let err = check_static_elf(&elf(true)).unwrap_err();
        assert!(err.contains("dynamically linked"), "{err}");
        assert!(check_static_elf(b"#!/bin/sh\n").is_err());
        assert!(check_static_elf(&elf(false)[..0x30]).is_err());
        let mut other = elf(false);
        other[18..20].copy_from_slice(&40u16.to_le_bytes()); // ARM
        assert!(
            check_static_elf(&other)
                .unwrap_err()
                .contains("ELF machine 40")
        );
    }

    #[test]
    fn a_dynamic_binary_is_refused() {
        // /bin/ls on every glibc distribution names an interpreter (it is
        // required here, not skipped when missing).
        let err = verify(Path::new("/bin/ls")).unwrap_err();
        assert!(err.contains("dynamically linked"), "{err}");
    }
}
