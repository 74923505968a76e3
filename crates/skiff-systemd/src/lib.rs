//! The systemd cgroup driver's D-Bus side (`--systemd-cgroup`): the
//! container's group as a transient scope unit, started, changed and stopped
//! through systemd's manager API on the system bus, with the container's
//! resources as unit properties, as runc's systemd driver maps them. The
//! library calls it through `skiff_runtime::cgroups::UnitManager`; the connection is
//! made on first use, so a binary that registers it pays nothing until a
//! container asks for systemd.

use std::sync::OnceLock;
use std::time::Duration;

use futures_lite::StreamExt;
use skiff_runtime::cgroups::{ScopeUnit, UnitManager};
use skiff_runtime::oci_spec::runtime::LinuxResources;
use zbus::blocking::Connection;
use zbus::zvariant::{DynamicType, OwnedObjectPath, Value};

const DESTINATION: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a start or stop job may take (runc waits as long).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// systemd's manager, reached on first use over the system bus, or (`user`)
/// the caller's own manager over its session bus.
#[derive(Default)]
pub struct Systemd {
    user: bool,
    conn: OnceLock<Result<Connection, String>>,
}

type Property = (&'static str, Value<'static>);

impl Systemd {
    pub const fn new() -> Systemd {
        Systemd {
            user: false,
            conn: OnceLock::new(),
        }
    }

    /// The caller's own systemd (`systemd --user`), as rootless Podman uses.
    pub const fn user() -> Systemd {
        Systemd {
            user: true,
            conn: OnceLock::new(),
        }
    }

    fn conn(&self) -> Result<&Connection, String> {
        self.conn
            .get_or_init(|| match self.user {
                true => Connection::session().map_err(|e| {
                    format!("connecting to the session bus (the user's systemd): {e}")
                }),
                false => {
                    Connection::system().map_err(|e| format!("connecting to the system bus: {e}"))
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn manager(&self) -> Result<zbus::Proxy<'static>, String> {
        let conn = self.conn()?.inner().clone();
        zbus::block_on(zbus::Proxy::new_owned(conn, DESTINATION, PATH, MANAGER))
            .map_err(|e| format!("systemd's manager: {e}"))
    }

    /// Calls `method`, which queues a job and answers its path, and waits
    /// (bounded) for the job's end: JobRemoved, whose result must be "done".
    fn run_job<B>(&self, method: &str, body: &B) -> Result<(), String>
    where
        B: serde::ser::Serialize + DynamicType,
    {
        let manager = self.manager()?;
        zbus::block_on(async {
            // Listening before the call, so that a quick job is not missed;
            // Subscribe makes systemd send its signals at all.
            let mut removed = manager
                .receive_signal("JobRemoved")
                .await
                .map_err(|e| format!("listening for JobRemoved: {e}"))?;
            let _: Result<(), _> = manager.call("Subscribe", &()).await;
            let job: OwnedObjectPath = manager
                .call(method, body)
                .await
                .map_err(|e| format!("{method}: {e}"))?;
            let wait = async {
                while let Some(signal) = removed.next().await {
                    let Ok((_, path, _, result)) =
                        signal
                            .body()
                            .deserialize::<(u32, OwnedObjectPath, String, String)>()
                    else {
                        continue;
                    };
                    if path == job {
                        return match result.as_str() {
                            "done" => Ok(()),
                            other => Err(format!("{method}: the job ended: {other}")),
                        };
                    }
                }
                Err(format!("{method}: the bus closed before the job ended"))
            };
            let timeout = async {
                async_io::Timer::after(JOB_TIMEOUT).await;
                Err(format!(
                    "{method}: no answer from systemd in {JOB_TIMEOUT:?}"
                ))
            };
            futures_lite::future::or(wait, timeout).await
        })
    }
}

impl Systemd {
    /// The unit's ControlGroup: where systemd made its group.
    fn control_group(&self, unit: &str) -> Result<String, String> {
        let manager = self.manager()?;
        let conn = self.conn()?.inner().clone();
        zbus::block_on(async {
            let path: OwnedObjectPath = manager
                .call("GetUnit", &(unit,))
                .await
                .map_err(|e| format!("GetUnit: {e}"))?;
            let iface = if unit.ends_with(".slice") {
                "org.freedesktop.systemd1.Slice"
            } else {
                "org.freedesktop.systemd1.Scope"
            };
            let props = zbus::Proxy::new_owned(conn, DESTINATION, path, iface)
                .await
                .map_err(|e| format!("the unit's properties: {e}"))?;
            props
                .get_property::<String>("ControlGroup")
                .await
                .map_err(|e| format!("ControlGroup: {e}"))
        })
    }
}

impl UnitManager for Systemd {
    fn start_scope(
        &self,
        unit: &ScopeUnit,
        pid: i32,
        resources: Option<&LinuxResources>,
        v2: bool,
    ) -> Result<String, String> {
        let mut props: Vec<Property> = vec![(
            "Description",
            Value::from(format!("skiff container {}", unit.name)),
        )];
        if unit.name.ends_with(".slice") {
            // A slice of its own: init joins it through cgroupfs after.
            props.push(("Wants", Value::from(unit.slice.clone())));
        } else {
            props.push(("Slice", Value::from(unit.slice.clone())));
            props.push(("PIDs", Value::from(vec![pid as u32])));
            props.push(("Delegate", Value::from(true)));
        }
        props.push(("DefaultDependencies", Value::from(false)));
        for accounting in ["MemoryAccounting", "CPUAccounting", "TasksAccounting"] {
            props.push((accounting, Value::from(true)));
        }
        props.push((
            if v2 {
                "IOAccounting"
            } else {
                "BlockIOAccounting"
            },
            Value::from(true),
        ));
        if let Some(res) = resources {
            props.extend(resource_properties(res, v2)?);
        }
        let aux: Vec<(&str, Vec<Property>)> = Vec::new();
        self.run_job(
            "StartTransientUnit",
            &(unit.name.as_str(), "replace", props, aux),
        )?;
        // Only the user's systemd decides where the group is (below
        // user@UID.service); the system's is where the name says.
        match unit.user {
            true => self.control_group(&unit.name),
            false => Ok(String::new()),
        }
    }

    fn set_resources(
        &self,
        unit: &ScopeUnit,
        res: &LinuxResources,
        v2: bool,
    ) -> Result<(), String> {
        let unit = unit.name.as_str();
        let props = resource_properties(res, v2)?;
        if props.is_empty() {
            return Ok(());
        }
        let manager = self.manager()?;
        zbus::block_on(manager.call::<_, _, ()>("SetUnitProperties", &(unit, true, props)))
            .map_err(|e| format!("SetUnitProperties: {e}"))
    }

    fn stop(&self, unit: &ScopeUnit) -> Result<(), String> {
        match self.run_job("StopUnit", &(unit.name.as_str(), "replace")) {
            // Collected already: a scope goes away once it is empty.
            Err(e) if e.contains("NoSuchUnit") || e.contains("not loaded") => Ok(()),
            other => other,
        }
    }
}

/// linux.resources as unit properties, as runc's systemd driver sets them
/// (cgroup v2 names where `v2`, the v1 ones where not). What has no
/// property is written to the group's files by the cgroupfs code after.
fn resource_properties(res: &LinuxResources, v2: bool) -> Result<Vec<Property>, String> {
    let mut props: Vec<Property> = Vec::new();
    let max = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if let Some(mem) = res.memory() {
        let limit = mem.limit().filter(|l| *l != 0);
        if let Some(limit) = limit {
            props.push((
                if v2 { "MemoryMax" } else { "MemoryLimit" },
                Value::from(max(limit)),
            ));
        }
        if let (Some(low), true) = (mem.reservation().filter(|r| *r > 0), v2) {
            props.push(("MemoryLow", Value::from(low as u64)));
        }
        // v2 counts swap alone, the spec memory plus swap.
        if let (Some(swap), true) = (mem.swap().filter(|s| *s != 0), v2) {
            let swap_only = match (swap, limit) {
                (-1, _) => u64::MAX,
                (s, Some(l)) if l > 0 && s >= l => (s - l) as u64,
                (s, Some(l)) if l > 0 => {
                    return Err(format!(
                        "linux.resources.memory.swap {s} is below memory.limit {l}"
                    ))
                }
                _ => {
                    return Err(
                        "linux.resources.memory.swap: needs memory.limit on cgroup v2".into(),
                    )
                }
            };
            props.push(("MemorySwapMax", Value::from(swap_only)));
        }
    }
    if let Some(cpu) = res.cpu() {
        if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
            props.push(match v2 {
                true => (
                    "CPUWeight",
                    Value::from(skiff_runtime::cgroups::shares_to_weight(shares)),
                ),
                false => ("CPUShares", Value::from(shares)),
            });
        }
        let period = cpu.period().filter(|p| *p > 0).unwrap_or(100_000);
        if cpu.period().is_some_and(|p| p > 0) {
            props.push(("CPUQuotaPeriodUSec", Value::from(period)));
        }
        if let Some(quota) = cpu.quota().filter(|q| *q != 0) {
            // Per second, rounded up to systemd's 10 ms steps (as runc).
            let per_sec = match quota {
                q if q < 0 => u64::MAX,
                q => (q as u64 * 1_000_000 / period).div_ceil(10_000) * 10_000,
            };
            props.push(("CPUQuotaPerSecUSec", Value::from(per_sec)));
        }
        if v2 {
            if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
                props.push(("AllowedCPUs", Value::from(bitmask("cpu.cpus", cpus)?)));
            }
            if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
                props.push((
                    "AllowedMemoryNodes",
                    Value::from(bitmask("cpu.mems", mems)?),
                ));
            }
        }
    }
    if let Some(pids) = res.pids() {
        if pids.limit() != 0 {
            props.push(("TasksMax", Value::from(max(pids.limit()))));
        }
    }
    if let Some(weight) = res.block_io().as_ref().and_then(|b| b.weight()) {
        if weight > 0 {
            props.push(match v2 {
                true => (
                    "IOWeight",
                    Value::from(1 + (weight.clamp(10, 1000) as u64 - 10) * 9999 / 990),
                ),
                false => ("BlockIOWeight", Value::from(weight as u64)),
            });
        }
    }
    Ok(props)
}

/// A cpuset list ("0-3,8") as systemd's AllowedCPUs bytes: bit n of byte
/// n / 8 for cpu n.
fn bitmask(field: &str, list: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("linux.resources.{field}: {list:?} is not a list of numbers and ranges");
    let mut bytes = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
            None => (part.parse(), part.parse()),
        };
        let (lo, hi) = (lo.map_err(|_| bad())?, hi.map_err(|_| bad())?);
        if lo > hi || hi >= 8192 {
            return Err(bad());
        }
        for n in lo..=hi {
            if bytes.len() <= n / 8 {
                bytes.resize(n / 8 + 1, 0);
            }
            bytes[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_runtime::oci_spec::runtime::LinuxResources;

    fn props(json: &str, v2: bool) -> Vec<(String, String)> {
        let res: LinuxResources = serde_json::from_str(json).unwrap();
        resource_properties(&res, v2)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn resources_map_as_runc_maps_them() {
        let p = props(
            r#"{"memory": {"limit": 67108864, "swap": 134217728, "reservation": 1048576},
                "cpu": {"shares": 1024, "quota": 25000, "period": 100000, "cpus": "0-2,9"},
                "pids": {"limit": 20}, "blockIO": {"weight": 500}}"#,
            true,
        );
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax").as_deref(), Some("uint64 67108864"));
        assert_eq!(get("MemorySwapMax").as_deref(), Some("uint64 67108864"));
        assert_eq!(get("MemoryLow").as_deref(), Some("uint64 1048576"));
        assert_eq!(get("CPUWeight").as_deref(), Some("uint64 39"));
        assert_eq!(get("CPUQuotaPerSecUSec").as_deref(), Some("uint64 250000"));
        assert_eq!(get("CPUQuotaPeriodUSec").as_deref(), Some("uint64 100000"));
        assert_eq!(get("TasksMax").as_deref(), Some("uint64 20"));
        assert_eq!(get("IOWeight").as_deref(), Some("uint64 4950"));
        assert_eq!(bitmask("cpu.cpus", "0-2,9").unwrap(), vec![0b111, 0b10]);
        // A quota that is not a multiple of 10 ms per second rounds up.
        let p = props(r#"{"cpu": {"quota": 12345, "period": 100000}}"#, true);
        assert_eq!(p[1], ("CPUQuotaPerSecUSec".into(), "uint64 130000".into()));
        // The D-Bus types are systemd's: t (uint64) throughout.
        // Unlimited, and the v1 names.
        let p = props(
            r#"{"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"shares": 512}}"#,
            false,
        );
        assert_eq!(p[0], ("MemoryLimit".into(), format!("uint64 {}", u64::MAX)));
        assert!(p.contains(&("CPUShares".into(), "uint64 512".into())));
        assert!(p.contains(&("TasksMax".into(), format!("uint64 {}", u64::MAX))));
        assert!(bitmask("cpu.cpus", "3-1").is_err());
        assert!(resource_properties(
            &serde_json::from_str(r#"{"memory": {"limit": 100, "swap": 50}}"#).unwrap(),
            true
        )
        .unwrap_err()
        .contains("swap"));
    }
}
