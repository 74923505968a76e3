//! Layers unpacked for overlayfs: whiteouts, opaque directories, links,
//! owners, modes, xattrs and devices as the tar says; and hostile layers
//! (each way a tar entry could reach outside its directory) refused or kept
//! inside, with nothing written outside. Runs as root (owners, devices).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use skiff_image::manifest::Compression;
use skiff_image::unpack::{unpack, Options};

/// A tar entry: (name bytes as written, kind, body or link target).
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Char(&'a str, u32, u32),
}

/// Writes the name straight into the header (the tar crate's own setters
/// refuse `..`, which is the point here).
fn raw_name(h: &mut tar::Header, name: &str) {
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

fn raw_link(h: &mut tar::Header, target: &str) {
    let field = &mut h.as_old_mut().linkname;
    field.fill(0);
    field[..target.len()].copy_from_slice(target.as_bytes());
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (name, body): (&str, &[u8]) = match e {
            E::File(n, body, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(body.len() as u64);
                (n, body)
            }
            E::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                (n, &[])
            }
            E::Sym(n, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                raw_link(&mut h, t);
                (n, &[])
            }
            E::Hard(n, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                raw_link(&mut h, t);
                (n, &[])
            }
            E::Char(n, maj, min) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                (n, &[])
            }
        };
        raw_name(&mut h, name);
        h.set_cksum();
        b.append(&h, body).unwrap();
    }
    b.into_inner().unwrap()
}

struct Scene {
    _tmp: tempfile::TempDir,
    layer: std::path::PathBuf,
    outside: std::path::PathBuf,
}

/// A layer directory and, beside it, an "outside" directory that must stay
/// untouched (its path is what hostile entries aim at).
fn scene() -> Scene {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    let outside = tmp.path().join("outside");
    fs::create_dir(&layer).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), "original").unwrap();
    Scene {
        _tmp: tmp,
        layer,
        outside,
    }
}

fn untouched(s: &Scene) {
    let names: Vec<_> = fs::read_dir(&s.outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "something was written outside the layer: {names:?}"
    );
    assert_eq!(
        fs::read_to_string(s.outside.join("victim")).unwrap(),
        "original"
    );
}

fn run(s: &Scene, entries: &[E]) -> skiff_image::Result<skiff_image::unpack::Unpacked> {
    unpack(
        layer(entries).as_slice(),
        Compression::None,
        &s.layer,
        Options::default(),
    )
}

#[test]
fn dot_dot_names_are_refused() {
    let s = scene();
    let e = run(&s, &[E::File("../outside/victim", b"pwned", 0o644)]).unwrap_err();
    assert!(e.to_string().contains("\"..\""), "{e}");
    let e = run(&s, &[E::File("a/../../outside/new", b"pwned", 0o644)]).unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    untouched(&s);
}

#[test]
fn absolute_names_land_inside_the_layer() {
    let s = scene();
    let abs = format!("{}/victim", s.outside.display());
    run(&s, &[E::File(&abs, b"inside", 0o644)]).unwrap();
    let inside = s.layer.join(abs.trim_start_matches('/'));
    assert_eq!(fs::read_to_string(inside).unwrap(), "inside");
    untouched(&s);
}

#[test]
fn a_symlinked_directory_is_followed_only_inside_the_layer() {
    let s = scene();
    // evil -> the outside dir by its absolute path, climb -> far above;
    // then files written "through" them. Where the layer has the path,
    // the link resolves inside it; where not, the entry is refused.
    let target = s.outside.display().to_string();
    let e = run(
        &s,
        &[
            E::Sym("evil", &target),
            E::File("evil/victim", b"pwned", 0o644),
        ],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("symlink to a directory this layer does not have"),
        "{e}"
    );
    let s = scene();
    let target = s.outside.display().to_string();
    let mirror = format!("{}/", target.trim_start_matches('/'));
    run(
        &s,
        &[
            E::Dir(&mirror),
            E::Sym("evil", &target),
            E::File("evil/victim", b"pwned", 0o644),
            E::Sym("climb", "../../../../../../.."),
            E::File("climb/x", b"pwned", 0o644),
        ],
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(s.layer.join(&mirror).join("victim")).unwrap(),
        "pwned"
    );
    assert_eq!(fs::read_to_string(s.layer.join("x")).unwrap(), "pwned");
    assert_eq!(
        fs::read_link(s.layer.join("evil"))
            .unwrap()
            .display()
            .to_string(),
        target
    );
    untouched(&s);
}

#[test]
fn a_symlink_at_the_name_is_replaced_not_followed() {
    let s = scene();
    let target = format!("{}/victim", s.outside.display());
    run(&s, &[E::Sym("f", &target), E::File("f", b"new", 0o644)]).unwrap();
    assert!(fs::symlink_metadata(s.layer.join("f")).unwrap().is_file());
    untouched(&s);
}

#[test]
fn hard_links_reach_only_files_of_the_layer() {
    let s = scene();
    let e = run(&s, &[E::Hard("h", "../outside/victim")]).unwrap_err();
    assert!(e.to_string().contains("\"..\""), "{e}");
    // An absolute target is the layer's own path, which does not exist.
    let abs = format!("{}/victim", s.outside.display());
    let e = run(&s, &[E::Hard("h2", &abs)]).unwrap_err();
    assert!(
        e.to_string().contains("must be a file of this layer"),
        "{e}"
    );
    // Through a symlinked directory: resolved inside the layer too.
    let e = run(
        &s,
        &[
            E::Sym("d", &s.outside.display().to_string()),
            E::Hard("h3", "d/victim"),
        ],
    )
    .unwrap_err();
    assert!(e.to_string().contains("hard link"), "{e}");
    // A link to a symlink links the symlink, not what it names.
    run(&s, &[E::Sym("s", &abs), E::Hard("h4", "s")]).unwrap();
    assert!(fs::symlink_metadata(s.layer.join("h4"))
        .unwrap()
        .file_type()
        .is_symlink());
    untouched(&s);
}

#[test]
fn whiteouts_opaque_dirs_links_and_devices_take_overlay_form() {
    let s = scene();
    let u = run(
        &s,
        &[
            E::Dir("etc/"),
            E::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644),
            E::File("bin/su", b"#!", 0o4755),
            E::Hard("bin/su2", "bin/su"),
            E::Sym("bin/sh", "busybox"),
            E::File("gone/.wh.old", b"", 0o644),
            E::File("d/.wh..wh..opq", b"", 0o644),
            E::File(".wh..wh.plnk", b"", 0o644),
            E::Char("dev/null", 1, 3),
        ],
    )
    .unwrap();
    let l = &s.layer;
    let wh = fs::symlink_metadata(l.join("gone/old")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout"
    );
    let mut v = [0u8; 8];
    let n = rustix::fs::getxattr(l.join("d"), "trusted.overlay.opaque", &mut v).unwrap();
    assert_eq!(&v[..n], b"y");
    assert!(!l.join(".wh..wh.plnk").exists() && !l.join("d/.wh..wh..opq").exists());
    let su = fs::metadata(l.join("bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(
        su.ino(),
        fs::metadata(l.join("bin/su2")).unwrap().ino(),
        "hard link"
    );
    assert_eq!(
        fs::read_link(l.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    let null = fs::metadata(l.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device() && null.rdev() == rustix::fs::makedev(1, 3));
    assert_eq!(su.mtime(), 1_600_000_000);
    assert_eq!(
        fs::metadata(l.join("etc")).unwrap().mtime(),
        1_600_000_000,
        "directory times set last"
    );
    assert_eq!(u.size, 26 + 2);
    untouched(&s);
}

#[test]
fn overlay_xattrs_in_a_layer_are_not_taken() {
    let s = scene();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
        ("SCHILY.xattr.user.note", &b"kept"[..]),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_path("d").unwrap();
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let bytes = b.into_inner().unwrap();
    unpack(
        bytes.as_slice(),
        Compression::None,
        &s.layer,
        Options::default(),
    )
    .unwrap();
    let mut v = [0u8; 16];
    assert!(rustix::fs::getxattr(s.layer.join("d"), "trusted.overlay.redirect", &mut v).is_err());
    let n = rustix::fs::getxattr(s.layer.join("d"), "user.note", &mut v).unwrap();
    assert_eq!(&v[..n], b"kept");
}

#[test]
fn the_diff_id_is_the_whole_uncompressed_stream() {
    let s = scene();
    let bytes = layer(&[E::File("a", b"hello", 0o644)]);
    let mut gz = flate2_free_gzip(&bytes);
    let u = unpack(
        gz.as_slice(),
        Compression::Gzip,
        &s.layer,
        Options::default(),
    )
    .unwrap();
    assert_eq!(u.diff_id, skiff_image::digest::of(&bytes));
    gz.truncate(gz.len() / 2);
    let s2 = scene();
    assert!(unpack(
        gz.as_slice(),
        Compression::Gzip,
        &s2.layer,
        Options::default()
    )
    .is_err());
    let _ = Path::new("/");
}

/// gzip by the system's gzip (the test does not need its own compressor).
fn flate2_free_gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child.wait_with_output().unwrap().stdout
}
