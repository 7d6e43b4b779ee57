//! The container image (`scripts/image.sh`): built FROM scratch with buildah, then checked
//! the only way this machine allows (no container can start here: crun's `setrlimit` is
//! refused). The image is mounted and its own entrypoint, user and environment, read
//! from its config, run under `chroot` until `/readyz` answers; its HEALTHCHECK command
//! then passes the same way. Needs `buildah` and root: skipped with a message without
//! them, required under `CI` (`.ci/run` installs buildah).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::binary::EGRET;

/// Runs `buildah` with its storage under the test's own folder.
struct Buildah {
    storage_conf: PathBuf,
}

impl Buildah {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("buildah")
            .args(args)
            .env("CONTAINERS_STORAGE_CONF", &self.storage_conf)
            .output()
            .expect("run buildah");
        assert!(
            out.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// Whether the machine can build and mount images; says why not when it cannot.
fn can_build_images() -> bool {
    let missing = if Command::new("buildah").arg("--version").output().is_err() {
        Some("buildah is not installed (apt-get install buildah)")
    } else if !nix_is_root() {
        Some("mounting an image and chroot need root")
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => {
            panic!("the image test is required under CI, but {why}")
        }
        Some(why) => {
            eprintln!("skipped: the container image test needs buildah and root: {why}");
            false
        }
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// `GET path` on `addr`: the status and body, or `None` while nothing answers.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// The image's command `argv`, run as the image says: under `chroot` into its root, as
/// its user, with only its environment (and `extra`).
fn in_image(root: &Path, config: &Value, argv: &[String], extra: &[(&str, String)]) -> Command {
    let user = config["User"].as_str().expect("the image names a user");
    let mut command = Command::new(chroot_program());
    command
        .arg(format!("--userspec={user}"))
        .arg(root)
        .args(argv)
        .env_clear()
        .current_dir("/");
    for pair in config["Env"].as_array().into_iter().flatten() {
        let (k, v) = pair.as_str().and_then(|p| p.split_once('=')).expect("K=V");
        command.env(k, v);
    }
    for (k, v) in extra {
        command.env(k, v);
    }
    command
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// `chroot`'s path, found before the environment is cleared for the child.
fn chroot_program() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("chroot"))
        .find(|p| p.is_file())
        .expect("chroot (coreutils) is installed")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_image_built_from_scratch_runs_its_entrypoint_until_readyz_answers() {
    if !can_build_images() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let storage_conf = dir.path().join("storage.conf");
    std::fs::write(
        &storage_conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
            dir.path().display()
        ),
    )
    .expect("storage.conf");
    let buildah = Buildah { storage_conf };
    let tag = format!("localhost/egret-test:{}", std::process::id());

    // The script, as the README runs it, with the binary these tests built.
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/image.sh"))
        .args(["--binary", EGRET, "--tag", &tag])
        .env("CONTAINERS_STORAGE_CONF", &buildah.storage_conf)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/image.sh");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!("built {tag} (")),
        "it says the size: {said}"
    );

    let inspected: Value =
        serde_json::from_str(&buildah.run(&["inspect", "--type", "image", &tag])).expect("json");
    let config = &inspected["Docker"]["config"];
    assert_eq!(config["User"], "10001:10001", "a non-root user: {config}");
    assert_eq!(strings(&config["Entrypoint"]), ["/usr/local/bin/egret"]);
    assert_eq!(strings(&config["Cmd"]), ["serve"]);
    let health = strings(&config["Healthcheck"]["Test"]);
    assert_eq!(health.first().map(String::as_str), Some("CMD"), "{config}");

    let container = buildah.run(&["from", &tag]);
    let root = PathBuf::from(buildah.run(&["mount", &container]));
    assert!(
        root.join("etc/ssl/certs/ca-certificates.crt").is_file(),
        "CA roots"
    );
    assert!(
        !root.join("bin/sh").exists(),
        "from scratch: no shell, nothing but egret and what it links"
    );

    let (proxy, control) = (free_port(), free_port());
    let listen = [
        ("EGRET_PROXY_LISTEN", proxy.to_string()),
        ("EGRET_CONTROL_LISTEN", control.to_string()),
    ];
    let argv: Vec<String> = strings(&config["Entrypoint"])
        .into_iter()
        .chain(strings(&config["Cmd"]))
        .collect();
    let log = std::fs::File::create(dir.path().join("egret.log")).expect("log");
    let egret = Killed(
        in_image(&root, config, &argv, &listen)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("chroot"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        match get(control, "/readyz") {
            Some((200, body)) => break body,
            _ if Instant::now() > deadline => panic!(
                "/readyz never answered: {}",
                std::fs::read_to_string(dir.path().join("egret.log")).unwrap_or_default()
            ),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let ready: Value = serde_json::from_str(&ready).expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["proxy"], proxy.to_string());

    // The HEALTHCHECK command, as a runtime would run it.
    let status = in_image(&root, config, &health[1..], &listen[1..])
        .stdout(Stdio::null())
        .status()
        .expect("healthcheck");
    assert!(status.success(), "the image's HEALTHCHECK passes");

    // egret made its state, as its user, in the volume.
    let key = root.join("var/lib/egret/data/master.key");
    let meta = std::fs::metadata(&key).expect("master key in /var/lib/egret");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (10001, 0o600)
    );
    drop(egret);

    buildah.run(&["umount", &container]);
    buildah.run(&["rm", &container]);
    buildah.run(&["rmi", &tag]);
}
