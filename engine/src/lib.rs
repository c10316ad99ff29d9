//! dscan's native profile engine: runs InSpec-language profiles against a
//! target's root filesystem, with InSpec's result shapes, and never runs
//! anything from the profile or the target.
//!
//! The engine's only view of the system is a [`fs::TargetFs`]; it has no
//! dependency on Kubernetes or the plugin host.

pub mod ast;
pub mod builtins;
pub mod diff;
pub mod dsl;
pub mod fs;
pub mod interp;
pub mod matchers;
pub mod parse;
pub mod profile;
pub mod report;
pub mod resources;
pub mod value;
pub mod waivers;

use std::path::Path;

use indexmap::IndexMap;

pub use interp::Limits;

/// Why a run could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The profile could not be loaded.
    #[error(transparent)]
    Profile(#[from] profile::ProfileError),
    /// A profile file is not valid Ruby.
    #[error("{0}; fix the profile's syntax")]
    Parse(#[from] parse::ParseError),
    /// The engine's thread could not run.
    #[error("the engine could not run: {0}")]
    Thread(String),
    /// The input file could not be read.
    #[error("input file {path}: {message}")]
    Inputs {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// What to run.
#[derive(Debug, Default)]
pub struct Options {
    /// Inputs from `--input-file`/`--input` (they override inspec.yml).
    pub inputs: IndexMap<String, serde_json::Value>,
    /// Only these control ids (empty: all).
    pub controls: Vec<String>,
    /// Budgets.
    pub limits: Limits,
    /// The profile path as the user gave it (for `source_location.ref`).
    pub profile_ref: String,
    /// What the `virtualization` resource reports as the system (e.g.
    /// `kubepods` when the caller knows it scans a pod); `None`: detect it
    /// from the target's files.
    pub virtualization: Option<String>,
    /// Waivers by control id (`--waiver-file`).
    pub waivers: waivers::Waivers,
}

/// Whether the platform matches one of inspec.yml's `supports` entries
/// (all of an entry's keys must match; no entries: everything).
fn supported(supports: &[serde_json::Value], p: &resources::Platform) -> bool {
    if supports.is_empty() {
        return true;
    }
    let families = p.families();
    supports.iter().any(|entry| {
        let Some(m) = entry.as_object() else {
            return true;
        };
        m.iter().all(|(k, v)| {
            let want = v.as_str().unwrap_or_default();
            match k.as_str() {
                "platform-family" | "os-family" => families.contains(&want),
                "platform-name" | "os-name" => want == p.name,
                "platform" => want == p.name || families.contains(&want),
                "release" => match want.strip_suffix('*') {
                    Some(prefix) => p.release.starts_with(prefix),
                    None => want == p.release,
                },
                // `inspec` (a version requirement) and unknown keys do not
                // restrict the platform.
                _ => true,
            }
        })
    })
}

/// Runs `profile_dir` against `target` and returns InSpec's JSON report.
pub fn run(
    profile_dir: &Path,
    target: &(dyn fs::TargetFs + Sync),
    options: &Options,
) -> Result<serde_json::Value, EngineError> {
    let profile = profile::load(profile_dir)?;
    run_profile(&profile, target, options)
}

/// Runs an already loaded profile (for callers that hold the sources in
/// memory, such as the fuzz target).
pub fn run_profile(
    profile: &profile::Profile,
    target: &(dyn fs::TargetFs + Sync),
    options: &Options,
) -> Result<serde_json::Value, EngineError> {
    // The evaluator recurses on the native stack: it runs on a thread whose
    // stack is sized for its nesting budget (pages are touched only as used).
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("dscan-engine".into())
            .stack_size(ENGINE_STACK)
            .spawn_scoped(scope, || run_here(profile, target, options))
            .map_err(|e| EngineError::Thread(e.to_string()))?
            .join()
            .map_err(|_| EngineError::Thread("the engine thread panicked".into()))?
    })
}

/// The engine thread's stack.
const ENGINE_STACK: usize = 1 << 30;

/// Files every run reads (platform detection, accounts, packages, the
/// container marks).
const COMMON_PATHS: &[&str] = &[
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/debian_version",
    "/etc/lsb-release",
    "/etc/redhat-release",
    "/etc/alpine-release",
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/login.defs",
    "/var/lib/dpkg/status",
    "/.dockerenv",
    "/run/.containerenv",
];

/// The paths a profile is likely to ask about: the common files and every
/// absolute path written literally in its sources (in quotes or `%w()`
/// lists). Only a hint for fetching ahead: a wrong guess costs a request,
/// never a result.
pub fn likely_paths(profile: &profile::Profile) -> Vec<String> {
    static LITERAL: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
        regex::bytes::Regex::new(r#"['"(\s](/[A-Za-z0-9._+@:-][A-Za-z0-9._+@:/-]*)"#)
            .expect("a valid pattern")
    });
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = Vec::new();
    let mut push = |p: String| {
        if seen.insert(p.clone()) {
            out.push(p);
        }
    };
    for p in COMMON_PATHS {
        push(p.to_string());
    }
    for bytes in profile.sources.values() {
        for c in LITERAL.captures_iter(bytes) {
            if let Some(m) = c.get(1)
                && let Ok(p) = std::str::from_utf8(m.as_bytes())
            {
                push(fs::clean(p));
            }
        }
    }
    out
}

fn run_here(
    profile: &profile::Profile,
    target: &dyn fs::TargetFs,
    options: &Options,
) -> Result<serde_json::Value, EngineError> {
    let started = std::time::Instant::now();
    // A remote target answers these in two round trips instead of one each.
    if target.fetches_ahead() {
        target.prefetch(&likely_paths(profile));
    }
    let profile_dir = profile.dir.as_path();
    let mut interp = interp::Interp::new(target, options.limits.clone());
    interp.virtualization = options.virtualization.clone();
    interp.waivers = options.waivers.clone();
    interp.libraries = profile
        .library_files
        .iter()
        .map(|l| l.trim_start_matches("libraries/").to_string())
        .collect();
    // inspec.yml inputs, then the user's (higher priority).
    for i in &profile.metadata.inputs {
        if let (Some(name), Some(v)) = (
            i.get("name").and_then(|n| n.as_str()),
            i.get("value").or_else(|| i.get("default")),
        ) {
            interp
                .inputs
                .insert(name.to_string(), resources::config::from_json(v));
        }
    }
    for (k, v) in &options.inputs {
        interp
            .inputs
            .insert(k.clone(), resources::config::from_json(v));
    }
    let p = resources::platform(&mut interp);
    if !supported(&profile.metadata.supports, &p) {
        let message = format!(
            "Skipping profile: '{}' on unsupported platform: '{}/{}'.",
            profile.metadata.name, p.name, p.release
        );
        let mut r = report::report(
            &IndexMap::new(),
            profile,
            &options.profile_ref,
            &[],
            vec![],
            (&p.name, &p.release),
            started.elapsed().as_secs_f64(),
        );
        let prof = &mut r["profiles"][0];
        prof["groups"] = serde_json::json!([]);
        prof["status"] = "skipped".into();
        prof["status_message"] = message.clone().into();
        prof["skip_message"] = message.into();
        return Ok(r);
    }
    // Every file must parse before anything runs (a syntax error fails the
    // load, as in InSpec); each is parsed again when its turn comes, so
    // only one file's tree is held at a time.
    let files: Vec<String> = profile
        .library_files
        .iter()
        .chain(profile.control_files.iter())
        .cloned()
        .collect();
    for f in &files {
        parse::parse(
            f,
            profile
                .sources
                .get(f)
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )?;
    }
    let profile_ref = if options.profile_ref.is_empty() {
        profile_dir.display().to_string()
    } else {
        options.profile_ref.clone()
    };
    interp.run.profile_ref = profile_ref.clone();
    let root = interp::Scope::root();
    for f in &files {
        let bytes = profile
            .sources
            .get(f)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let ast = parse::parse(f, bytes)?;
        let ast = &ast;
        interp.run.file = f.clone();
        interp.run.source = bytes.into();
        interp.run.file_skip = None;
        interp.run.file_error = None;
        let env = interp::Scope::child(&root);
        // Top-level statements run one by one: one that fails is recorded
        // and the file's controls that follow report it instead of running
        // checks in a context that could not be set up.
        let statements: Vec<&ast::Node> = match &ast.kind {
            ast::Kind::Seq(items) => items.iter().collect(),
            _ => vec![ast],
        };
        let mut fatal = false;
        for st in statements {
            match interp.eval(st, &env, &value::Value::Nil) {
                Err(interp::Flow::Error(e)) if e.fatal => {
                    fatal = true;
                    break;
                }
                Err(interp::Flow::Error(e)) if interp.run.file_error.is_none() => {
                    interp.run.file_error = Some(e);
                }
                _ => {}
            }
        }
        if fatal {
            break;
        }
    }
    let mut controls = std::mem::take(&mut interp.run.controls);
    if !options.controls.is_empty() {
        controls.retain(|c| options.controls.contains(&c.id));
    }
    let inputs = dsl::inputs_json(&interp.inputs);
    Ok(report::report(
        &interp.run.file_titles,
        profile,
        &profile_ref,
        &controls,
        inputs,
        (&p.name, &p.release),
        started.elapsed().as_secs_f64(),
    ))
}

/// Parses an input file (a YAML mapping, as `inspec exec --input-file`).
pub fn parse_input_file(text: &str) -> Result<IndexMap<String, serde_json::Value>, String> {
    serde_yaml_ng::from_str(text).map_err(|e| format!("not a YAML mapping of inputs: {e}"))
}

/// Parses one `--input NAME=VALUE` value (YAML, else the plain string).
pub fn parse_input_value(text: &str) -> serde_json::Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|_| text.into())
}
