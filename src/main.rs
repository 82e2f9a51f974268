mod cli;

use clap::FromArgMatches;

fn main() {
    let matches = cli::command().get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let code = match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let text = format!("{e:#}");
            eprintln!("error: {text}");
            // SQLite and the OS word a full disk differently; both get the same advice.
            if text.contains("No space left on device") || text.contains("disk is full") {
                eprintln!(
                    "hint: the disk holding the data dir is full; free some space, then run the same command again (it resumes where it stopped)"
                );
            }
            2
        }
    };
    std::process::exit(code);
}
