//! Nomad-style flags: `-meta k=v` and `-detach` (one dash) work as well as `--meta`.
//!
//! clap only knows `--long`, so before parsing, a single-dash argument whose name is a long
//! flag of the command line is rewritten to two dashes. Everything after `--` is left alone,
//! as are `-` (stdin) and real short flags.

use std::collections::HashSet;

use clap::Command;

/// Every long flag name anywhere in the command tree.
fn long_flags(cmd: &Command, names: &mut HashSet<String>) {
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            names.insert(long.to_string());
        }
        if let Some(aliases) = arg.get_all_aliases() {
            names.extend(aliases.into_iter().map(str::to_string));
        }
    }
    for sub in cmd.get_subcommands() {
        long_flags(sub, names);
    }
}

/// Rewrite `-name` / `-name=value` to `--name...` where `name` is a known long flag.
pub fn normalize(args: impl IntoIterator<Item = String>, cmd: &Command) -> Vec<String> {
    let mut names = HashSet::new();
    long_flags(cmd, &mut names);
    names.insert("help".into());
    names.insert("version".into());
    let mut out = Vec::new();
    let mut passthrough = false;
    for arg in args {
        if passthrough || arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let rewritten = arg
            .strip_prefix('-')
            .filter(|rest| !rest.starts_with('-'))
            .filter(|rest| {
                let name = rest.split_once('=').map_or(*rest, |(n, _)| n);
                name.len() > 1 && names.contains(name)
            })
            .map(|rest| format!("--{rest}"));
        out.push(rewritten.unwrap_or(arg));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction};

    fn cmd() -> Command {
        Command::new("t")
            .arg(Arg::new("meta").long("meta").action(ArgAction::Append))
            .arg(Arg::new("detach").long("detach").action(ArgAction::SetTrue))
            .arg(Arg::new("rest").num_args(0..).trailing_var_arg(true))
    }

    fn norm(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(|s| s.to_string()), &cmd())
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            norm(&[
                "t",
                "-meta",
                "a=b",
                "-detach",
                "-meta=c=d",
                "-",
                "--",
                "-meta"
            ]),
            [
                "t",
                "--meta",
                "a=b",
                "--detach",
                "--meta=c=d",
                "-",
                "--",
                "-meta"
            ]
        );
        assert_eq!(
            norm(&["t", "-x", "--meta", "k=v"]),
            ["t", "-x", "--meta", "k=v"]
        );
    }
}
