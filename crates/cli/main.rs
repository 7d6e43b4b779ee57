//! The `egret` binary: clap commands over the library crates. The only place that uses
//! `anyhow`, reads the environment, and decides exit codes.
//!
//! `args` is the command line; `commands` runs each command; `serve` runs egret through
//! `egret-app` (which opens, creates and starts everything) until a signal; `config`
//! loads the policy and the admin token; `client` is the JSON client commands use to reach a running server;
//! `sandbox_env` prints what a sandbox needs; `output` prints listings (tables for
//! people, JSON for scripts); `log_writer` escapes control characters in the text log. It must not hold proxy, control-plane or
//! storage logic of its own: that lives in the library crates.

/// `println!` that ends the process quietly when stdout is closed early
/// (`egret policy check f.yaml | head -1`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*)
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
    }};
}

/// Writes `text` to stdout as it is (no newline added), ending the process quietly when
/// stdout is closed early (`egret ca export | head -1`), as [`say!`] does.
fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}

mod args;
mod client;
mod commands;
mod config;
mod log_writer;
mod output;
mod sandbox_env;
mod serve;

use clap::Parser;

/// A proxy allocates and frees many small buffers per request on every worker thread;
/// mimalloc's thread-local free lists beat glibc malloc there (`benches/hot_path.rs`:
/// the swap took 2.2 µs on glibc malloc, 1.8 µs on mimalloc). Built without transparent
/// huge pages (the `no_thp` feature): with them, its arenas grew in 2 MiB pages and an
/// idle intercepted connection cost 47 KiB of memory instead of 32 KiB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    // One thread: the control plane, reload and signals are light. The proxy runs on
    // worker threads of its own (`egret_proxy::serve`).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line per problem: the chain of causes joined, each saying what to do
            // (a policy file with several problems says each on its own line).
            let msg = e
                .chain()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            for line in msg.lines() {
                eprintln!("error: {line}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
