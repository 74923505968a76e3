//! What a registry, an archive or a damaged disk can hand the engine,
//! mutated at random (proptest; 64 cases a property here, PROPTEST_CASES=N
//! for more; the failures it finds are kept in proptest-regressions/ and
//! run first): manifests, indexes and configs with fields removed or
//! replaced by values of any type, or bytes of any kind; layer tar streams
//! with bytes flipped, cut short or grown, plain, gzip or zstd. Whatever
//! the input: no panic, no hang, an error that says what it is about, and
//! nothing written outside the layer's directory.

use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use skiff_image::manifest::{self, Compression};
use skiff_image::unpack::{unpack, Options};

fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

fn manifest_doc() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", "a".repeat(64)), "size": 100},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", "b".repeat(64)), "size": 200},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": format!("sha256:{}", "c".repeat(64)), "size": 300}
        ],
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}
    })
}

fn index_doc() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", "d".repeat(64)), "size": 500, "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", "e".repeat(64)), "size": 500, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}
        ]
    })
}

fn config_doc() -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/", "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "f".repeat(64))]},
        "history": [{"created_by": "test", "empty_layer": false}]
    })
}

/// Every path into `v` (object keys and array indexes).
fn paths(v: &Value, here: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(json!(k));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(json!(i));
                out.push(here.clone());
                paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

/// Replaces (or with None removes) what `path` names in `v`.
fn mutate(v: &mut Value, path: &[Value], with: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = v;
    for p in parents {
        let next = match p {
            Value::String(k) => at.get_mut(k.as_str()),
            Value::Number(i) => at.get_mut(i.as_u64().unwrap_or(0) as usize),
            _ => None,
        };
        let Some(next) = next else { return };
        at = next;
    }
    match (at, last, with) {
        (Value::Object(m), Value::String(k), Some(w)) => {
            m.insert(k.clone(), w);
        }
        (Value::Object(m), Value::String(k), None) => {
            m.remove(k);
        }
        (Value::Array(a), Value::Number(i), w) => {
            let i = i.as_u64().unwrap_or(0) as usize;
            match w {
                Some(w) if i < a.len() => a[i] = w,
                None if i < a.len() => {
                    a.remove(i);
                }
                _ => {}
            }
        }
        _ => {}
    }
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
        Just(json!("sha256:zz")),
        Just(json!(format!("sha256:{}", "0".repeat(64)))),
        Just(json!("application/vnd.oci.image.layer.v1.tar+bzip2")),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A document with up to four of its fields removed or replaced.
fn mutated(doc: fn() -> Value) -> impl Strategy<Value = Vec<u8>> {
    let mut all = vec![];
    paths(&doc(), &mut vec![], &mut all);
    let n = all.len();
    prop::collection::vec((0..n, prop::option::of(any_value())), 1..5).prop_map(move |changes| {
        let mut v = doc();
        for (i, with) in changes {
            mutate(&mut v, &all[i], with);
        }
        serde_json::to_vec(&v).unwrap_or_default()
    })
}

/// The error of a document that does not parse names what it is.
fn named(e: &skiff_image::Error) -> bool {
    let t = e.to_string();
    [
        "manifest",
        "image index",
        "layer",
        "config",
        "media type",
        "digest",
    ]
    .iter()
    .any(|w| t.contains(w))
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn manifests_and_indexes_never_panic_and_errors_name_them(
        bytes in prop_oneof![mutated(manifest_doc), mutated(index_doc), prop::collection::vec(any::<u8>(), 0..300)],
        header in prop::option::of(prop_oneof![
            Just("application/vnd.oci.image.manifest.v1+json"),
            Just("application/vnd.oci.image.index.v1+json"),
            Just("application/vnd.docker.distribution.manifest.v2+json"),
            Just("text/html"),
        ]),
    ) {
        if let Err(e) = manifest::parse_document(header, &bytes) {
            prop_assert!(named(&e), "{e}");
        }
    }

    #[test]
    fn configs_never_panic_and_errors_name_them(bytes in prop_oneof![mutated(config_doc), prop::collection::vec(any::<u8>(), 0..200)]) {
        if let Err(e) = manifest::parse_config(&bytes) {
            prop_assert!(named(&e), "{e}");
        }
    }
}

/// A layer of every kind of entry the unpacker makes.
fn layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, body: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        h.set_size(body.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, path, body).unwrap();
    };
    add("etc/", tar::EntryType::Directory, b"", None);
    add(
        "etc/passwd",
        tar::EntryType::Regular,
        b"root:x:0:0::/root:/bin/sh\n",
        None,
    );
    add("etc/hosts", tar::EntryType::Link, b"", Some("etc/passwd"));
    add(
        "etc/link",
        tar::EntryType::Symlink,
        b"",
        Some("../../outside"),
    );
    add("etc/.wh.gone", tar::EntryType::Regular, b"", None);
    add("var/", tar::EntryType::Directory, b"", None);
    add("var/.wh..wh..opq", tar::EntryType::Regular, b"", None);
    add("var/big", tar::EntryType::Regular, &[7u8; 20_000], None);
    b.into_inner().unwrap()
}

fn compress(raw: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => raw.to_vec(),
        Compression::Gzip => {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(raw, 1).unwrap(),
    }
}

/// Everything under `dir`, as relative paths.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn damaged_layers_never_panic_hang_or_write_outside(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
        cut in prop::option::of(any::<prop::sample::Index>()),
        tail in prop::collection::vec(any::<u8>(), 0..64),
        kind in prop_oneof![Just(Compression::None), Just(Compression::Gzip), Just(Compression::Zstd)],
    ) {
        // Damage the tar itself or its compressed form, half and half.
        let mut raw = layer();
        let damage = |bytes: &mut Vec<u8>| {
            for (i, b) in &flips {
                let at = i.index(bytes.len());
                bytes[at] ^= b | 1;
            }
            if let Some(c) = &cut {
                let at = c.index(bytes.len());
                bytes.truncate(at);
            }
            bytes.extend_from_slice(&tail);
        };
        let blob = if flips.len() % 2 == 0 {
            damage(&mut raw);
            compress(&raw, kind)
        } else {
            let mut c = compress(&raw, kind);
            damage(&mut c);
            c
        };
        let scratch = tempfile::tempdir().unwrap();
        let dest = scratch.path().join("layer");
        fs::create_dir(&dest).unwrap();
        let sentinel = scratch.path().join("sentinel");
        fs::write(&sentinel, b"untouched").unwrap();
        let (tx, rx) = mpsc::channel();
        let to = dest.clone();
        std::thread::spawn(move || {
            let r = unpack(&blob[..], kind, &to, Options::default()).map(|_| ());
            let _ = tx.send(r.map_err(|e| e.to_string()));
        });
        let done = rx.recv_timeout(Duration::from_secs(30));
        prop_assert!(done.is_ok(), "unpacking hung");
        if let Ok(Err(e)) = &done {
            prop_assert!(!e.is_empty());
        }
        // Nothing beside the layer's directory changed.
        let beside: Vec<String> = fs::read_dir(scratch.path()).unwrap().flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        let mut beside = beside;
        beside.sort();
        prop_assert_eq!(beside, vec!["layer".to_string(), "sentinel".to_string()]);
        prop_assert_eq!(fs::read(&sentinel).unwrap(), b"untouched".to_vec());
        prop_assert!(!Path::new("/outside").exists() && !scratch.path().join("outside").exists());
        let _ = tree(&dest);
    }
}

/// A registry on 127.0.0.1 that answers the distribution API's requests
/// for one image (`fuzz:1`) from `answer`, which may lie in any way: a
/// status, a body, a digest, a length.
struct FakeRegistry {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What the fake registry answers for a path: (status, content type, body,
/// Content-Length to claim).
type Answer = (u16, &'static str, Vec<u8>, Option<usize>);

impl FakeRegistry {
    fn start(answer: impl Fn(&str) -> Answer + Send + 'static) -> FakeRegistry {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = stop.clone();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((mut c, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                // One request per connection (Connection: close).
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
                    match c.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => break,
                    }
                    // A TLS hello (the client tries HTTPS first): this one
                    // speaks plain HTTP, so it hangs up at once.
                    if head == [0x16] {
                        break;
                    }
                }
                if head.first() == Some(&0x16) {
                    continue;
                }
                let text = String::from_utf8_lossy(&head);
                let mut words = text.split_whitespace();
                let method = words.next().unwrap_or("").to_string();
                let path = words.next().unwrap_or("").to_string();
                let (status, ctype, body, claimed) = answer(&path);
                let len = claimed.unwrap_or(body.len());
                let _ = write!(
                    c,
                    "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\nDocker-Distribution-Api-Version: registry/2.0\r\nConnection: close\r\n\r\n"
                );
                if method != "HEAD" {
                    let _ = c.write_all(&body[..body.len().min(len)]);
                }
            }
        });
        FakeRegistry { port, stop }
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// One small image, whole: (manifest, config, layer blob).
fn image() -> (Value, Vec<u8>, Vec<u8>) {
    let tar = layer();
    let blob = compress(&tar, Compression::Gzip);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(&tar)]},
    }))
    .unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&blob), "size": blob.len()}],
    });
    (manifest, config, blob)
}

/// How a response is spoiled.
#[derive(Debug, Clone)]
enum Lie {
    None,
    Status(u16),
    Bytes(Vec<(prop::sample::Index, u8)>),
    Short,
    Long,
    Junk(Vec<u8>),
}

fn lie() -> impl Strategy<Value = Lie> {
    prop_oneof![
        3 => Just(Lie::None),
        1 => prop_oneof![Just(401u16), Just(404), Just(500), Just(301), Just(200)].prop_map(Lie::Status),
        2 => prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6).prop_map(Lie::Bytes),
        1 => Just(Lie::Short),
        1 => Just(Lie::Long),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Lie::Junk),
    ]
}

fn spoil(lie: &Lie, body: Vec<u8>, ctype: &'static str) -> Answer {
    match lie {
        Lie::None => (200, ctype, body, None),
        Lie::Status(s) => (*s, ctype, body, None),
        Lie::Bytes(flips) => {
            let mut b = body;
            for (i, x) in flips {
                if !b.is_empty() {
                    let at = i.index(b.len());
                    b[at] ^= x | 1;
                }
            }
            (200, ctype, b, None)
        }
        Lie::Short => {
            let n = body.len();
            (200, ctype, body, Some(n / 2))
        }
        Lie::Long => {
            let n = body.len();
            (200, ctype, body, Some(n + 100))
        }
        Lie::Junk(j) => (200, ctype, j.clone(), None),
    }
}

proptest! {
    // 32 cases unless asked (each runs a pull).
    #![proptest_config(ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() { cases().cases } else { 32 },
        ..cases()
    })]

    /// A pull from a registry that lies (a status, damaged or cut bodies,
    /// a manifest mutated): an error that names the registry's answer, or
    /// an image whole and right; never a panic, a hang, or an image listed
    /// half; `system check` finds nothing damaged in what was kept.
    #[test]
    fn pulls_from_a_lying_registry_fail_cleanly_or_are_whole(
        manifest_lie in lie(),
        config_lie in lie(),
        layer_lie in lie(),
        mutation in prop::option::of(mutated(|| image().0)),
    ) {
        let (manifest, config, blob) = image();
        let mbytes = mutation.clone().unwrap_or_else(|| serde_json::to_vec(&manifest).unwrap());
        let (cdigest, bdigest) = (sha(&config), sha(&blob));
        let (ml, cl, ll) = (manifest_lie.clone(), config_lie.clone(), layer_lie.clone());
        let want_id = cdigest.clone();
        let reg = FakeRegistry::start(move |path| {
            if path == "/v2/" {
                (200, "application/json", b"{}".to_vec(), None)
            } else if path.starts_with("/v2/fuzz/manifests/") {
                spoil(&ml, mbytes.clone(), "application/vnd.oci.image.manifest.v1+json")
            } else if path.ends_with(&cdigest) {
                spoil(&cl, config.clone(), "application/octet-stream")
            } else if path.ends_with(&bdigest) {
                spoil(&ll, blob.clone(), "application/octet-stream")
            } else {
                (404, "application/json", b"{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}".to_vec(), None)
            }
        });
        let root = tempfile::tempdir().unwrap();
        let mut store = skiff_image::Store::open(root.path()).unwrap();
        let r = skiff_image::reference::Reference::parse(&format!("127.0.0.1:{}/fuzz:1", reg.port)).unwrap();
        let (tx, rx) = mpsc::channel();
        let root_path = root.path().to_path_buf();
        std::thread::spawn(move || {
            let got = skiff_image::pull::pull(&mut store, &r, &Default::default(), &skiff_image::pull::Quiet)
                .map(|p| p.id)
                .map_err(|e| e.to_string());
            let _ = tx.send(got);
        });
        let got = rx.recv_timeout(Duration::from_secs(120));
        prop_assert!(got.is_ok(), "the pull hung");
        let store = skiff_image::Store::open(&root_path).unwrap();
        let images = store.images().unwrap();
        match got.unwrap() {
            Ok(id) => {
                // Only a pull that got the true bytes may succeed.
                prop_assert_eq!(&id, &want_id);
                prop_assert_eq!(images.len(), 1);
            }
            Err(e) => {
                prop_assert!(!e.is_empty());
                prop_assert!(images.is_empty(), "a failed pull listed {:?}", images.iter().map(|i| &i.id).collect::<Vec<_>>());
            }
        }
        let report = skiff_image::store::check(&store).unwrap();
        prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
