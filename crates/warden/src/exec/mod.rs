//! Running resource agents: OCF agents (`ocf`), with the environment, time-out and exit-reason
//! rules of the OCF standard as Pacemaker applies them, and their `meta-data`.

pub mod metadata;
pub mod ocf;

use std::time::Duration;

/// What one agent invocation produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentResult {
    /// The OCF return code (a time-out or a signal death is rc 1).
    pub rc: i32,
    /// The agent's `ocf-exit-reason:` line, or the executor's reason ("timed out after 20s").
    pub exit_reason: String,
    /// Captured output, cut at [`OUTPUT_LIMIT`] bytes each.
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
    pub timed_out: bool,
}

/// How much of an agent's stdout and of its stderr is kept.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How long an exit reason may be (Pacemaker keeps 128 characters; we keep a little more).
pub const EXIT_REASON_LIMIT: usize = 256;

/// The prefix that marks an exit reason on an agent's stderr.
pub const EXIT_REASON_PREFIX: &str = "ocf-exit-reason:";

/// The exit reason in an agent's stderr: the last line with the prefix, trimmed and bounded.
pub fn exit_reason(stderr: &str) -> String {
    let Some(line) = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(EXIT_REASON_PREFIX))
        .next_back()
    else {
        return String::new();
    };
    let line = line.trim();
    match line.char_indices().nth(EXIT_REASON_LIMIT) {
        Some((cut, _)) => line[..cut].to_owned(),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reason_is_the_last_prefixed_line() {
        assert_eq!(
            exit_reason("noise\nocf-exit-reason:first\nocf-exit-reason: second \nmore"),
            "second"
        );
        assert_eq!(exit_reason("no reason here"), "");
        assert_eq!(
            exit_reason(&format!("ocf-exit-reason:{}", "é".repeat(300)))
                .chars()
                .count(),
            EXIT_REASON_LIMIT
        );
    }
}
