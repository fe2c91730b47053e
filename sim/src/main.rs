//! The `crashpoint` command; everything lives in [`crashpoint_sim::cli`].

fn main() {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`crashpoint run | head`) would
    // panic; a command-line tool should end quietly like any other.
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(crashpoint_sim::cli::main())
}
