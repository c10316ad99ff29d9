//! Writing a dscan plugin.
//!
//! A plugin is a WebAssembly component implementing one world of the
//! `dscan:plugin` contract (see `wit/` at the repository root). Enable the
//! feature for that world, implement its `Guest` trait and export it:
//!
//! ```ignore
//! use dscan_plugin_sdk::evaluator::{Guest, PluginInfo, Request, Scan, Verdict};
//!
//! struct MyGate;
//! impl Guest for MyGate {
//!     fn info() -> PluginInfo { dscan_plugin_sdk::info!("my-gate", "gate on X") }
//!     fn evaluate(scan: Scan, request: Request) -> Result<Verdict, String> { todo!() }
//! }
//! dscan_plugin_sdk::evaluator::export!(MyGate);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` and load the
//! `.wasm` with `dscan --plugin`.

pub mod contract;

/// The contract version this SDK implements; plugins report it in `info()`.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Builds a `PluginInfo` with the given name and description, the calling
/// crate's version and this SDK's contract version. Expects the world's
/// `PluginInfo` in scope.
#[macro_export]
macro_rules! info {
    ($name:expr, $description:expr) => {
        $crate::info!($name, $description, contract = $crate::CONTRACT_VERSION)
    };
    ($name:expr, $description:expr, contract = $contract:expr) => {
        PluginInfo {
            name: ::std::string::String::from($name),
            version: ::std::string::String::from(env!("CARGO_PKG_VERSION")),
            contract: ::std::string::String::from($contract),
            description: ::std::string::String::from($description),
            wants_raw_json: false,
        }
    };
}

/// The `threshold-evaluator` world.
#[cfg(feature = "evaluator")]
pub mod evaluator {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.1.0",
        world: "threshold-evaluator",
        pub_export_macro: true,
        default_bindings_module: "dscan_plugin_sdk::evaluator",
    });
    pub use self::dscan::plugin::meta::{Detail, OptionPair, PluginInfo};
    pub use self::dscan::plugin::types::*;
    pub use self::exports::dscan::plugin::evaluator::{Check, Guest, Request, Verdict};
}

/// The `reporter` world.
#[cfg(feature = "reporter")]
pub mod reporter {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.1.0",
        world: "reporter",
        pub_export_macro: true,
        default_bindings_module: "dscan_plugin_sdk::reporter",
    });
    pub use self::dscan::plugin::meta::{Detail, OptionPair, PluginInfo};
    pub use self::dscan::plugin::types::*;
    pub use self::exports::dscan::plugin::report::{FormatInfo, Guest};
}

/// The `access-strategy` world.
#[cfg(feature = "strategy")]
pub mod strategy {
    wit_bindgen::generate!({
        path: "../../wit/since_v0.1.0",
        world: "access-strategy",
        pub_export_macro: true,
        default_bindings_module: "dscan_plugin_sdk::strategy",
    });
    pub use self::dscan::plugin::meta::{Detail, OptionPair, PluginInfo};
    pub use self::exports::dscan::plugin::strategy::*;

    /// The RBAC a debug-container plan needs on the target pod — read and
    /// watch it, add the ephemeral container, exec into it — which is what
    /// dscan's temporary Role grants.
    pub fn debug_container_rbac() -> Vec<RbacRule> {
        crate::contract::ROLE_GRANTS
            .iter()
            .map(|(resource, verbs)| RbacRule {
                resource: (*resource).into(),
                verbs: verbs.iter().map(|v| (*v).into()).collect(),
            })
            .collect()
    }

    /// A facts option by key, read the SDK's way (the last value given
    /// wins: the host sets its own after the user's where it must win).
    pub fn fact<'a>(facts: &'a TargetFacts, key: &str) -> Option<&'a str> {
        crate::option(
            facts
                .options
                .iter()
                .map(|o| (o.key.as_str(), o.value.as_str())),
            key,
        )
    }

    /// Every debug-container plan needs ephemeral containers: the decline
    /// when the cluster does not serve them.
    pub fn decline_without_ephemeral_containers(facts: &TargetFacts) -> Option<Decision> {
        (!facts.ephemeral_containers).then(|| {
            Decision::Decline(
                "the cluster does not serve pods/ephemeralcontainers, which this strategy needs"
                    .into(),
            )
        })
    }

    /// How a debug container finds its target, and the shell lines that do
    /// it (they write the PID to `STATE/target-pid`).
    ///
    /// Without `shareProcessNamespace` the target is PID 1 of the namespace
    /// the debug container joins. With it, PID 1 is the pause process, so the
    /// target is found by its container ID in `/proc/*/cgroup` (or, failing
    /// that, mountinfo), never the debug container's own shell. Plain
    /// commands only (`grep`), found on PATH in busybox and distro images.
    pub fn locate_target(facts: &TargetFacts) -> (RootLocator, String) {
        let id = facts.container_id.clone().unwrap_or_default();
        let script = crate::contract::locate_target_script(facts.share_process_namespace, &id);
        if facts.share_process_namespace {
            (RootLocator::ContainerId(id), script)
        } else {
            (RootLocator::PidOne, script)
        }
    }
}

/// How long a debug container lives, from the options the host passes:
/// `start-by` and `dead-man-deadline` (Unix seconds on dscan's clock),
/// `dead-man-seconds` and `claim-seconds`.
///
/// A kubelet keeps retrying image pulls, so a debug container can start
/// long after dscan gave up waiting for it; it must then not run unattended.
/// The start-up script therefore exits at once when it starts after
/// `start-by`, exits when dscan has not claimed it (written
/// `STATE/claimed`, see the host's root check) within `claim-seconds` of
/// starting — a relative timer, immune to clock skew between dscan's machine
/// and the node — and in any case at `dead-man-deadline`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifetime {
    /// Exit at once when started after this (Unix seconds).
    pub start_by: Option<u64>,
    /// Exit at this time (Unix seconds) whatever happens.
    pub exit_by: Option<u64>,
    /// Exit this long after starting unless claimed.
    pub claim_seconds: u32,
    /// The dead-man period, for plans and hosts that read it.
    pub dead_man_seconds: u32,
}

impl Lifetime {
    /// Reads the lifetime options (defaults: no absolute deadlines, a
    /// 120-second claim window, a one-hour dead-man period).
    pub fn from_options<'a, I>(options: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)> + Clone,
    {
        let number = |key: &str| option(options.clone(), key).and_then(|v| v.parse::<u64>().ok());
        Lifetime {
            start_by: number("start-by"),
            exit_by: number("dead-man-deadline"),
            claim_seconds: number("claim-seconds")
                .map_or(120, |v| u32::try_from(v).unwrap_or(u32::MAX)),
            dead_man_seconds: number("dead-man-seconds")
                .map_or(3600, |v| u32::try_from(v).unwrap_or(u32::MAX)),
        }
    }

    /// The first lines of a start-up script: exit at once when started too
    /// late. `tool` prefixes external commands (`/bin/busybox ` where the
    /// image's own command names cannot be trusted, else empty).
    pub fn prelude(&self, tool: &str) -> String {
        let mut out = format!("now=$({tool}date +%s)\n");
        if let Some(t) = self.start_by {
            out.push_str(&format!(
                "if [ \"$now\" -gt {t} ]; then echo \"dscan: started after its start deadline ({t}); dscan is no longer waiting, exiting\" >&2; exit 0; fi\n"
            ));
        }
        if let Some(t) = self.exit_by {
            out.push_str(&format!(
                "if [ \"$now\" -ge {t} ]; then echo \"dscan: started after its dead-man deadline ({t}), exiting\" >&2; exit 0; fi\n"
            ));
        }
        out
    }

    /// The start-up script of a debug container (or node pod) that only
    /// records its own PID and the target's (`locate_pid`, from
    /// [`crate::contract::locate_target_script`]), says it is ready, then
    /// waits to be claimed and sleeps until its deadline; exits on TERM.
    /// Plain busybox/coreutils commands only.
    pub fn startup_script(&self, locate_pid: &str) -> String {
        use crate::contract::state::{DIR, MAIN_PID, READY};
        format!(
            "set -e\n{prelude}mkdir -p {DIR}\necho $$ > {MAIN_PID}\n{locate_pid}\necho ready > {READY}\n{wait}",
            prelude = self.prelude(""),
            wait = self.wait(""),
        )
    }

    /// The last lines of a start-up script: wait to be claimed, then sleep
    /// until the dead-man deadline (or for the dead-man period); exit 0 on
    /// SIGTERM/SIGINT.
    pub fn wait(&self, tool: &str) -> String {
        use crate::contract::state::CLAIMED;
        let claim = self.claim_seconds;
        let sleep_for = match self.exit_by {
            Some(t) => format!("$(( {t} - $({tool}date +%s) ))"),
            None => self.dead_man_seconds.to_string(),
        };
        format!(
            r#"trap 'exit 0' TERM INT
i=0
while [ ! -f {CLAIMED} ]; do
  if [ $i -ge {claim} ]; then echo "dscan: not claimed within {claim}s of starting (dscan is gone), exiting" >&2; exit 0; fi
  {tool}sleep 1
  i=$((i+1))
done
left={sleep_for}
[ "$left" -gt 0 ] || exit 0
{tool}sleep "$left" &
wait $!
"#
        )
    }
}

/// Refuses an option key the plugin does not take, so a typo in
/// `--plugin-opt` is an error instead of silently doing nothing.
pub fn check_options<'a, I>(options: I, known: &[&str]) -> Result<(), String>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    for (k, _) in options {
        if !known.contains(&k) {
            return Err(if known.is_empty() {
                format!("unknown option `{k}`: this plugin takes no options")
            } else {
                format!(
                    "unknown option `{k}`: this plugin takes {}",
                    known.join(", ")
                )
            });
        }
    }
    Ok(())
}

/// Looks up a `key=value` option by key (the last one given wins).
pub fn option<'a, I>(options: I, key: &str) -> Option<&'a str>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    options
        .into_iter()
        .filter(|(k, _)| *k == key)
        .last()
        .map(|(_, v)| v)
}
