//! OCF return codes and the recovery class each one calls for (the failure semantics table of docs/config.md).

/// `OCF_SUCCESS`.
pub const OK: i32 = 0;
pub const ERR_GENERIC: i32 = 1;
pub const ERR_ARGS: i32 = 2;
pub const ERR_UNIMPLEMENTED: i32 = 3;
pub const ERR_PERM: i32 = 4;
pub const ERR_INSTALLED: i32 = 5;
pub const ERR_CONFIGURED: i32 = 6;
pub const NOT_RUNNING: i32 = 7;
pub const RUNNING_PROMOTED: i32 = 8;
pub const FAILED_PROMOTED: i32 = 9;
pub const DEGRADED: i32 = 190;
pub const DEGRADED_PROMOTED: i32 = 191;

/// How far a failure reaches (Pacemaker's recovery types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// Transient: recover on the same node, per `on_fail`.
    Soft,
    /// Specific to this node: ban the resource from it and recover elsewhere.
    Hard,
    /// Common to every node (bad configuration): stop everywhere until cleanup.
    Fatal,
}

/// Whether the executor ran the agent at all (Pacemaker's execution status, of which Warden
/// keeps the one the scheduler treats apart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ExecStatus {
    /// The agent ran (or the executor gave up on it: a time-out is rc 1); `rc` is its result.
    #[default]
    Done,
    /// The executor found no agent to run here (no such file, no such systemd unit): rc 5,
    /// a hard error that `on_fail = "ignore"` cannot ignore and `failure_timeout` never
    /// expires (Pacemaker's `PCMK_EXEC_NOT_INSTALLED`). An agent that runs and answers rc 5
    /// itself is [`ExecStatus::Done`].
    NotInstalled,
}

impl ExecStatus {
    pub fn is_done(&self) -> bool {
        *self == ExecStatus::Done
    }

    /// Its name on the wire and in histories.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecStatus::Done => "done",
            ExecStatus::NotInstalled => "not_installed",
        }
    }

    pub fn parse(s: &str) -> Option<ExecStatus> {
        match s {
            "done" => Some(ExecStatus::Done),
            "not_installed" => Some(ExecStatus::NotInstalled),
            _ => None,
        }
    }
}

/// The recovery class of a failed result. `recurring_monitor` matters only for rc 3, which
/// Pacemaker 2.1 treats as soft (restart in place) for a recurring monitor.
pub fn class(rc: i32, recurring_monitor: bool) -> FailureClass {
    match rc {
        ERR_UNIMPLEMENTED if recurring_monitor => FailureClass::Soft,
        ERR_ARGS | ERR_UNIMPLEMENTED | ERR_PERM | ERR_INSTALLED => FailureClass::Hard,
        ERR_CONFIGURED => FailureClass::Fatal,
        _ => FailureClass::Soft,
    }
}

/// The OCF name of a return code, for operators.
pub fn name(rc: i32) -> &'static str {
    match rc {
        OK => "ok",
        ERR_GENERIC => "error",
        ERR_ARGS => "invalid parameter",
        ERR_UNIMPLEMENTED => "unimplemented feature",
        ERR_PERM => "insufficient privileges",
        ERR_INSTALLED => "not installed",
        ERR_CONFIGURED => "not configured",
        NOT_RUNNING => "not running",
        RUNNING_PROMOTED => "promoted",
        FAILED_PROMOTED => "promoted (failed)",
        DEGRADED => "degraded",
        DEGRADED_PROMOTED => "promoted (degraded)",
        _ => "custom error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_table() {
        use FailureClass::*;
        let rows = [
            (ERR_GENERIC, false, Soft),
            (ERR_ARGS, false, Hard),
            (ERR_UNIMPLEMENTED, false, Hard),
            (ERR_UNIMPLEMENTED, true, Soft),
            (ERR_PERM, false, Hard),
            (ERR_INSTALLED, false, Hard),
            (ERR_CONFIGURED, false, Fatal),
            (NOT_RUNNING, true, Soft),
            (RUNNING_PROMOTED, true, Soft),
            (FAILED_PROMOTED, true, Soft),
            (42, false, Soft),
            (-1, true, Soft),
        ];
        for (rc, recurring, want) in rows {
            assert_eq!(class(rc, recurring), want, "rc {rc} recurring={recurring}");
        }
    }
}
