//! Upstreams that follow a resource (`from_resource`): the peer of the node where the resource
//! is promoted (a promotable resource) or runs (any other) is the primary; the other nodes'
//! peers are backups. The daemon applies this after every state change, so a promotion moves
//! the traffic.

use warden_engine::{Config, Role, State};

/// An upstream whose peers are a resource's nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follow {
    pub upstream: String,
    pub resource: String,
    /// (node, peer address), in configuration order.
    pub nodes: Vec<(String, String)>,
}

impl Follow {
    /// The addresses that are primaries in `state`.
    pub fn primaries(&self, config: &Config, state: &State) -> Vec<String> {
        let promotable = config
            .resource(&self.resource)
            .is_some_and(|r| r.is_promotable());
        self.nodes
            .iter()
            .filter(|(node, _)| {
                // A node that is down or waiting to be fenced serves nothing.
                let up = state
                    .node(node)
                    .is_some_and(|n| n.online && n.unclean.is_none());
                let role = state.on_node(&self.resource, node).role;
                up && if promotable {
                    role == Role::Promoted
                } else {
                    role.is_active()
                }
            })
            .map(|(_, addr)| addr.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_engine::{
        Agent, ClusterOptions, Copies, Event, OpKey, OpName, OpResult, ResourceSpec, apply, rc,
    };

    fn config(promotable: bool) -> Config {
        let mut r = ResourceSpec::new(
            "db",
            Agent::Ocf {
                provider: "warden-test".into(),
                kind: "Stateful".into(),
            },
        );
        if promotable {
            r.copies = Some(Copies::promotable());
        }
        Config::new(
            ClusterOptions::default(),
            vec!["node1".into(), "node2".into()],
            vec![],
            vec![r],
            vec![],
        )
        .expect("config")
    }

    fn probe(config: &Config, state: &mut State, node: &str, code: i32) {
        let ev = Event::OpResult(OpResult {
            resource: "db".into(),
            node: node.into(),
            op: OpKey::probe(),
            rc: code,
            exit_reason: String::new(),
            status: warden_engine::rc::ExecStatus::Done,
            digest: None,
        });
        apply(config, state, &ev, warden_engine::Time::from_millis(0)).expect("apply");
    }

    #[test]
    fn the_primary_is_where_it_is_promoted_or_runs() {
        let f = Follow {
            upstream: "pg".into(),
            resource: "db".into(),
            nodes: vec![
                ("node1".into(), "10.0.0.1:5432".into()),
                ("node2".into(), "10.0.0.2:5432".into()),
            ],
        };
        let c = config(true);
        let mut s = State::with_online_nodes(["node1", "node2"]);
        assert!(f.primaries(&c, &s).is_empty(), "nothing known yet");
        probe(&c, &mut s, "node1", rc::OK);
        probe(&c, &mut s, "node2", rc::RUNNING_PROMOTED);
        assert_eq!(f.primaries(&c, &s), ["10.0.0.2:5432"]);
        // The promotion moves: so does the primary.
        for (node, op) in [("node2", OpName::Demote), ("node1", OpName::Promote)] {
            let ev = Event::OpResult(OpResult {
                resource: "db".into(),
                node: node.into(),
                op: OpKey::new(op, std::time::Duration::ZERO),
                rc: rc::OK,
                exit_reason: String::new(),
                status: warden_engine::rc::ExecStatus::Done,
                digest: None,
            });
            apply(&c, &mut s, &ev, warden_engine::Time::from_millis(0)).expect("apply");
        }
        assert_eq!(f.primaries(&c, &s), ["10.0.0.1:5432"]);
        // Its node lost: no primary until another copy is promoted.
        apply(
            &c,
            &mut s,
            &Event::NodeDown {
                node: "node1".into(),
            },
            warden_engine::Time::from_millis(0),
        )
        .expect("apply");
        assert!(f.primaries(&c, &s).is_empty());

        // Not promotable: where it runs.
        let c = config(false);
        let mut s = State::with_online_nodes(["node1", "node2"]);
        probe(&c, &mut s, "node1", rc::NOT_RUNNING);
        probe(&c, &mut s, "node2", rc::OK);
        assert_eq!(f.primaries(&c, &s), ["10.0.0.2:5432"]);
    }
}
