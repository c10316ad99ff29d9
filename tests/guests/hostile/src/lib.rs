//! A threshold evaluator that does whatever its `mode` option says, so the
//! host's sandbox can be tested against each kind of misbehaviour.

use dscan_plugin_sdk::evaluator::{Check, Detail, Guest, PluginInfo, Request, Scan, Verdict};

struct Hostile;

fn ok(message: String) -> Verdict {
    Verdict {
        passed: true,
        checks: vec![Check {
            name: "hostile".into(),
            passed: true,
            message,
        }],
    }
}

impl Guest for Hostile {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!("hostile", "misbehaves on request (test fixture)")
    }

    fn needs(_request: Request) -> Detail {
        Detail::Full
    }

    fn evaluate(scan: Scan, request: Request) -> Result<Verdict, String> {
        let mode = request
            .options
            .iter()
            .rev()
            .find(|o| o.key == "mode")
            .map(|o| o.value.as_str())
            .unwrap_or("ok");
        match mode {
            "ok" => Ok(ok(format!("saw {} controls", scan.controls.len()))),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                // 1 GiB, touched so it cannot be optimised away.
                let mut v: Vec<u8> = Vec::new();
                v.resize(1 << 30, 1);
                Ok(ok(format!(
                    "allocated {}",
                    v.iter().map(|b| *b as u64).sum::<u64>()
                )))
            }
            "sandbox" => {
                let file = std::fs::read_to_string("/etc/passwd")
                    .map(|s| format!("read {} bytes", s.len()))
                    .unwrap_or_else(|e| format!("error: {e}"));
                let dir = std::fs::read_dir("/")
                    .map(|d| format!("listed {} entries", d.count()))
                    .unwrap_or_else(|e| format!("error: {e}"));
                let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let net = std::net::TcpStream::connect("127.0.0.1:1")
                    .map(|_| "connected".to_string())
                    .unwrap_or_else(|e| format!("error: {e}"));
                let mut stdin = String::new();
                let stdin_read = std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin)
                    .map(|n| format!("read {n} bytes"))
                    .unwrap_or_else(|e| format!("error: {e}"));
                Ok(ok(format!(
                    "file={file}; dir={dir}; env={}; net={net}; stdin={stdin_read}",
                    env.len()
                )))
            }
            "big-output" => {
                let size: usize = request
                    .options
                    .iter()
                    .find(|o| o.key == "bytes")
                    .and_then(|o| o.value.parse().ok())
                    .unwrap_or(8 << 20);
                Ok(ok("x".repeat(size)))
            }
            "sleep" => {
                // Blocks in host code (WASI poll), where the epoch deadline
                // cannot reach.
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(ok("slept".into()))
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "error" => Err("the threshold makes no sense to me".into()),
            other => Err(format!("unknown mode {other}")),
        }
    }
}

dscan_plugin_sdk::evaluator::export!(Hostile);
