//! A transition in progress: which actions wait, run, succeeded or failed, and which may start
//! now. The one record of progress shared by the daemon's core (real agents) and
//! [`crate::execute`] (simulated results).

use crate::schedule::{Action, ActionId, Transition};

/// Where one action of a transition stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Waiting for its dependencies (or for a launch).
    Pending,
    InFlight,
    Done,
    Failed,
}

/// A transition and the step of each of its actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub transition: Transition,
    steps: Vec<Step>,
    /// No further action is launched (a failure, or something happened that makes the
    /// transition stale); those in flight still finish.
    aborted: bool,
    /// A failure does not abort: only what depends on it is skipped (`warden simulate`).
    keep_going: bool,
}

impl Progress {
    pub fn new(transition: Transition) -> Progress {
        let steps = vec![Step::Pending; transition.actions.len()];
        Progress {
            transition,
            steps,
            aborted: false,
            keep_going: false,
        }
    }

    /// A progress where a failure skips only what depends on it, as [`crate::execute`] runs
    /// a whole transition against chosen results.
    pub fn keep_going(transition: Transition) -> Progress {
        Progress {
            keep_going: true,
            ..Progress::new(transition)
        }
    }

    pub fn step(&self, id: ActionId) -> Option<Step> {
        self.steps.get(id).copied()
    }

    pub fn action(&self, id: ActionId) -> Option<&Action> {
        self.transition.actions.get(id)
    }

    /// The pending actions whose dependencies all succeeded, now in flight (none once
    /// aborted). An action whose dependency failed never becomes ready.
    pub fn launch_ready(&mut self) -> Vec<Action> {
        if self.aborted {
            return Vec::new();
        }
        let mut out = Vec::new();
        for a in &self.transition.actions {
            if self.steps[a.id] == Step::Pending
                && a.deps.iter().all(|&d| self.steps[d] == Step::Done)
            {
                self.steps[a.id] = Step::InFlight;
                out.push(a.clone());
            }
        }
        out
    }

    /// Records the end of an action in flight; a failure aborts the rest. False when the
    /// action was not in flight (a stale or duplicate result), which changes nothing.
    pub fn finish(&mut self, id: ActionId, ok: bool) -> bool {
        match self.steps.get_mut(id) {
            Some(s @ Step::InFlight) => {
                *s = if ok { Step::Done } else { Step::Failed };
                if !ok && !self.keep_going {
                    self.aborted = true;
                }
                true
            }
            _ => false,
        }
    }

    /// Launches nothing more.
    pub fn abort(&mut self) {
        self.aborted = true;
    }

    pub fn aborted(&self) -> bool {
        self.aborted
    }

    pub fn in_flight(&self) -> usize {
        self.steps.iter().filter(|s| **s == Step::InFlight).count()
    }

    /// Nothing runs and nothing more will be launched: the transition is over.
    pub fn is_over(&self) -> bool {
        self.in_flight() == 0
            && (self.aborted
                || !self.transition.actions.iter().any(|a| {
                    self.steps[a.id] == Step::Pending
                        && a.deps.iter().all(|&d| self.steps[d] == Step::Done)
                }))
    }

    /// Whether every action succeeded.
    pub fn succeeded(&self) -> bool {
        self.steps.iter().all(|s| *s == Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ActionKind;

    fn t(deps: &[&[usize]]) -> Transition {
        Transition {
            actions: deps
                .iter()
                .enumerate()
                .map(|(id, d)| Action {
                    id,
                    kind: ActionKind::Fence {
                        node: format!("n{id}"),
                        reason: String::new(),
                    },
                    deps: d.to_vec(),
                })
                .collect(),
            ..Transition::default()
        }
    }

    fn ids(v: Vec<Action>) -> Vec<usize> {
        v.into_iter().map(|a| a.id).collect()
    }

    #[test]
    fn actions_launch_as_their_dependencies_succeed() {
        // 0 and 1 first; 2 after both; 3 after 2.
        let mut p = Progress::new(t(&[&[], &[], &[0, 1], &[2]]));
        assert_eq!(ids(p.launch_ready()), [0, 1]);
        assert!(p.launch_ready().is_empty(), "in flight already");
        assert!(p.finish(0, true));
        assert!(p.launch_ready().is_empty(), "2 waits for 1");
        assert!(p.finish(1, true));
        assert_eq!(ids(p.launch_ready()), [2]);
        assert!(!p.finish(3, true), "3 was never launched");
        assert!(p.finish(2, true));
        assert_eq!(ids(p.launch_ready()), [3]);
        assert!(!p.is_over());
        assert!(p.finish(3, true));
        assert!(p.is_over() && p.succeeded());
    }

    #[test]
    fn a_failure_lets_what_runs_finish_and_launches_nothing_more() {
        let mut p = Progress::new(t(&[&[], &[], &[0], &[1]]));
        assert_eq!(ids(p.launch_ready()), [0, 1]);
        assert!(p.finish(0, false));
        assert!(!p.is_over(), "1 still runs");
        assert!(p.finish(1, true));
        assert!(p.launch_ready().is_empty(), "aborted: 3 is not launched");
        assert!(p.is_over() && !p.succeeded());
        assert!(!p.finish(0, true), "a duplicate result changes nothing");
        assert_eq!(p.step(0), Some(Step::Failed));
        // Keeping going: only what depends on the failure is skipped.
        let mut p = Progress::keep_going(t(&[&[], &[], &[0], &[1]]));
        assert_eq!(ids(p.launch_ready()), [0, 1]);
        assert!(p.finish(0, false) && p.finish(1, true));
        assert_eq!(ids(p.launch_ready()), [3]);
        assert!(p.finish(3, true));
        assert!(p.is_over());
        assert_eq!(p.step(2), Some(Step::Pending), "never launched");
    }
}
