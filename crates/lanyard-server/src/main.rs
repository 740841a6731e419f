//! The `lanyard` command; see [`lanyard_server::cli`].

fn main() -> std::process::ExitCode {
    lanyard_server::cli::main()
}
