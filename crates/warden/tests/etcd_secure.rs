//! Warden reaches a real etcd over TLS with a client certificate, and with a user and
//! password (`[cluster.etcd]` `ca`, `cert`, `key`, `user`, `password`): one etcd member on
//! 127.0.0.1 per test, certificates made by the test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One etcd member: `client_url` with the extra flags (TLS), a plain peer URL.
fn etcd(dir: &Path, client_url: &str, extra: &[String]) -> Etcd {
    let peer = format!("http://127.0.0.1:{}", free_port());
    let child = Command::new("etcd")
        .args(["--name", "e1"])
        .arg("--data-dir")
        .arg(dir.join("etcd"))
        .args([
            "--listen-client-urls",
            client_url,
            "--advertise-client-urls",
            client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("e1={peer}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("etcd.log")).expect("log"))
        .spawn()
        .expect("etcd (Debian's etcd-server) runs");
    Etcd(child)
}

fn warden(args: &[&str], config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .arg(config)
        .output()
        .expect("warden");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `warden config push`, retried while etcd starts.
fn push_until(config: &Path, want_ok: bool, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out) = warden(&["config", "push"], config);
        if ok == want_ok && (ok || !out.contains("connection refused")) {
            return out;
        }
        assert!(Instant::now() < deadline, "{what}: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn config(dir: &Path, etcd: &str) -> std::path::PathBuf {
    let path = dir.join("warden.toml");
    std::fs::write(
        &path,
        format!("[cluster]\nname = \"secure\"\ndata_dir = \"data\"\n[cluster.etcd]\n{etcd}\n[[node]]\nname = \"n1\"\n"),
    )
    .expect("config");
    path
}

#[test]
fn tls_with_a_client_certificate() {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    // A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it.
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "warden test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |san: &str, usage: ExtendedKeyUsagePurpose, name: &str| {
        let mut p = CertificateParams::new(vec![san.to_owned()]).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth, "etcd");
    let (client, client_key) = leaf("warden", ExtendedKeyUsagePurpose::ClientAuth, "warden");
    for (name, pem) in [
        ("ca.pem", ca_cert.pem()),
        ("server.pem", server),
        ("server.key", server_key),
        ("client.pem", client),
        ("client.key", client_key),
    ] {
        std::fs::write(d.join(name), pem).expect("write");
    }
    let url = format!("https://127.0.0.1:{}", free_port());
    let p = |f: &str| d.join(f).display().to_string();
    let _etcd = etcd(
        d,
        &url,
        &[
            "--cert-file".into(),
            p("server.pem"),
            "--key-file".into(),
            p("server.key"),
            "--trusted-ca-file".into(),
            p("ca.pem"),
            "--client-cert-auth".into(),
        ],
    );
    let good = config(
        d,
        &format!(
            "endpoints = [\"{url}\"]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            p("ca.pem"),
            p("client.pem"),
            p("client.key")
        ),
    );
    let out = push_until(&good, true, "push over TLS with a client certificate");
    assert!(out.contains("stored in etcd under /warden/secure"), "{out}");
    // Without the client certificate etcd refuses the connection, and Warden says so.
    let no_cert = config(
        d,
        &format!("endpoints = [\"{url}\"]\nca = \"{}\"\n", p("ca.pem")),
    );
    let out = push_until(&no_cert, false, "push without a client certificate");
    assert!(
        out.contains("cannot store the configuration") && out.contains(&url),
        "{out}"
    );
}

#[test]
fn user_and_password() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    let url = format!("http://127.0.0.1:{}", free_port());
    let _etcd = etcd(d, &url, &[]);
    // Auth on: a root user, and Warden's user with the root role.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut c = loop {
            if let Ok(mut c) = etcd_client::Client::connect([url.as_str()], None).await {
                if c.status().await.is_ok() {
                    break c;
                }
            }
            assert!(Instant::now() < deadline, "etcd never answered");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        c.role_add("root").await.expect("role");
        for (user, password) in [("root", "rootpw"), ("warden", "s3cret")] {
            c.user_add(user, password, None).await.expect("user");
            c.user_grant_role(user, "root").await.expect("grant");
        }
        c.auth_enable().await.expect("auth");
    });
    let good = config(
        d,
        &format!("endpoints = [\"{url}\"]\nuser = \"warden\"\npassword = \"s3cret\"\n"),
    );
    let out = push_until(&good, true, "push with a user and password");
    assert!(out.contains("stored in etcd"), "{out}");
    let bad = config(
        d,
        &format!("endpoints = [\"{url}\"]\nuser = \"warden\"\npassword = \"wrong\"\n"),
    );
    let out = push_until(&bad, false, "push with a wrong password");
    assert!(out.contains("authentication failed"), "{out}");
}
