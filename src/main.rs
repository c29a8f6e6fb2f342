//! The `biller-inbox` binary: parse the command line and hand over to `cli`.

fn main() -> std::process::ExitCode {
    biller_inbox::cli::run()
}
