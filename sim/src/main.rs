//! The `crashpoint` command; everything lives in [`crashpoint_sim::cli`].

fn main() {
    std::process::exit(crashpoint_sim::cli::main())
}
