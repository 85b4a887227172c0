use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a binary of this workspace, built by `cargo test` / `cargo
/// build` into the same target directory as the running test.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A child process that is killed when dropped.
pub struct Child {
    inner: std::process::Child,
    pub name: String,
}

impl Child {
    /// Starts `program` with `args` and `env`; stdout and stderr go to
    /// the test's own stderr, prefixed by nothing (cargo captures them).
    pub fn spawn(program: impl Into<PathBuf>, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_with_log(program, args, env, None)
    }

    /// Like [`Child::spawn`], with stdout and stderr appended to `log`
    /// (servers whose chatter would bury the test's own output).
    pub fn spawn_with_log(
        program: impl Into<PathBuf>,
        args: &[&str],
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Self {
        let program = program.into();
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut command = Command::new(&program);
        command.args(args).stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        if let Some(log) = log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
            let copy = file.try_clone().expect("duplicating a log file handle");
            command.stdout(copy).stderr(file);
        }
        let inner = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        Self { inner, name }
    }

    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    /// Sends `signal` (e.g. "TERM", "KILL", "STOP", "CONT") with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits up to `within` for the process to exit; its exit code, or
    /// None if it is still running.
    pub fn wait_for_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.inner.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM");
        self.wait_for_exit(within)
    }

    pub fn kill(&mut self) {
        let _ = self.inner.kill();
        let _ = self.inner.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}
