//! `crashpoint completions SHELL`: a completion script for bash, zsh, fish, elvish or
//! PowerShell, generated from the argument definitions so it never goes stale.

use clap::CommandFactory;

use super::{Arguments, CompletionsArguments, EXIT_SUCCESS};

pub fn completions(arguments: CompletionsArguments) -> anyhow::Result<i32> {
    let mut command = Arguments::command();
    clap_complete::generate(
        arguments.shell,
        &mut command,
        "crashpoint",
        &mut std::io::stdout().lock(),
    );
    Ok(EXIT_SUCCESS)
}
