//! `[[location]]`, `[[ban]]`, `[[group]]`, `[[colocation]]`, `[[order]]` and `[[ticket]]`: read with the
//! places of the names they use; roles and actions are checked against the resources after.

use std::collections::HashMap;

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
    word: String,
    resource: String,
    span: Span,
}

/// The constraints of the file, read.
pub(super) struct Constraints {
    pub locations: Vec<Location>,
    pub rule_locations: Vec<RuleLocation>,
    pub groups: Vec<Group>,
    /// Where each group is written.
    group_at: Vec<Span>,
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
    /// member (`then`). Where a member is unmanaged (it stays where it runs, whatever binds
    /// it), the members after it do not follow the colocations through it: a group's
    /// INFINITY colocations bind each of them too (Pacemaker's `expand_group_colocations`).
    /// Something colocated with a cloned group (a group of clones, `cloned` names them) goes
    /// with its first member: a copy of the group is placed where its first member is, even
    /// when later members cannot run there (the order on the group then holds it); but an
    /// interleaved clone (in `interleaved`) pairs each copy with the group's copy beside it,
    /// whole: with its last member.
    pub fn expand_groups(
        &mut self,
        unmanaged: &std::collections::HashSet<String>,
        cloned: &std::collections::HashSet<String>,
        interleaved: &std::collections::HashSet<String>,
    ) {
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
        let mut after_unmanaged = Vec::new();
        for c in &mut self.colocations {
            if c.score == Score::INFINITY {
                let ms = each(&c.resource);
                if let Some(u) = ms.iter().position(|m| unmanaged.contains(m)) {
                    after_unmanaged.extend(ms[u + 1..].iter().map(|m| Colocation {
                        resource: m.clone(),
                        with: last(&c.with),
                        ..c.clone()
                    }));
                }
            }
            c.resource = first(&c.resource);
            let cloned_group = cloned.contains(&first(&c.with))
                && members.contains_key(&c.with)
                && !interleaved.contains(&c.resource);
            c.with = if c.score == Score::INFINITY && !cloned_group {
                last(&c.with)
            } else {
                first(&c.with)
            };
        }
        self.colocations.extend(after_unmanaged);
        for o in &mut self.orders {
            if members.contains_key(&o.first) && o.first_label.is_none() {
                o.first_label = Some(format!("{} running", o.first));
            }
            o.then_group |= members.contains_key(&o.then);
            o.first = last(&o.first);
            o.then = first(&o.then);
        }
    }

    /// Checks the roles and actions that need a promotable resource, and that a group is of
    /// plain resources or of clones alike (a cloned group); `copies` has every resource,
    /// with how it is cloned.
    pub fn validate(
        &self,
        r: &mut Reader<'_>,
        copies: &HashMap<String, Option<warden_engine::Copies>>,
    ) {
        for (g, at) in self.groups.iter().zip(&self.group_at) {
            let kinds: Vec<Option<(bool, Option<u32>)>> = g
                .resources
                .iter()
                .filter_map(|m| copies.get(m))
                .map(|c| c.as_ref().map(|c| (c.promotable, c.clone_max)))
                .collect();
            let cloned = kinds.iter().any(Option::is_some);
            let alike = kinds.windows(2).all(|w| w[0] == w[1]);
            if cloned && (!alike || kinds.iter().flatten().any(|k| k.0)) {
                r.d.error(
                    at.clone(),
                    format!(
                        "group {:?} mixes clones and other resources: a cloned group has every member `clone = true` with one `clone_max` (not promotable)",
                        g.id
                    ),
                );
            }
        }
        for p in &self.promoted {
            let promotable = copies
                .get(&p.resource)
                .map(|c| c.as_ref().is_some_and(|c| c.promotable));
            if promotable == Some(false) {
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
        group_at: Vec::new(),
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

/// A keyword that is `plain` (the default) or one of `roles`, which are noted for checking
/// against `resource` (it must be promotable) once the resources are known.
fn plain_or_role<T: Copy + PartialEq + std::fmt::Display + std::str::FromStr>(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    key: &'static str,
    resource: Option<&(String, Span)>,
    (plain, roles): (T, &[T]),
    c: &mut Constraints,
) -> T {
    let Some(v) = t.take(key) else {
        return plain;
    };
    let allowed: Vec<T> = std::iter::once(plain)
        .chain(roles.iter().copied())
        .collect();
    match r.keyword_value(v, &allowed) {
        Some(k) if k != plain => {
            if let Some((res, _)) = resource {
                c.promoted.push(Promoted {
                    key,
                    word: k.to_string(),
                    resource: res.clone(),
                    span: v.span(),
                });
            }
            k
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
    plain_or_role(
        r,
        t,
        key,
        resource,
        (OpRole::Started, &[OpRole::Promoted]),
        c,
    )
}

/// A colocation's `role` or `with_role`: started (the default), promoted or unpromoted; the
/// last two need the resource to be promotable.
fn colocation_role(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    key: &'static str,
    resource: Option<&(String, Span)>,
    c: &mut Constraints,
) -> OpRole {
    let roles = (OpRole::Started, &[OpRole::Promoted, OpRole::Unpromoted][..]);
    plain_or_role(r, t, key, resource, roles, c)
}

fn action(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    key: &'static str,
    resource: Option<&(String, Span)>,
    c: &mut Constraints,
) -> OpName {
    plain_or_role(r, t, key, resource, (OpName::Start, &[OpName::Promote]), c)
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
    let discovery = if is_ban {
        warden_engine::Discovery::Always
    } else {
        r.keyword(t, "resource_discovery", warden_engine::Discovery::ALL)
            .map_or(warden_engine::Discovery::Always, |d| d.0)
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
            discovery,
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
    r.forbid(
        t,
        "resource_discovery",
        "it applies to a location on a `node`",
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
        c.group_at.push(t.span.clone());
        c.groups.push(Group {
            id,
            resources: members.into_iter().map(|m| m.0).collect(),
        });
    }
}

fn colocation(r: &mut Reader<'_>, t: &Tbl<'_, '_>, c: &mut Constraints) {
    c.first_at.get_or_insert_with(|| t.span.clone());
    let score = match t.take("score") {
        Some(v) => r.score_value(v),
        None => Some(Score::INFINITY),
    };
    if t.take("sets").is_some() {
        for key in ["resource", "with", "role", "with_role"] {
            r.forbid(
                t,
                key,
                "a colocation of `sets` names its resources in its sets",
            );
        }
        let sets = sets(r, t, COLOCATION_SET, c);
        if let Some(score) = score {
            colocate_sets(r, &sets, score, c);
        }
        return;
    }
    let res = r.required_string(t, "resource", "[[colocation]]");
    let with = r.required_string(t, "with", "[[colocation]]");
    let res_role = colocation_role(r, t, "role", res.as_ref(), c);
    let with_role = colocation_role(r, t, "with_role", with.as_ref(), c);
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
    let id = r.string(t, "id").map(|(s, _)| s);
    let kind = r
        .keyword(t, "kind", OrderKind::ALL)
        .map_or(OrderKind::Mandatory, |k| k.0);
    let symmetric = r
        .boolean(t, "symmetric")
        .unwrap_or(kind != OrderKind::Serialize);
    if t.take("sets").is_some() {
        for key in [
            "first",
            "then",
            "first_action",
            "then_action",
            "require_all",
        ] {
            r.forbid(t, key, "an order of `sets` names its resources in its sets");
        }
        let sets = sets(r, t, ORDER_SET, c);
        let template = Order {
            symmetric,
            id,
            ..Order::new("", "", kind)
        };
        order_sets(r, &sets, &template, c);
        return;
    }
    let first = r.required_string(t, "first", "[[order]]");
    let then = r.required_string(t, "then", "[[order]]");
    let first_action = action(r, t, "first_action", first.as_ref(), c);
    let then_action = action(r, t, "then_action", then.as_ref(), c);
    // Pacemaker's `require-all = false`: after a clone, one copy is enough.
    let first_min = r
        .boolean(t, "require_all")
        .and_then(|all| (!all).then_some(1));
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
                first_min,
                id,
                ..Order::new(first, then, kind)
            });
        }
    }
}

/// One resource set of a `[[colocation]]` or `[[order]]` (`sets = [{ resources = [...] }]`),
/// as Pacemaker's `resource_set`.
struct ResourceSet {
    id: String,
    resources: Vec<(String, Span)>,
    /// As written (None: not written): Pacemaker reads an unwritten one as sequential within
    /// the set, and as not between sets of an order.
    sequential: Option<bool>,
    /// Of an order's set: what follows it needs only one of its resources.
    require_all: bool,
    /// Of an order's set.
    action: OpName,
    kind: Option<OrderKind>,
    /// Of a colocation's set.
    role: OpRole,
    score: Option<Score>,
}

pub(super) const COLOCATION_SET: Section = Section::new("colocation sets", "a colocation's set");
pub(super) const ORDER_SET: Section = Section::new("order sets", "an order's set");

fn sets(
    r: &mut Reader<'_>,
    t: &Tbl<'_, '_>,
    section: Section,
    c: &mut Constraints,
) -> Vec<ResourceSet> {
    let order = section.name == ORDER_SET.name;
    let mut out = Vec::new();
    let Some(list) = r.array(t, "sets") else {
        return out;
    };
    if list.is_empty() {
        r.d.error(t.span_of("sets"), "`sets` needs at least one set");
    }
    for (n, v) in list.iter().enumerate() {
        let toml::de::DeValue::Table(tbl) = v.get_ref() else {
            r.type_error(v, "a table in `sets` ({ resources = [...] })");
            continue;
        };
        let set = r.section(tbl, v.span(), section, |r, s| {
            let id = r
                .string(s, "id")
                .map_or_else(|| format!("set{}", n + 1), |(id, _)| id);
            let resources = r.string_list(s, "resources").unwrap_or_default();
            if resources.is_empty() {
                r.d.error(s.span.clone(), "a set needs `resources`, at least one");
            }
            let sequential = r.boolean(s, "sequential");
            let (mut require_all, mut action, mut kind) = (true, OpName::Start, None);
            let (mut role, mut score) = (OpRole::Started, None);
            if order {
                require_all = r.boolean(s, "require_all").unwrap_or(true);
                kind = r.keyword(s, "kind", OrderKind::ALL).map(|k| k.0);
                if let Some(v) = s.take("action") {
                    action = r
                        .keyword_value(v, &[OpName::Start, OpName::Promote])
                        .unwrap_or(OpName::Start);
                }
            } else {
                if let Some(v) = s.take("role") {
                    role = r
                        .keyword_value(v, &[OpRole::Started, OpRole::Promoted])
                        .unwrap_or(OpRole::Started);
                }
                score = s.take("score").and_then(|v| r.score_value(v));
            }
            let promoted = role == OpRole::Promoted || action == OpName::Promote;
            if promoted {
                let (key, word) = if order {
                    ("action", "promote")
                } else {
                    ("role", "promoted")
                };
                let span = s.span_of(key);
                for (name, _) in &resources {
                    c.promoted.push(Promoted {
                        key,
                        word: word.to_owned(),
                        resource: name.clone(),
                        span: span.clone(),
                    });
                }
            }
            for (name, span) in &resources {
                c.resource_refs.push(Ref {
                    name: name.clone(),
                    span: span.clone(),
                });
            }
            ResourceSet {
                id,
                resources,
                sequential,
                require_all,
                action,
                kind,
                role,
                score,
            }
        });
        out.push(set);
    }
    out
}

/// A colocation of sets as the plain colocations Pacemaker expands it into
/// (`unpack_colocation_set`, `colocate_rsc_sets`): within a sequential set each resource
/// with the one before it (a negative score: away from every one before it); between two
/// sets the first set's first resource (all of it when not sequential) with the second's
/// last (all of it when not sequential).
fn colocate_sets(r: &mut Reader<'_>, sets: &[ResourceSet], score: Score, c: &mut Constraints) {
    let mut out: Vec<(Colocation, Span)> = Vec::new();
    let pair = |a: &(String, Span), b: &(String, Span), score, role, with_role| {
        (
            Colocation {
                role,
                with_role,
                ..Colocation::new(a.0.clone(), b.0.clone(), score)
            },
            a.1.clone(),
        )
    };
    for set in sets {
        let local = set.score.unwrap_or(score);
        if local == Score::ZERO || set.sequential == Some(false) {
            continue;
        }
        let m = &set.resources;
        if local.value() > 0 {
            for w in m.windows(2) {
                out.push(pair(&w[1], &w[0], local, set.role, set.role));
            }
        } else {
            for (i, a) in m.iter().enumerate() {
                for b in &m[..i] {
                    out.push(pair(a, b, local, set.role, set.role));
                }
            }
        }
    }
    if score != Score::ZERO {
        for w in sets.windows(2) {
            let (s1, s2) = (&w[0], &w[1]);
            let r1: &[(String, Span)] = match (s1.sequential, s1.resources.first()) {
                (Some(false), _) | (_, None) => &s1.resources,
                (_, Some(_)) => &s1.resources[..1],
            };
            let r2: &[(String, Span)] = match (s2.sequential, s2.resources.len()) {
                (Some(false), _) | (_, 0) => &s2.resources,
                (_, n) => &s2.resources[n - 1..],
            };
            for a in r1 {
                for b in r2 {
                    out.push(pair(a, b, score, s1.role, s2.role));
                }
            }
        }
    }
    for (col, span) in out {
        if col.resource == col.with {
            r.d.error(
                span,
                format!("{} cannot be colocated with itself", col.resource),
            );
        } else {
            c.colocations.push(col);
        }
    }
}

/// An order of sets as the plain orders Pacemaker expands it into (`unpack_order_set`,
/// `order_rsc_sets`): within a sequential set each resource after the one before it; between
/// two sets the first set's last resource (all of it unless written sequential) before the
/// second's first (all of it unless written sequential); after a set with `require_all =
/// false`, one of its resources is enough (`one-or-more:SET`).
fn order_sets(r: &mut Reader<'_>, sets: &[ResourceSet], template: &Order, c: &mut Constraints) {
    let mut out: Vec<(Order, Span)> = Vec::new();
    let pair = |a: &(String, Span), fa: OpName, b: &(String, Span), ta: OpName, kind| {
        (
            Order {
                first_action: fa,
                then_action: ta,
                ..Order {
                    first: a.0.clone(),
                    then: b.0.clone(),
                    kind,
                    ..template.clone()
                }
            },
            a.1.clone(),
        )
    };
    for set in sets {
        if set.sequential != Some(false) {
            let kind = set.kind.unwrap_or(template.kind);
            for w in set.resources.windows(2) {
                out.push(pair(&w[0], set.action, &w[1], set.action, kind));
            }
        }
    }
    for w in sets.windows(2) {
        let (s1, s2) = (&w[0], &w[1]);
        let n = s1.resources.len();
        let r1: &[(String, Span)] = if s1.sequential == Some(true) && s1.require_all && n > 0 {
            &s1.resources[n - 1..]
        } else {
            &s1.resources
        };
        // After a set that needs only one of its resources, every one of the next set waits.
        let r2: &[(String, Span)] =
            if s2.sequential == Some(true) && s1.require_all && !s2.resources.is_empty() {
                &s2.resources[..1]
            } else {
                &s2.resources
            };
        for a in r1 {
            for b in r2 {
                let (mut o, span) = pair(a, s1.action, b, s2.action, template.kind);
                if !s1.require_all {
                    o.first_min = Some(1);
                    o.first_label = Some(format!("one-or-more:{}", s1.id));
                }
                out.push((o, span));
            }
        }
    }
    for (o, span) in out {
        if o.first == o.then {
            r.d.error(span, format!("{} cannot be ordered after itself", o.first));
        } else {
            c.orders.push(o);
        }
    }
}
