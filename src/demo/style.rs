//! Terminal output for the demo: colour when stdout is a terminal and `NO_COLOR` is unset,
//! plain text otherwise (so a log or a pipe gets no escape codes).

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
    tty: bool,
}

impl Style {
    /// Decided once from the environment.
    pub fn detect() -> Style {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: tty && !no_color,
            tty,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn cyan(&self, s: &str) -> String {
        self.paint("36", s)
    }
    pub fn ok(&self) -> String {
        self.green("✓")
    }
    pub fn fail(&self) -> String {
        self.red("✗")
    }

    /// A decision word, bold: passing ones green, `BLOCK` and failures red, others yellow.
    pub fn decision(&self, d: &str) -> String {
        let code = match d {
            "PASS" | "ROLLBACK PASS" | "PREVIEW" => "1;32",
            "BLOCK" | "FAILED" => "1;31",
            _ => "1;33",
        };
        self.paint(code, d)
    }

    pub fn heading(&self, s: &str) {
        println!("\n{}", self.bold(s));
    }

    /// Runs a slow step while showing that it runs: a spinner with the elapsed time on a
    /// terminal, a start line and a done line otherwise.
    pub async fn progress<T>(&self, label: &str, fut: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let result = if self.tty {
            let mut fut = std::pin::pin!(fut);
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut i = 0usize;
            loop {
                tokio::select! {
                    r = &mut fut => break r,
                    _ = tick.tick() => {
                        let frame = frames.get(i % frames.len()).copied().unwrap_or('.');
                        print!("\r  {} {label} {}", self.cyan(&frame.to_string()),
                            self.dim(&format!("{:.1} s", start.elapsed().as_secs_f64())));
                        let _ = std::io::stdout().flush();
                        i += 1;
                    }
                }
            }
        } else {
            println!("  … {label}");
            fut.await
        };
        let took = format!("({:.1} s)", start.elapsed().as_secs_f64());
        if self.tty {
            // Clear the spinner line before the caller prints the outcome.
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
        println!("  {} {label} {}", self.dim("·"), self.dim(&took));
        result
    }
}
