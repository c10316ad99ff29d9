//! The `dscan` command.

fn main() -> std::process::ExitCode {
    dscan::cli::main()
}
