//! The `gateway` CLI, built inside the test package so tests can spawn it.

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
