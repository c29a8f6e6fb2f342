//! The `biller-inbox` binary: parse the command line and hand over to `cli`.

/// sled 0.34 copies a tree node on every write, so the server makes many large short-lived
/// allocations; glibc's allocator spent a fifth of the server's CPU on them (perf, postings
/// scenario). mimalloc handles that pattern far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    biller_inbox::cli::run()
}
