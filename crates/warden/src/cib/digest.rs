//! Pacemaker's operation digests (`op-digest`, `op-restart-digest`, `op-secure-digest` in a
//! CIB's status): an MD5 over the parameters an operation ran with, as Pacemaker's
//! `calculate_operation_digest` writes them (one XML element, attributes sorted by name). The
//! importer compares them with the configuration's parameters to tell which running resources
//! were started with another definition, as Pacemaker's scheduler does.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

/// What Pacemaker hashes of a resource's definition: its parameters and each one-shot
/// operation's own (its `instance_attributes`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Definition {
    pub params: BTreeMap<String, String>,
    /// By operation name (one-shot operations: start, promote, ...).
    pub ops: BTreeMap<String, BTreeMap<String, String>>,
    /// A fence device (Pacemaker leaves its own `pcmk_*` parameters out of old secure digests).
    pub stonith: bool,
    /// Its agent as written: class, provider, type (the primitive's, else its template's).
    pub agent: [Option<String>; 3],
}

/// How a running resource's recorded operations compare with its definition now, as
/// Pacemaker's `pcmk__check_action_config` decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    /// Nothing changed (or only recurring operations, which are rescheduled).
    None,
    /// Only parameters the agent reloads changed.
    Reload,
    /// Restarted with the definition now.
    Restart,
}

/// One recorded operation, as the status holds it.
pub(crate) struct Recorded<'a> {
    pub task: &'a str,
    pub interval_ms: u64,
    pub digest: Option<&'a str>,
    pub restart_digest: Option<&'a str>,
    /// `op-force-restart`: the parameters the agent cannot reload (space-separated, padded).
    pub force_restart: Option<&'a str>,
    pub secure_digest: Option<&'a str>,
    /// `op-secure-params`: the parameters left out of the secure digest.
    pub secure_params: Option<&'a str>,
    /// The feature set of the Pacemaker that recorded it.
    pub feature_set: Option<&'a str>,
}

fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Pacemaker's digest of a parameter set: MD5 of ` <parameters a="1" b="2"/>\n`.
pub(crate) fn digest(params: &BTreeMap<String, String>) -> String {
    let mut text = String::from(" <parameters");
    for (k, v) in params {
        text.push(' ');
        text.push_str(k);
        text.push_str("=\"");
        escape(v, &mut text);
        text.push('"');
    }
    text.push_str("/>\n");
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a padded, space-separated list (` a b `) names `k`.
fn listed(list: &str, k: &str) -> bool {
    list.split_ascii_whitespace().any(|x| x == k)
}

/// Feature set `v` is older than `major.minor.patch`.
pub(crate) fn older(v: &str, than: (u32, u32, u32)) -> bool {
    let mut parts = v.split('.').map(|p| p.trim().parse::<u32>().unwrap_or(0));
    let v = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    v < than
}

/// Parameters Pacemaker adds to fence devices itself (`pcmk_stonith_param`).
fn fence_param(k: &str) -> bool {
    k == "provides" || k == "stonith-timeout" || k.starts_with("pcmk_")
}

impl Definition {
    /// What one recorded operation of a running resource says, as Pacemaker's
    /// `rsc_action_digest_cmp` and `pcmk__check_action_config` read it (with
    /// `crm_simulate`'s sanitized flag: a change of secret parameters only is none).
    pub(crate) fn compare(&self, op: &Recorded<'_>) -> Change {
        if op.interval_ms > 0 {
            // A recurring operation with other parameters is rescheduled (whatever digest
            // differs), one no longer configured cancelled: nothing more.
            return Change::None;
        }
        let own = self.ops.get(op.task);
        // The resource's parameters, then the operation's own (which win).
        let mut all = self.params.clone();
        if let Some(extra) = own {
            all.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // An operation with its own parameters restarts rather than reloads.
        let extra_params = own.is_some_and(|e| !e.is_empty());
        let restart_changed = op.restart_digest.is_some_and(|recorded| {
            let kept: BTreeMap<String, String> = all
                .iter()
                .filter(|(k, _)| op.force_restart.is_none_or(|l| listed(l, k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            digest(&kept) != recorded
        });
        let verdict = if restart_changed {
            Change::Restart
        } else {
            match op.digest {
                Some(d) if d == digest(&all) => return Change::None,
                Some(_) if extra_params => Change::Restart,
                // Changed or unknown: a reload where the agent reloads, a restart where it
                // does not.
                _ if op.restart_digest.is_some() => Change::Reload,
                _ => Change::Restart,
            }
        };
        if self.only_secrets_changed(op, &all) {
            return Change::None;
        }
        verdict
    }

    /// The secure digest (without the parameters the CIB's copy hides) matches: only
    /// hidden parameters changed (`only_sanitized_changed`).
    fn only_secrets_changed(&self, op: &Recorded<'_>, all: &BTreeMap<String, String>) -> bool {
        let Some(recorded) = op.secure_digest else {
            return false;
        };
        let secret = |k: &str| op.secure_params.is_some_and(|l| listed(l, k));
        let old = op.feature_set.is_none_or(|v| older(v, (3, 16, 0)));
        let secure: BTreeMap<String, String> = if old {
            self.params
                .iter()
                .filter(|(k, _)| !(secret(k) || self.stonith && fence_param(k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            all.iter()
                .filter(|(k, _)| !secret(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        digest(&secure) == recorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn digests_are_pacemakers() {
        // Recorded by Pacemaker in its scheduler corpus (params-1: `ip=127.0.0.20` started
        // with other parameters; an empty set's digest is every restart digest of nothing).
        assert_eq!(digest(&map(&[])), "f2317cad3d54cec5d7d7aa7d0bf35cf8");
        assert_eq!(
            digest(&map(&[("ip", "127.0.0.20")])),
            "c85a9e95c9e9147a613b270c79b58db6"
        );
        // Sorted by name, escaped as XML.
        assert_eq!(
            digest(&map(&[("b", "x\"<&"), ("a", "1")])),
            digest(&map(&[("a", "1"), ("b", "x\"<&")]))
        );
    }

    fn recorded<'a>(task: &'a str, interval_ms: u64, digest: &'a str) -> Recorded<'a> {
        Recorded {
            task,
            interval_ms,
            digest: Some(digest),
            restart_digest: None,
            force_restart: None,
            secure_digest: None,
            secure_params: None,
            feature_set: Some("3.0.14"),
        }
    }

    #[test]
    fn a_start_with_other_parameters_restarts_or_reloads_as_pacemaker_decides() {
        let def = Definition {
            params: map(&[("ip", "127.0.0.20")]),
            ..Default::default()
        };
        let same = digest(&def.params);
        let other = digest(&map(&[("ip", "127.0.0.21")]));
        assert_eq!(def.compare(&recorded("start", 0, &same)), Change::None);
        assert_eq!(def.compare(&recorded("start", 0, &other)), Change::Restart);
        // A probe that found it running counts as its start.
        assert_eq!(
            def.compare(&recorded("monitor", 0, &other)),
            Change::Restart
        );
        // The agent reloads (a restart digest is recorded) and the parameters it cannot
        // reload (none here) are the same: a reload.
        let empty = digest(&map(&[]));
        let reload = Recorded {
            restart_digest: Some(&empty),
            force_restart: Some(" "),
            ..recorded("start", 0, &other)
        };
        assert_eq!(def.compare(&reload), Change::Reload);
        // ... unless one of those changed.
        let fixed = Recorded {
            force_restart: Some(" ip "),
            ..reload
        };
        assert_eq!(def.compare(&fixed), Change::Restart);
        // A recurring monitor with other parameters is only rescheduled; one no longer
        // configured is cancelled.
        assert_eq!(
            def.compare(&recorded("monitor", 10_000, &other)),
            Change::None
        );
        assert_eq!(
            def.compare(&recorded("monitor", 5_000, &other)),
            Change::None
        );
        // Only a secret parameter changed (the secure digest, without it, matches).
        let def = Definition {
            params: map(&[("ip", "127.0.0.20"), ("passwd", "new")]),
            ..Default::default()
        };
        let secure = digest(&map(&[("ip", "127.0.0.20")]));
        let hidden = Recorded {
            secure_digest: Some(&secure),
            secure_params: Some(" passwd "),
            ..recorded("start", 0, &other)
        };
        assert_eq!(def.compare(&hidden), Change::None);
    }
}
