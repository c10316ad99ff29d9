//! Hostile profiles: each is contained with a clear message, nothing
//! crashes, and nothing outside the target root is reached.

use std::path::Path;

use serde_json::Value as J;

/// Runs one control file against a small target root; returns the results
/// of control `x` and the target root's directory.
fn run(control: &str, limits: dscan_engine::Limits, setup: impl FnOnce(&Path)) -> Vec<J> {
    let profile = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(profile.path().join("controls")).unwrap();
    std::fs::write(profile.path().join("inspec.yml"), "name: hostile\n").unwrap();
    std::fs::write(profile.path().join("controls/x.rb"), control).unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(root.path().join("etc/debian_version"), "12.11\n").unwrap();
    setup(root.path());
    let fs = dscan_engine::fs::RootDir::open(root.path()).unwrap();
    let options = dscan_engine::Options {
        limits,
        ..Default::default()
    };
    let report = dscan_engine::run(profile.path(), &fs, &options).unwrap();
    report["profiles"][0]["controls"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn small() -> dscan_engine::Limits {
    dscan_engine::Limits {
        steps: 200_000,
        depth: 50,
        string_bytes: 1 << 20,
        elements: 100_000,
        time: std::time::Duration::from_secs(10),
        file_bytes: 1 << 20,
    }
}

/// The single result is a failure whose message contains `want`.
fn fails_with(results: &[J], want: &str) {
    assert_eq!(results.len(), 1, "{results:#?}");
    assert_eq!(results[0]["status"], "failed", "{results:#?}");
    let msg = results[0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(want), "{want:?} not in {msg:?}");
}

#[test]
fn an_endless_loop_is_stopped_by_the_step_budget() {
    let r = run("control 'x' do\n  loop { 1 }\nend\n", small(), |_| {});
    fails_with(&r, "evaluation steps");
    let r = run(
        "control 'x' do\n  i = 0\n  while true\n    i += 1\n  end\nend\n",
        small(),
        |_| {},
    );
    fails_with(&r, "evaluation steps");
}

#[test]
fn deep_recursion_is_stopped_by_the_depth_budget() {
    let r = run(
        "def f(n)\n  f(n + 1)\nend\ncontrol 'x' do\n  f(0)\nend\n",
        small(),
        |_| {},
    );
    fails_with(&r, "nested deeper than 50");
}

#[test]
fn a_string_doubled_until_huge_is_stopped_by_the_size_budget() {
    let r = run(
        "control 'x' do\n  s = 'x'\n  40.times { s = s + s } rescue nil\n  30.times { s += s }\nend\n",
        small(),
        |_| {},
    );
    fails_with(&r, "grew beyond");
    let r = run(
        "control 'x' do\n  s = 'x' * 100_000_000\nend\n",
        small(),
        |_| {},
    );
    fails_with(&r, "grew beyond");
}

#[test]
fn host_files_processes_and_code_loading_are_unreachable() {
    for (code, want) in [
        ("File.read('/etc/shadow')", "File is not available"),
        ("IO.readlines('/etc/shadow')", "IO is not available"),
        ("`id`", "a shell command (`id`) cannot run"),
        ("%x(id)", "cannot run"),
        ("system('id')", "system is not available"),
        ("exec('id')", "exec is not available"),
        ("eval('1 + 1')", "eval is not available"),
        ("require 'socket'", "require 'socket' is not allowed"),
        ("ENV['HOME']", "ENV is not available"),
        ("send(:system, 'id')", "system is not available"),
    ] {
        let r = run(&format!("control 'x' do\n  {code}\nend\n"), small(), |_| {});
        fails_with(&r, want);
        assert!(
            r[0]["code_desc"]
                .as_str()
                .unwrap()
                .starts_with("Control Source Code Error")
        );
    }
}

#[test]
fn links_out_of_the_root_and_fifos_are_contained() {
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "host secret\n").unwrap();
    let outside_path = outside.path().to_path_buf();
    let r = run(
        "control 'x' do\n  describe file('/escape') do\n    its('content') { should be_nil }\n    it { should_not exist }\n  end\n  describe file('/up') do\n    its('content') { should match(/^root:/) }\n  end\n  describe file('/fifo') do\n    it { should be_pipe }\n    its('content') { should eq 'never' }\n  end\nend\n",
        small(),
        |root| {
            std::os::unix::fs::symlink(&outside_path, root.join("escape")).unwrap();
            std::os::unix::fs::symlink("../../../../../etc/passwd", root.join("up")).unwrap();
            rustix::fs::mknodat(
                rustix::fs::CWD,
                root.join("fifo"),
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap();
        },
    );
    let status: Vec<&str> = r.iter().map(|x| x["status"].as_str().unwrap()).collect();
    // The escaping link resolves inside the root (to nothing); `..` stops
    // at the root (the root's own passwd); the FIFO is seen but not read.
    assert_eq!(
        status,
        ["passed", "passed", "passed", "passed", "failed"],
        "{r:#?}"
    );
    let all = serde_json::to_string(&r).unwrap();
    assert!(!all.contains("host secret"), "{all}");
}

#[test]
fn unsupported_constructs_fail_their_control_never_pass() {
    let r = run(
        "control 'x' do\n  for v in [1]\n  end\n  describe 1 do\n    it { should eq 1 }\n  end\nend\n",
        small(),
        |_| {},
    );
    assert!(
        r.iter().any(|x| x["status"] == "failed"
            && x["message"]
                .as_str()
                .unwrap_or("")
                .contains("outside the Ruby subset")),
        "{r:#?}"
    );
    let r = run(
        "control 'x' do\n  describe command('id') do\n    its('stdout') { should_not match(/root/) }\n  end\nend\n",
        small(),
        |_| {},
    );
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0]["status"], "skipped",
        "a command check never passes: {r:#?}"
    );
    let r = run(
        "control 'x' do\n  describe no_such_resource('a') do\n    it { should exist }\n  end\nend\n",
        small(),
        |_| {},
    );
    fails_with(&r, "no_such_resource");
}

/// Found by the fuzz target: a control file that is not valid UTF-8 (the
/// source text InSpec reports as `code` is cut at byte offsets).
#[test]
fn a_control_file_that_is_not_utf8_is_reported_not_a_crash() {
    let profile = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(profile.path().join("controls")).unwrap();
    std::fs::write(profile.path().join("inspec.yml"), "name: bytes\n").unwrap();
    let mut src = b"# \xff\xfe\xfd\ncontrol 'x' do\n  title 'caf\xe9'\n  describe 1 do\n    it { should eq 1 }\n  end\nend\n".to_vec();
    src.extend_from_slice(b"# trailing \xc3\n");
    std::fs::write(profile.path().join("controls/x.rb"), &src).unwrap();
    let root = tempfile::tempdir().unwrap();
    let fs = dscan_engine::fs::RootDir::open(root.path()).unwrap();
    match dscan_engine::run(profile.path(), &fs, &Default::default()) {
        Ok(report) => {
            let c = &report["profiles"][0]["controls"][0];
            assert!(
                c["code"].as_str().unwrap().starts_with("control 'x' do"),
                "{c}"
            );
        }
        // prism may refuse the bytes: then it is a load error, not a panic.
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A permission by user needs `su` in the target: neither the check nor
/// its negation passes.
#[test]
fn a_check_by_user_never_passes() {
    let r = run(
        "control 'x' do\n  describe file('/etc/passwd') do\n    it { should be_readable.by_user('root') }\n    it { should_not be_readable.by_user('root') }\n  end\nend\n",
        small(),
        |_| {},
    );
    let status: Vec<&str> = r.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["failed", "failed"], "{r:#?}");
    assert!(
        r[1]["message"]
            .as_str()
            .unwrap()
            .contains("cannot run `su`"),
        "{r:#?}"
    );
}

/// A kernel parameter is read from the target's /proc/sys when there is
/// one, and skipped (never guessed) when there is not.
#[test]
fn kernel_parameters_come_from_proc_sys_or_are_skipped() {
    let body = "control 'x' do\n  describe kernel_parameter('fs.suid_dumpable') do\n    its('value') { should eq 0 }\n  end\nend\n";
    let r = run(body, small(), |root| {
        std::fs::create_dir_all(root.join("proc/sys/fs")).unwrap();
        std::fs::write(root.join("proc/sys/fs/suid_dumpable"), "0\n").unwrap();
    });
    assert_eq!(r[0]["status"], "passed", "{r:#?}");
    let r = run(body, small(), |_| {});
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["status"], "skipped", "{r:#?}");
}
