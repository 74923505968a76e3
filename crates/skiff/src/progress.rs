//! Pull progress: a bar per layer on a terminal (indicatif), lines as
//! Podman prints them otherwise.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use skiff_image::pull::{LayerProgress, Progress};

pub enum Reporter {
    Bars(MultiProgress),
    Lines,
}

impl Reporter {
    pub fn new() -> Reporter {
        if std::io::stderr().is_terminal() {
            Reporter::Bars(MultiProgress::new())
        } else {
            Reporter::Lines
        }
    }
}

struct Bar(ProgressBar);
struct Line(String);

impl LayerProgress for Bar {
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn done(&self, how: &str) {
        self.0.finish_with_message(how.to_string());
    }
}

impl LayerProgress for Line {
    fn advance(&self, _: u64) {}
    fn done(&self, how: &str) {
        eprintln!("Copying blob {} {how}", self.0);
    }
}

impl Progress for Reporter {
    fn layer(&self, digest: &str, size: u64) -> Box<dyn LayerProgress> {
        let short = digest
            .strip_prefix("sha256:")
            .unwrap_or(digest)
            .get(..12)
            .unwrap_or(digest)
            .to_string();
        match self {
            Reporter::Bars(m) => {
                let bar = m.add(ProgressBar::new(size));
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(short);
                Box::new(Bar(bar))
            }
            Reporter::Lines => Box::new(Line(short)),
        }
    }
    fn note(&self, msg: &str) {
        match self {
            Reporter::Bars(m) => {
                let _ = m.println(msg);
            }
            Reporter::Lines => eprintln!("{msg}"),
        }
    }
}
