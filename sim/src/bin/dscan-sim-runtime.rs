//! The simulator's container runtime helper (see `dscan_sim::runtime`).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = dscan_sim::runtime::main(&args);
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(255))
}
