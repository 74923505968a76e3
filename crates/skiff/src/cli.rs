//! The command line, as Docker's and Podman's users type it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "skiff",
    version,
    about = "skiff: a daemonless container engine (images today; containers, networks and builds as they land)",
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
    /// Build an image from a Containerfile (or Dockerfile)
    Build(BuildArgs),
    /// Stop containers and start them again
    Restart(StopArgs),
    /// A container's published ports (80/tcp -> 0.0.0.0:8080)
    Port { container: String },
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
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
    Pause(StartArgs),
    /// Thaw paused containers
    Unpause(StartArgs),
    /// Give a container another name
    Rename { container: String, name: String },
    /// The processes of a running container
    Top { container: String },
    /// Resource use of running containers (CPU, memory, processes)
    Stats {
        /// One table and exit (without it: a table a second until interrupted)
        #[arg(long)]
        no_stream: bool,
        /// The containers [default: every running one]
        containers: Vec<String>,
    },
    /// What a container changed in its filesystem (A added, C changed, D deleted)
    Diff { container: String },
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

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

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
    History(HistoryArgs),
    Save(SaveArgs),
    Load(LoadArgs),
    Import(ImportArgs),
    /// Remove images without a name (-a: every image nothing uses)
    Prune(PruneArgs),
    /// Mount an image's layers as an overlay (read-write, changes kept apart)
    Mount(MountArgs),
    /// Unmount an image mount
    Unmount(UnmountArgs),
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List containers
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Remove every stopped container
    Prune {
        /// Do not ask
        #[arg(short, long)]
        force: bool,
    },
    Inspect(InspectArgs),
}

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Make a volume [NAME: a random one]
    Create {
        name: Option<String>,
        /// A label, KEY=VALUE (repeatable)
        #[arg(short, long)]
        label: Vec<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Names only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show volumes as JSON
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes (no container may use them)
    #[command(alias = "remove")]
    Rm {
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
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Names only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show networks as JSON
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks (no container may use them)
    #[command(alias = "remove")]
    Rm {
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
        #[arg(short, long)]
        label: Vec<String>,
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
        #[arg(required = true)]
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
    },
    /// Show pods as JSON
    Inspect {
        #[arg(required = true)]
        pods: Vec<String>,
    },
    /// The processes of a pod's containers
    Top { pod: String },
    /// Resource use of a pod's containers
    Stats {
        /// One sample, then exit
        #[arg(long)]
        no_stream: bool,
        pod: String,
    },
    /// Exit 0 if the pod exists, 1 if not
    Exists { pod: String },
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
    /// Check every blob and layer against its record; --repair removes the damaged
    Check(CheckArgs),
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
    /// Only images of this repository (e.g. busybox)
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
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
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove the image with all its names, even while something uses it
    #[arg(short, long)]
    pub force: bool,
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
    #[arg(short, long)]
    pub detach: bool,
    /// Keep standard input open (the container reads this terminal's)
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal (with -d: attach to it later)
    #[arg(short, long)]
    pub tty: bool,
    /// With -t: the keys that detach and leave it running, a,b or
    /// ctrl-a,ctrl-b ("" turns it off)
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Remove the container when it exits
    #[arg(long)]
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
    /// Override the image's Entrypoint ("" clears it)
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
    /// The container's address on its network (in its subnet)
    #[arg(long)]
    pub ip: Option<String>,
    /// A nameserver for its /etc/resolv.conf (repeatable; replaces the
    /// host's)
    #[arg(long)]
    pub dns: Vec<String>,
    /// An /etc/hosts entry, HOST:IP (repeatable)
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// A tiny init as pid 1 (this program, at /dev/init): it forwards
    /// signals to the command and reaps orphans
    #[arg(long)]
    pub init: bool,
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
    /// At most this many processes (-1: unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
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
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// max-size=SIZE (default 20m) and max-file=N (default 5): the log is
    /// rotated by size
    #[arg(long)]
    pub log_opt: Vec<String>,
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
    /// The OCI runtime for this container: a path or a name on PATH (runc,
    /// crun) [default: skiff-oci]
    #[arg(long)]
    pub runtime: Option<PathBuf>,
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
pub struct StartArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
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
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    pub container: String,
    /// Keep printing what comes, until the container ends
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines
    #[arg(long)]
    pub tail: Option<String>,
    /// Prefix each line with its time
    #[arg(short, long)]
    pub timestamps: bool,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Seconds to wait before SIGKILL [default: the container's
    /// --stop-timeout, else 10]
    #[arg(short, long)]
    pub time: Option<u64>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
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
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Remove its anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
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
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    pub container: String,
    /// The new image's name
    pub image: Option<String>,
    /// A comment for the new layer's history entry
    #[arg(short, long)]
    pub message: Option<String>,
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
    /// Pull FROM images even when the store has them
    #[arg(long)]
    pub pull: bool,
    /// The network of RUN steps: none, host or bridge
    #[arg(long, value_name = "MODE", default_value = "host")]
    pub network: String,
    /// A label for the image, KEY=VALUE
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}
