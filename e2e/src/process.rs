//! A peer process with its own log file, stopped when dropped, and never outliving the test process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use irsa_testing::wait::{Check, Wait};

/// A running peer.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

/// Keeps the program as a child of a small shell that stops it when asked (SIGTERM) or when the test process
/// is gone: a crashed or SIGKILLed test run must not leave an apiserver behind. A program still running
/// [`GRACE_TENTHS`] tenths of a second after SIGTERM gets SIGKILL (a kube-apiserver draining its watches
/// outlived the guard otherwise). No `unsafe` pre-exec needed.
const GUARD: &str = r#"parent=$1; grace=$2; shift 2
"$@" & child=$!
stop_child() {
  kill -TERM $child 2>/dev/null
  i=0; while [ $i -lt "$grace" ] && kill -0 $child 2>/dev/null; do sleep 0.1; i=$((i+1)); done
  kill -KILL $child 2>/dev/null
  wait $child
}
trap 'stop_child; exit 0' TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.3; done
stop_child"#;

/// How long the guard waits after SIGTERM before SIGKILL, in tenths of a second.
const GRACE_TENTHS: u32 = 50;

impl Process {
    /// Starts `program args` with extra `env`, output to `<logs>/<name>.log`.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let log = logs.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg("guard")
            .arg(std::process::id().to_string())
            .arg(GRACE_TENTHS.to_string())
            .arg(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// The peer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The PID of the program itself (the guard shell's child), for reading its `/proc` entries.
    pub fn program_pid(&self) -> Option<u32> {
        let guard = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{guard}/task/{guard}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops it (SIGTERM, then SIGKILL after a few seconds) and waits.
    pub fn stop(&mut self) {
        if self.exited() {
            return;
        }
        let program = self.program_pid();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        // The guard itself escalates to SIGKILL after its grace; this is the backstop if the guard is stuck.
        let grace = Duration::from_millis(u64::from(GRACE_TENTHS) * 100 + 3_000);
        let exited = Wait::up_to(grace).until_blocking("it exits on SIGTERM", || {
            Check::ready_if(self.exited(), || "still running".to_owned())
        });
        if exited.is_ok() {
            return;
        }
        if let Some(pid) = program {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the program at once (SIGKILL), as a crash would, and waits for its guard to notice.
    pub fn kill(&mut self) {
        if let Some(pid) = self.program_pid() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        // The guard sees its child gone within its 0.3 s poll and exits; `stop` is the backstop.
        let exited = Wait::up_to(Duration::from_secs(3)).until_blocking("the guard exits", || {
            Check::ready_if(self.exited(), || "still running".to_owned())
        });
        if exited.is_err() {
            self.stop();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free TCP port on 127.0.0.1 (bound then released; the harness binds it again at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_ignores_sigterm_is_killed_when_stopped() {
        let logs = tempfile::tempdir().unwrap();
        let stubborn = [
            "-c".to_owned(),
            "trap '' TERM; while :; do sleep 0.1; done".to_owned(),
        ];
        let mut process = Process::start(
            "stubborn",
            Path::new("/bin/sh"),
            &stubborn,
            &[],
            logs.path(),
        )
        .unwrap();
        let program = Wait::up_to(Duration::from_secs(5))
            .until_blocking("the program starts", || match process.program_pid() {
                Some(pid) => Check::Ready(pid),
                None => Check::NotYet("no child yet".to_owned()),
            })
            .unwrap();
        process.stop();
        let alive = std::path::Path::new(&format!("/proc/{program}")).exists()
            && !std::fs::read_to_string(format!("/proc/{program}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "the program {program} outlived stop()");
    }
}
