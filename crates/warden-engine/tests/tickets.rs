//! Tickets (Pacemaker's `rsc_ticket` and `crm_ticket`): a resource that needs a ticket runs
//! only while it is granted; a revoke while it runs follows its loss policy.

mod common;

use common::*;
use warden_engine::*;

fn ticket(w: &mut World, name: &str, action: TicketAction) {
    w.admin(AdminCommand::Ticket {
        ticket: name.into(),
        action,
    });
}

/// `dummy` on two nodes (preferring node1), needing ticket `T` with this loss policy.
fn needs_ticket(policy: LossPolicy) -> Builder {
    build(&["node1", "node2"])
        .resource(dummy("dummy"))
        .location(loc("dummy", "node1", 100))
        .ticket("T", "dummy", OpRole::Started, policy)
}

/// A world that starts with `T` granted and `dummy` running on node1.
fn running(b: Builder) -> World {
    let mut w = b.world();
    assert!(w.status_of("dummy").contains("Stopped"), "no ticket yet");
    ticket(&mut w, "T", TicketAction::Grant);
    assert_eq!(w.settle(), ["Start dummy ( node1 )"]);
    w
}

#[test]
fn a_ticket_never_granted_keeps_its_resource_stopped_and_a_grant_starts_it() {
    let w = needs_ticket(LossPolicy::Stop).world();
    assert_eq!(w.status_of("dummy"), "dummy Stopped");
    running(needs_ticket(LossPolicy::Stop));
}

#[test]
fn revoke_with_loss_policy_stop_stops_it() {
    let mut w = running(needs_ticket(LossPolicy::Stop));
    ticket(&mut w, "T", TicketAction::Revoke);
    assert_eq!(
        w.settle(),
        ["Stop dummy ( node1 ) due to node availability"]
    );
    ticket(&mut w, "T", TicketAction::Grant);
    assert_eq!(w.settle(), ["Start dummy ( node1 )"]);
}

#[test]
fn standby_stops_it_without_the_loss_policy_and_activate_starts_it() {
    // Even with loss_policy freeze, a ticket on standby lets the resource go.
    let mut w = running(needs_ticket(LossPolicy::Freeze));
    ticket(&mut w, "T", TicketAction::Standby);
    assert_eq!(
        w.settle(),
        ["Stop dummy ( node1 ) due to node availability"]
    );
    ticket(&mut w, "T", TicketAction::Activate);
    assert_eq!(w.settle(), ["Start dummy ( node1 )"]);
}

#[test]
fn revoke_with_loss_policy_freeze_leaves_it_running_and_unmoved() {
    let mut w = running(needs_ticket(LossPolicy::Freeze));
    ticket(&mut w, "T", TicketAction::Revoke);
    assert!(w.plan().is_empty(), "frozen: {:?}", w.plan());
    // Even a node going into standby does not move it while frozen.
    w.admin(AdminCommand::Standby {
        node: "node1".into(),
    });
    assert!(w.plan().is_empty(), "frozen: {:?}", w.plan());
    assert_eq!(w.status_of("dummy"), "dummy Started node1");
}

#[test]
fn revoke_with_loss_policy_fence_fences_the_node_it_runs_on() {
    let mut w = running(needs_ticket(LossPolicy::Fence).fencing());
    ticket(&mut w, "T", TicketAction::Revoke);
    assert_eq!(
        w.plan(),
        [
            "Fence (reboot) node1 'deadman ticket was lost'",
            "Stop dummy ( node1 ) due to node availability"
        ]
    );
}

#[test]
fn a_promoted_role_ticket_demotes_on_revoke_and_the_copies_keep_running() {
    let mut db = dummy("db");
    let mut promoted = OpSpec::new(OpName::Monitor, std::time::Duration::from_secs(9));
    promoted.role = OpRole::Promoted;
    db.ops.push(promoted);
    db.copies = Some(Copies {
        score: Some(Score::new(5)),
        ..Copies::promotable()
    });
    let mut w = build(&["node1", "node2"])
        .resource(db)
        .ticket("T", "db", OpRole::Promoted, LossPolicy::Demote)
        .world();
    // Without the ticket the copies run, none promoted.
    assert_eq!(w.status_of("db"), "db Unpromoted [ node1 node2 ]");
    ticket(&mut w, "T", TicketAction::Grant);
    assert_eq!(w.settle(), ["Promote db ( Unpromoted -> Promoted node1 )"]);
    ticket(&mut w, "T", TicketAction::Revoke);
    assert_eq!(w.settle(), ["Demote db ( Promoted -> Unpromoted node1 )"]);
}

#[test]
fn a_bad_ticket_name_is_refused() {
    let mut w = needs_ticket(LossPolicy::Stop).world();
    let e = apply(
        &w.config,
        &mut w.state,
        &Event::Admin(AdminCommand::Ticket {
            ticket: "a b".into(),
            action: TicketAction::Grant,
        }),
        w.now,
    );
    assert!(matches!(e, Err(ApplyError::BadTicket(_))), "{e:?}");
}
