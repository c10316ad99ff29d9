//! Plugin load and call timings, shared by the benchmark example and the
//! test that guards the cache's speed-up.

use std::path::Path;
use std::time::{Duration, Instant};

use dscan::plugin::{
    CacheOutcome, EvaluationRequest, HostConfig, Limits, PluginHost, PluginKind, PluginSource,
};
use dscan::results::Scan;

/// Medians of one plugin's load and call times.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Plugin file name.
    pub plugin: String,
    /// Size of the component.
    pub bytes: usize,
    /// Compile from scratch (no cache) to a ready plugin.
    pub cold: Duration,
    /// Load from the precompiled cache to a ready plugin.
    pub warm: Duration,
    /// One call on a ready plugin (fresh store, instantiate, call).
    pub call: Duration,
}

impl LoadReport {
    /// How many times faster a warm load is than a cold one.
    pub fn ratio(&self) -> f64 {
        self.cold.as_secs_f64() / self.warm.as_secs_f64().max(1e-9)
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Measures cold loads, warm loads and calls of the component at `path`,
/// interleaved in one run so machine noise hits both sides alike.
pub fn measure(path: &Path, rounds: usize, calls: usize, scan: &Scan) -> LoadReport {
    let bytes = std::fs::read(path).expect("read plugin");
    let cache = tempfile::tempdir().expect("cache dir");
    let limits = Limits::default();
    let cold_host = PluginHost::new(HostConfig {
        limits,
        cache_dir: None,
    })
    .expect("host");
    let warm_host = PluginHost::new(HostConfig {
        limits,
        cache_dir: Some(cache.path().to_path_buf()),
    })
    .expect("host");
    let source = || PluginSource::File(path.to_path_buf());
    // Fill the cache once.
    warm_host.load(&bytes, source()).expect("load");

    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let p = cold_host.load(&bytes, source()).expect("cold load");
        cold.push(t.elapsed());
        assert_eq!(p.load_stats().cache, CacheOutcome::Disabled);
        for _ in 0..5 {
            let t = Instant::now();
            let p = warm_host.load(&bytes, source()).expect("warm load");
            warm.push(t.elapsed());
            assert_eq!(p.load_stats().cache, CacheOutcome::Hit);
        }
    }
    let plugin = warm_host.load(&bytes, source()).expect("load");
    let mut call = Vec::new();
    for _ in 0..calls {
        let t = Instant::now();
        match plugin.kind() {
            PluginKind::ThresholdEvaluator => {
                plugin
                    .evaluate(scan, &EvaluationRequest::default())
                    .map(|_| ())
                    .expect("evaluate");
            }
            PluginKind::Reporter => {
                plugin
                    .render(std::slice::from_ref(scan), &[])
                    .map(|_| ())
                    .expect("render");
            }
            PluginKind::AccessStrategy => {}
        }
        call.push(t.elapsed());
    }
    LoadReport {
        plugin: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes: bytes.len(),
        cold: median(cold),
        warm: median(warm),
        call: median(call),
    }
}

/// The middle value of timings in seconds (the upper middle of an even count).
pub fn median_secs(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What an orchestration benchmark runs: the dscan binary (first argument,
/// default `target/release/dscan`) and how many rounds (second, else
/// `default_rounds`).
pub fn dscan_and_rounds(default_rounds: usize) -> (std::path::PathBuf, usize) {
    let args: Vec<String> = std::env::args().collect();
    let dscan = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "target/release/dscan".into());
    let rounds = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_rounds);
    (dscan.into(), rounds)
}

/// A simulator whose kubelet runs containers through `dscan`'s own
/// runtime-helper mode, and its admin kubeconfig written into `dir`. Exits
/// 3, naming `bench`, when only the status-only kubelet is available (not
/// root): an orchestration benchmark without containers measures nothing.
pub async fn simulator(
    dscan: &Path,
    bench: &str,
    dir: &Path,
) -> (dscan_sim::Sim, std::path::PathBuf) {
    let config = dscan_sim::SimConfig {
        runtime: Some(dscan_sim::RuntimeCommand {
            program: dscan.to_path_buf(),
            args: vec![dscan::cli::SIM_RUNTIME_ARG.into()],
        }),
        ..Default::default()
    };
    let sim = dscan_sim::Sim::start_with(config).await.expect("simulator");
    if let dscan_sim::KubeletMode::StatusOnly(why) = sim.kubelet_mode() {
        eprintln!("{bench} needs the real-namespace kubelet: {why}");
        std::process::exit(3);
    }
    let kubeconfig = dir.join("admin.kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml().expect("kubeconfig")).expect("write");
    (sim, kubeconfig)
}
