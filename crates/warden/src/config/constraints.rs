//! `[[location]]`, `[[ban]]`, `[[group]]`, `[[colocation]]`, `[[order]]` and `[[ticket]]`: read with the
//! places of the names they use; roles and actions are checked against the resources after.

use std::collections::HashSet;

use warden_engine::{
    Colocation, Group, Location, LossPolicy, OpName, OpRole, Order, OrderKind, Rule, RuleLocation,
    RuleScore, Score, TicketConstraint,
};

use super::Ref;
use super::table::{Reader, Section, Span, Tbl};

pub(super) const LOCATION: Section = Section::new("[[location]]", "[[location]]");
pub(super) const BAN: Section = Section::new("[[ban]]", "[[ban]]");
pub(super) const GROUP: Section = Section::new("[[group]]", "[[group]]");
pub(super) const COLOCATION: Section = Section::new("[[colocation]]", "[[colocation]]");
pub(super) const ORDER: Section = Section::new("[[order]]", "[[order]]");
pub(super) const TICKET: Section = Section::new("[[ticket]]", "[[ticket]]");

/// `role`, `with_role`, `first_action` or `then_action` as written: promoted (or promote)
/// when Some, with its place and the resource it applies to.
struct Promoted {
    key: &'static str,
    word: &'static str,
    resource: String,
    span: Span,
}

/// The constraints of the file, read.
pub(super) struct Constraints {
    pub locations: Vec<Location>,
    pub rule_locations: Vec<RuleLocation>,
    pub groups: Vec<Group>,
    pub colocations: Vec<Colocation>,
    pub orders: Vec<Order>,
    pub tickets: Vec<TicketConstraint>,
    /// Where a ticket's `loss_policy = "fence"` is written (it needs fencing).
    pub fence_tickets: Vec<Span>,
    pub resource_refs: Vec<Ref>,
    pub node_refs: Vec<Ref>,
    /// The first colocation, order or group: where a cycle is reported.
    pub first_at: Option<Span>,
    promoted: Vec<Promoted>,
}

impl Constraints {
    /// Constraints that name a group, in terms of its members, as Pacemaker applies them: a
    /// location or a ticket binds every member; a group colocated with something places its
    /// first member (the rest follow it); something colocated with a group goes with its last
    /// member when the score is INFINITY (the whole group up), else with its first; an order
    /// waits for the group's last member to start (`first`) or starts the group's first
    /// member (`then`).
    pub fn expand_groups(&mut self) {
        let members: std::collections::HashMap<String, Vec<String>> = self
            .groups
            .iter()
            .filter(|g| !g.resources.is_empty())
            .map(|g| (g.id.clone(), g.resources.clone()))
            .collect();
        if members.is_empty() {
            return;
        }
        let each = |name: &str| -> Vec<String> {
            members
                .get(name)
                .cloned()
                .unwrap_or_else(|| vec![name.to_owned()])
        };
        let first = |name: &str| each(name).first().cloned().unwrap_or_default();
        let last = |name: &str| each(name).last().cloned().unwrap_or_default();
        self.locations = std::mem::take(&mut self.locations)
            .into_iter()
            .flat_map(|l| {
                each(&l.resource).into_iter().map(move |m| Location {
                    resource: m,
                    ..l.clone()
                })
            })
            .collect();
        self.rule_locations = std::mem::take(&mut self.rule_locations)
            .into_iter()
            .flat_map(|l| {
                each(&l.resource).into_iter().map(move |m| RuleLocation {
                    resource: m,
                    ..l.clone()
                })
            })
            .collect();
        self.tickets = std::mem::take(&mut self.tickets)
            .into_iter()
            .flat_map(|t| {
                each(&t.resource)
                    .into_iter()
                    .map(move |m| TicketConstraint {
                        resource: m,
                        ..t.clone()
                    })
            })
            .collect();
        for c in &mut self.colocations {
            c.resource = first(&c.resource);
            c.with = if c.score == Score::INFINITY {
                last(&c.with)
            } else {
                first(&c.with)
            };
        }
        for o in &mut self.orders {
            if members.contains_key(&o.first) {
                o.first_label = Some(format!("{} running", o.first));
            }
            o.first = last(&o.first);
            o.then = first(&o.then);
        }
    }

    /// Checks the roles and actions that need a promotable resource.
    pub fn validate(
        &self,
        r: &mut Reader<'_>,
        promotable: &HashSet<String>,
        known: &HashSet<String>,
    ) {
        for p in &self.promoted {
            if known.contains(&p.resource) && !promotable.contains(&p.resource) {
                r.d.error(
                    p.span.clone(),
                    format!(
                        "{} \"{}\" needs {:?} to be promotable (`promotable = true`)",
                        p.key, p.word, p.resource
                    ),
                );
            }
        }
    }
}

pub(super) fn constraints(r: &mut Reader<'_>, top: &Tbl<'_, '_>) -> Constraints {
    let mut c = Constraints {
        locations: Vec::new(),
        rule_locations: Vec::new(),
        groups: Vec::new(),
        colocations: Vec::new(),
        orders: Vec::new(),
        tickets: Vec::new(),
        fence_tickets: Vec::new(),
        resource_refs: Vec::new(),
        node_refs: Vec::new(),
        first_at: None,
        promoted: Vec::new(),
    };
    for (t, at) in r.tables(top, "location") {
        r.section(t, at, LOCATION, |r, t| location(r, t, false, &mut c));
    }
    for (t, at) in r.tables(top, "ban") {
        r.section(t, at, BAN, |r, t| location(r, t, true, &mut c));
    }
    for (t, at) in r.tables(top, "group") {
        r.section(t, at, GROUP, |r, t| group(r, t, &mut c));
    }
    for (t, at) in r.tables(top, "colocation") {
        r.section(t, at, COLOCATION, |r, t| colocation(r, t, &mut c));
    }
    for (t, at) in r.tables(top, "order") {
        r.section(t, at, ORDER, |r, t| order(r, t, &mut c));
    }
    for (t, at) in r.tables(top, "ticket") {
        r.section(t, at, TICKET, |r, t| ticket(r, t, &mut c));
    }
    c
}

fn ticket(r: &mut Reader<'_>, t: &Tbl<'_, '_>, c: &mut Constraints) {
    let name = r.required_name(t, "ticket", "[[ticket]]");
    let res = r.required_string(t, "resource", "[[ticket]]");
    let role = role(r, t, "role", res.as_ref(), c);
    let loss_policy = match r.keyword(t, "loss_policy", LossPolicy::ALL) {
        Some((p, span)) => {
            if p == LossPolicy::Fence {
                c.fence_tickets.push(span);
            }
            p
        }
        // Pacemaker's default: the promoted role is demoted, anything else stopped.
        None if role == OpRole::Promoted => LossPolicy::Demote,
        None => LossPolicy::Stop,
    };
    reference(c, &res);
    if let (Some((ticket, _)), Some((resource, _))) = (name, res) {
        c.tickets.push(TicketConstraint {
            ticket,
            resource,
            role,
            loss_policy,
        });
    }
}

fn reference(c: &mut Constraints, v: &Option<(String, Span)>) {
    if let Some((name, span)) = v {
        c.resource_refs.push(Ref {
            name: name.clone(),
            span: span.clone(),
        });
    }
}

/// A keyword that is `plain` (the default) or `promoted`; the latter is noted for checking
/// against `resource` once the resources are known.
#[allow(clippy::too_many_arguments)]
fn plain_or_promoted<T: Copy + PartialEq + std::fmt::Display + std::str::FromStr>(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    key: &'static str,
    word: &'static str,
    resource: Option<&(String, Span)>,
    plain: T,
    promoted: T,
    c: &mut Constraints,
) -> T {
    let Some(v) = t.take(key) else {
        return plain;
    };
    match r.keyword_value(v, &[plain, promoted]) {
        Some(k) if k == promoted => {
            if let Some((res, _)) = resource {
                c.promoted.push(Promoted {
                    key,
                    word,
                    resource: res.clone(),
                    span: v.span(),
                });
            }
            promoted
        }
        _ => plain,
    }
}

fn role(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    key: &'static str,
    resource: Option<&(String, Span)>,
    c: &mut Constraints,
) -> OpRole {
    plain_or_promoted(
        r,
        t,
        key,
        "promoted",
        resource,
        OpRole::Started,
        OpRole::Promoted,
        c,
    )
}

fn action(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    key: &'static str,
    resource: Option<&(String, Span)>,
    c: &mut Constraints,
) -> OpName {
    plain_or_promoted(
        r,
        t,
        key,
        "promote",
        resource,
        OpName::Start,
        OpName::Promote,
        c,
    )
}

fn location(r: &mut Reader<'_>, t: &Tbl<'_, '_>, is_ban: bool, c: &mut Constraints) {
    let what = if is_ban { "[[ban]]" } else { "[[location]]" };
    let res = r.required_string(t, "resource", what);
    if !is_ban && t.take("rule").is_some() {
        return rule_location(r, t, res, c);
    }
    let node = r.required_string(t, "node", what);
    let (score, role) = if is_ban {
        (Some(Score::MINUS_INFINITY), OpRole::Started)
    } else {
        r.forbid(
            t,
            "score_attribute",
            "it applies to a location with a `rule`",
        );
        let score = match t.take("score") {
            Some(v) => r.score_value(v),
            None => {
                r.d.error(
                    t.span.clone(),
                    format!("{what} needs a score (an integer, \"INFINITY\" or \"-INFINITY\")"),
                );
                None
            }
        };
        (score, role(r, t, "role", res.as_ref(), c))
    };
    reference(c, &res);
    if let Some((n, span)) = &node {
        c.node_refs.push(Ref {
            name: n.clone(),
            span: span.clone(),
        });
    }
    if let (Some((res, _)), Some((n, _)), Some(score)) = (res, node, score) {
        c.locations.push(Location {
            role,
            ..Location::new(res, n, score)
        });
    }
}

/// A `[[location]]` whose nodes a `rule` picks, with a `score` or a `score_attribute`.
fn rule_location(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    res: Option<(String, Span)>,
    c: &mut Constraints,
) {
    r.forbid(
        t,
        "node",
        "a location with a `rule` picks its nodes by the rule",
    );
    let rule = r.string(t, "rule").and_then(|(text, span)| {
        Rule::parse(&text)
            .map_err(|e| r.d.error(span, format!("bad rule {text:?}: {e}")))
            .ok()
    });
    let score = match (t.take("score"), r.string(t, "score_attribute")) {
        (Some(v), None) => r.score_value(v).map(RuleScore::Score),
        (None, Some((a, _))) => Some(RuleScore::Attribute(a)),
        (Some(v), Some(_)) => {
            r.d.error(
                v.span(),
                "a location with a rule takes `score` or `score_attribute`, not both",
            );
            None
        }
        (None, None) => {
            r.d.error(
                t.span.clone(),
                "a location with a rule needs `score` (an integer, \"INFINITY\" or \"-INFINITY\") or `score_attribute` (a node attribute holding the score)",
            );
            None
        }
    };
    let role = role(r, t, "role", res.as_ref(), c);
    reference(c, &res);
    if let (Some((resource, _)), Some(rule), Some(score)) = (res, rule, score) {
        c.rule_locations.push(RuleLocation {
            resource,
            rule,
            score,
            role,
        });
    }
}

fn group(r: &mut Reader<'_>, t: &Tbl<'_, '_>, c: &mut Constraints) {
    c.first_at.get_or_insert_with(|| t.span.clone());
    let id = r.required_name(t, "id", "[[group]]");
    let members = r.string_list(t, "resources").unwrap_or_default();
    if members.is_empty() {
        r.d.error(
            t.span.clone(),
            "[[group]] needs `resources`, its members in start order",
        );
    }
    c.resource_refs
        .extend(members.iter().map(|(name, span)| Ref {
            name: name.clone(),
            span: span.clone(),
        }));
    if let Some((id, _)) = id {
        c.groups.push(Group {
            id,
            resources: members.into_iter().map(|m| m.0).collect(),
        });
    }
}

fn colocation(r: &mut Reader<'_>, t: &Tbl<'_, '_>, c: &mut Constraints) {
    c.first_at.get_or_insert_with(|| t.span.clone());
    let res = r.required_string(t, "resource", "[[colocation]]");
    let with = r.required_string(t, "with", "[[colocation]]");
    let score = match t.take("score") {
        Some(v) => r.score_value(v),
        None => Some(Score::INFINITY),
    };
    let res_role = role(r, t, "role", res.as_ref(), c);
    let with_role = role(r, t, "with_role", with.as_ref(), c);
    reference(c, &res);
    reference(c, &with);
    if let (Some((res, rs)), Some((with, _))) = (res, with) {
        if res == with {
            r.d.error(rs, format!("{res} cannot be colocated with itself"));
        } else if let Some(score) = score {
            c.colocations.push(Colocation {
                role: res_role,
                with_role,
                ..Colocation::new(res, with, score)
            });
        }
    }
}

fn order(r: &mut Reader<'_>, t: &Tbl<'_, '_>, c: &mut Constraints) {
    c.first_at.get_or_insert_with(|| t.span.clone());
    let first = r.required_string(t, "first", "[[order]]");
    let then = r.required_string(t, "then", "[[order]]");
    let kind = r
        .keyword(t, "kind", OrderKind::ALL)
        .map_or(OrderKind::Mandatory, |k| k.0);
    let symmetric = r
        .boolean(t, "symmetric")
        .unwrap_or(kind != OrderKind::Serialize);
    let first_action = action(r, t, "first_action", first.as_ref(), c);
    let then_action = action(r, t, "then_action", then.as_ref(), c);
    reference(c, &first);
    reference(c, &then);
    if let (Some((first, fs)), Some((then, _))) = (first, then) {
        if first == then {
            r.d.error(fs, format!("{first} cannot be ordered after itself"));
        } else {
            c.orders.push(Order {
                symmetric,
                first_action,
                then_action,
                ..Order::new(first, then, kind)
            });
        }
    }
}
