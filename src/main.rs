//! Thin binary: everything lives in the library so tests can drive it too.

fn main() -> std::process::ExitCode {
    e2e_gate::cli::main()
}
