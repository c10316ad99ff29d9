//! Loading: kind detection, contract checks, the precompiled cache.

use std::time::Duration;

use dscan::plugin::{
    CacheOutcome, EvaluationRequest, HostConfig, Limits, PluginError, PluginHost, PluginKind,
    PluginSet, PluginSource, Sources,
};
use dscan_tests::{fixture_scan, guest};

fn host(cache: Option<&std::path::Path>) -> PluginHost {
    PluginHost::new(HostConfig {
        limits: Limits {
            deadline: Duration::from_secs(10),
            ..Limits::default()
        },
        cache_dir: cache.map(|p| p.to_path_buf()),
    })
    .expect("host")
}

#[test]
fn a_component_for_an_unknown_world_is_rejected_saying_what_is_expected() {
    let path = guest("not_a_plugin");
    let err = host(None)
        .load_file(&path, PluginSource::File(path.clone()))
        .expect_err("unknown world");
    assert!(matches!(err, PluginError::Inspect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("not_a_plugin.wasm"), "{msg}");
    assert!(msg.contains("acme:greeter/greet@1.0.0"), "{msg}");
    assert!(
        msg.contains("dscan:plugin/evaluator@0.1.0 (threshold-evaluator world)"),
        "{msg}"
    );
    assert!(
        msg.contains("dscan:plugin/report@0.1.0 (reporter world)"),
        "{msg}"
    );
}

#[test]
fn a_component_for_another_contract_version_is_rejected_naming_both() {
    let path = guest("wrong_contract_plugin");
    let err = host(None)
        .load_file(&path, PluginSource::File(path.clone()))
        .expect_err("wrong contract");
    let msg = err.to_string();
    assert!(
        msg.contains("built for contract dscan:plugin@9.0.0"),
        "{msg}"
    );
    assert!(
        msg.contains("this dscan speaks dscan:plugin@0.1.0"),
        "{msg}"
    );
}

#[test]
fn not_webassembly_at_all_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.wasm");
    std::fs::write(&path, "this is not wasm").expect("write");
    let err = host(None)
        .load_file(&path, PluginSource::File(path.clone()))
        .expect_err("not wasm");
    assert!(err.to_string().contains("it is not WebAssembly"), "{err}");
}

#[test]
fn the_cache_survives_a_restart_and_a_corrupt_entry_is_rebuilt() {
    let cache = tempfile::tempdir().expect("tempdir");
    let path = guest("nist_gate");

    let first = host(Some(cache.path()))
        .load_file(&path, PluginSource::File(path.clone()))
        .expect("cold");
    assert_eq!(first.load_stats().cache, CacheOutcome::Miss);

    // A new host is what a new process sees: the entry on disk is reused.
    let second = host(Some(cache.path()))
        .load_file(&path, PluginSource::File(path.clone()))
        .expect("warm");
    assert_eq!(second.load_stats().cache, CacheOutcome::Hit);

    // Corrupt every cached entry: the next load recompiles and still works.
    let mut corrupted = 0;
    for dir in std::fs::read_dir(cache.path()).expect("cache dir") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue; // the cache's key
        }
        for entry in std::fs::read_dir(dir).expect("engine dir") {
            let entry = entry.expect("entry").path();
            let mut bytes = std::fs::read(&entry).expect("read entry");
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&entry, bytes).expect("corrupt entry");
            corrupted += 1;
        }
    }
    assert_eq!(corrupted, 1);
    let third = host(Some(cache.path()))
        .load_file(&path, PluginSource::File(path.clone()))
        .expect("rebuilt");
    assert_eq!(third.load_stats().cache, CacheOutcome::Rebuilt);
    let verdict = third
        .evaluate(
            &fixture_scan("minimal-hdf.json"),
            &EvaluationRequest::default(),
        )
        .expect("rebuilt plugin works");
    assert_eq!(verdict.checks.len(), 2);

    // And the rebuilt entry is sound again.
    let fourth = host(Some(cache.path()))
        .load_file(&path, PluginSource::File(path.clone()))
        .expect("warm again");
    assert_eq!(fourth.load_stats().cache, CacheOutcome::Hit);
}

/// The one cache entry under `root`.
fn only_entry(root: &std::path::Path) -> std::path::PathBuf {
    let mut found = vec![];
    for dir in std::fs::read_dir(root).expect("cache dir") {
        let dir = dir.expect("entry").path();
        if dir.is_dir() {
            for e in std::fs::read_dir(dir).expect("engine dir") {
                found.push(e.expect("entry").path());
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

#[test]
fn a_forged_or_swapped_entry_is_recompiled_never_loaded() {
    use sha2::{Digest, Sha256};
    let cache = tempfile::tempdir().expect("tempdir");
    let path = guest("nist_gate");
    host(Some(cache.path()))
        .load_file(&path, PluginSource::File(path.clone()))
        .expect("cold");
    let entry = only_entry(cache.path());
    let genuine = std::fs::read(&entry).expect("read");
    // A forged entry: some other compiled body with a valid SHA-256 of itself
    // where the old format kept its checksum.
    let body = &genuine[40..];
    let mut forged = b"DSCANPC2".to_vec();
    forged.extend_from_slice(&Sha256::digest(body));
    forged.extend_from_slice(body);
    std::fs::write(&entry, &forged).expect("forge");
    let loaded = host(Some(cache.path()))
        .load_file(&path, PluginSource::File(path.clone()))
        .expect("recompiled");
    assert_eq!(loaded.load_stats().cache, CacheOutcome::Rebuilt);
    assert_ne!(std::fs::read(&entry).expect("read"), forged, "replaced");

    // An authentic entry of another plugin swapped in under this one's name
    // does not verify either (the MAC covers the plugin's SHA-256).
    let other = guest("strategy_probe");
    host(Some(cache.path()))
        .load_file(&other, PluginSource::File(other.clone()))
        .expect("other plugin");
    let other_entry = std::fs::read_dir(entry.parent().expect("dir"))
        .expect("dir")
        .map(|e| e.expect("e").path())
        .find(|p| *p != entry)
        .expect("the other entry");
    std::fs::copy(&other_entry, &entry).expect("swap");
    let loaded = host(Some(cache.path()))
        .load_file(&path, PluginSource::File(path.clone()))
        .expect("recompiled");
    assert_eq!(loaded.load_stats().cache, CacheOutcome::Rebuilt);
    assert_eq!(loaded.kind(), PluginKind::ThresholdEvaluator);
}

#[test]
fn a_cache_others_could_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let path = guest("nist_gate");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("cache");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let loaded = host(Some(&root))
        .load_file(&path, PluginSource::File(path.clone()))
        .expect("compiled in memory");
    assert_eq!(loaded.load_stats().cache, CacheOutcome::Disabled);
    assert!(
        std::fs::read_dir(&root).expect("dir").next().is_none(),
        "nothing was written into it"
    );
    // Owned by another user (as root, where the test can arrange that).
    if nix::unistd::geteuid().is_root() {
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        nix::unistd::chown(&root, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
        let loaded = host(Some(&root))
            .load_file(&path, PluginSource::File(path.clone()))
            .expect("compiled in memory");
        assert_eq!(loaded.load_stats().cache, CacheOutcome::Disabled);
    }
}

#[test]
fn a_plugin_named_like_a_built_in_overrides_it() {
    // The example plugin is not named like a built-in; a copy of the built-in
    // evaluator loaded from a file is, and must replace it in place.
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("my-thresholds.wasm");
    std::fs::copy(guest("saf_thresholds"), &copy).expect("copy");
    let sources = Sources {
        builtins: true,
        plugin_dir: None,
        files: vec![guest("nist_gate"), copy.clone()],
    };
    let set =
        PluginSet::load(&host(None), &sources, &[PluginKind::ThresholdEvaluator]).expect("load");
    let evaluators: Vec<_> = set.of_kind(PluginKind::ThresholdEvaluator).collect();
    assert_eq!(evaluators.len(), 2);
    assert_eq!(evaluators[0].info().name, "saf-thresholds");
    assert_eq!(evaluators[0].source(), &PluginSource::File(copy));
    assert_eq!(evaluators[1].info().name, "nist-gate");
    let entry = &set.entries()[0];
    assert!(matches!(
        entry.replaced.as_slice(),
        [PluginSource::BuiltIn("saf_thresholds.wasm")]
    ));
}

#[test]
fn plugins_of_other_kinds_are_not_compiled() {
    let sources = Sources {
        builtins: true,
        plugin_dir: None,
        files: vec![],
    };
    let set = PluginSet::load(&host(None), &sources, &[PluginKind::Reporter]).expect("load");
    assert!(set.of_kind(PluginKind::ThresholdEvaluator).next().is_none());
    let names: Vec<_> = set
        .of_kind(PluginKind::Reporter)
        .map(|p| p.info().name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "markdown", "json", "yaml", "junit", "sarif", "csv", "github", "html"
        ]
    );
}

#[test]
fn a_broken_plugin_in_the_plugin_dir_is_an_error_not_silently_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm garbage").expect("write");
    let sources = Sources {
        builtins: true,
        plugin_dir: Some(dir.path().to_path_buf()),
        files: vec![],
    };
    let err = PluginSet::load(&host(None), &sources, &[PluginKind::ThresholdEvaluator])
        .expect_err("broken");
    assert!(err.to_string().contains("broken.wasm"), "{err}");
}

#[test]
fn an_access_strategy_plugin_loads_and_is_listed_as_one() {
    let path = guest("strategy_probe");
    let plugin = host(None)
        .load_file(&path, PluginSource::File(path.clone()))
        .expect("strategy loads");
    assert_eq!(plugin.kind(), PluginKind::AccessStrategy);
    assert_eq!(plugin.info().name, "strategy-probe");
    assert_eq!(plugin.info().contract, "0.1.0");
    assert_eq!(plugin.inspection().exports, ["dscan:plugin/strategy@0.1.0"]);
    // It is not an evaluator: asking it to judge is a clear error.
    let err = plugin
        .evaluate(
            &fixture_scan("minimal-hdf.json"),
            &EvaluationRequest::default(),
        )
        .expect_err("wrong kind");
    assert!(
        err.to_string()
            .contains("is of kind access-strategy, not threshold-evaluator"),
        "{err}"
    );
}

#[test]
fn strategies_of_both_contract_versions_load_and_a_0_2_0_one_returns_a_node_plan() {
    use dscan::access::{Decision, PsaLevel, TargetFacts};
    let facts = TargetFacts {
        server_version: "v1.35.0".into(),
        ephemeral_containers: false,
        psa_level: PsaLevel::Privileged,
        namespace: "apps".into(),
        pod: "web".into(),
        container: "app".into(),
        container_id: Some("containerd://abc".into()),
        run_as_user: Some(0),
        run_as_group: Some(0),
        run_as_non_root: None,
        privileged: false,
        capabilities_add: vec![],
        capabilities_drop: vec![],
        read_only_root_filesystem: false,
        share_process_namespace: false,
        node: Some("node-1".into()),
        runner: "native".into(),
        allow_privileged: false,
        options: vec![],
        ephemeral_refused: None,
        node_debug_namespace: None,
    };
    // A 0.1.0 strategy still loads and plans.
    let old = guest("strategy_probe");
    let old = host(None)
        .load_file(&old, PluginSource::File(old.clone()))
        .expect("0.1.0 loads");
    assert_eq!(old.info().contract, "0.1.0");
    assert!(matches!(
        old.plan(&facts).expect("plans"),
        Decision::Plan(_)
    ));
    // A 0.2.0 one loads, sees the new facts, and may answer with a node plan.
    let new = guest("node_strategy");
    let new = host(None)
        .load_file(&new, PluginSource::File(new.clone()))
        .expect("0.2.0 loads");
    assert_eq!(new.kind(), PluginKind::AccessStrategy);
    assert_eq!(new.info().contract, "0.2.0");
    assert_eq!(new.inspection().exports, ["dscan:plugin/strategy@0.2.0"]);
    assert!(matches!(
        new.plan(&facts).expect("plans"),
        Decision::Plan(_)
    ));
    let refused = TargetFacts {
        ephemeral_refused: Some("a validating webhook denied it".into()),
        node_debug_namespace: Some("dscan-debug".into()),
        ..facts.clone()
    };
    match new.plan(&refused).expect("plans") {
        Decision::NodePlan(plan) => {
            assert_eq!(plan.pod.image, "busybox@sha256:0");
            assert_eq!(
                plan.notes,
                ["a pod on node node-1 in namespace dscan-debug"]
            );
        }
        other => panic!("expected a node plan, got {other:?}"),
    }
    let nowhere = TargetFacts {
        node_debug_namespace: None,
        ..refused
    };
    match new.plan(&nowhere).expect("plans") {
        Decision::Decline(why) => assert!(why.contains("no node-debug namespace"), "{why}"),
        other => panic!("expected a decline, got {other:?}"),
    }
}
