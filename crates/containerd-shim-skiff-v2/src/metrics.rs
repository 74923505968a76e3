//! Stats: the library's cgroup statistics (runc's `events --stats` shape)
//! turned into the metrics messages `ctr task metrics` and the CRI plugin
//! decode: `io.containerd.cgroups.v1.Metrics` on a v1 or hybrid host,
//! `io.containerd.cgroups.v2.Metrics` on a unified one.

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use serde_json::Value;

fn n(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

pub fn to_any(stats: &Value, unified: bool) -> Any {
    let (type_url, value) = if unified {
        (
            "io.containerd.cgroups.v2.Metrics",
            v2_metrics(stats).write_to_bytes(),
        )
    } else {
        (
            "io.containerd.cgroups.v1.Metrics",
            v1_metrics(stats).write_to_bytes(),
        )
    };
    Any {
        type_url: type_url.into(),
        value: value.unwrap_or_default(),
        ..Default::default()
    }
}

/// A v1 memory counter set (usage, memory+swap, kernel, kernel TCP), as
/// the runc shim reports them, where the kernel has them.
fn entry(s: &Value, key: &str) -> MessageField<v1::MemoryEntry> {
    let e = &s["memory"][key];
    if !e.is_object() {
        return MessageField::none();
    }
    MessageField::some(v1::MemoryEntry {
        limit: n(e, &["limit"]),
        usage: n(e, &["usage"]),
        max: n(e, &["max"]),
        failcnt: n(e, &["failcnt"]),
        ..Default::default()
    })
}

fn v1_metrics(s: &Value) -> v1::Metrics {
    let raw = |k: &str| n(s, &["memory", "raw", k]);
    let memory = v1::MemoryStat {
        cache: raw("cache"),
        rss: raw("rss"),
        rss_huge: raw("rss_huge"),
        mapped_file: raw("mapped_file"),
        dirty: raw("dirty"),
        writeback: raw("writeback"),
        pg_pg_in: raw("pgpgin"),
        pg_pg_out: raw("pgpgout"),
        pg_fault: raw("pgfault"),
        pg_maj_fault: raw("pgmajfault"),
        inactive_anon: raw("inactive_anon"),
        active_anon: raw("active_anon"),
        inactive_file: raw("inactive_file"),
        active_file: raw("active_file"),
        unevictable: raw("unevictable"),
        hierarchical_memory_limit: raw("hierarchical_memory_limit"),
        hierarchical_swap_limit: raw("hierarchical_memsw_limit"),
        total_cache: raw("total_cache"),
        total_rss: raw("total_rss"),
        total_rss_huge: raw("total_rss_huge"),
        total_mapped_file: raw("total_mapped_file"),
        total_dirty: raw("total_dirty"),
        total_writeback: raw("total_writeback"),
        total_pg_pg_in: raw("total_pgpgin"),
        total_pg_pg_out: raw("total_pgpgout"),
        total_pg_fault: raw("total_pgfault"),
        total_pg_maj_fault: raw("total_pgmajfault"),
        total_inactive_anon: raw("total_inactive_anon"),
        total_active_anon: raw("total_active_anon"),
        total_inactive_file: raw("total_inactive_file"),
        total_active_file: raw("total_active_file"),
        total_unevictable: raw("total_unevictable"),
        usage: entry(s, "usage"),
        swap: entry(s, "swap"),
        kernel: entry(s, "kernel"),
        kernel_tcp: entry(s, "kernelTCP"),
        ..Default::default()
    };
    let cpu = v1::CPUStat {
        usage: MessageField::some(v1::CPUUsage {
            total: n(s, &["cpu", "usage", "total"]),
            kernel: n(s, &["cpu", "usage", "kernel"]),
            user: n(s, &["cpu", "usage", "user"]),
            per_cpu: s["cpu"]["usage"]["percpu"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
            ..Default::default()
        }),
        throttling: MessageField::some(v1::Throttle {
            periods: n(s, &["cpu", "throttling", "periods"]),
            throttled_periods: n(s, &["cpu", "throttling", "throttledPeriods"]),
            throttled_time: n(s, &["cpu", "throttling", "throttledTime"]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let blk = |key: &str| -> Vec<v1::BlkIOEntry> {
        s["blkio"][key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| v1::BlkIOEntry {
                op: e["op"].as_str().unwrap_or_default().to_string(),
                major: n(e, &["major"]),
                minor: n(e, &["minor"]),
                value: n(e, &["value"]),
                ..Default::default()
            })
            .collect()
    };
    v1::Metrics {
        hugetlb: hugetlb(s)
            .map(|(pagesize, e)| v1::HugetlbStat {
                usage: n(e, &["usage"]),
                max: n(e, &["max"]),
                failcnt: n(e, &["failcnt"]),
                pagesize,
                ..Default::default()
            })
            .collect(),
        pids: MessageField::some(v1::PidsStat {
            current: n(s, &["pids", "current"]),
            limit: n(s, &["pids", "limit"]),
            ..Default::default()
        }),
        cpu: MessageField::some(cpu),
        memory: MessageField::some(memory),
        memory_oom_control: match s["memory"]["oomControl"].is_object() {
            true => MessageField::some(v1::MemoryOomControl {
                oom_kill_disable: n(s, &["memory", "oomControl", "oom_kill_disable"]),
                under_oom: n(s, &["memory", "oomControl", "under_oom"]),
                oom_kill: n(s, &["memory", "oomControl", "oom_kill"]),
                ..Default::default()
            }),
            false => MessageField::none(),
        },
        blkio: MessageField::some(v1::BlkIOStat {
            io_service_bytes_recursive: blk("ioServiceBytesRecursive"),
            io_serviced_recursive: blk("ioServicedRecursive"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn hugetlb(s: &Value) -> impl Iterator<Item = (String, &Value)> {
    s["hugetlb"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v))
}

fn v2_metrics(s: &Value) -> v2::Metrics {
    let raw = |k: &str| n(s, &["memory", "raw", k]);
    let memory = v2::MemoryStat {
        anon: raw("anon"),
        file: raw("file"),
        kernel_stack: raw("kernel_stack"),
        slab: raw("slab"),
        sock: raw("sock"),
        shmem: raw("shmem"),
        file_mapped: raw("file_mapped"),
        file_dirty: raw("file_dirty"),
        file_writeback: raw("file_writeback"),
        anon_thp: raw("anon_thp"),
        inactive_anon: raw("inactive_anon"),
        active_anon: raw("active_anon"),
        inactive_file: raw("inactive_file"),
        active_file: raw("active_file"),
        unevictable: raw("unevictable"),
        slab_reclaimable: raw("slab_reclaimable"),
        slab_unreclaimable: raw("slab_unreclaimable"),
        pgfault: raw("pgfault"),
        pgmajfault: raw("pgmajfault"),
        usage: n(s, &["memory", "usage", "usage"]),
        usage_limit: n(s, &["memory", "usage", "limit"]),
        max_usage: n(s, &["memory", "usage", "max"]),
        ..Default::default()
    };
    let ns_to_us = |p: &[&str]| n(s, p) / 1000;
    v2::Metrics {
        pids: MessageField::some(v2::PidsStat {
            current: n(s, &["pids", "current"]),
            limit: n(s, &["pids", "limit"]),
            ..Default::default()
        }),
        cpu: MessageField::some(v2::CPUStat {
            usage_usec: ns_to_us(&["cpu", "usage", "total"]),
            user_usec: ns_to_us(&["cpu", "usage", "user"]),
            system_usec: ns_to_us(&["cpu", "usage", "kernel"]),
            nr_periods: n(s, &["cpu", "throttling", "periods"]),
            nr_throttled: n(s, &["cpu", "throttling", "throttledPeriods"]),
            throttled_usec: ns_to_us(&["cpu", "throttling", "throttledTime"]),
            ..Default::default()
        }),
        memory: MessageField::some(memory),
        hugetlb: hugetlb(s)
            .map(|(pagesize, e)| v2::HugeTlbStat {
                current: n(e, &["usage"]),
                max: n(e, &["max"]),
                failcnt: n(e, &["failcnt"]),
                pagesize,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v1_fields_land_where_ctr_reads_them() {
        let s = json!({
            "memory": {"usage": {"usage": 4096, "limit": 65536, "max": 8192, "failcnt": 1},
                       "swap": {"usage": 5000, "limit": 70000, "max": 6000, "failcnt": 0},
                       "kernel": {"usage": 300, "limit": 0, "max": 400, "failcnt": 0},
                       "kernelTCP": {"usage": 30, "limit": 0, "max": 40, "failcnt": 0},
                       "oomControl": {"oom_kill_disable": 1, "under_oom": 0, "oom_kill": 2},
                       "raw": {"cache": 7, "total_rss": 9}},
            "cpu": {"usage": {"total": 1000, "percpu": [600, 400], "kernel": 10, "user": 20},
                    "throttling": {"periods": 5, "throttledPeriods": 2, "throttledTime": 99}},
            "pids": {"current": 3, "limit": 10},
            "blkio": {"ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 512}]},
            "hugetlb": {"2MB": {"usage": 0, "max": 0, "failcnt": 0}},
        });
        let any = to_any(&s, false);
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.usage.limit, 65536);
        assert_eq!(m.memory.cache, 7);
        assert_eq!(m.memory.total_rss, 9);
        assert_eq!(m.memory.swap.usage, 5000);
        assert_eq!(m.memory.kernel.max, 400);
        assert_eq!(m.memory.kernel_tcp.usage, 30);
        assert_eq!(m.memory_oom_control.oom_kill_disable, 1);
        assert_eq!(m.memory_oom_control.oom_kill, 2);
        assert_eq!(m.cpu.usage.per_cpu, vec![600, 400]);
        assert_eq!(m.cpu.throttling.throttled_periods, 2);
        assert_eq!(m.pids.limit, 10);
        assert_eq!(m.blkio.io_service_bytes_recursive[0].op, "Read");
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
    }

    #[test]
    fn v2_converts_nanoseconds_to_microseconds() {
        let s = json!({"cpu": {"usage": {"total": 5_000_000}}, "memory": {"usage": {"usage": 1}}});
        let any = to_any(&s, true);
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.cpu.usage_usec, 5000);
        assert_eq!(m.memory.usage, 1);
    }
}
