//! skiff-systemd(8), generated at build time from the command line's
//! definition (src/cli.rs); `skiff-systemd man` prints it.

#[path = "src/cli.rs"]
#[allow(dead_code)]
mod cli;

fn main() {
    println!("cargo:rerun-if-changed=src/cli.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut cmd = <cli::Cli as clap::CommandFactory>::command();
    cmd.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut page)
        .expect("rendering skiff-systemd.8");
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name: &'static str =
            Box::leak(format!("skiff-systemd {}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).bin_name(name);
        page.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let man = clap_mangen::Man::new(sub.clone());
        man.render_description_section(&mut page)
            .expect("rendering");
        man.render_synopsis_section(&mut page).expect("rendering");
        if let Some(after) = sub.get_after_help() {
            page.extend_from_slice(b".PP\n.nf\n");
            for line in after.to_string().lines() {
                let line = line.replace('\\', "\\e").replace('-', "\\-");
                page.extend_from_slice(format!("{line}\n").as_bytes());
            }
            page.extend_from_slice(b".fi\n");
        }
    }
    std::fs::write(out.join("skiff-systemd.8"), page).expect("writing skiff-systemd.8");
}
