//! Facts the host and the strategy plugins must agree on, in one file that
//! both compile: the SDK as `dscan_plugin_sdk::contract`, the host as
//! `dscan::access::contract` (through `#[path]`). Plain constants only, so
//! it builds for any target.

/// What dscan's temporary Role grants on the target pod, and so the most a
/// debug-container plan may ask for: `(resource[/subresource], verbs)`.
pub const ROLE_GRANTS: &[(&str, &[&str])] = &[
    ("pods", &["get", "watch"]),
    ("pods/ephemeralcontainers", &["get", "patch"]),
    ("pods/exec", &["create", "get"]),
];

/// The facts option in which the host tells a strategy the access mode the
/// chosen runner needs (`chroot-wrapper`, `graft`, `path-prefix`): a plan
/// of another mode is useless to the run. The host sets it after the
/// user's `--strategy-opt` options, so it always wins.
pub const NEEDS_OPTION: &str = "access-mode";

/// Shell lines that find the target from inside a debug container and write
/// its PID to [`state::TARGET_PID`]. Without `shareProcessNamespace` the
/// target is PID 1 of the namespace the debug container joins. With it,
/// PID 1 is the pause process, so the target is found by its container ID
/// in `/proc/*/cgroup` (or, failing that, mountinfo), never the calling
/// shell. Plain commands only (`grep`), found in busybox and distro images.
pub fn locate_target_script(share_process_namespace: bool, container_id: &str) -> String {
    let target_pid = state::TARGET_PID;
    if !share_process_namespace {
        return format!("echo 1 > {target_pid}");
    }
    // The first 12 hex digits: cgroup paths carry the full ID, runtime
    // state paths in mountinfo often a prefix.
    let short: String = container_id
        .rsplit("://")
        .next()
        .unwrap_or(container_id)
        .chars()
        .take(12)
        .collect();
    // A process that names the ID but whose root we cannot read, or whose
    // root is PID 1's (the node's, seen from a hostPID pod: a runtime
    // helper or shim), is not the target.
    format!(
        r#"t=""
h=$(stat -L -c %d:%i /proc/1/root/ 2>/dev/null || true)
for p in /proc/[0-9]*; do
  n=${{p#/proc/}}
  [ "$n" = "$$" ] && continue
  grep -qs "{short}" $p/cgroup $p/mountinfo || continue
  r=$(stat -L -c %d:%i $p/root/ 2>/dev/null) || continue
  [ -n "$h" ] && [ "$r" = "$h" ] && [ "$n" != 1 ] && continue
  t=$n; break
done
[ -n "$t" ] || {{ echo "dscan: no process of container {short} found" >&2; exit 1; }}
echo $t > {target_pid}"#
    )
}

/// The debug container's state directory (its own filesystem) and the
/// files its start-up script and the host exchange there.
pub mod state {
    /// The directory.
    pub const DIR: &str = "/tmp/.dscan";
    /// Written (containing `ready`) once the start-up script has recorded
    /// its PIDs; the host waits for it before verifying.
    pub const READY: &str = "/tmp/.dscan/ready";
    /// Created by the host when it takes the container over; the dead-man
    /// timer stops a container nobody claimed.
    pub const CLAIMED: &str = "/tmp/.dscan/claimed";
    /// The target's main process, as the debug container sees it.
    pub const TARGET_PID: &str = "/tmp/.dscan/target-pid";
    /// The start-up script's own PID (it holds the captured root).
    pub const MAIN_PID: &str = "/tmp/.dscan/main-pid";
    /// The descriptor number, in the start-up script, of the target's root
    /// captured at start-up (only strategies that capture it write this).
    pub const ROOT_FD: &str = "/tmp/.dscan/root-fd";
    /// Where the host puts its file agent (native runner).
    pub const AGENT: &str = "/tmp/.dscan/dscan-agent";
    /// Where the host puts the verified static toolkit.
    pub const TOOLKIT: &str = "/tmp/.dscan/busybox";
}
