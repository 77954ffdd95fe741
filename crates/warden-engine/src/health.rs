//! Health of an upstream's peers: lua-resty-upstream-healthcheck's
//! hysteresis, pure. Counts are strictly consecutive; a peer turns DOWN after `fall` failures in
//! a row and UP after `rise` successes in a row. A peer starts `Unknown`, which routes as up: its
//! first success makes it `Up` without changing where traffic goes, so that is not counted as a
//! change; from `Unknown` (as from `Up`) it takes `fall` failures to turn `Down`. Every change of
//! routing state bumps the upstream's version.

use std::fmt;

/// What is known of a peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// No check has succeeded yet, and fewer than `fall` have failed: routed as up.
    #[default]
    Unknown,
    Up,
    Down,
}

impl PeerState {
    /// Whether traffic may go there.
    pub fn routable(self) -> bool {
        self != PeerState::Down
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerState::Unknown => "UNKNOWN",
            PeerState::Up => "UP",
            PeerState::Down => "DOWN",
        })
    }
}

/// The hysteresis of a check (lua-resty's defaults: fall 5, rise 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    pub fall: u32,
    pub rise: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis { fall: 5, rise: 2 }
    }
}

/// One peer's health: its state and its consecutive counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerHealth {
    pub state: PeerState,
    /// Successes in a row (reset by a failure).
    pub successes: u32,
    /// Failures in a row (reset by a success).
    pub failures: u32,
}

/// A change of a peer's routing state, for logs and events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthChange {
    pub from: PeerState,
    pub to: PeerState,
    /// The consecutive results that made it ("turned down after 3 failure(s)").
    pub after: u32,
    /// Whether routing changed (so the upstream's version goes up).
    pub routing_changed: bool,
}

impl PeerHealth {
    /// Records one check result; returns the change it caused, if any.
    pub fn record(&mut self, ok: bool, h: Hysteresis) -> Option<HealthChange> {
        let from = self.state;
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            let to_up = match from {
                PeerState::Up => false,
                PeerState::Unknown => true,
                PeerState::Down => self.successes >= h.rise.max(1),
            };
            if to_up {
                self.state = PeerState::Up;
                return Some(HealthChange {
                    from,
                    to: PeerState::Up,
                    after: self.successes,
                    routing_changed: from == PeerState::Down,
                });
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if from != PeerState::Down && self.failures >= h.fall.max(1) {
                self.state = PeerState::Down;
                return Some(HealthChange {
                    from,
                    to: PeerState::Down,
                    after: self.failures,
                    routing_changed: true,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a sequence of results ('+' success, '-' failure) and returns the state after each
    /// and the number of routing changes.
    fn run(seq: &str, fall: u32, rise: u32) -> (String, u32) {
        let mut p = PeerHealth::default();
        let mut version = 0;
        let mut states = String::new();
        for c in seq.chars() {
            if let Some(ch) = p.record(c == '+', Hysteresis { fall, rise }) {
                version += u32::from(ch.routing_changed);
            }
            states.push(match p.state {
                PeerState::Unknown => '?',
                PeerState::Up => 'U',
                PeerState::Down => 'D',
            });
        }
        (states, version)
    }

    #[test]
    fn hysteresis_row_by_row() {
        // (results, fall, rise, states after each, routing changes)
        let rows = [
            ("", 5, 2, "", 0),
            ("+", 5, 2, "U", 0),       // unknown -> up: routing was already "up"
            ("++++", 5, 2, "UUUU", 0), // all good: no change
            ("----", 5, 2, "????", 0), // fewer than fall failures: still unknown, routed
            ("-----", 5, 2, "????D", 1), // exactly fall failures: down
            ("------", 5, 2, "????DD", 1), // stays down, no new change
            ("+---", 3, 2, "UUUD", 1), // up -> down after exactly fall
            ("+--+--", 3, 2, "UUUUUU", 0), // not consecutive: never down
            ("---+", 3, 2, "??DD", 1), // one success is not rise
            ("---++", 3, 2, "??DDU", 2), // rise successes: up, version 1 then 2
            ("---+-+", 3, 2, "??DDDD", 1), // not consecutive: stays down
            ("---+-++", 3, 2, "??DDDDU", 2),
            ("-", 1, 1, "D", 1),   // fall 1
            ("-+", 1, 1, "DU", 2), // rise 1
            ("-", 0, 0, "D", 1),   // 0 behaves as 1
        ];
        for (seq, fall, rise, want, changes) in rows {
            assert_eq!(
                run(seq, fall, rise),
                (want.to_owned(), changes),
                "{seq:?} fall {fall} rise {rise}"
            );
        }
    }

    #[test]
    fn counts_are_consecutive_and_reported() {
        let h = Hysteresis { fall: 3, rise: 2 };
        let mut p = PeerHealth::default();
        assert_eq!(p.record(false, h), None);
        assert_eq!((p.failures, p.successes), (1, 0));
        p.record(true, h);
        assert_eq!((p.failures, p.successes, p.state), (0, 1, PeerState::Up));
        p.record(false, h);
        p.record(false, h);
        let ch = p.record(false, h).expect("down");
        assert_eq!(
            ch,
            HealthChange {
                from: PeerState::Up,
                to: PeerState::Down,
                after: 3,
                routing_changed: true
            }
        );
        assert!(!p.state.routable());
        assert!(PeerState::Unknown.routable());
    }
}
