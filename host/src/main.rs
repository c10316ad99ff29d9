//! The `dscan` command.

fn main() -> std::process::ExitCode {
    // `dscan demo` starts the cluster simulator, whose kubelet runs containers
    // through this same binary as its (single-threaded) runtime helper.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(dscan::cli::SIM_RUNTIME_ARG) {
        let code = dscan_sim::runtime::main(&args[2..]);
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(255));
    }
    dscan::cli::main()
}
