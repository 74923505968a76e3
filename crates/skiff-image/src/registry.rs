//! Talking to a registry: the oci-client to use for a reference (TLS or
//! plain HTTP), and its credentials (given, or from the auth files Podman
//! and Docker write).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use crate::error::{Context, Error, Result};
use crate::reference::Reference;

/// How to reach registries, from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--tls-verify`: None = verify, except that a registry on a loopback
    /// address may answer over plain HTTP (as Docker treats 127.0.0.0/8);
    /// false = also accept any certificate, or plain HTTP.
    pub tls_verify: Option<bool>,
    /// `--creds USER:PASS`.
    pub creds: Option<(String, String)>,
    /// `--authfile`.
    pub authfile: Option<PathBuf>,
    /// `--platform` for indexes: None = this machine's.
    pub platform: Option<crate::manifest::Platform>,
    /// The registry answered over plain HTTP last time (the store's
    /// memory): try that first, where plain HTTP is allowed at all.
    pub plain_before: bool,
    /// `--cert-dir`: CA certificates (*.crt) to trust for the registry,
    /// besides /etc/containers/certs.d/REGISTRY and
    /// /etc/docker/certs.d/REGISTRY, which are always read.
    pub cert_dir: Option<PathBuf>,
}

/// The CA certificates to trust for a registry: *.crt in --cert-dir, and
/// in Podman's and Docker's per-registry directories (PEM).
fn registry_cas(registry: &str, cert_dir: Option<&Path>) -> Vec<oci_client::client::Certificate> {
    let mut dirs: Vec<PathBuf> = cert_dir.map(Path::to_path_buf).into_iter().collect();
    for base in ["/etc/containers/certs.d", "/etc/docker/certs.d"] {
        dirs.push(Path::new(base).join(registry));
    }
    let mut out = vec![];
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        files.sort();
        for f in files {
            if let Ok(data) = std::fs::read(&f) {
                out.push(oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data,
                });
            }
        }
    }
    out
}

/// A connected registry: the client, the credentials, the reference.
pub struct Registry {
    pub client: Client,
    pub auth: RegistryAuth,
    /// It answered over plain HTTP.
    pub plain: bool,
}

fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(registry);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn client(
    protocol: ClientProtocol,
    insecure: bool,
    cas: Vec<oci_client::client::Certificate>,
) -> Client {
    Client::new(ClientConfig {
        protocol,
        accept_invalid_certificates: insecure,
        extra_root_certificates: cas,
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        read_timeout: Some(std::time::Duration::from_secs(120)),
        max_concurrent_download: 4,
        max_concurrent_upload: 4,
        // A blob goes up in one request body (POST, then PUT with it), as
        // Docker and Podman send it in one PATCH: oci-client's chunked
        // upload sends one PATCH per stream chunk (1 MiB here), a round
        // trip each, and below the 5 MiB parts some registries ask for
        // (distribution-spec's OCI-Chunk-Min-Length, which it ignores).
        use_monolithic_push: true,
        ..Default::default()
    })
}

impl Registry {
    /// A client for `r`'s registry, checked by an authenticated ping of its
    /// /v2/ endpoint (for `op`): over HTTPS, then plain HTTP where allowed.
    pub async fn connect(r: &Reference, opts: &Options, op: RegistryOperation) -> Result<Registry> {
        let auth = credentials(&r.registry, opts)?;
        let insecure = opts.tls_verify == Some(false);
        let plain_allowed = insecure || (opts.tls_verify.is_none() && is_loopback(&r.registry));
        let target = r.client_ref(None);
        // A registry that answered over plain HTTP before (the store
        // remembers) is asked that way first: a TLS hello sent to a plain
        // server costs ~50 ms before it fails.
        if plain_allowed && opts.plain_before {
            let http = client(ClientProtocol::Http, false, vec![]);
            if http.auth(&target, &auth, op).await.is_ok() {
                return Ok(Registry {
                    client: http,
                    auth,
                    plain: true,
                });
            }
        }
        let https = client(
            ClientProtocol::Https,
            insecure,
            registry_cas(&r.registry, opts.cert_dir.as_deref()),
        );
        let first = https.auth(&target, &auth, op).await;
        match first {
            Ok(_) => Ok(Registry {
                client: https,
                auth,
                plain: false,
            }),
            // A server that speaks TLS with a certificate we do not trust is
            // not a plain-HTTP server: say so, do not fall back.
            Err(oci_client::errors::OciDistributionError::RequestError(e))
                if plain_allowed && !error_chain(&e).contains("certificate") =>
            {
                let http = client(ClientProtocol::Http, false, vec![]);
                match http.auth(&target, &auth, op).await {
                    Ok(_) => Ok(Registry {
                        client: http,
                        auth,
                        plain: true,
                    }),
                    Err(e2) => Err(Error::Registry(format!(
                        "{}: neither HTTPS ({e}) nor HTTP ({e2}) answered",
                        r.registry
                    ))),
                }
            }
            Err(e) => Err(registry_error(&r.registry, e)),
        }
    }
}

/// oci-client's errors, said with the registry's name (and the hint a TLS
/// failure needs).
pub fn registry_error(registry: &str, e: oci_client::errors::OciDistributionError) -> Error {
    let text = e.to_string();
    let chain = error_chain(&e);
    let hint = if chain.contains("certificate") || chain.contains("InvalidContentType") {
        " (for a registry without a trusted certificate: --tls-verify=false)"
    } else {
        ""
    };
    Error::Registry(format!("{registry}: {text}{chain}{hint}"))
}

/// Every cause under an error, ": "-joined (reqwest hides the TLS one).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut chain = String::new();
    let mut src = e.source();
    while let Some(s) = src {
        chain.push_str(&format!(": {s}"));
        src = s.source();
    }
    chain
}

/// The auth files looked at, in order: --authfile; $REGISTRY_AUTH_FILE;
/// Podman's ($XDG_RUNTIME_DIR/containers/auth.json, for root
/// /run/containers/0/auth.json); Docker's (~/.docker/config.json).
pub fn auth_files(opts_file: Option<&Path>) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Some(f) = opts_file {
        out.push(f.to_path_buf());
        return out;
    }
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        out.push(PathBuf::from(f));
    }
    out.push(default_auth_file());
    if let Some(home) = std::env::var_os("HOME") {
        out.push(PathBuf::from(home).join(".docker/config.json"));
    }
    out
}

/// Where login writes: Podman's file.
pub fn default_auth_file() -> PathBuf {
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return PathBuf::from(f);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !rustix::process::geteuid().is_root() => {
            PathBuf::from(d).join("containers/auth.json")
        }
        _ => PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            rustix::process::geteuid().as_raw()
        )),
    }
}

fn credentials(registry: &str, opts: &Options) -> Result<RegistryAuth> {
    if let Some((u, p)) = &opts.creds {
        return Ok(RegistryAuth::Basic(u.clone(), p.clone()));
    }
    for f in auth_files(opts.authfile.as_deref()) {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::invalid(format!("{}: not JSON: {e}", f.display())))?;
        let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
            continue;
        };
        let keys = [
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ];
        let entry = keys.iter().find_map(|k| auths.get(k)).or_else(|| {
            (registry == "docker.io")
                .then(|| auths.get("https://index.docker.io/v1/"))
                .flatten()
        });
        if let Some(auth) = entry.and_then(|e| e.get("auth")).and_then(|a| a.as_str()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .map_err(|e| {
                    Error::invalid(format!("{}: auths.{registry}.auth: {e}", f.display()))
                })?;
            let s = String::from_utf8_lossy(&raw).into_owned();
            let (u, p) = s.split_once(':').ok_or_else(|| {
                Error::invalid(format!(
                    "{}: auths.{registry}.auth is not USER:PASSWORD",
                    f.display()
                ))
            })?;
            return Ok(RegistryAuth::Basic(u.to_string(), p.to_string()));
        }
    }
    Ok(RegistryAuth::Anonymous)
}

/// Records credentials for a registry in the auth file (mode 0600).
pub fn store_credentials(file: &Path, registry: &str, user: &str, pass: &str) -> Result<()> {
    let mut doc = read_auth_doc(file)?;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    doc["auths"][registry] = serde_json::json!({ "auth": token });
    write_auth_doc(file, &doc)
}

/// Forgets a registry's credentials; whether there were any.
pub fn remove_credentials(file: &Path, registry: &str) -> Result<bool> {
    let mut doc = read_auth_doc(file)?;
    let had = doc["auths"]
        .as_object_mut()
        .and_then(|a| a.remove(registry))
        .is_some();
    if had {
        write_auth_doc(file, &doc)?;
    }
    Ok(had)
}

fn read_auth_doc(file: &Path) -> Result<serde_json::Value> {
    let mut doc = match std::fs::read_to_string(file) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| Error::invalid(format!("{}: not JSON: {e}", file.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(Error::at(file, "reading", e)),
    };
    if !doc.get("auths").is_some_and(|a| a.is_object()) {
        doc["auths"] = serde_json::json!({});
    }
    Ok(doc)
}

fn write_auth_doc(file: &Path, doc: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).ctx(|| format!("making {}", dir.display()))?;
    }
    let tmp = file.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .ctx(|| format!("writing {}", tmp.display()))?;
    f.write_all(
        serde_json::to_string_pretty(doc)
            .unwrap_or_default()
            .as_bytes(),
    )
    .ctx(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file).ctx(|| format!("writing {}", file.display()))
}

/// Checks credentials against a registry (login): a manifest request
/// for a repository that need not exist, which a registry answers 401
/// to bad credentials and 404 (or the manifest) to good ones; a Basic
/// auth registry's /v2/ ping alone would not test them.
pub fn check_login(registry: &str, user: &str, pass: &str, opts: &Options) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ctx(|| "starting the network runtime".into())?;
    rt.block_on(async {
        let r = Reference::parse(&format!("{registry}/skiff-login-check"))?;
        let mut o = opts.clone();
        o.creds = Some((user.to_string(), pass.to_string()));
        let reg = Registry::connect(&r, &o, RegistryOperation::Pull).await?;
        match reg
            .client
            .pull_manifest_raw(&r.client_ref(None), &reg.auth, crate::manifest::ACCEPTED)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = e.to_string();
                let denied = matches!(
                    e,
                    oci_client::errors::OciDistributionError::AuthenticationFailure(_)
                        | oci_client::errors::OciDistributionError::UnauthorizedError { .. }
                ) || text.contains("401")
                    || text.to_lowercase().contains("unauthorized");
                if denied {
                    Err(Error::Registry(format!(
                        "{registry}: login refused: {text}"
                    )))
                } else {
                    Ok(())
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_known() {
        for r in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:5000",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["docker.io", "10.0.0.1:5000", "quay.io:443"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
