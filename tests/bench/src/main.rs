//! sixcast's performance suite: builds network-namespace worlds and measures, side by side in one
//! run, sixcast beside raw UDP multicast, ZeroMQ PUB/SUB, the bindings beside pyzmq and
//! zeromq.js, and the relay beside plain unicast forwarding. Prints tables with the ratios
//! against issue 6's targets and writes them as JSON.
//!
//! ```sh
//! tests/bench/suite            # builds everything it needs, runs this, then plots
//! ```
//! Every process runs inside a namespace host this program creates (and removes); no traffic
//! leaves them. `sixcast-bench role SPEC` is one such process (see `roles`).

mod fanout;
mod lossless;
mod protected;
mod relay;
mod roles;
mod suite;
mod targets;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("role") => {
            let Some(spec) = args.get(1) else {
                eprintln!("usage: sixcast-bench role SPEC-JSON");
                return ExitCode::from(2);
            };
            let outcome = serde_json::from_str(spec)
                .map_err(|err| format!("bad spec: {err}"))
                .and_then(|spec| roles::run(&spec));
            match outcome {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("sixcast-bench role: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("suite") => {
            match suite::Options::parse(&args[1..]).and_then(|options| suite::run(&options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("sixcast-bench: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!(
                "usage: sixcast-bench suite [--seconds S] [--out DIR] [--python PYTHON] \
                 [--node-binding DIR] [--only PARTS] [--sizes 64,1024] [--receivers 1,4]\n       sixcast-bench role SPEC-JSON"
            );
            ExitCode::from(2)
        }
    }
}
