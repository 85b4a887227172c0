//! `vigiactl enroll` and `vigiactl revoke` as an operator runs them.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

use vigia_testkit::TempDir;

fn vigiactl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigiactl"))
        .args(args)
        .output()
        .expect("running vigiactl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn enroll_writes_a_private_seed_and_the_public_key_and_revoke_removes_it() {
    let dir = TempDir::new("vigiactl-enroll");
    let registry = dir.path().join("identities");
    let seed = dir.path().join("web-1.nk");
    let (registry_arg, seed_arg) = (registry.to_str().unwrap(), seed.to_str().unwrap());
    let enroll = || {
        vigiactl(&[
            "enroll",
            "--host",
            "web-1",
            "--registry",
            registry_arg,
            "--out",
            seed_arg,
        ])
    };
    let out = enroll();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seed_text = std::fs::read_to_string(&seed).unwrap();
    let key = nkeys::KeyPair::from_seed(seed_text.trim()).expect("a standard nkey seed");
    assert!(seed_text.starts_with("SU"));
    assert_eq!(
        std::fs::metadata(&seed).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let listed = std::fs::read_to_string(&registry).unwrap();
    assert!(
        listed.contains(&format!("host web-1 {}", key.public_key())),
        "{listed}"
    );
    assert!(
        !listed.contains(seed_text.trim()),
        "the registry holds no secret"
    );

    // Enrolling again rotates: one line, a new key.
    let out = enroll();
    assert!(out.status.success());
    let listed = std::fs::read_to_string(&registry).unwrap();
    assert_eq!(listed.matches("host web-1 ").count(), 1);
    assert!(!listed.contains(&key.public_key()));

    let out = vigiactl(&["revoke", "--host", "web-1", "--registry", registry_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!std::fs::read_to_string(&registry)
        .unwrap()
        .contains("web-1"));
    let out = vigiactl(&["revoke", "--host", "web-1", "--registry", registry_arg]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("host:web-1 is not enrolled"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_bad_name_or_no_role_is_refused_naming_the_flag_and_the_value() {
    let dir = TempDir::new("vigiactl-enroll-bad");
    let registry = dir.path().join("identities");
    let registry_arg = registry.to_str().unwrap();
    let out = vigiactl(&[
        "enroll",
        "--operator",
        "Alice Smith",
        "--registry",
        registry_arg,
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--operator") && stderr.contains("Alice Smith"),
        "{stderr}"
    );
    let out = vigiactl(&["enroll", "--registry", registry_arg]);
    assert!(!out.status.success());
    assert!(!registry.exists());
}

#[test]
fn a_host_enrolled_by_its_host_name_gets_the_token_its_publisher_publishes_as() {
    let dir = TempDir::new("vigiactl-enroll-hostname");
    let registry = dir.path().join("identities");
    let seed = dir.path().join("seed.nk");
    let (registry_arg, seed_arg) = (registry.to_str().unwrap(), seed.to_str().unwrap());
    let out = vigiactl(&[
        "enroll",
        "--host",
        "Web-1.c.My-Project.internal",
        "--registry",
        registry_arg,
        "--out",
        seed_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = std::fs::read_to_string(&registry).unwrap();
    assert!(listed.contains("\nhost web-1 U"), "{listed}");
    let out = vigiactl(&["revoke", "--host", "WEB-1", "--registry", registry_arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Operators' names are not rewritten: a name that is no token is refused.
    let out = vigiactl(&[
        "enroll",
        "--operator",
        "Alice.Smith",
        "--registry",
        registry_arg,
        "--out",
        seed_arg,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--operator"),
        "{}",
        text(&out.stderr)
    );
}
