//! The debug container's search for the target process
//! (`contract::locate_target_script`), on process tables shaped like real
//! nodes': containerd and CRI-O, cgroup v1 and v2, the systemd and cgroupfs
//! drivers, a reader in its own cgroup namespace. The simulator's containers
//! are found through mountinfo; these are the layouts a real node shows in
//! `/proc/<pid>/cgroup`. The script runs unchanged but for its paths: its
//! `/proc/` points at a fake table of `cgroup`, `mountinfo` and `root` (a
//! symlink, as in procfs) per process.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use dscan::access::contract::{locate_target_script, state};

const ID: &str = "3f9a1c0e5b7d4a2e8c6f1b3d5a7e9c0b2d4f6a8c1e3b5d7f9a0c2e4b6d8f0a1c";
const PAUSE: &str = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";
const SIDECAR: &str = "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d";
const POD: &str = "6e1c4b7a-2d3f-4e5a-9b8c-7d6e5f4a3b2c";

/// A fake `/proc` and the root directories its processes point at.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    /// A node whose PID 1 (init) has the node's root.
    fn new() -> Node {
        let node = Node {
            dir: tempfile::tempdir().unwrap(),
        };
        for root in ["node-root", "pause-root", "target-root", "sidecar-root"] {
            std::fs::create_dir(node.dir.path().join(root)).unwrap();
        }
        std::fs::create_dir(node.proc()).unwrap();
        node.process(1, "0::/init.scope\n", "node-root");
        node
    }

    fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    /// A process with this cgroup file and root (a directory of the fake
    /// node, or a name that does not exist: a root we cannot read).
    fn process(&self, pid: u32, cgroup: &str, root: &str) {
        let p = self.proc().join(pid.to_string());
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("cgroup"), cgroup).unwrap();
        std::fs::write(
            p.join("mountinfo"),
            "22 1 8:1 / / rw,relatime - ext4 /dev/vda1 rw\n",
        )
        .unwrap();
        symlink(self.dir.path().join(root), p.join("root")).unwrap();
    }

    /// Runs the search for `container_id`: the PID it chose, or its error.
    fn locate(&self, container_id: &str) -> Result<u32, String> {
        let out = self.dir.path().join("target-pid");
        let fake = format!("{}/", self.proc().display());
        let script = locate_target_script(true, container_id)
            .replace("/proc/", &fake)
            .replace(state::TARGET_PID, out.to_str().unwrap());
        assert!(
            !script.replace(&fake, "").contains("/proc"),
            "a path still reads the real /proc: {script}"
        );
        let run = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        if !run.status.success() {
            return Err(String::from_utf8_lossy(&run.stderr).into_owned());
        }
        Ok(read_pid(&out))
    }
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// containerd with the systemd cgroup driver on cgroup v2 (the default of
/// current kubeadm, GKE, EKS and AKS nodes).
fn containerd_systemd_v2(id: &str) -> String {
    let pod = POD.replace('-', "_");
    format!(
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod}.slice/cri-containerd-{id}.scope\n"
    )
}

#[test]
fn containerd_cgroup_v2_the_target_not_the_pause_process_sidecar_or_shim() {
    let node = Node::new();
    node.process(812, "0::/system.slice/containerd.service\n", "node-root");
    node.process(1301, &containerd_systemd_v2(PAUSE), "pause-root");
    node.process(1345, &containerd_systemd_v2(ID), "target-root");
    node.process(1402, &containerd_systemd_v2(SIDECAR), "sidecar-root");
    assert_eq!(node.locate(&format!("containerd://{ID}")), Ok(1345));
    assert_eq!(
        node.locate(ID),
        Ok(1345),
        "with or without the runtime prefix"
    );
    assert_eq!(node.locate(&format!("containerd://{SIDECAR}")), Ok(1402));
}

#[test]
fn a_reader_in_its_own_cgroup_namespace_sees_relative_paths_and_still_finds_it() {
    // A container's cgroup namespace (private by default on cgroup v2)
    // shows other cgroups relative to its own: `/../../…`.
    let node = Node::new();
    node.process(
        1345,
        &format!(
            "0::/../../kubepods-besteffort-pod{}.slice/cri-containerd-{ID}.scope\n",
            POD.replace('-', "_")
        ),
        "target-root",
    );
    assert_eq!(node.locate(&format!("containerd://{ID}")), Ok(1345));
}

#[test]
fn cgroup_v1_with_the_cgroupfs_driver() {
    let node = Node::new();
    let v1 = |id: &str| {
        ["memory", "cpu,cpuacct", "pids"]
            .iter()
            .enumerate()
            .map(|(n, c)| format!("{}:{c}:/kubepods/besteffort/pod{POD}/{id}\n", 12 - n))
            .chain([format!(
                "1:name=systemd:/kubepods/besteffort/pod{POD}/{id}\n"
            )])
            .collect::<String>()
    };
    node.process(2001, &v1(PAUSE), "pause-root");
    node.process(2040, &v1(ID), "target-root");
    assert_eq!(node.locate(&format!("docker://{ID}")), Ok(2040));
}

#[test]
fn cri_o_skips_conmon_which_names_the_container_but_has_the_nodes_root() {
    // conmon, CRI-O's per-container monitor, lives in `crio-conmon-<id>`:
    // its cgroup names the container, its root is the node's. It comes
    // first in the table; the search must pass it by.
    let node = Node::new();
    let slice = format!(
        "0::/kubepods.slice/kubepods-pod{}.slice",
        POD.replace('-', "_")
    );
    node.process(
        1200,
        &format!("{slice}/crio-conmon-{ID}.scope\n"),
        "node-root",
    );
    node.process(1250, &format!("{slice}/crio-{ID}.scope\n"), "target-root");
    assert_eq!(node.locate(&format!("cri-o://{ID}")), Ok(1250));
}

#[test]
fn a_process_whose_root_cannot_be_read_is_not_taken_and_none_found_is_an_error() {
    let node = Node::new();
    node.process(1345, &containerd_systemd_v2(ID), "gone");
    let err = node.locate(&format!("containerd://{ID}")).unwrap_err();
    assert!(
        err.contains(&format!("no process of container {}", &ID[..12])),
        "{err}"
    );
    // Once a readable process of the container appears, that one.
    node.process(1350, &containerd_systemd_v2(ID), "target-root");
    assert_eq!(node.locate(&format!("containerd://{ID}")), Ok(1350));
}

#[test]
fn without_a_shared_process_namespace_the_target_is_pid_1() {
    // The debug container joins the target's own PID namespace: no search.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("target-pid");
    let script = locate_target_script(false, ID).replace(state::TARGET_PID, out.to_str().unwrap());
    let run = std::process::Command::new("sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(run.success());
    assert_eq!(read_pid(&out), 1);
}
