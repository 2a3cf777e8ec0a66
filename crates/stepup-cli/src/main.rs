//! The `stepup` command. Everything lives in the library; this only maps its exit code.

fn main() -> std::process::ExitCode {
    stepup_cli::run(std::env::args_os())
}
