//! The sandbox against hostile guests: each misbehaviour ends in a clear
//! error naming the plugin, and the host keeps working afterwards.

use std::time::{Duration, Instant};

use dscan::plugin::{
    EvaluationRequest, HostConfig, Limits, Plugin, PluginError, PluginHost, PluginSource,
};
use dscan_tests::{fixture_scan, guest};

fn limits() -> Limits {
    Limits {
        deadline: Duration::from_millis(500),
        memory_bytes: 64 << 20,
        output_bytes: 1 << 20,
    }
}

fn hostile() -> Plugin {
    let host = PluginHost::new(HostConfig {
        limits: limits(),
        cache_dir: None,
    })
    .expect("host");
    let path = guest("hostile_plugin");
    host.load_file(&path, PluginSource::File(path.clone()))
        .expect("hostile plugin loads")
}

fn run(
    plugin: &Plugin,
    mode: &str,
    extra: &[(&str, &str)],
) -> Result<dscan::plugin::Verdict, PluginError> {
    let mut options = vec![("mode".to_string(), mode.to_string())];
    options.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let scan = fixture_scan("minimal-hdf.json");
    plugin.evaluate(
        &scan,
        &EvaluationRequest {
            threshold: None,
            inline: false,
            options,
        },
    )
}

/// After any failure the same plugin must still answer a normal call.
fn assert_still_works(plugin: &Plugin) {
    let verdict = run(plugin, "ok", &[]).expect("a well-behaved call after a failure succeeds");
    assert!(verdict.passed);
    assert_eq!(verdict.checks[0].message, "saw 1 controls");
}

#[test]
fn an_infinite_loop_stops_at_the_deadline() {
    let plugin = hostile();
    let started = Instant::now();
    let err = run(&plugin, "loop", &[]).expect_err("loop must be interrupted");
    let elapsed = started.elapsed();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("`hostile`") && msg.contains("timed out after 500 ms"),
        "{msg}"
    );
    // The deadline is 500 ms with a 5 ms tick; allow scheduling noise.
    assert!(
        elapsed >= Duration::from_millis(495),
        "stopped early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "stopped late: {elapsed:?}"
    );
    assert_still_works(&plugin);
}

#[test]
fn a_sleeping_plugin_is_stopped_not_waited_for() {
    let plugin = hostile();
    let started = Instant::now();
    let err = run(&plugin, "sleep", &[]).expect_err("sleep must not block");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the call blocked for {:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`hostile`") && msg.contains("plugins may not wait"),
        "{msg}"
    );
    assert_still_works(&plugin);
}

#[test]
fn a_1_gib_allocation_fails_with_a_memory_error() {
    let plugin = hostile();
    let err = run(&plugin, "alloc", &[]).expect_err("1 GiB must not fit in 64 MiB");
    assert!(matches!(err, PluginError::OutOfMemory { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("`hostile`") && msg.contains("memory limit of 64 MiB"),
        "{msg}"
    );
    assert_still_works(&plugin);
}

#[test]
fn the_guest_sees_no_files_no_environment_no_network_no_stdin() {
    // The test process has files, an environment and a network to leak.
    let plugin = hostile();
    let verdict = run(&plugin, "sandbox", &[]).expect("sandbox probe runs");
    let report = &verdict.checks[0].message;
    assert!(report.contains("file=error:"), "{report}");
    assert!(report.contains("dir=error:"), "{report}");
    assert!(report.contains("env=0;"), "{report}");
    assert!(report.contains("net=error:"), "{report}");
    assert!(report.contains("stdin=read 0 bytes"), "{report}");
    assert!(!report.contains("root:"), "{report}");
}

#[test]
fn an_oversized_output_is_rejected() {
    let plugin = hostile();
    let err =
        run(&plugin, "big-output", &[("bytes", "2000000")]).expect_err("2 MB over a 1 MiB cap");
    assert!(matches!(err, PluginError::OutputTooLarge { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("`hostile`") && msg.contains("over the 1048576 byte cap"),
        "{msg}"
    );
    // Just under the cap is fine.
    run(&plugin, "big-output", &[("bytes", "1000000")]).expect("under the cap");
    assert_still_works(&plugin);
}

#[test]
fn a_panic_reports_its_message() {
    let plugin = hostile();
    let err = run(&plugin, "panic", &[]).expect_err("panic traps");
    assert!(matches!(err, PluginError::Trap { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("`hostile`") && msg.contains("hostile plugin panicked on purpose"),
        "{msg}"
    );
    assert_still_works(&plugin);
}

#[test]
fn a_rejection_is_the_plugins_message_not_a_crash() {
    let plugin = hostile();
    let err = run(&plugin, "error", &[]).expect_err("plugin returns err");
    assert!(err.is_rejection());
    assert!(
        err.to_string()
            .contains("the threshold makes no sense to me")
    );
    assert_still_works(&plugin);
}
