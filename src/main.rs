mod cli;

use clap::{CommandFactory, FromArgMatches};

fn main() {
    let matches = cli::Cli::command()
        .long_about(cli::long_about())
        .get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let code = match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
