//! The command line, as Docker's and Podman's users type it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "skiff",
    version,
    about = "skiff: a daemonless container engine: images, containers, pods, volumes, networks and builds",
    after_help = "Examples:\n  skiff pull 127.0.0.1:5000/busybox:1\n  skiff images\n  skiff save -o busybox.tar busybox:1 && skiff load -i busybox.tar"
)]
pub struct Cli {
    /// The store's directory [default: /var/lib/skiff; rootless: $XDG_DATA_HOME/skiff]
    #[arg(long, global = true, env = "SKIFF_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print where the time goes: a line on stderr at the end of each
    /// phase (also SKIFF_TRACE=1)
    #[arg(long, global = true)]
    pub trace: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Require HTTPS with a trusted certificate (false: also accept any
    /// certificate or plain HTTP) [default: true, except a registry on a
    /// loopback address may answer over HTTP]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,
    /// Credentials for the registry, USER:PASSWORD
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// The auth file to read credentials from [default: Podman's, then Docker's]
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// CA certificates (*.crt) to trust for the registry, besides those in
    /// /etc/containers/certs.d/REGISTRY and /etc/docker/certs.d/REGISTRY
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Pull an image from a registry
    Pull(PullArgs),
    /// Push an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Show images as JSON (Docker's shape)
    Inspect(InspectArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Take names off an image (every one without NAMEs); the image stays
    Untag(UntagArgs),
    /// Remove images (names first; an image goes with its last name)
    Rmi(RmiArgs),
    /// Show an image's history
    History(HistoryArgs),
    /// Write images to an archive (docker-archive or oci-archive)
    Save(SaveArgs),
    /// Load images from an archive (docker-archive or oci-archive)
    Load(LoadArgs),
    /// Make an image of a root filesystem tarball
    Import(ImportArgs),
    /// Store credentials for a registry
    Login(LoginArgs),
    /// Forget a registry's credentials
    Logout(LogoutArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// The store as a whole
    #[command(subcommand)]
    System(SystemCommand),
    /// Run a command in the engine's user namespace (rootless: where its
    /// image mounts are seen and its files are owned as in the images)
    Unshare {
        /// The command [default: $SHELL, else /bin/sh]
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// The container commands (also under `container`)
    #[command(flatten)]
    Containers(ContainerOps),
    /// Build an image from a Containerfile (or Dockerfile)
    Build(BuildArgs),
    /// This engine's version
    Version(InfoArgs),
    /// The host and the store, as the engine sees them (system info)
    Info(InfoArgs),
    /// What happened to containers, images, pods, volumes and networks
    Events(EventsArgs),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Repositories of a registry whose names hold TERM (its catalog), or
    /// with --list-tags a repository's tags
    #[command(
        after_help = "Examples:\n  skiff search registry.example:5000/busy\n  skiff search --list-tags registry.example:5000/busybox"
    )]
    Search(SearchArgs),
    /// Manifest lists (multi-platform images): create, add, push, ...
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage secrets (run --secret gives them to containers)
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Run a container's health check
    #[command(subcommand)]
    Healthcheck(HealthcheckCommand),
    /// Manage pods: containers sharing an infra container's namespaces
    #[command(subcommand)]
    Pod(PodCommand),
    /// Kubernetes YAML: play a Pod (or a Deployment of one), take it down,
    /// or generate one from a pod
    #[command(subcommand)]
    Kube(KubeCommand),
    /// What crashes left in the store (--fix removes it), and what the host
    /// offers the engine
    Doctor {
        /// Remove what was left
        #[arg(long)]
        fix: bool,
    },
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// The container's monitor (internal: run -d starts it)
    #[command(name = "__monitor", hide = true)]
    Monitor { id: String },
    /// Print this program's manual page (roff, for man(1))
    Man,
    /// Print a shell completion script
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The commands on containers: top-level (`skiff run`) and under
/// `container` (`skiff container run`), as Podman and Docker take both.
#[derive(Subcommand, Debug)]
pub enum ContainerOps {
    /// Run a command in a new container (pulling the image if needed)
    Run(RunArgs),
    /// Create a container without starting it
    Create(RunArgs),
    /// Start created containers
    Start(StartArgs),
    /// List containers
    Ps(PsArgs),
    /// Show a container's output
    Logs(LogsArgs),
    /// Stop containers: their stop signal, then SIGKILL after a timeout
    Stop(StopArgs),
    /// Send a signal to containers
    Kill(KillArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Wait for containers to end; print their exit codes
    Wait(WaitArgs),
    /// Make an image of a container's changes (a new layer on its image)
    Commit(CommitArgs),
    /// Stop containers and start them again
    Restart(StopArgs),
    /// A container's filesystem as a tar archive (stdout, or -o FILE)
    Export {
        container: String,
        /// Write to this file instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Change a container's limits (applied at once when it runs, kept
    /// for its next start) or its restart policy
    Update(UpdateArgs),
    /// A container's published ports (80/tcp -> 0.0.0.0:8080)
    Port {
        container: String,
        /// Only this container port's host address (PORT[/tcp|udp])
        private_port: Option<String>,
    },
    /// Attach this terminal to a running container's (ctrl-p ctrl-q
    /// detaches and leaves it running)
    Attach {
        container: String,
        /// Do not send this program's stdin to the container
        #[arg(long)]
        no_stdin: bool,
        /// The keys that detach: a,b or ctrl-a,ctrl-b ("" turns it off)
        #[arg(long, default_value = "ctrl-p,ctrl-q")]
        detach_keys: String,
    },
    /// Copy files between a container and the host: cp CONTAINER:PATH
    /// HOSTPATH|-, or cp HOSTPATH|- CONTAINER:PATH (- is a tar stream)
    #[command(
        after_help = "Examples:\n  skiff cp web:/etc/nginx/nginx.conf .\n  skiff cp ./site web:/usr/share/html\n  skiff cp web:/var/log - | tar -t"
    )]
    Cp(CpArgs),
    /// Freeze every process of containers
    Pause(PauseArgs),
    /// Thaw paused containers
    Unpause(PauseArgs),
    /// Give a container another name
    Rename { container: String, name: String },
    /// The processes of a running container: Podman's descriptors (user,
    /// pid, ppid, pcpu, etime, tty, time, args, comm, group, nice, pgid,
    /// rgroup, ruser, rss, vsz, state, seccomp, label, hpid, huser, hgroup,
    /// capeff, capprm, capinh, capbnd, capamb), or ps(1)'s options, run in
    /// the container
    Top {
        container: String,
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        descriptors: Vec<String>,
    },
    /// Resource use of running containers (CPU, memory, processes)
    Stats {
        /// One table and exit (without it: a table a second until interrupted)
        #[arg(long)]
        no_stream: bool,
        /// table, json, or a template of Podman's fields ({{.Name}}
        /// {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.PIDs}} {{.ID}})
        #[arg(long)]
        format: Option<String>,
        /// The containers [default: every running one]
        containers: Vec<String>,
    },
    /// What a container changed in its filesystem (A added, C changed, D deleted)
    Diff { container: String },
    /// Print containers' root filesystems (mounted while they exist),
    /// marking them mounted; without CONTAINERs, list those marked
    Mount {
        /// Every container
        #[arg(short, long)]
        all: bool,
        /// json: the list as Podman prints it
        #[arg(long)]
        format: Option<String>,
        /// Whole ids
        #[arg(long)]
        no_trunc: bool,
        containers: Vec<String>,
    },
    /// Take the mounted mark off containers (their root filesystems stay
    /// while they exist)
    #[command(alias = "umount")]
    Unmount {
        /// Every container
        #[arg(short, long)]
        all: bool,
        /// Taken (Podman's: whatever the count)
        #[arg(short, long)]
        force: bool,
        #[arg(required_unless_present = "all")]
        containers: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

// Made once per process (`image build`'s flags are the largest): its
// size does not matter, and unboxed it can be matched in place.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    Pull(PullArgs),
    Push(PushArgs),
    Inspect(InspectArgs),
    Tag(TagArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Build an image from a Containerfile (or Dockerfile)
    Build(BuildArgs),
    /// Take names off an image (every one without NAMEs); the image stays
    Untag(UntagArgs),
    History(HistoryArgs),
    Save(SaveArgs),
    Load(LoadArgs),
    Import(ImportArgs),
    /// Remove images without a name (-a: every image nothing uses)
    Prune(PruneArgs),
    /// Exit 0 if the image exists, 1 if not
    Exists {
        image: String,
    },
    /// Mount an image's layers as an overlay (read-write, changes kept apart)
    Mount(MountArgs),
    /// Unmount an image mount
    Unmount(UnmountArgs),
}

// Made once per process: its size does not matter, and unboxed it can be
// matched in place (main.rs).
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List containers
    #[command(alias = "list")]
    Ls(PsArgs),
    #[command(flatten)]
    Ops(ContainerOps),
    /// Remove every stopped container
    Prune {
        /// Do not ask
        #[arg(short, long)]
        force: bool,
    },
    /// Show containers as JSON (Docker's document)
    Inspect(InspectArgs),
    /// Exit 0 if the container exists, 1 if not
    Exists { container: String },
    /// Save running containers to disk with CRIU (they stop, unless -R);
    /// `container restore` brings them back
    Checkpoint {
        /// Keep it running after the checkpoint
        #[arg(short = 'R', long)]
        leave_running: bool,
        /// Save established TCP connections too
        #[arg(long)]
        tcp_established: bool,
        /// Every running container
        #[arg(short, long)]
        all: bool,
        #[arg(required_unless_present = "all")]
        containers: Vec<String>,
    },
    /// Bring checkpointed containers back, where they were
    Restore {
        /// Restore established TCP connections too
        #[arg(long)]
        tcp_established: bool,
        /// Every checkpointed container
        #[arg(short, long)]
        all: bool,
        #[arg(required_unless_present = "all")]
        containers: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum HealthcheckCommand {
    /// Run the check once: exit 0 when it passes, 1 (printing unhealthy)
    /// when it fails
    Run { container: String },
}

/// An entry's platform and annotations, as `manifest add` and `annotate`
/// take them.
#[derive(Args, Debug)]
pub struct EntryArgs {
    /// The architecture the entry is for [default: the image's]
    #[arg(long)]
    pub arch: Option<String>,
    /// The OS [default: the image's]
    #[arg(long)]
    pub os: Option<String>,
    /// The architecture's variant (v7, v8)
    #[arg(long)]
    pub variant: Option<String>,
    /// KEY=VALUE (repeatable)
    #[arg(long)]
    pub annotation: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ManifestCommand {
    /// Make a manifest list, with the store's IMAGEs in it; prints its id
    Create {
        /// Add to the list of that name if there is one
        #[arg(long)]
        amend: bool,
        list: String,
        images: Vec<String>,
    },
    /// Add an image of the store to a list (replacing its entry)
    Add {
        #[command(flatten)]
        entry: EntryArgs,
        list: String,
        image: String,
    },
    /// Change the platform or annotations of a list's entry
    Annotate {
        #[command(flatten)]
        entry: EntryArgs,
        list: String,
        /// The entry's manifest digest (or a prefix of its hex)
        digest: String,
    },
    /// Take an entry out of a list
    Remove { list: String, digest: String },
    /// Print a list's OCI image index
    Inspect { list: String },
    /// Push each image of a list by digest, then the list [DEST: its name]
    Push {
        /// Every image (the only way: a list's images go with it)
        #[arg(long, default_value_t = true)]
        all: bool,
        /// Remove the list once pushed
        #[arg(long)]
        rm: bool,
        /// Write the list's digest to this file
        #[arg(long, value_name = "FILE")]
        digestfile: Option<PathBuf>,
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        registry: RegistryArgs,
        list: String,
        dest: Option<String>,
    },
    /// Remove manifest lists (their images stay)
    Rm {
        #[arg(required = true)]
        lists: Vec<String>,
    },
    /// Exit 0 if the list exists, 1 if not
    Exists { list: String },
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// REGISTRY/TERM, or TERM for every unqualified-search registry
    pub term: String,
    /// The tags of the repository TERM names
    #[arg(long)]
    pub list_tags: bool,
    /// At most this many results a registry [default: 25]
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// table, json, or a Go template over Podman's fields (Index, Name,
    /// Description, Stars, Official, Automated, Tag)
    #[arg(long)]
    pub format: Option<String>,
    /// Names whole (they are not cut here either way)
    #[arg(long)]
    pub no_trunc: bool,
    /// Podman's stars=N, is-official, is-automated: refused (a catalog
    /// has none of them)
    #[arg(short, long)]
    pub filter: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Keep a secret: FILE's contents (- for stdin), or with --env the
    /// variable FILE names; prints its id
    Create {
        /// file [default] (the only driver: the store keeps it, 0600)
        #[arg(short, long, default_value = "file")]
        driver: String,
        /// The value is this environment variable's
        #[arg(long)]
        env: bool,
        /// A label, KEY=VALUE (repeatable)
        #[arg(short, long)]
        label: Vec<String>,
        name: String,
        #[arg(value_name = "FILE")]
        source: String,
    },
    /// List secrets
    #[command(alias = "list")]
    Ls {
        /// Ids only
        #[arg(short, long)]
        quiet: bool,
        /// A Go template over each one (json: the list)
        #[arg(long)]
        format: Option<String>,
        /// No header line
        #[arg(long)]
        noheading: bool,
        /// name=NAME or id=ID (repeatable: any of them)
        #[arg(short, long)]
        filter: Vec<String>,
    },
    /// Show secrets as JSON (never their values)
    Inspect {
        #[arg(required = true)]
        secrets: Vec<String>,
        /// A Go template over each one (json: the list)
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Remove secrets (containers keep the copies they were given)
    #[command(alias = "remove")]
    Rm {
        /// Every secret
        #[arg(short, long, conflicts_with = "secrets")]
        all: bool,
        #[arg(required_unless_present = "all")]
        secrets: Vec<String>,
    },
    /// Exit 0 if the secret exists, 1 if not
    Exists { secret: String },
}

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Make a volume [NAME: a random one]
    Create {
        name: Option<String>,
        /// A label, KEY=VALUE (repeatable)
        #[arg(short, long)]
        label: Vec<String>,
        /// local [default] (the only driver here)
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// The local driver's options: type=FSTYPE and device=DEVICE
        /// mount a filesystem while containers use the volume (o=bind and
        /// device=DIR: a host directory), o=OPTIONS its mount options
        /// (uid=, gid= own a plain volume) (repeatable)
        #[arg(short, long, value_name = "KEY=VALUE")]
        opt: Vec<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Names only
        #[arg(short, long)]
        quiet: bool,
        /// A Go template over each one (json: the list)
        #[arg(short, long)]
        format: Option<String>,
        /// name=, label=KEY[=VALUE], driver=, dangling=true|false (no
        /// container uses it) (repeatable; all must match)
        #[arg(long)]
        filter: Vec<String>,
        /// No header line
        #[arg(long)]
        noheading: bool,
    },
    /// Show volumes as JSON
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
        /// A Go template over each one (json: the list)
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Exit 0 if the volume exists, 1 if not
    Exists { volume: String },
    /// A volume's contents as a tar (to stdout, or -o FILE)
    Export {
        volume: String,
        /// Write to this file instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Unpack a tar (a file, or - for stdin) into a volume that exists
    Import { volume: String, source: PathBuf },
    /// Remove volumes (no container may use them)
    #[command(alias = "remove")]
    Rm {
        /// Remove the containers using them first (stopped)
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove anonymous volumes no container uses (--all: named ones too)
    Prune {
        /// Named volumes too
        #[arg(short, long)]
        all: bool,
        /// Do not ask
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Make a bridge network (CNI, Podman's format)
    #[command(after_help = "Example:\n  skiff network create --subnet 10.5.0.0/24 backend")]
    Create {
        name: String,
        /// Its IPv4 subnet [default: a free /24 of 10.122.0.0/16]
        #[arg(long)]
        subnet: Option<String>,
        /// Its gateway [default: the subnet's first address]
        #[arg(long)]
        gateway: Option<String>,
        /// No route out, no NAT: its containers reach each other only
        #[arg(long)]
        internal: bool,
        /// A label, KEY=VALUE (repeatable)
        #[arg(long)]
        label: Vec<String>,
        /// bridge [default] (the only driver here)
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Podman's driver options (mtu, vlan, isolate): refused, naming
        /// the option (the bridge here takes none)
        #[arg(short, long, value_name = "KEY=VALUE")]
        opt: Vec<String>,
        /// An IPv6 network too: refused (IPv4 only here)
        #[arg(long)]
        ipv6: bool,
    },
    /// Connect a container to a network (another interface in its namespace)
    Connect {
        network: String,
        container: String,
        /// Its address there (in the network's subnet)
        #[arg(long)]
        ip: Option<String>,
    },
    /// Disconnect a container from a network
    Disconnect {
        network: String,
        container: String,
        /// Accepted for Docker's command line; the interface goes either way
        #[arg(short, long)]
        force: bool,
    },
    /// List networks (Podman's NETWORK ID, NAME, DRIVER)
    #[command(alias = "list")]
    Ls {
        /// Names only
        #[arg(short, long)]
        quiet: bool,
        /// A Go template over each one (Podman's ID, Name, Driver,
        /// Labels; json: the inspect documents)
        #[arg(short, long)]
        format: Option<String>,
        /// name=, id=, driver=, label=KEY[=VALUE] (repeatable; all must
        /// match)
        #[arg(long)]
        filter: Vec<String>,
        /// No header line
        #[arg(long)]
        noheading: bool,
        /// Whole ids
        #[arg(long)]
        no_trunc: bool,
    },
    /// Show networks as JSON
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
        /// A Go template over each one (json: the list)
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Exit 0 if the network exists, 1 if not
    Exists { network: String },
    /// Remove networks (no container may use them)
    #[command(alias = "remove")]
    Rm {
        /// Remove the containers on them first (stopped)
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove every network no container uses (not the default)
    Prune {
        /// Do not ask
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PodCommand {
    /// Make a pod (and its infra container); run --pod NAME joins it
    #[command(
        after_help = "Example:\n  skiff pod create --name web -p 8080:80\n  skiff run -d --pod web nginx"
    )]
    Create {
        #[arg(long)]
        name: Option<String>,
        /// The namespaces its containers share: net, ipc, uts, pid
        #[arg(long, default_value = "net,ipc,uts")]
        share: String,
        /// Its network (as run --network; not container:)
        #[arg(long, alias = "net")]
        network: Option<String>,
        /// Publish a port of the pod (as run -p)
        #[arg(short, long)]
        publish: Vec<String>,
        /// Its containers' hostname [default: the infra's id]
        #[arg(long)]
        hostname: Option<String>,
        /// The infra container's image [default: a tiny one the engine makes]
        #[arg(long)]
        infra_image: Option<String>,
        /// The infra container's name [default: the pod id's first 12
        /// digits, -infra]
        #[arg(long)]
        infra_name: Option<String>,
        #[arg(short, long)]
        label: Vec<String>,
        /// A file of labels, KEY=VALUE a line (# comments); --label wins
        #[arg(long, value_name = "FILE")]
        label_file: Vec<PathBuf>,
        /// Write the pod's id to this file (run --pod-id-file reads it)
        #[arg(long, value_name = "FILE")]
        pod_id_file: Option<PathBuf>,
        /// Remove a pod of the same --name first (with its containers)
        #[arg(long)]
        replace: bool,
        /// default (or process, oci): the pod's containers share namespaces
        /// on the host's kernel; vm: the pod is one VM (docs/vm.md)
        #[arg(long, value_name = "MODE")]
        isolation: Option<String>,
        /// With --isolation vm: the VM's memory (the limit + 64 MiB), as
        /// run's --memory
        #[arg(short = 'm', long)]
        memory: Option<String>,
        /// With --isolation vm: the VM's vCPUs (rounded up), as run's --cpus
        #[arg(long)]
        cpus: Option<String>,
    },
    /// Start pods (the infra first, then each container)
    Start {
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Stop pods (each container, then the infra)
    Stop {
        /// Seconds before SIGKILL
        #[arg(short, long)]
        time: Option<u64>,
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Send a signal to every container of pods
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Stop pods and start them again
    Restart {
        #[arg(short, long)]
        time: Option<u64>,
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Remove pods and their containers (-f: also running ones)
    #[command(alias = "remove")]
    Rm {
        #[arg(short, long)]
        force: bool,
        /// With -f: seconds a running container gets to stop before
        /// SIGKILL [default: 0]
        #[arg(short, long)]
        time: Option<u64>,
        /// Every pod
        #[arg(short, long, conflicts_with = "pods")]
        all: bool,
        #[arg(required_unless_present = "all")]
        pods: Vec<String>,
    },
    /// List pods
    #[command(alias = "ls", alias = "list")]
    Ps {
        /// Ids only
        #[arg(short, long)]
        quiet: bool,
        /// table or json
        #[arg(long, default_value = "table")]
        format: String,
        /// id=, name= (a regular expression), label=KEY[=VALUE],
        /// status= (repeatable; all must match)
        #[arg(short, long)]
        filter: Vec<String>,
        /// No header line
        #[arg(long)]
        noheading: bool,
    },
    /// Show pods as JSON
    Inspect {
        #[arg(required = true)]
        pods: Vec<String>,
        /// A Go template over each one
        #[arg(short, long)]
        format: Option<String>,
    },
    /// The processes of a pod's containers (the descriptors as `top`'s)
    Top {
        pod: String,
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        descriptors: Vec<String>,
    },
    /// Resource use of a pod's containers
    Stats {
        /// One sample, then exit
        #[arg(long)]
        no_stream: bool,
        pod: String,
    },
    /// Exit 0 if the pod exists, 1 if not
    Exists { pod: String },
    /// Pause every running container of pods
    Pause {
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// Resume every paused container of pods
    Unpause {
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// The logs of a pod's containers, each line starting with its
    /// container's short id (or name); -c: one container's alone
    Logs {
        /// Only this container of the pod (its name or id)
        #[arg(short, long)]
        container: Option<String>,
        /// Start lines with the container's name, not its id
        #[arg(short, long)]
        names: bool,
        #[command(flatten)]
        view: LogViewArgs,
        pod: String,
    },
    /// Remove every pod with nothing running
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KubeCommand {
    /// Make and start the pods of a YAML file (Pods, Deployments of one replica)
    Play {
        file: std::path::PathBuf,
        /// Remove a pod of the same name first
        #[arg(long)]
        replace: bool,
    },
    /// Remove the pods of a YAML file (and their emptyDir volumes)
    Down { file: std::path::PathBuf },
    /// Print a pod as a Kubernetes Pod
    Generate { pod: String },
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Disk use of the store
    Df,
    /// Remove what nothing uses: pods and containers that do not run,
    /// networks no container is on, dangling images (-a: every unused
    /// one), build's cache with -a, and (--volumes) unused volumes
    Prune {
        /// Every image no container uses, not only the dangling ones
        #[arg(short, long)]
        all: bool,
        /// Volumes no container uses too
        #[arg(long)]
        volumes: bool,
        /// Do not ask (skiff's prunes never do)
        #[arg(short, long)]
        force: bool,
    },
    /// The host and the store, as the engine sees them
    Info(InfoArgs),
    /// Check every blob and layer against its record; --repair removes the damaged
    Check(CheckArgs),
    /// Remove everything of the store: pods, containers (stopped first),
    /// its networks (not the default), volumes, secrets, images, the
    /// build cache, and then the store itself
    Reset {
        /// Do not ask
        #[arg(short, long)]
        force: bool,
    },
    /// What happened to containers, images, pods, volumes and networks
    Events(EventsArgs),
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only events from then on (RFC 3339, seconds since the epoch, or a
    /// duration ago: 10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Only events until then; with a stream, stop once it is past
    #[arg(long)]
    pub until: Option<String>,
    /// KEY=VALUE: container, event (status), image, label, network, pod,
    /// type, volume; a key given twice matches either value
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// json, or a Go template ({{.Time}} {{.Type}} {{.Status}} {{.Name}}
    /// {{.ID}} {{.Image}} {{.Attributes}})
    #[arg(long)]
    pub format: Option<String>,
    /// Follow new events (false: print those there are and exit) [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub stream: Option<bool>,
    /// Whole ids (false: the first 12 characters) [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub no_trunc: Option<bool>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// The image, e.g. busybox, 127.0.0.1:5000/app:1, app@sha256:...
    pub image: String,
    /// Print no progress
    #[arg(short, long)]
    pub quiet: bool,
    /// The platform to pick from a multi-platform image, OS/ARCH[/VARIANT]
    #[arg(long)]
    pub platform: Option<String>,
    /// The architecture to pick (this machine's OS), as Podman's --arch
    #[arg(long)]
    pub arch: Option<String>,
    /// The OS to pick (this machine's architecture), as Podman's --os
    #[arg(long)]
    pub os: Option<String>,
    /// The variant to pick (arm: v6, v7; arm64: v8), as Podman's --variant
    #[arg(long)]
    pub variant: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The image to push
    pub image: String,
    /// Where to push it [default: the image's name]
    pub destination: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the pushed manifest's digest to this file
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show image ids only
    #[arg(short, long)]
    pub quiet: bool,
    /// Show every image (there are no intermediate ones to hide)
    #[arg(short, long)]
    pub all: bool,
    /// table, json, or a Go-style template such as '{{.ID}} {{.Repository}}'
    #[arg(long)]
    pub format: Option<String>,
    /// dangling=true|false, reference=PATTERN (* matches within a name)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Show whole image ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Show repository digests
    #[arg(long)]
    pub digests: bool,
    /// No header line in a table
    #[arg(long)]
    pub noheading: bool,
    /// Only images of this repository (e.g. busybox)
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// container, image, or all (a container first, then an image)
    /// [default: all; `container inspect` and `image inspect` their own]
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// A Go-style template such as '{{.Id}}' or '{{json .Config}}'
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub image: String,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub images: Vec<String>,
    /// All of them: every image
    #[arg(short, long)]
    pub all: bool,
    /// Remove the image with all its names, even while something uses
    /// it; one that does not exist is no error
    #[arg(short, long)]
    pub force: bool,
    /// An image that does not exist is no error (Podman's --ignore)
    #[arg(short, long)]
    pub ignore: bool,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    pub image: String,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
    /// table or json
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write here [default: standard output, when it is not a terminal]
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// docker-archive or oci-archive
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from here [default: standard input]
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A tarball of a root filesystem (gzip, zstd or plain), or - for standard input
    pub source: String,
    /// The new image's name
    pub reference: Option<String>,
    #[arg(short, long)]
    pub quiet: bool,
    /// A Containerfile instruction for the config (CMD, ENTRYPOINT, ENV,
    /// LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL) (repeatable)
    #[arg(short, long)]
    pub change: Vec<String>,
    /// The history entry's comment
    #[arg(short, long)]
    pub message: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The registry, e.g. 127.0.0.1:5000
    pub registry: String,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_opts: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    pub registry: String,
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// json, or a Go template ({{.Store.GraphRoot}}) [default: YAML]
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Every image no name or mount holds... and every unused one
    #[arg(short, long)]
    pub all: bool,
    /// Also forget `build`'s cache (and the layers only it held)
    #[arg(long)]
    pub build_cache: bool,
    /// Do not ask
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct MountArgs {
    pub image: String,
    /// The mount's name [default: the image id's first 12 digits]
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct UntagArgs {
    pub image: String,
    /// The names to take off [default: all of them]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UnmountArgs {
    pub name: String,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Remove what is damaged (and the images that need it)
    #[arg(long)]
    pub repair: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Run in the background; print the container's id
    #[arg(short, long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub detach: bool,
    /// In the foreground, connect only these streams: stdin, stdout,
    /// stderr (repeatable) [default: all, stdin with -i]
    #[arg(short, long, value_name = "STREAM")]
    pub attach: Vec<String>,
    /// The image's platform, OS/ARCH[/VARIANT]: pulled for it when the
    /// store lacks the image or has it for another (as Podman's)
    #[arg(long)]
    pub platform: Option<String>,
    /// IMAGE is a root filesystem's directory, PATH[:O], not an image:
    /// used as it is (the container writes into it), or with :O as an
    /// overlay's lower layer (changes stay with the container)
    #[arg(long)]
    pub rootfs: bool,
    /// The platform's architecture alone (amd64, arm64)
    #[arg(long)]
    pub arch: Option<String>,
    /// The platform's OS alone (linux)
    #[arg(long)]
    pub os: Option<String>,
    /// The platform's variant alone (v8)
    #[arg(long)]
    pub variant: Option<String>,
    /// Keep standard input open (the container reads this terminal's)
    #[arg(short, long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub interactive: bool,
    /// Give the container a terminal (with -d: attach to it later)
    #[arg(short, long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub tty: bool,
    /// With -t: the keys that detach and leave it running, a,b or
    /// ctrl-a,ctrl-b ("" turns it off)
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Remove the container when it exits
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable, NAME=VALUE (NAME alone: this shell's value)
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read environment variables from a file, one NAME=VALUE a line
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    /// The working directory in the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// USER[:GROUP], by name (the image's /etc/passwd) or number
    #[arg(short, long)]
    pub user: Option<String>,
    /// Override the image's Entrypoint ("" clears it; a JSON list,
    /// '["sh","-c"]', gives several words, as Podman's)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// The container's hostname [default: its id's first 12 digits]
    #[arg(long)]
    pub hostname: Option<String>,
    /// bridge (the default network, skiff0), a network's name, none (a
    /// network namespace with loopback only), host, or container:NAME
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Join a pod (its network, ipc and uts namespaces, as it shares them)
    #[arg(long)]
    pub pod: Option<String>,
    /// Publish a port: [IP:][HOST:]CONTAINER[/tcp|udp], ranges as 8000-8001:80-81
    /// (no HOST: a free one)
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish every port the image exposes, each on a free host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range, PORT[-PORT][/tcp|udp|sctp]: listed in
    /// inspect and published by -P (repeatable)
    #[arg(long, value_name = "PORT")]
    pub expose: Vec<String>,
    /// Another name the container's peers on its networks find it by
    /// (repeatable; bridge networks)
    #[arg(long, value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// Pass the signals this command gets on to the container (not with
    /// -d) [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: Option<bool>,
    /// The container's address on its network (in its subnet)
    #[arg(long)]
    pub ip: Option<String>,
    /// Its interface's hardware address on its network (aa:bb:cc:dd:ee:ff,
    /// unicast)
    #[arg(long, value_name = "MAC")]
    pub mac_address: Option<String>,
    /// A nameserver for its /etc/resolv.conf (repeatable; replaces the
    /// host's)
    #[arg(long)]
    pub dns: Vec<String>,
    /// A search domain for its /etc/resolv.conf (repeatable; replaces the
    /// host's; "." for none)
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// A resolver option for its /etc/resolv.conf, e.g. ndots:2
    /// (repeatable; replaces the host's)
    #[arg(long)]
    pub dns_option: Vec<String>,
    /// An /etc/hosts entry, HOST:IP (repeatable)
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Leave the image's /etc/hosts as it is (none of the engine's)
    #[arg(long)]
    pub no_hosts: bool,
    /// Take this variable out of the environment the defaults and the
    /// image give (repeatable; -e still sets it)
    #[arg(long, value_name = "NAME")]
    pub unsetenv: Vec<String>,
    /// None of the environment the defaults and the image give: only -e's
    /// (and --env-file's, --env-host's)
    #[arg(long)]
    pub unsetenv_all: bool,
    /// Remove the image once the container is gone, if nothing else uses
    /// it (implies --rm)
    #[arg(long)]
    pub rmi: bool,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// With --read-only: a tmpfs on /run, /tmp and /var/tmp (those not
    /// mounted otherwise), as Podman's [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub read_only_tmpfs: Option<bool>,
    /// A tiny init as pid 1 (this program, at /dev/init): it forwards
    /// signals to the command and reaps orphans
    #[arg(long)]
    pub init: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The OOM killer leaves it alone (cgroup v1; with --memory)
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// The first process's umask, octal (process.user.umask) [default:
    /// 0022]
    #[arg(long, value_name = "MASK")]
    pub umask: Option<String>,
    /// The container's time zone: an area/city of the host's
    /// /usr/share/zoneinfo (Asia/Tokyo, UTC), or `local` (the host's), as
    /// its /etc/localtime
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Write the container's process id (the host's) to this file at
    /// each start
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<std::path::PathBuf>,
    /// Kill the container (SIGKILL) once it has run this many seconds
    /// (0: never)
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// This shell's environment in the container (under --env-file's and
    /// -e's)
    #[arg(long)]
    pub env_host: bool,
    /// Add a capability (e.g. NET_ADMIN, or ALL)
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop a capability (e.g. NET_RAW, or ALL)
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Bind a host directory or file: HOST:CONTAINER[:ro|rw] (named volumes
    /// are to come)
    #[arg(short = 'v', long)]
    pub volume: Vec<String>,
    /// type=bind,source=HOST,target=CONTAINER[,readonly] or
    /// type=tmpfs,target=CONTAINER[,tmpfs-size=BYTES]
    #[arg(long)]
    pub mount: Vec<String>,
    /// A tmpfs at PATH[:OPTIONS] (e.g. /run:size=64m,mode=1777)
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// A resource limit, NAME=SOFT[:HARD] (e.g. nofile=1024:2048)
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json
    /// (label=disable and apparmor=unconfined are taken: this engine
    /// applies no SELinux label or AppArmor profile)
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// host: the host's PID namespace; private: one of its own [default]
    #[arg(long, value_name = "MODE")]
    pub pid: Option<String>,
    /// host: the host's IPC namespace; private: one of its own [default]
    #[arg(long, value_name = "MODE")]
    pub ipc: Option<String>,
    /// host: the host's UTS namespace (and hostname); private [default]
    #[arg(long, value_name = "MODE")]
    pub uts: Option<String>,
    /// The size of /dev/shm (e.g. 256m) [default: 64m]
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// A namespaced kernel parameter, NAME=VALUE (repeatable)
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// An annotation of the OCI config, KEY=VALUE (repeatable)
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Remove a container of the same --name first (Podman's)
    #[arg(long)]
    pub replace: bool,
    /// Write the container's id to this file
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<std::path::PathBuf>,
    /// No pull progress
    #[arg(short, long)]
    pub quiet: bool,
    /// max-size=SIZE (default 20m) and max-file=N (default 5): the log is
    /// rotated by size
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// k8s-file [default] (json-file is taken for it), or none: no log
    /// kept (`logs` refuses; attach still sees the output)
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// no, on-failure[:MAX], always or unless-stopped: the monitor starts
    /// the container again when it ends (not after stop or kill)
    #[arg(long)]
    pub restart: Option<String>,
    /// The signal stop sends first [default: the image's, else TERM]
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds stop waits before SIGKILL [default: 10]
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// A label, KEY=VALUE (repeatable)
    #[arg(short, long)]
    pub label: Vec<String>,
    /// A file of labels, KEY=VALUE a line (# comments, blank lines);
    /// --label wins over it (repeatable)
    #[arg(long, value_name = "FILE")]
    pub label_file: Vec<std::path::PathBuf>,
    /// A health check: a shell line, a JSON list (a program and its
    /// arguments), or none (no check, not even the image's)
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Between health checks [default: the image's, else 30s]; disable:
    /// no timer, `healthcheck run` only
    #[arg(long, value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// A check that takes longer fails [default: the image's, else 30s]
    #[arg(long, value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Failures in this long after the start do not count [default: 0s]
    #[arg(long, value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Failures in a row that make it unhealthy [default: 3]
    #[arg(long, value_name = "N")]
    pub health_retries: Option<u32>,
    /// What to do once it turns unhealthy: none, kill, restart or stop
    #[arg(long, value_name = "ACTION")]
    pub health_on_failure: Option<String>,
    /// No health check, not even the image's
    #[arg(long)]
    pub no_healthcheck: bool,
    /// The OOM killer's bias for the container's processes, -1000 to 1000
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub oom_score_adj: Option<i32>,
    /// host: the host's cgroup namespace [default]; private: one of its
    /// own (its cgroup appears as the root)
    #[arg(long, value_name = "MODE")]
    pub cgroupns: Option<String>,
    /// host [default]: the host's user namespace; auto[:size=N]: one of
    /// its own, on free ids of /etc/subuid's and /etc/subgid's
    /// "containers" entry
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// A user namespace of its own: container ids CONTAINER.. are host
    /// ids HOST.., SIZE of them, CONTAINER:HOST:SIZE (repeatable; the
    /// gid map too unless --gidmap is given)
    #[arg(long, value_name = "MAP")]
    pub uidmap: Vec<String>,
    /// The gid map, as --uidmap's (repeatable)
    #[arg(long, value_name = "MAP")]
    pub gidmap: Vec<String>,
    /// The cgroup the container's goes under, a path from the root (e.g.
    /// /batch): its group is PARENT/ID [default: /ID]
    #[arg(long, value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// enabled [default] (the only mode: Podman's disabled, no-conmon
    /// and split are refused)
    #[arg(long, value_name = "MODE")]
    pub cgroups: Option<String>,
    /// Another group for the process, by name (the image's /etc/group) or
    /// number (repeatable)
    #[arg(long)]
    pub group_add: Vec<String>,
    /// Every capability, every host device, no seccomp filter, no masked
    /// paths, /sys writable
    #[arg(long)]
    pub privileged: bool,
    /// A host device in the container: HOST[:CONTAINER[:PERMISSIONS]]
    /// (permissions of r, w, m; default rwm)
    #[arg(long)]
    pub device: Vec<String>,
    /// A device cgroup rule, 'TYPE MAJOR:MINOR ACCESS' (type a, b or c;
    /// a number or '*'; access of r, w, m): devices the container may
    /// make or open later (repeatable)
    #[arg(long, value_name = "RULE")]
    pub device_cgroup_rule: Vec<String>,
    /// Read rate limit of a block device, PATH:RATE (bytes a second:
    /// 1mb, 512k) (repeatable)
    #[arg(long, value_name = "PATH:RATE")]
    pub device_read_bps: Vec<String>,
    /// Write rate limit of a block device, PATH:RATE (repeatable)
    #[arg(long, value_name = "PATH:RATE")]
    pub device_write_bps: Vec<String>,
    /// Read operations a second of a block device, PATH:N (repeatable)
    #[arg(long, value_name = "PATH:N")]
    pub device_read_iops: Vec<String>,
    /// Write operations a second of a block device, PATH:N (repeatable)
    #[arg(long, value_name = "PATH:N")]
    pub device_write_iops: Vec<String>,
    /// A block device's I/O weight, PATH:WEIGHT (10 to 1000; repeatable)
    #[arg(long, value_name = "PATH:WEIGHT")]
    pub blkio_weight_device: Vec<String>,
    /// The execution domain, personality(2): LINUX or LINUX32 (uname -m
    /// then says i686)
    #[arg(long, value_name = "DOMAIN")]
    pub personality: Option<String>,
    /// Start these containers first, if they are not running
    /// (comma-separated; repeatable)
    #[arg(long, value_name = "CONTAINERS")]
    pub requires: Vec<String>,
    /// Join the pod whose id this file holds (pod create's --pod-id-file)
    #[arg(long, value_name = "FILE")]
    pub pod_id_file: Option<PathBuf>,
    /// NAME=VALUE where ${NAME} is the image's value of NAME (e.g.
    /// PATH=/opt/bin:${PATH}) (repeatable)
    #[arg(long, value_name = "NAME=VALUE")]
    pub env_merge: Vec<String>,
    /// With --init: this init program instead of the engine's own
    #[arg(long, value_name = "PATH")]
    pub init_path: Option<PathBuf>,
    /// default (the only one: Podman's image policy reads an annotation
    /// this engine does not)
    #[arg(long, value_name = "POLICY")]
    pub seccomp_policy: Option<String>,
    /// Docker's, taken and ignored (no content trust here)
    #[arg(long, hide = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_content_trust: Option<bool>,
    /// This shell's http_proxy, https_proxy, ftp_proxy and no_proxy (either
    /// case) in the container, unless the image or -e sets them [default:
    /// true, as Podman's]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub http_proxy: Option<bool>,
    /// The OCI runtime for this container: a path or a name on PATH (runc,
    /// crun) [default: skiff-oci]
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// A secret (secret create), as a file at /run/secrets/NAME:
    /// NAME[,type=mount|env][,target=PATH|VAR][,uid=N][,gid=N][,mode=0444]
    /// (repeatable)
    #[arg(long, value_name = "SPEC")]
    pub secret: Vec<String>,
    /// Mount another container's volumes too: CONTAINER[:ro|rw]
    #[arg(long)]
    pub volumes_from: Vec<String>,
    /// default (or process, oci): namespaces on the host's kernel; vm: the
    /// container in a VM of its own (docs/vm.md), sized from --memory and
    /// --cpus
    #[arg(long, value_name = "MODE")]
    pub isolation: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// When to pull the image: missing (from the store), always, never,
    /// or newer (pull, and use the store's when the registry cannot be
    /// reached) [default: missing]
    #[arg(long, value_name = "POLICY")]
    pub pull: Option<String>,
    /// The image, then the command and its arguments [default: the
    /// image's]. One list, so that whatever follows the image is the
    /// command's, flags included (`run --entrypoint sh IMAGE -c 'echo'`)
    #[arg(
        value_name = "IMAGE [COMMAND [ARG...]]",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub image_and_command: Vec<String>,
}

impl RunArgs {
    pub fn image(&self) -> &str {
        self.image_and_command.first().map_or("", String::as_str)
    }

    pub fn command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or_default()
    }
}

#[derive(Args, Debug)]
pub struct PauseArgs {
    #[arg(required_unless_present_any = ["all", "filter"], conflicts_with = "all")]
    pub containers: Vec<String>,
    /// Only the containers these match, as ps's --filter (id, name,
    /// status, label, ancestor, exited, pod, health; repeatable)
    #[arg(short, long, value_name = "KEY=VALUE", conflicts_with = "all")]
    pub filter: Vec<String>,

    /// Every running (pause) or paused (unpause) container
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    #[arg(required_unless_present_any = ["all", "filter"], conflicts_with = "all")]
    pub containers: Vec<String>,
    /// Every container that does not run
    #[arg(long)]
    pub all: bool,
    /// Only the containers these match, as ps's --filter (id, name,
    /// status, label, ancestor, exited, pod, health; repeatable)
    #[arg(short, long, value_name = "KEY=VALUE", conflicts_with = "all")]
    pub filter: Vec<String>,

    /// Print the container's output (stdout and stderr apart) until it
    /// ends, and exit with its code (one container)
    #[arg(short, long)]
    pub attach: bool,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show every container (not only running ones)
    #[arg(short, long)]
    pub all: bool,
    /// Show ids only
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub no_trunc: bool,
    /// table, json, or a template such as '{{.Names}} {{.Status}}'
    #[arg(long)]
    pub format: Option<String>,
    /// KEY=VALUE: id, name (a regular expression), status, label (KEY or
    /// KEY=VALUE), ancestor, exited, pod; a key given twice matches
    /// either value, different keys all
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Only the N made last (all states)
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    /// Only the one made last (all states)
    #[arg(short, long)]
    pub latest: bool,
    /// No header line in a table
    #[arg(long)]
    pub noheading: bool,
    /// Order the rows by command, created, id, image, names, runningfor
    /// or status (ascending, as Podman's) [default: newest first]
    #[arg(long, value_name = "FIELD")]
    pub sort: Option<String>,
    /// Add the POD ID and PODNAME columns to the table
    #[arg(short, long)]
    pub pod: bool,
    /// Add the SIZE column: what the container wrote (and with its image)
    #[arg(short, long)]
    pub size: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Several: each line starts with its container's short id (or name)
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Start lines with the container's name, not its id (several
    /// containers)
    #[arg(short, long)]
    pub names: bool,
    #[command(flatten)]
    pub view: LogViewArgs,
}

/// What `logs` and `pod logs` print of each container's log.
#[derive(Args, Debug)]
pub struct LogViewArgs {
    /// Keep printing what comes, until the container ends
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long)]
    pub tail: Option<String>,
    /// Prefix each line with its time
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines since this time: RFC 3339, a Unix time, or a duration
    /// before now (10m, 1h30m), as Podman's
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines up to this time (the same forms); -f stops there
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    #[arg(required_unless_present_any = ["all", "cidfile", "filter"], conflicts_with = "all")]
    pub containers: Vec<String>,
    /// Only the containers these match, as ps's --filter (id, name,
    /// status, label, ancestor, exited, pod, health; repeatable)
    #[arg(short, long, value_name = "KEY=VALUE", conflicts_with = "all")]
    pub filter: Vec<String>,
    /// With restart: only containers that run
    #[arg(long)]
    pub running: bool,
    /// Also the container whose id this file holds (--cidfile's of run
    /// and create; repeatable)
    #[arg(long, value_name = "FILE", conflicts_with = "all")]
    pub cidfile: Vec<PathBuf>,
    /// All of them: every running container
    #[arg(short, long)]
    pub all: bool,
    /// A container that does not exist is no error (Podman's --ignore)
    #[arg(short, long)]
    pub ignore: bool,
    /// Seconds to wait before SIGKILL [default: the container's
    /// --stop-timeout, else 10]
    #[arg(short, long)]
    pub time: Option<u64>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    #[arg(required_unless_present_any = ["all", "cidfile"], conflicts_with = "all")]
    pub containers: Vec<String>,
    /// Also the container whose id this file holds (--cidfile's of run
    /// and create; repeatable)
    #[arg(long, value_name = "FILE", conflicts_with = "all")]
    pub cidfile: Vec<PathBuf>,
    /// All of them: every running container
    #[arg(short, long)]
    pub all: bool,
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Keep owners as they are (default: root's)
    #[arg(short, long)]
    pub archive: bool,
    pub src: String,
    pub dst: String,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[arg(required_unless_present_any = ["all", "cidfile", "filter"], conflicts_with = "all")]
    pub containers: Vec<String>,
    /// Only the containers these match, as ps's --filter (id, name,
    /// status, label, ancestor, exited, pod, health; repeatable)
    #[arg(long, value_name = "KEY=VALUE", conflicts_with = "all")]
    pub filter: Vec<String>,

    /// Also the container whose id this file holds (--cidfile's of run
    /// and create; repeatable)
    #[arg(long, value_name = "FILE", conflicts_with = "all")]
    pub cidfile: Vec<PathBuf>,
    /// All of them: every container
    #[arg(short, long)]
    pub all: bool,
    /// Kill a running container first; one that does not exist is no
    /// error
    #[arg(short, long)]
    pub force: bool,
    /// With -f: stop a running container as `stop -t SECONDS` does (its
    /// stop signal, SIGKILL after SECONDS) instead of killing it
    #[arg(short, long, value_name = "SECONDS", requires = "force")]
    pub time: Option<u64>,
    /// A container that does not exist is no error (Podman's --ignore)
    #[arg(short, long)]
    pub ignore: bool,
    /// Remove its anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
    /// Also the containers that depend on it (run --requires), first
    #[arg(long)]
    pub depend: bool,
}

/// The resource flags `run`, `create` and `update` share.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Memory limit, e.g. 64m, 1g (bytes; k, m, g as 1024s)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap)
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// CPUs the container may use, e.g. 1.5
    #[arg(long, allow_negative_numbers = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// CPUs it may run on, e.g. 0-1 or 0,2
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes it may use, e.g. 0 or 0-1
    #[arg(long, value_name = "NODES")]
    pub cpuset_mems: Option<String>,
    /// CPU time per period, µs (CFS quota; not with --cpus)
    #[arg(long, allow_negative_numbers = true, value_name = "MICROSECONDS")]
    pub cpu_quota: Option<i64>,
    /// The CFS period, µs, 1000 to 1000000 [default: 100000]
    #[arg(long, value_name = "MICROSECONDS")]
    pub cpu_period: Option<u64>,
    /// A soft memory limit, below --memory (reclaim aims for it)
    #[arg(long, value_name = "SIZE")]
    pub memory_reservation: Option<String>,
    /// How readily its pages are swapped, 0 to 100 (-1: the host's)
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub memory_swappiness: Option<i64>,
    /// At most this many processes (-1: unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// The real-time scheduling period, µs (cgroup v1's cpu.rt_period_us)
    #[arg(long, value_name = "MICROSECONDS")]
    pub cpu_rt_period: Option<u64>,
    /// Real-time run time per period, µs (cpu.rt_runtime_us; -1: all)
    #[arg(long, allow_negative_numbers = true, value_name = "MICROSECONDS")]
    pub cpu_rt_runtime: Option<i64>,
    /// Block I/O weight, 10 to 1000 (the BFQ scheduler's; refused at
    /// start where the kernel has none)
    #[arg(long, value_name = "WEIGHT")]
    pub blkio_weight: Option<u16>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub container: String,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// no, on-failure[:MAX], always or unless-stopped
    #[arg(long)]
    pub restart: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Keep stdin open (the process reads ours)
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the process a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Start it in the background
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read environment variables from a file, one NAME=VALUE a line
    #[arg(long)]
    pub env_file: Vec<PathBuf>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Every capability this host can give, for this process only (the
    /// container keeps its own; its seccomp filter stays)
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// The state to wait for: stopped or exited (print the exit code),
    /// running, paused or created (print -1), as Podman's [default:
    /// stopped]
    #[arg(long, value_name = "STATE")]
    pub condition: Option<String>,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    pub container: String,
    /// The new image's name
    pub image: Option<String>,
    /// A comment for the new layer's history entry
    #[arg(short, long)]
    pub message: Option<String>,
    /// A Containerfile instruction for the image's config: CMD,
    /// ENTRYPOINT, ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME or STOPSIGNAL
    /// (repeatable), as Podman's
    #[arg(short, long)]
    pub change: Vec<String>,
    /// The image's author
    #[arg(short, long)]
    pub author: Option<String>,
    /// Print the image id only (what commit prints anyway)
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the new image's id (sha256:HEX) to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The context: a directory, or - (a Containerfile, or a tar of a
    /// context, on stdin)
    pub context: String,
    /// A name for the image (more than once: more names)
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// The Containerfile [default: CONTEXT/Containerfile, else CONTEXT/Dockerfile]
    #[arg(short, long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A build argument's value (ARG), KEY=VALUE (KEY alone: from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Build up to this stage and make it the image
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Run every step, asking no cache (results are still kept)
    #[arg(long)]
    pub no_cache: bool,
    /// When to pull FROM images: always (--pull alone, or true), missing
    /// (the default, or false), never
    #[arg(long, value_name = "POLICY", num_args = 0..=1, require_equals = true, default_missing_value = "always")]
    pub pull: Option<String>,
    /// Podman's: accepted, the cache is always used (unless --no-cache)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub layers: Option<String>,
    /// The image's format: oci, or docker (accepted; the image is written
    /// as OCI either way)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// The platform to build for: only this machine's (linux/amd64 here)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// RUN steps get no /etc/hosts of the engine's
    #[arg(long)]
    pub no_hosts: bool,
    /// Build args from a file: KEY=VALUE lines, # comments
    #[arg(long, value_name = "FILE")]
    pub build_arg_file: Vec<PathBuf>,
    /// A secret for RUN --mount=type=secret,id=ID: id=ID,src=FILE or
    /// id=ID,env=VAR (never in the image, its history or the cache key)
    #[arg(long, value_name = "id=ID,src=FILE")]
    pub secret: Vec<String>,
    /// An annotation of the image's manifest, KEY=VALUE
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Refused: squashing the final stage's layers is not done yet
    #[arg(long, hide = true)]
    pub squash: bool,
    /// The image as one layer (its whole root filesystem)
    #[arg(long)]
    pub squash_all: bool,
    /// The network of RUN steps: none, host or bridge
    #[arg(long, value_name = "MODE", default_value = "host")]
    pub network: String,
    /// A label for the image, KEY=VALUE
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image's id (sha256:HEX) to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Podman's `--latest` (`-l`): the container made last, for the commands
/// that act on containers. Before parsing, the flag becomes the name
/// [`LATEST`] where the container goes (main.rs puts the newest
/// container's id there), so each command takes it as it takes a name. Only a `-l`/`--latest` before the
/// command's first argument counts: one after it (`exec C ls -l`) is the
/// program's. Flags that take a value are told by the command's own
/// definition, so their values are not taken for the first argument.
pub fn latest_as_name(mut args: Vec<String>) -> Vec<String> {
    use clap::CommandFactory;
    // Most command lines have neither: no second build of the command's
    // definition for them (every `run` would pay for it).
    if !args.iter().any(|a| a == "-l" || a == "--latest") {
        return args;
    }
    const COMMANDS: &[&str] = &[
        "attach", "diff", "exec", "inspect", "kill", "logs", "mount", "pause", "port", "restart",
        "rm", "start", "stats", "stop", "top", "unmount", "unpause", "wait",
    ];
    let root = Cli::command();
    let mut cmd = &root;
    let mut i = 1;
    // The global flags, then the command (and `container`'s subcommand).
    while i < args.len() {
        match args[i].as_str() {
            "--root" => i += 2,
            a if a.starts_with("--root=") || a == "--trace" => i += 1,
            word => match cmd.find_subcommand(word) {
                Some(sub) if sub.get_name() == "container" => {
                    cmd = sub;
                    i += 1;
                }
                Some(sub) if COMMANDS.contains(&sub.get_name()) => {
                    cmd = sub;
                    i += 1;
                    break;
                }
                _ => return args,
            },
        }
    }
    let takes_value = |a: Option<&clap::Arg>| a.is_some_and(|a| a.get_action().takes_values());
    while i < args.len() {
        let word = args[i].as_str();
        if word == "-l" || word == "--latest" {
            args[i] = LATEST.to_string();
            break;
        }
        if word == "--" || !word.starts_with('-') || word == "-" {
            break;
        }
        let value_follows = match word.strip_prefix("--") {
            Some(long) => {
                !long.contains('=')
                    && takes_value(cmd.get_arguments().find(|a| a.get_long() == Some(long)))
            }
            // A cluster of short flags: the last may take the next word.
            None => word[1..].chars().last().is_some_and(|c| {
                takes_value(cmd.get_arguments().find(|a| a.get_short() == Some(c)))
                    && word.len() == 2
            }),
        };
        i += if value_follows { 2 } else { 1 };
    }
    args
}

/// The name `--latest` stands for: no container's name has an '@'.
pub const LATEST: &str = "@latest";

#[cfg(test)]
mod latest_tests {
    use super::*;

    fn rewrite(line: &str) -> String {
        let args: Vec<String> = std::iter::once("skiff")
            .chain(line.split(' '))
            .map(String::from)
            .collect();
        latest_as_name(args)[1..].join(" ")
    }

    #[test]
    fn latest_is_where_the_container_goes() {
        assert_eq!(rewrite("logs -l"), "logs @latest");
        assert_eq!(
            rewrite("logs --tail 5 -f --latest"),
            "logs --tail 5 -f @latest"
        );
        assert_eq!(rewrite("exec -it -l ls -l"), "exec -it @latest ls -l");
        assert_eq!(rewrite("exec -u 0 -l sh"), "exec -u 0 @latest sh");
        assert_eq!(
            rewrite("--root /x container stop -t 3 -l"),
            "--root /x container stop -t 3 @latest"
        );
        // The program's -l, another command's -l, a value: left alone.
        assert_eq!(rewrite("exec web ls -l"), "exec web ls -l");
        assert_eq!(rewrite("run -l a=b img"), "run -l a=b img");
        assert_eq!(rewrite("ps -l"), "ps -l");
        assert_eq!(rewrite("logs --since -l web"), "logs --since -l web");
    }
}
