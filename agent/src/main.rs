//! dscan's file agent. Runs inside the target's pod (in the debug
//! container, as the target's own user) and serves the target's root —
//! `/proc/<pid>/root`, given as its one argument — read-only over stdin and
//! stdout, in the protocol of `dscan_targetfs::wire`. Every path resolves
//! as the target would resolve it; nothing is written, nothing executed.

use std::io::{BufReader, BufWriter};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(root), None) = (args.next(), args.next()) else {
        eprintln!("usage: dscan-agent ROOT (e.g. /proc/1/root)");
        return ExitCode::from(2);
    };
    let fs = match dscan_targetfs::RootDir::open(std::path::Path::new(&root)) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("dscan-agent: cannot open {}: {e}", root.to_string_lossy());
            return ExitCode::from(3);
        }
    };
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut output = BufWriter::new(std::io::stdout().lock());
    match dscan_targetfs::wire::serve(&fs, &mut input, &mut output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dscan-agent: {e}");
            ExitCode::from(4)
        }
    }
}
