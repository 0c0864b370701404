//! The `dispatch` binary: everything is in the library; see `dispatch::cli`.

fn main() {
    std::process::exit(dispatch::cli::main(std::env::args_os()));
}
