//! Secrets, as Podman's file driver keeps them: `secrets/ID/data` (0600,
//! root's) with `secret.json` beside. `run --secret NAME` gives a
//! container a copy, bound read-only at /run/secrets/NAME (or TARGET), or
//! as an environment variable (type=env). The value never goes into the
//! store's database, the container's inspect document or the events log.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use skiff_image::{Error, Result};

use crate::format;

/// Podman's limit on a secret's size.
const MAX_SIZE: usize = 512_000;

fn dir(root: &Path) -> PathBuf {
    root.join("secrets")
}

/// A secret's record (what `secret inspect` shows of it).
pub struct Secret {
    pub id: String,
    pub meta: Value,
}

impl Secret {
    pub fn name(&self) -> &str {
        self.meta["Spec"]["Name"].as_str().unwrap_or_default()
    }

    fn data_path(&self, root: &Path) -> PathBuf {
        dir(root).join(&self.id).join("data")
    }

    /// The secret's value.
    pub fn value(&self, root: &Path) -> Result<Vec<u8>> {
        let p = self.data_path(root);
        fs::read(&p).map_err(|e| Error::at(&p, "reading the secret", e))
    }
}

/// Every secret, oldest first.
pub fn all(root: &Path) -> Vec<Secret> {
    let mut list: Vec<Secret> = fs::read_dir(dir(root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_string_lossy().into_owned();
            let meta = fs::read(e.path().join("secret.json")).ok()?;
            Some(Secret {
                id,
                meta: serde_json::from_slice(&meta).ok()?,
            })
        })
        .collect();
    list.sort_by(|a, b| {
        a.meta["CreatedAt"]
            .as_str()
            .cmp(&b.meta["CreatedAt"].as_str())
    });
    list
}

/// A secret by its name, its id, or a prefix of one id.
pub fn find(root: &Path, what: &str) -> Result<Secret> {
    let list = all(root);
    let by_name = list.iter().position(|s| s.name() == what);
    let by_id: Vec<usize> = (0..list.len())
        .filter(|i| !what.is_empty() && list[*i].id.starts_with(what))
        .collect();
    let index = match (by_name, by_id.as_slice()) {
        (Some(i), _) => i,
        (None, [i]) => *i,
        (None, []) => {
            return Err(Error::invalid(format!(
                "no secret with name or id {what:?}: no such secret"
            )))
        }
        (None, _) => {
            return Err(Error::invalid(format!(
                "secret id {what:?} is ambiguous: give more of it"
            )))
        }
    };
    Ok(list.into_iter().nth(index).expect("an index of the list"))
}

/// Docker's and Podman's rule for a secret's name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// What `secret create` is given.
pub struct NewSecret<'a> {
    pub name: &'a str,
    /// The file to read (`-`: stdin), or with `from_env` the variable.
    pub source: &'a str,
    pub from_env: bool,
    pub labels: serde_json::Map<String, Value>,
}

/// `secret create`: the value kept under a new id, which is returned.
pub fn create(root: &Path, new: &NewSecret) -> Result<String> {
    if !valid_name(new.name) {
        return Err(Error::invalid(format!(
            "secret name {:?}: 1 to 253 letters, digits, '_', '.' or '-'",
            new.name
        )));
    }
    if all(root).iter().any(|s| s.name() == new.name) {
        return Err(Error::Refused(format!("{}: secret name in use", new.name)));
    }
    let value = read_value(new)?;
    if value.is_empty() || value.len() > MAX_SIZE {
        return Err(Error::invalid(format!(
            "secret {}: its value must be 1 to {MAX_SIZE} bytes, not {}",
            new.name,
            value.len()
        )));
    }
    // Podman's ids: 25 hex digits.
    let id = format::random_id()[..25].to_string();
    let home = dir(root).join(&id);
    fs::create_dir_all(dir(root)).map_err(|e| Error::at(&dir(root), "making", e))?;
    fs::set_permissions(dir(root), fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::at(&dir(root), "securing", e))?;
    fs::create_dir(&home).map_err(|e| Error::at(&home, "making", e))?;
    let written = (|| {
        let data = home.join("data");
        write_private(&data, &value)?;
        let now = format::rfc3339_now();
        let meta = json!({
            "ID": id,
            "CreatedAt": now,
            "UpdatedAt": now,
            "Spec": {
                "Name": new.name,
                "Driver": {"Name": "file", "Options": {"path": dir(root)}},
                "Labels": new.labels,
            },
        });
        let path = home.join("secret.json");
        fs::write(&path, serde_json::to_vec_pretty(&meta).unwrap_or_default())
            .map_err(|e| Error::at(&path, "writing", e))
    })();
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&home);
        return Err(e);
    }
    Ok(id)
}

fn read_value(new: &NewSecret) -> Result<Vec<u8>> {
    if new.from_env {
        return std::env::var_os(new.source)
            .map(|v| v.into_encoded_bytes())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "secret create --env: no variable {} in this environment",
                    new.source
                ))
            });
    }
    let mut value = Vec::new();
    // One byte past the limit tells a value that is too big.
    let limit = MAX_SIZE as u64 + 1;
    let read = if new.source == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut value)
    } else {
        fs::File::open(new.source).and_then(|f| f.take(limit).read_to_end(&mut value))
    };
    read.map_err(|e| Error::at(Path::new(new.source), "secret create: reading", e))?;
    Ok(value)
}

/// A file only its owner may read, made with that mode (never readable
/// by others, not even for a moment).
fn write_private(path: &Path, value: &[u8]) -> Result<()> {
    use std::io::Write;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(value))
        .map_err(|e| Error::at(path, "writing the secret", e))
}

/// `secret rm`.
pub fn remove(root: &Path, s: &Secret) -> Result<()> {
    let home = dir(root).join(&s.id);
    fs::remove_dir_all(&home).map_err(|e| Error::at(&home, "removing", e))
}

/// `run --secret`: what the flag asks for, checked before anything is
/// made; the secret itself is looked up at create.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub secret: String,
    pub env: bool,
    /// The variable's name (env), or the file's path in the container.
    pub target: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Parses `NAME[,type=mount|env][,target=T][,uid=N][,gid=N][,mode=OCTAL]`
/// as Podman does: a mount's target is under /run/secrets unless
/// absolute; an env's is the variable's name (default the secret's).
pub fn parse_request(spec: &str) -> std::result::Result<Request, String> {
    let mut parts = spec.split(',');
    let secret = parts.next().unwrap_or_default().to_string();
    let bad = |why: &str| format!("--secret {spec:?}: {why}");
    if secret.is_empty() || secret.contains('=') {
        return Err(bad("the secret's name comes first"));
    }
    let (mut env, mut target, mut uid, mut gid, mut mode) = (false, None, None, None, None);
    for opt in parts {
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| bad("options are KEY=VALUE"))?;
        let number = |radix: u32| {
            u32::from_str_radix(value, radix)
                .map_err(|_| bad(&format!("{key} {value:?}: a number")))
        };
        match key {
            "type" => {
                env = match value {
                    "mount" => false,
                    "env" => true,
                    _ => return Err(bad("type is mount or env")),
                }
            }
            "target" if !value.is_empty() => target = Some(value.to_string()),
            "uid" => uid = Some(number(10)?),
            "gid" => gid = Some(number(10)?),
            "mode" => mode = Some(number(8)?),
            _ => {
                return Err(bad(&format!(
                    "unknown option {key:?} (type, target, uid, gid, mode)"
                )))
            }
        }
    }
    if env && (uid.is_some() || gid.is_some() || mode.is_some()) {
        return Err(bad("uid, gid and mode are a mounted file's (type=mount)"));
    }
    let target = match (env, target) {
        (true, t) => t.unwrap_or_else(|| secret.clone()),
        (false, Some(t)) if t.starts_with('/') => t,
        (false, t) => format!("/run/secrets/{}", t.unwrap_or_else(|| secret.clone())),
    };
    if !env && target.split('/').any(|s| s == "..") {
        return Err(bad("the target may not climb with .."));
    }
    Ok(Request {
        secret,
        env,
        target,
        uid: uid.unwrap_or(0),
        gid: gid.unwrap_or(0),
        mode: mode.unwrap_or(0o444),
    })
}

/// At create: each request's secret, as a file in the container's
/// directory bound at its target (the mounts returned), or as a
/// variable (NAME=VALUE returned in the second list).
/// In a user namespace of its own (`maps`), the file's owner is the
/// host's ids of the container's uid and gid.
pub fn provide(
    root: &Path,
    dir: &Path,
    requests: &[Request],
    maps: Option<&crate::idmap::IdMaps>,
) -> Result<(Vec<Value>, Vec<String>)> {
    let (mut mounts, mut env) = (vec![], vec![]);
    for (n, r) in requests.iter().enumerate() {
        let s = find(root, &r.secret)
            .map_err(|e| Error::invalid(format!("--secret {}: {e}", r.secret)))?;
        let value = s.value(root)?;
        if r.env {
            env.push(format!("{}={}", r.target, String::from_utf8_lossy(&value)));
            continue;
        }
        let home = dir.join("secrets");
        fs::create_dir_all(&home).map_err(|e| Error::at(&home, "making", e))?;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::at(&home, "securing", e))?;
        let copy = home.join(n.to_string());
        let _ = fs::remove_file(&copy);
        write_private(&copy, &value)?;
        let (uid, gid) = match maps {
            Some(m) => m.host_ids(r.uid, r.gid),
            None => (Some(r.uid), Some(r.gid)),
        };
        std::os::unix::fs::chown(&copy, uid, gid)
            .map_err(|e| Error::at(&copy, "giving the secret its owner", e))?;
        fs::set_permissions(&copy, fs::Permissions::from_mode(r.mode))
            .map_err(|e| Error::at(&copy, "giving the secret its mode", e))?;
        mounts.push(json!({
            "destination": r.target,
            "type": "bind",
            "source": copy,
            "options": ["bind", "ro", "nosuid", "nodev", "noexec"],
        }));
    }
    Ok((mounts, env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_podmans() {
        let r = parse_request("db").unwrap();
        assert_eq!(
            (r.env, r.target.as_str(), r.mode),
            (false, "/run/secrets/db", 0o444)
        );
        let r = parse_request("db,target=pw,uid=5,gid=6,mode=0400").unwrap();
        assert_eq!(
            (r.target.as_str(), r.uid, r.gid, r.mode),
            ("/run/secrets/pw", 5, 6, 0o400)
        );
        assert_eq!(
            parse_request("db,target=/etc/pw").unwrap().target,
            "/etc/pw"
        );
        let r = parse_request("db,type=env,target=PASSWORD").unwrap();
        assert_eq!((r.env, r.target.as_str()), (true, "PASSWORD"));
        assert_eq!(parse_request("db,type=env").unwrap().target, "db");
        for bad in [
            "",
            "type=env",
            "db,type=file",
            "db,mode=9",
            "db,x=1",
            "db,type=env,uid=1",
            "db,target=../x",
            "db,flag",
        ] {
            assert!(parse_request(bad).is_err(), "{bad}");
        }
    }
}
