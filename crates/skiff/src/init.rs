//! `--init`: this binary as the container's pid 1 (bound in at /dev/init,
//! run as `/dev/init __init -- CMD...`), as Docker's docker-init (tini):
//! it starts CMD, forwards the signals a container is sent to it (so
//! `stop` ends it instead of waiting out the timeout: a pid 1 ignores
//! signals it has no handler for), reaps every orphan that ends up as its
//! child, and exits as CMD does.

/// Signals passed on to the command.
const FORWARDED: &[i32] = &[
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGALRM,
];

pub fn run(argv: &[String]) -> ! {
    if argv.is_empty() {
        eprintln!("skiff init: no command");
        std::process::exit(125);
    }
    // SAFETY: signal masks and fork/exec in a single-threaded process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
            libc::sigaddset(&mut set, *s);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        let args: Vec<std::ffi::CString> = argv
            .iter()
            .map(|a| std::ffi::CString::new(a.as_bytes()).unwrap_or_default())
            .collect();
        let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let child = libc::fork();
        if child < 0 {
            eprintln!("skiff init: fork: {}", std::io::Error::last_os_error());
            std::process::exit(125);
        }
        if child == 0 {
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            // Its own process group, in the foreground of the terminal if any.
            libc::setpgid(0, 0);
            libc::tcsetpgrp(0, libc::getpid());
            libc::execvp(ptrs[0], ptrs.as_ptr());
            let e = std::io::Error::last_os_error();
            eprintln!("skiff init: {}: {e}", argv[0]);
            libc::_exit(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&set, &mut info);
            if sig < 0 {
                continue;
            }
            if sig != libc::SIGCHLD {
                libc::kill(child, sig);
                continue;
            }
            // Reap everything that ended; the command's end is ours.
            loop {
                let mut status = 0;
                let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == child {
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    std::process::exit(code);
                }
            }
        }
    }
}
