#!/usr/bin/env python3
"""CRI (runtime.v1) end-to-end scenario against a containerd CRI socket.

  cri_client.py --socket /path/containerd.sock [--runtime-handler NAME] \
                [--image skiff.test/busybox:1] [--log-root DIR]
  cri_client.py --socket ... --cleanup     # stop+remove every pod sandbox

Stubs are generated from cri.proto into ./gen on first run (grpcio-tools).
Exit status: 0 = all checks passed, 1 = a check failed, 2 = setup error.
"""
import argparse
import importlib
import json
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "cri.proto")
GEN = os.environ.get("CRI_GEN_DIR") or os.path.join(HERE, "gen")


def load_stubs():
    pb = os.path.join(GEN, "cri_pb2.py")
    if not os.path.exists(pb) or os.path.getmtime(pb) < os.path.getmtime(PROTO):
        from grpc_tools import protoc
        import grpc_tools
        os.makedirs(GEN, exist_ok=True)
        inc = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        rc = protoc.main(["protoc", "-I" + HERE, "-I" + inc,
                          "--python_out=" + GEN, "--grpc_python_out=" + GEN, PROTO])
        if rc != 0:
            sys.exit("protoc failed (rc=%d)" % rc)
    sys.path.insert(0, GEN)
    return importlib.import_module("cri_pb2"), importlib.import_module("cri_pb2_grpc")


pb, pbg = load_stubs()
import grpc  # noqa: E402

FAILS = []
# The scope units of the pod's sandbox and containers (--systemd-scopes).
SCOPES = []


def check(name, cond, detail=""):
    print("%s: %s%s" % ("PASS" if cond else "FAIL", name, (" -- " + detail) if detail else ""),
          flush=True)
    if not cond:
        FAILS.append(name)
    return cond


class Fatal(Exception):
    pass


def must(name, cond, detail=""):
    if not check(name, cond, detail):
        raise Fatal(name)


def rpc(name, fn, req, timeout=60):
    try:
        return fn(req, timeout=timeout)
    except grpc.RpcError as e:
        check(name, False, "%s: %s" % (e.code().name, e.details()))
        raise Fatal(name)


def cleanup_all(rt):
    """Stop and remove every pod sandbox known to this CRI endpoint."""
    ok = True
    for sb in rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items:
        for call, req in ((rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=sb.id)),
                          (rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=sb.id))):
            try:
                call(req, timeout=60)
            except grpc.RpcError as e:
                ok = False
                print("cleanup: %s %s: %s" % (call._method, sb.id[:12], e.details()))
        print("cleanup: removed sandbox %s (%s)" % (sb.id[:12], sb.metadata.name))
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True, help="containerd socket path (unix)")
    ap.add_argument("--runtime-handler", default="", help="CRI runtime handler ('' = default)")
    ap.add_argument("--image", default="skiff.test/busybox:1")
    ap.add_argument("--guest-pids", action="store_true",
                    help="the runtime's pids are a VM guest's (skiff-vm): nothing to read in the host's /proc")
    ap.add_argument("--vm-size", action="store_true",
                    help="give the pod resources (512 MiB, 1.5 CPUs) and check its VM's size (skiff-vm)")
    ap.add_argument("--log-root", default=os.path.join(HERE, "run", "pod-logs"))
    ap.add_argument("--cgroup-parent", default="/skiff-cri-harness")
    ap.add_argument("--cleanup", action="store_true", help="only stop/remove all sandboxes")
    ap.add_argument("--userns", action="store_true",
                    help="also run a pod with hostUsers: false (a user namespace, idmapped rootfs)")
    ap.add_argument("--systemd-scopes", action="store_true",
                    help="the cgroup parent is a systemd slice: check each container's scope unit")
    ap.add_argument("--shim-pattern", default="",
                    help="pgrep -f pattern that must match exactly one shim while the pod runs")
    a = ap.parse_args()

    target = a.socket if a.socket.startswith("unix:") else "unix://" + a.socket
    ch = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(ch).result(timeout=20)
    except grpc.FutureTimeoutError:
        print("FAIL: connect %s" % target)
        return 2
    rt = pbg.RuntimeServiceStub(ch)
    im = pbg.ImageServiceStub(ch)

    if a.cleanup:
        return 0 if cleanup_all(rt) else 1

    v = rpc("Version", rt.Version, pb.VersionRequest(version="v1"))
    check("Version", v.runtime_api_version == "v1",
          "%s %s api=%s" % (v.runtime_name, v.runtime_version, v.runtime_api_version))

    ist = rpc("ImageStatus", im.ImageStatus, pb.ImageStatusRequest(image=pb.ImageSpec(image=a.image)))
    must("ImageStatus %s present" % a.image, ist.HasField("image") and ist.image.id != "",
         ist.image.id[:19] if ist.HasField("image") else "not found")

    uid = uuid.uuid4().hex
    name, ns = "cri-harness", "default"
    logdir = os.path.join(a.log_root, "%s_%s_%s" % (ns, name, uid))
    os.makedirs(logdir, exist_ok=True)
    hostname = "skiff-pod"
    # shareProcessNamespace: the containers join the sandbox's pid namespace.
    pod_ns = pb.NamespaceOption(network=pb.POD, pid=pb.POD, ipc=pb.POD)
    sandbox_cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=ns, attempt=0),
        hostname=hostname,
        log_directory=logdir,
        labels={"app": "cri-harness"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=a.cgroup_parent,
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=pod_ns),
            # As the kubelet (1.23+) sums the pod's limits; containerd passes
            # them to the runtime as io.kubernetes.cri.sandbox-* annotations.
            resources=pb.LinuxContainerResources(cpu_period=100000, cpu_quota=150000,
                                                 memory_limit_in_bytes=512 << 20)
            if a.vm_size else None),
    )
    sb_id = None
    try:
        r = rpc("RunPodSandbox", rt.RunPodSandbox,
                pb.RunPodSandboxRequest(config=sandbox_cfg, runtime_handler=a.runtime_handler),
                timeout=120)
        sb_id = r.pod_sandbox_id
        check("RunPodSandbox (handler=%r)" % a.runtime_handler, bool(sb_id), sb_id[:12])

        st = rpc("PodSandboxStatus", rt.PodSandboxStatus,
                 pb.PodSandboxStatusRequest(pod_sandbox_id=sb_id)).status
        check("PodSandboxStatus SANDBOX_READY", st.state == pb.SANDBOX_READY,
              "state=%s ip=%s handler=%r" % (pb.PodSandboxState.Name(st.state), st.network.ip,
                                             st.runtime_handler))
        check("PodSandboxStatus has pod IP", st.network.ip != "", st.network.ip)
        check("PodSandboxStatus runtime_handler", st.runtime_handler == a.runtime_handler)

        nonce = uuid.uuid4().hex[:8]
        expect = "hello-from-server-" + nonce

        def create(cname, cmd):
            cfg = pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name=cname, attempt=0),
                image=pb.ImageSpec(image=a.image),
                command=cmd,
                envs=[pb.KeyValue(key="NONCE", value=nonce)],
                log_path="%s/0.log" % cname,
                linux=pb.LinuxContainerConfig(
                    security_context=pb.LinuxContainerSecurityContext(namespace_options=pod_ns)),
            )
            cid = rpc("CreateContainer " + cname, rt.CreateContainer,
                      pb.CreateContainerRequest(pod_sandbox_id=sb_id, config=cfg,
                                                sandbox_config=sandbox_cfg)).container_id
            check("CreateContainer " + cname, bool(cid), cid[:12])
            rpc("StartContainer " + cname, rt.StartContainer,
                pb.StartContainerRequest(container_id=cid))
            check("StartContainer " + cname, True)
            return cid

        # server: serve a file containing a nonce that only exists in the server's rootfs
        server = create("server", ["sh", "-c",
                                   "mkdir -p /srv && echo hello-from-server-$NONCE > /srv/index.html"
                                   " && exec httpd -f -p 8080 -h /srv"])
        client = create("client", ["sleep", "3600"])

        def execsync(cid, cmd, timeout=10):
            return rpc("ExecSync %s" % cmd, rt.ExecSync,
                       pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout),
                       timeout=timeout + 30)

        for cname, cid in (("server", server), ("client", client)):
            cs = rpc("ContainerStatus", rt.ContainerStatus,
                     pb.ContainerStatusRequest(container_id=cid)).status
            check("ContainerStatus %s CONTAINER_RUNNING" % cname, cs.state == pb.CONTAINER_RUNNING,
                  "state=%s %s" % (pb.ContainerState.Name(cs.state), cs.message))

        lc = rpc("ListContainers", rt.ListContainers, pb.ListContainersRequest(
            filter=pb.ContainerFilter(pod_sandbox_id=sb_id))).containers
        check("ListContainers shows 2 containers", sorted(c.metadata.name for c in lc)
              == ["client", "server"], ",".join(c.metadata.name for c in lc))

        if a.systemd_scopes:
            systemd_scopes(a, [sb_id, server, client])

        if a.vm_size:
            # docs/vm.md "Sizing": the limit + 64 MiB, ceil(quota/period) vCPUs.
            mem = execsync(server, ["cat", "/proc/meminfo"]).stdout.decode(errors="replace")
            kib = next((int(l.split()[1]) for l in mem.splitlines() if l.startswith("MemTotal:")), 0)
            check("the pod's VM has its memory (512 MiB + 64)", 512 * 1024 < kib <= 576 * 1024,
                  "MemTotal %d kB" % kib)
            cpus = execsync(server, ["grep", "-c", "^processor", "/proc/cpuinfo"])
            want = min(2, os.cpu_count() or 1)
            check("the pod's VM has its vCPUs (ceil 1.5)", cpus.stdout.strip() == str(want).encode(),
                  "%r, expected %d" % (cpus.stdout, want))

        if a.shim_pattern:
            # One shim per pod: the sandbox and both containers share it.
            import subprocess
            n = subprocess.run(["pgrep", "-fc", a.shim_pattern], capture_output=True, text=True)
            check("one shim serves the whole pod", n.stdout.strip() == "1",
                  "shims matching: %s" % n.stdout.strip())

        # client -> server over 127.0.0.1 (shared pod network namespace).
        # NB: no "wget -T": Debian busybox-static 1.35 segfaults with -T; ExecSync timeout bounds it.
        got, last, deadline = None, None, time.time() + 20
        while time.time() < deadline:
            last = execsync(client, ["wget", "-q", "-O-", "http://127.0.0.1:8080/index.html"])
            if last.exit_code == 0:
                got = last.stdout.decode(errors="replace").strip()
                break
            time.sleep(0.5)
        if not check("client reaches server via 127.0.0.1:8080", got == expect,
                     "got=%r expected=%r" % (got, expect)):
            print("  last wget: exit=%d stderr=%r" % (last.exit_code, last.stderr))
            logf = os.path.join(logdir, "server", "0.log")
            if os.path.exists(logf):
                print("  server log:", open(logf).read()[-800:])
            ps = execsync(server, ["ps"])
            print("  server ps:", ps.stdout.decode(errors="replace"))

        # The pod's IP (the CNI's, from PodSandboxStatus): the server's eth0
        # has it, and the host reaches the server there through the CNI
        # bridge (for a VM pod: through the tap the shim mirrored the pod's
        # veth onto, into the guest).
        pod_ip = st.network.ip
        eth0 = execsync(server, ["ip", "-o", "-4", "addr", "show", "eth0"]).stdout.decode(errors="replace")
        check("the server's eth0 has the pod IP", (" %s/" % pod_ip) in eth0, eth0.strip())
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        got, err, deadline = None, None, time.time() + 20
        while time.time() < deadline:
            try:
                got = opener.open("http://%s:8080/index.html" % pod_ip, timeout=5).read().decode().strip()
                break
            except OSError as e:
                err = e
                time.sleep(0.5)
        check("the host reaches the server at the pod IP", got == expect,
              "got=%r expected=%r last error=%r" % (got, expect, err))

        # One pid namespace for the pod (pid=POD): the sandbox's pause is its
        # pid 1, and the client sees the server's httpd.
        init_c = execsync(client, ["cat", "/proc/1/cmdline"]).stdout.replace(b"\0", b" ")
        check("shared pid namespace: pid 1 is the sandbox's pause", b"pause" in init_c,
              "pid 1: %r" % init_c)
        ps_c = execsync(client, ["ps"]).stdout.decode(errors="replace")
        check("shared pid namespace: the client sees the server's httpd", "httpd" in ps_c, ps_c)
        ns_s = execsync(server, ["readlink", "/proc/self/ns/net"]).stdout.decode().strip()
        ns_c = execsync(client, ["readlink", "/proc/self/ns/net"]).stdout.decode().strip()
        host_ns = os.readlink("/proc/self/ns/net")
        check("server+client share pod netns (not host's)", ns_s == ns_c and ns_s and ns_s != host_ns,
              "server=%s client=%s host=%s" % (ns_s, ns_c, host_ns))
        hn = execsync(client, ["hostname"]).stdout.decode().strip()
        check("pod hostname", hn == hostname, repr(hn))

        r = execsync(client, ["sh", "-c", "echo out; echo err >&2; exit 3"])
        check("ExecSync exit code propagated", r.exit_code == 3, "exit_code=%d" % r.exit_code)
        check("ExecSync stdout/stderr split", r.stdout == b"out\n" and r.stderr == b"err\n",
              "stdout=%r stderr=%r" % (r.stdout, r.stderr))

        # The "restricted" Pod Security Standard's container: a non-root user,
        # no capabilities, no new privileges, read-only root, the runtime's
        # default seccomp profile (containerd's, docker-like).
        rcfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="restricted", attempt=0),
            image=pb.ImageSpec(image=a.image),
            command=["sleep", "3600"],
            log_path="restricted/0.log",
            linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                namespace_options=pod_ns, run_as_user=pb.Int64Value(value=1000),
                readonly_rootfs=True, no_new_privs=True,
                capabilities=pb.Capability(drop_capabilities=["ALL"]),
                seccomp_profile_path="runtime/default")),
        )
        restricted = rpc("CreateContainer restricted", rt.CreateContainer,
                         pb.CreateContainerRequest(pod_sandbox_id=sb_id, config=rcfg,
                                                   sandbox_config=sandbox_cfg)).container_id
        rpc("StartContainer restricted", rt.StartContainer,
            pb.StartContainerRequest(container_id=restricted))
        status = execsync(restricted, ["sh", "-c",
                                       "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' "
                                       "/proc/self/status | tr -d '\\t'; touch /x 2>/dev/null || echo ro"])
        want = b"1000\nCapEff:0000000000000000\nNoNewPrivs:1\nSeccomp:2\nro\n"
        check("restricted container: uid, no caps, no new privs, seccomp, read-only root",
              status.stdout == want, "%r %r" % (status.stdout, status.stderr))
        # Its first process too, seen from the host (the pod's pid 1 is pause).
        info = rpc("ContainerStatus restricted (verbose)", rt.ContainerStatus,
                   pb.ContainerStatusRequest(container_id=restricted, verbose=True)).info
        pid = json.loads(info.get("info", "{}")).get("pid", 0)
        fields = {}
        if a.guest_pids:
            print("SKIP: restricted container's init seen from the host (its pid %s is the VM guest's)" % pid)
        else:
            if pid:
                for line in open("/proc/%d/status" % pid):
                    k, _, v = line.partition(":")
                    fields[k] = v.strip()
            check("restricted container's init: uid 1000, no caps, seccomp filter",
                  fields.get("Uid", "").split()[:1] == ["1000"] and fields.get("CapEff") == "0" * 16
                  and fields.get("Seccomp") == "2" and fields.get("NoNewPrivs") == "1",
                  "pid %s: %r" % (pid, {k: fields.get(k) for k in ("Uid", "CapEff", "Seccomp")}))
        rpc("StopContainer restricted", rt.StopContainer,
            pb.StopContainerRequest(container_id=restricted, timeout=1))
        rpc("RemoveContainer restricted", rt.RemoveContainer,
            pb.RemoveContainerRequest(container_id=restricted))

        # A container past its memory limit: the kernel kills it, and the
        # kubelet learns why from ContainerStatus (reason OOMKilled, 137),
        # which containerd sets from the shim's TaskOOM event.
        ocfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="oom", attempt=0),
            image=pb.ImageSpec(image=a.image),
            command=["sh", "-c", "x=a; while true; do x=$x$x; done"],
            log_path="oom/0.log",
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(memory_limit_in_bytes=16 * 1024 * 1024),
                security_context=pb.LinuxContainerSecurityContext(namespace_options=pod_ns)),
        )
        oom = rpc("CreateContainer oom", rt.CreateContainer,
                  pb.CreateContainerRequest(pod_sandbox_id=sb_id, config=ocfg,
                                            sandbox_config=sandbox_cfg)).container_id
        rpc("StartContainer oom", rt.StartContainer, pb.StartContainerRequest(container_id=oom))
        deadline = time.time() + 30
        while True:
            ost = rpc("ContainerStatus oom", rt.ContainerStatus,
                      pb.ContainerStatusRequest(container_id=oom)).status
            if ost.state == pb.CONTAINER_EXITED or time.time() > deadline:
                break
            time.sleep(0.2)
        # CRI_OOM_REASON_OPTIONAL=1: containerd's runc shim under systemd
        # scopes reads memory.events after systemd may have removed the
        # emptied group; its TaskOOM can then be missing (with runc too).
        # The kill itself must still be there.
        reasons = ("OOMKilled", "Error") if os.environ.get("CRI_OOM_REASON_OPTIONAL") else ("OOMKilled",)
        check("a container past its memory limit: OOMKilled, 137",
              ost.state == pb.CONTAINER_EXITED and ost.reason in reasons
              and ost.exit_code == 137,
              "state=%s reason=%r exit=%d" % (pb.ContainerState.Name(ost.state), ost.reason,
                                             ost.exit_code))
        rpc("RemoveContainer oom", rt.RemoveContainer, pb.RemoveContainerRequest(container_id=oom))

        # What `kubectl top` shows: the kubelet reads it through ContainerStats,
        # which containerd builds from the shim's metrics.
        cst = rpc("ContainerStats server", rt.ContainerStats,
                  pb.ContainerStatsRequest(container_id=server)).stats
        check("ContainerStats: cpu and memory (working set, usage, rss)",
              cst.cpu.usage_core_nano_seconds.value > 0
              and cst.memory.working_set_bytes.value > 0
              and cst.memory.usage_bytes.value > 0
              and cst.memory.rss_bytes.value > 0,
              "cpu=%d ws=%d usage=%d rss=%d" % (cst.cpu.usage_core_nano_seconds.value,
                                                cst.memory.working_set_bytes.value,
                                                cst.memory.usage_bytes.value,
                                                cst.memory.rss_bytes.value))

        # A probe that outlives its timeout (kubelet's exec probes): containerd
        # gives up after 1 s and kills the process through the shim.
        t0 = time.time()
        why = ""
        try:
            rt.ExecSync(pb.ExecSyncRequest(container_id=client, cmd=["sleep", "37"], timeout=1),
                        timeout=30)
        except grpc.RpcError as e:
            why = e.details() or ""
        took = time.time() - t0
        check("ExecSync past its timeout gives up", "timeout" in why and 1 <= took < 15,
              "%.1fs: %r" % (took, why))
        deadline = time.time() + 10
        while True:
            left = execsync(client, ["ps"]).stdout.decode(errors="replace")
            if "sleep 37" not in left or time.time() > deadline:
                break
            time.sleep(0.2)
        check("ExecSync past its timeout: its process is gone",
              "PID" in left and "sleep 3600" in left and "sleep 37" not in left, left)

        # UpdateContainerResources reaches the shim's Update: the new limit is
        # what the container reads from its own memory cgroup.
        rpc("UpdateContainerResources client", rt.UpdateContainerResources,
            pb.UpdateContainerResourcesRequest(container_id=client, linux=pb.LinuxContainerResources(
                memory_limit_in_bytes=64 * 1024 * 1024)))
        r = execsync(client, ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                              "2>/dev/null || cat /sys/fs/cgroup/memory.max"])
        check("UpdateContainerResources memory limit applied", r.stdout.strip() == b"67108864",
              "limit=%r" % r.stdout)

        rpc("StopContainer client", rt.StopContainer,
            pb.StopContainerRequest(container_id=client, timeout=2), timeout=60)
        cs = rpc("ContainerStatus", rt.ContainerStatus,
                 pb.ContainerStatusRequest(container_id=client)).status
        check("StopContainer -> CONTAINER_EXITED", cs.state == pb.CONTAINER_EXITED,
              "state=%s exit_code=%d reason=%s" % (pb.ContainerState.Name(cs.state),
                                                    cs.exit_code, cs.reason))
        rpc("RemoveContainer client", rt.RemoveContainer,
            pb.RemoveContainerRequest(container_id=client))
        check("RemoveContainer client", True)

        logf = os.path.join(logdir, "server", "0.log")
        check("container log file created", os.path.exists(logf), logf)
    except Fatal:
        pass
    finally:
        remove_pod(rt, sb_id)
    if a.userns:
        userns_pod(rt, a)
    if FAILS:
        print("RESULT: FAIL (%d failed: %s)" % (len(FAILS), "; ".join(FAILS)))
        return 1
    print("RESULT: PASS")
    return 0


def scope_of(cid):
    """The scope unit containerd's CRI names for a container under a systemd
    slice parent (cgroupsPath slice:cri-containerd:ID)."""
    return "cri-containerd-%s.scope" % cid


def unit_prop(unit, prop):
    import subprocess
    return subprocess.run(["systemctl", "show", "-p", prop, "--value", unit],
                          capture_output=True, text=True).stdout.strip()


def systemd_scopes(a, cids):
    """With a kubelet-style slice parent, the sandbox and each container are
    a transient scope of their own in that slice (dashes expanded into the
    slice's parents), active, delegated, holding the container's processes."""
    slice_ = a.cgroup_parent.rstrip("/").split("/")[-1]
    for cid in cids:
        unit = scope_of(cid)
        SCOPES.append(unit)
        cg = unit_prop(unit, "ControlGroup")
        procs = []
        try:
            procs = open("/sys/fs/cgroup%s/cgroup.procs" % cg).read().split()
        except OSError:
            pass
        check("%s: active in %s, delegated, its group %s holds the container" % (
            unit[:27], slice_, cg.rsplit("/", 1)[0]),
            unit_prop(unit, "ActiveState") == "active"
            and unit_prop(unit, "Slice") == slice_
            and unit_prop(unit, "Delegate") == "yes"
            and cg.startswith(a.cgroup_parent.rstrip("/") + "/") and len(procs) > 0,
            "state=%s slice=%s cg=%s procs=%r" % (unit_prop(unit, "ActiveState"),
                                                unit_prop(unit, "Slice"), cg, procs))


def remove_pod(rt, sb_id):
    """Stops and removes one pod sandbox, checking each step."""
    if not sb_id:
        return
    ok = True
    try:
        rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sb_id), timeout=60)
    except grpc.RpcError as e:
        ok = check("StopPodSandbox", False, e.details())
    else:
        check("StopPodSandbox", True)
    try:
        rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sb_id), timeout=60)
    except grpc.RpcError as e:
        ok = check("RemovePodSandbox", False, e.details())
    else:
        check("RemovePodSandbox", True)
    if ok:
        left = rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items
        check("no sandboxes left", not any(s.id == sb_id for s in left))
    if ok and SCOPES:
        alive = [u for u in SCOPES if unit_prop(u, "ActiveState") not in ("inactive", "")]
        check("no scope unit of the pod left", not alive, "alive: %r" % alive)


def userns_pod(rt, a):
    """A pod with hostUsers: false, as the kubelet asks for it: one mapping
    of 65536 ids at a multiple of 65536, for uids and gids alike. Root in
    the pod is HOST_ID on the host, and the image's files (owned by root on
    the host) are root's inside, through idmapped mounts of the rootfs."""
    host_id = 65536 * 40
    mapping = [pb.IDMapping(host_id=host_id, container_id=0, length=65536)]
    userns = pb.UserNamespace(mode=pb.POD, uids=mapping, gids=mapping)
    pod_ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD,
                                userns_options=userns)
    uid = uuid.uuid4().hex
    logdir = os.path.join(a.log_root, "default_userns_%s" % uid)
    os.makedirs(logdir, exist_ok=True)
    sandbox_cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="userns", uid=uid, namespace="default", attempt=0),
        hostname="userns-pod",
        log_directory=logdir,
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=a.cgroup_parent,
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=pod_ns)),
    )
    sb_id = None
    try:
        sb_id = rpc("RunPodSandbox userns", rt.RunPodSandbox,
                    pb.RunPodSandboxRequest(config=sandbox_cfg, runtime_handler=a.runtime_handler),
                    timeout=120).pod_sandbox_id
        check("RunPodSandbox with hostUsers: false", bool(sb_id), sb_id[:12])
        cfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="u", attempt=0),
            image=pb.ImageSpec(image=a.image),
            command=["sleep", "3600"],
            log_path="u/0.log",
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(namespace_options=pod_ns)),
        )
        cid = rpc("CreateContainer userns", rt.CreateContainer,
                  pb.CreateContainerRequest(pod_sandbox_id=sb_id, config=cfg,
                                            sandbox_config=sandbox_cfg)).container_id
        rpc("StartContainer userns", rt.StartContainer, pb.StartContainerRequest(container_id=cid))
        r = rpc("ExecSync userns", rt.ExecSync, pb.ExecSyncRequest(
            container_id=cid, timeout=10,
            cmd=["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                 "stat -c %u:%g /bin/busybox; touch /tmp/made; stat -c %u:%g /tmp/made; "
                 "stat -L -c %u:%g /proc/self/fd/1"]))
        out = r.stdout.decode(errors="replace").split()
        # The last: its stdout, given to the pod's root (containerd's IoUid).
        want = ["0", str(host_id), "65536"] * 2 + ["0", "0:0", "0:0", "0:0"]
        check("userns pod: root inside is %d on the host, image files are root's" % host_id,
              r.exit_code == 0 and out == want, "exit=%d out=%r err=%r" % (
                  r.exit_code, out, r.stderr.decode(errors="replace")))
        # From the host: the container's process runs as the mapped uid.
        mine = [p for p in os.listdir("/proc") if p.isdigit()
                and open("/proc/%s/cmdline" % p, "rb").read().startswith(b"sleep\x003600")
                and ("/%s" % cid) in open("/proc/%s/cgroup" % p).read()]
        uids = [open("/proc/%s/status" % p).read().split("Uid:")[1].split()[0] for p in mine]
        check("userns pod: its process runs as uid %d on the host" % host_id,
              uids == [str(host_id)], "uids=%r" % uids)
    except (Fatal, OSError, IndexError) as e:
        check("userns pod", False, repr(e))
    finally:
        remove_pod(rt, sb_id)


if __name__ == "__main__":
    sys.exit(main())
