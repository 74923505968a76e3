//! The VM tier end to end on this host (qemu, TCG): a sandbox boots with
//! skiff-agent as PID 1, runs a container from a busybox disk on the guest's
//! kernel, passes exit codes through, execs a second process, and leaves
//! nothing behind.

mod common;

use std::path::Path;

use common::*;
use skiff_vm::agent::{CreateContainerRequest, Empty};

fn alive(pid: u32) -> bool {
    // A zombie would be ours to reap: the sandbox reaps, so none is left.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_container_runs_on_the_guest_kernel_execs_and_leaves_nothing() {
    let Some(images) = images() else { return };
    let scratch = Scratch::new("run");
    let state_root = scratch.0.join("state");
    let disk = busybox_disk(&scratch, "ctr1");
    let sandbox = launch(|| config(&images, "vm-run", &state_root, vec![disk.clone()]));
    let pids = sandbox.pids();
    let dir = sandbox.dir().to_path_buf();
    checked_then_down(sandbox, |sandbox| {
        let agent = sandbox.agent().expect("connected");

        // The container's kernel is the guest's, not the host's.
        create(agent, "c1", "ctr1", &["sh", "-c", "uname -r; exit 7"]);
        start(agent, "c1");
        let release = read_all(agent, "c1", "");
        assert_eq!(wait(agent, "c1", ""), 7, "init's exit code");
        let host = nix::sys::utsname::uname().unwrap();
        let host = host.release().to_string_lossy().into_owned();
        eprintln!("container uname -r: {}, host: {host}", release.trim());
        assert_ne!(
            release.trim(),
            host,
            "uname -r in the container is the host's"
        );
        let guest = agent
            .guest_details(ctx(), &Empty::new())
            .unwrap()
            .kernel_release;
        assert_eq!(release.trim(), guest);
        agent
            .remove_container(ctx(), &container_request("c1"))
            .expect("RemoveContainer");

        // The library's refusal comes back through the runtime call's
        // answer, and the container is not kept.
        let bad = CreateContainerRequest {
            container_id: "bad".into(),
            oci_config: container_config(&["/no/such/program"]),
            rootfs_disk_serial: "ctr1".into(),
            ..Default::default()
        };
        let e = agent
            .create_container(ctx(), &bad)
            .expect_err("a create whose program is missing");
        assert!(e.to_string().contains("/no/such/program"), "{e}");
        assert!(agent
            .remove_container(ctx(), &container_request("bad"))
            .is_err());

        // A second process in a running container, its own output and exit
        // code; then init killed by a signal reports 128 + 9.
        create(agent, "c2", "ctr1", &["sleep", "600"]);
        start(agent, "c2");
        exec(
            agent,
            "c2",
            "e1",
            &["sh", "-c", "echo from-exec $(cat /proc/1/comm); exit 3"],
        );
        assert_eq!(read_all(agent, "c2", "e1").trim(), "from-exec sleep");
        assert_eq!(wait(agent, "c2", "e1"), 3, "the exec's exit code");
        kill_and_remove(agent, "c2");
    });
    // Nothing of the sandbox is left: processes, sockets, its directory.
    for pid in pids {
        assert!(!alive(pid), "pid {pid} (qemu or a helper) still exists");
    }
    assert!(!dir.exists(), "{} is left", dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.display().to_string()),
        "a mount is left in {}",
        dir.display()
    );
}

fn container_request(id: &str) -> skiff_vm::agent::ContainerRequest {
    skiff_vm::agent::ContainerRequest {
        container_id: id.into(),
        ..Default::default()
    }
}

/// The rootfs through virtio-fs: virtiofsd shares the sandbox's directory,
/// the busybox rootfs bound into it after the boot runs a container whose
/// write lands on the host, and the teardown unmounts what was left in the
/// share before it removes anything (nothing of the rootfs is deleted).
#[test]
fn a_container_runs_from_the_virtio_fs_share() {
    let Some(images) = images() else { return };
    let scratch = Scratch::new("share");
    let rootfs = busybox_rootfs(&scratch);
    let state_root = scratch.0.join("state");
    let sandbox = launch(|| {
        let mut c = config(&images, "vm-share", &state_root, vec![]);
        c.virtiofsd = Some(images.virtiofsd.clone());
        c
    });
    let pids = sandbox.pids();
    let dir = sandbox.dir().to_path_buf();
    let target = sandbox.shared_dir().expect("a share").join("c1/rootfs");
    std::fs::create_dir_all(&target).unwrap();
    nix::mount::mount(
        Some(&rootfs),
        &target,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    checked_then_down(sandbox, |sandbox| {
        let agent = sandbox.agent().expect("connected");
        let req = skiff_vm::agent::CreateContainerRequest {
            container_id: "c1".into(),
            oci_config: container_config(&[
                "sh",
                "-c",
                "echo via-virtiofs > /written; cat /written",
            ]),
            rootfs_share_path: "c1/rootfs".into(),
            ..Default::default()
        };
        agent
            .create_container(ctx(), &req)
            .expect("CreateContainer");
        start(agent, "c1");
        assert_eq!(read_all(agent, "c1", ""), "via-virtiofs\n");
        assert_eq!(wait(agent, "c1", ""), 0);
    });
    // The bind mount is left in the share on purpose: the teardown must
    // unmount it, not delete through it.
    assert_eq!(
        std::fs::read_to_string(rootfs.join("written")).unwrap(),
        "via-virtiofs\n"
    );
    assert!(
        rootfs.join("usr/bin/busybox").exists(),
        "the rootfs was deleted through the share"
    );
    for pid in pids {
        assert!(!alive(pid), "pid {pid} (qemu or a helper) still exists");
    }
    assert!(!dir.exists(), "{} is left", dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.display().to_string()),
        "a mount is left in {}",
        dir.display()
    );
}

/// A pod's network as the CNI leaves it, in namespaces of the test's own:
/// "peer" has a bridge at 10.251.0.1/24 (the host's side), "pod" the
/// veth's other end, eth0, at 10.251.0.2/24 with MTU 1400 and a default
/// route through the bridge. Both namespaces go on drop.
struct PodNet {
    peer: std::path::PathBuf,
    pod: std::path::PathBuf,
}

const POD_IP: &str = "10.251.0.2";
const PEER_IP: &str = "10.251.0.1";

impl PodNet {
    fn new(scratch: &Scratch) -> PodNet {
        use skiff_net::netlink::{in_netns, index_of, Socket};
        let net = PodNet {
            peer: scratch.0.join("peer.netns"),
            pod: scratch.0.join("pod.netns"),
        };
        skiff_net::netns::create(&net.peer).unwrap();
        skiff_net::netns::create(&net.pod).unwrap();
        let pod = net.pod.clone();
        in_netns(&net.peer, move || {
            let nl = Socket::open()?;
            nl.add_bridge("tbr0")?;
            let br = index_of("tbr0").unwrap();
            nl.add_address(br, PEER_IP.parse().unwrap(), 24)?;
            nl.set_up(index_of("lo").unwrap())?;
            nl.add_veth("tveth0", br, "eth0", &std::fs::File::open(&pod).unwrap())
        })
        .unwrap();
        in_netns(&net.pod, || {
            let nl = Socket::open()?;
            let eth0 = index_of("eth0").unwrap();
            nl.configure_link(eth0, None, Some(1400))?;
            nl.set_up(eth0)?;
            nl.add_address(eth0, POD_IP.parse().unwrap(), 24)?;
            nl.add_default_route(eth0, PEER_IP.parse().unwrap())
        })
        .unwrap();
        net
    }

    /// `tc qdisc show dev eth0` and `ip -o link` in the pod's namespace.
    fn pod_state(&self) -> String {
        let run = |args: &[&str]| {
            let out = std::process::Command::new("nsenter")
                .arg(format!("--net={}", self.pod.display()))
                .args(args)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        run(&["tc", "qdisc", "show", "dev", "eth0"]) + &run(&["ip", "-o", "link"])
    }
}

impl Drop for PodNet {
    fn drop(&mut self) {
        let _ = skiff_net::netns::remove(&self.pod);
        let _ = skiff_net::netns::remove(&self.peer);
    }
}

/// The pod's network namespace (what the CRI's CNI made) becomes the VM's
/// network: the guest has eth0 with the pod's address, MTU and default
/// route; a server in the container answers at the pod's IP from the
/// bridge's side, and the container reaches a server there. After the
/// sandbox goes, the pod's namespace has no tap and no filter of ours.
#[test]
fn a_pods_network_namespace_becomes_the_vms_network() {
    let Some(images) = images() else { return };
    if let Err(e) = skiff_vm::network::host_can_mirror() {
        eprintln!("SKIPPED: this host cannot carry a pod's network into a VM: {e}");
        return;
    }
    let scratch = Scratch::new("net");
    let state_root = scratch.0.join("state");
    let disk = busybox_disk(&scratch, "ctr1");
    let net = PodNet::new(&scratch);
    // What a killed owner would leave on the pod's link: an ingress qdisc
    // (its tap went with its qemu). The new VM's mirroring replaces it.
    skiff_net::netlink::in_netns(&net.pod, || {
        let eth0 = skiff_net::netlink::index_of("eth0").unwrap();
        skiff_net::netlink::Socket::open()?.add_ingress_qdisc(eth0)
    })
    .unwrap();
    // A server on the host's side, for the guest to reach.
    let listener = skiff_net::netlink::in_netns(&net.peer, || {
        std::net::TcpListener::bind((PEER_IP, 0)).map_err(|e| skiff_net::Error::io("bind", e))
    })
    .unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        use std::io::Write;
        conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nfrom-host\n")
            .unwrap();
        peer.ip().to_string()
    });
    let sandbox = launch(|| {
        let mut c = config(&images, "vm-net", &state_root, vec![disk.clone()]);
        c.network = Some(net.pod.clone());
        c
    });
    let mirrored = net.pod_state();
    checked_then_down(sandbox, |sandbox| {
        assert!(mirrored.contains("tap0_skiff"), "no tap: {mirrored}");
        assert!(mirrored.contains("ingress"), "no ingress qdisc: {mirrored}");
        let agent = sandbox.agent().expect("connected");
        create(
            agent,
            "web",
            "ctr1",
            &["sh", "-c", "mkdir -p /www && echo from-guest >/www/index.html && exec httpd -f -p 8080 -h /www"],
        );
        start(agent, "web");
        let look = format!(
            "cat /sys/class/net/eth0/mtu; ip -o -4 addr show eth0; ip route; wget -q -O- http://{PEER_IP}:{port}/"
        );
        exec(agent, "web", "look", &["sh", "-c", &look]);
        let seen = read_all(agent, "web", "look");
        eprintln!("in the guest:\n{seen}");
        assert_eq!(wait(agent, "web", "look"), 0, "{seen}");
        assert_eq!(seen.lines().next(), Some("1400"), "{seen}");
        assert!(seen.contains(&format!("inet {POD_IP}/24")), "{seen}");
        assert!(
            seen.contains(&format!("default via {PEER_IP} dev eth0")),
            "{seen}"
        );
        assert!(seen.contains("from-host"), "{seen}");
        assert_eq!(
            served.join().unwrap(),
            POD_IP,
            "the host saw another source"
        );

        // The bridge's side reaches the container's server at the pod's IP.
        let got = skiff_net::netlink::in_netns(&net.peer, || {
            use std::io::{Read, Write};
            let to: std::net::SocketAddr = format!("{POD_IP}:8080").parse().unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let tried =
                    std::net::TcpStream::connect_timeout(&to, std::time::Duration::from_secs(5))
                        .and_then(|mut c| {
                            c.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
                            c.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                            let mut body = String::new();
                            c.read_to_string(&mut body)?;
                            Ok(body)
                        });
                match tried {
                    Ok(body) => return Ok(body),
                    Err(e) if std::time::Instant::now() > deadline => {
                        return Err(skiff_net::Error::io("reaching the guest's httpd", e))
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
                }
            }
        })
        .unwrap();
        assert!(got.contains("from-guest"), "{got}");
        kill_and_remove(agent, "web");
    });
    let left = net.pod_state();
    assert!(!left.contains("tap0_skiff"), "a tap is left: {left}");
    assert!(
        !left.contains("ingress"),
        "the ingress qdisc is left: {left}"
    );
    assert!(left.contains("eth0"), "the pod's own link went: {left}");
}
