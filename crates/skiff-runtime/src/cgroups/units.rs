//! `--systemd-cgroup`: the container's group is a transient scope unit that
//! systemd owns (`slice:prefix:name` -> `prefix-name.scope` in `slice`), as
//! runc's systemd driver makes it. The D-Bus side lives in a crate and a
//! binary of its own (skiff-systemd), which [`Helper`] runs for each call,
//! so that neither the library nor skiff-oci and the shim carry D-Bus code
//! (zbus would add about 1 MB to each) or its threads.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

/// A scope unit, as kept in the container's cgroup record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeUnit {
    /// `prefix-name.scope`
    pub name: String,
    /// The slice it lives in, e.g. `kubepods-burstable-pod1.slice`.
    pub slice: String,
    /// A unit of the caller's own systemd (`systemd --user`, on the session
    /// bus), for a non-root caller, as rootless Podman's default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user: bool,
}

/// What the cgroup code asks of systemd's manager. Errors are systemd's
/// words; the caller names the unit and the step.
pub trait UnitManager: Sync {
    /// Starts `unit` holding `pid`, with Delegate=yes and `resources` as
    /// unit properties (`v2`: the host's tree is cgroup v2), and waits for
    /// its start job; for a unit of the user's systemd, answers its
    /// ControlGroup (its path below the cgroup root), which only systemd
    /// knows.
    fn start_scope(
        &self,
        unit: &ScopeUnit,
        pid: i32,
        resources: Option<&LinuxResources>,
        v2: bool,
    ) -> Result<String, String>;
    /// Sets `resources` as the unit's (runtime) properties.
    fn set_resources(
        &self,
        unit: &ScopeUnit,
        resources: &LinuxResources,
        v2: bool,
    ) -> Result<(), String>;
    /// Stops the unit and waits for the job; a unit that is gone already
    /// (systemd collects a scope once it is empty) is not an error.
    fn stop(&self, unit: &ScopeUnit) -> Result<(), String>;
}

static MANAGER: OnceLock<&'static dyn UnitManager> = OnceLock::new();
static HELPER: Helper = Helper;

/// Registers the manager `--systemd-cgroup` uses (once per process, before
/// any use); without one, [`Helper`] is used.
pub fn register(manager: &'static dyn UnitManager) {
    let _ = MANAGER.set(manager);
}

pub(super) fn manager() -> &'static dyn UnitManager {
    *MANAGER.get_or_init(|| &HELPER)
}

/// The `skiff-systemd` binary: `$SKIFF_SYSTEMD`, else the one beside this
/// program, else the one on PATH. Each call is one run of it, bounded.
pub struct Helper;

/// Longer than the helper's own wait for a job (30 s): its connection too.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

impl Helper {
    fn path() -> PathBuf {
        if let Some(p) = std::env::var_os("SKIFF_SYSTEMD") {
            return p.into();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("skiff-systemd")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| "skiff-systemd".into())
    }

    /// Runs the helper (`--user` for the caller's own systemd) and answers
    /// what it printed.
    fn call(
        &self,
        user: bool,
        args: &[&str],
        resources: Option<&LinuxResources>,
    ) -> Result<String, String> {
        let path = Self::path();
        let mut child = Command::new(&path)
            .args(user.then_some("--user"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running {}: {e}", path.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let text = serde_json::to_vec(&resources).unwrap_or_default();
            let _ = stdin.write_all(&text);
        }
        let deadline = Instant::now() + HELPER_TIMEOUT;
        let mut pause = Duration::from_micros(200);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{} gave no answer in {HELPER_TIMEOUT:?}",
                        path.display()
                    ));
                }
                Err(e) => return Err(format!("waiting for {}: {e}", path.display())),
            }
        };
        if status.success() {
            let mut out = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
            }
            return Ok(out.trim().to_string());
        }
        let mut why = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut why);
        }
        Err(match why.trim() {
            "" => format!("{} failed ({status})", path.display()),
            why => why.to_string(),
        })
    }
}

fn version(v2: bool) -> &'static str {
    if v2 {
        "v2"
    } else {
        "v1"
    }
}

impl UnitManager for Helper {
    fn start_scope(
        &self,
        unit: &ScopeUnit,
        pid: i32,
        resources: Option<&LinuxResources>,
        v2: bool,
    ) -> Result<String, String> {
        let pid = pid.to_string();
        self.call(
            unit.user,
            &["start-scope", &unit.name, &unit.slice, &pid, version(v2)],
            resources,
        )
    }

    fn set_resources(
        &self,
        unit: &ScopeUnit,
        resources: &LinuxResources,
        v2: bool,
    ) -> Result<(), String> {
        self.call(
            unit.user,
            &["set-resources", &unit.name, version(v2)],
            Some(resources),
        )
        .map(drop)
    }

    fn stop(&self, unit: &ScopeUnit) -> Result<(), String> {
        self.call(unit.user, &["stop", &unit.name], None).map(drop)
    }
}
