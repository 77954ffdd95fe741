//! What `check-config` checks on the machine, after reading: the ocf agents exist (with a
//! guess at the name meant) and take the parameters given, the programs are found, the users
//! and groups exist. Each problem is reported at its place in the file.

use std::collections::HashMap;
use std::path::Path;

use super::{Places, Pos};
use crate::diag::{Diagnostic, did_you_mean};
use crate::exec::metadata::AgentMetadata;

fn at((line, col): Pos, message: String) -> Diagnostic {
    Diagnostic { line, col, message }
}

/// Agents that do not exist (errors), and parameters checked against the meta-data of those
/// that do. `metadata` holds what each (provider, type) answered; a failure there is a warning
/// (the agent exists, its parameters are not checked).
pub fn check_agents(
    places: &Places,
    ocf_root: &Path,
    metadata: &HashMap<(String, String), Result<AgentMetadata, String>>,
) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for a in &places.agents {
        let agent = format!("ocf:{}:{}", a.provider, a.kind);
        let dir = ocf_root.join("resource.d").join(&a.provider);
        if !dir.join(&a.kind).is_file() {
            errors.push(at(a.kind_at, missing_agent(ocf_root, &a.provider, &a.kind)));
            continue;
        }
        let md = match metadata.get(&(a.provider.clone(), a.kind.clone())) {
            Some(Ok(md)) => md,
            Some(Err(e)) => {
                warnings.push(at(a.kind_at, format!("parameters not checked: {e}")));
                continue;
            }
            None => continue,
        };
        let known: Vec<&str> = md.parameters.iter().map(|p| p.name.as_str()).collect();
        for (name, pos) in &a.params {
            if md.parameter(name).is_none() {
                let hint = did_you_mean(name, &known)
                    .map(|h| format!("; did you mean `{h}`?"))
                    .unwrap_or_default();
                let allowed = if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                };
                errors.push(at(
                    *pos,
                    format!("{agent} has no parameter `{name}`{hint} (its parameters: {allowed})"),
                ));
            }
        }
        for p in md.parameters.iter().filter(|p| p.required) {
            if !a.params.iter().any(|(n, _)| *n == p.name) {
                let what = if p.shortdesc.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.shortdesc)
                };
                errors.push(at(
                    a.at,
                    format!(
                        "resource {:?} needs parameter `{}`{what}: {agent} requires it",
                        a.resource, p.name
                    ),
                ));
            }
        }
    }
    (errors, warnings)
}

/// Why `ocf:provider:kind` is not there, with the likeliest name meant.
fn missing_agent(ocf_root: &Path, provider: &str, kind: &str) -> String {
    let root = ocf_root.join("resource.d");
    let agents = crate::exec::metadata::list_agents(ocf_root).unwrap_or_default();
    // "ocf:PROVIDER:TYPE" -> (PROVIDER, TYPE)
    let split: Vec<(&str, &str)> = agents
        .iter()
        .filter_map(|a| a.strip_prefix("ocf:")?.split_once(':'))
        .collect();
    let mut providers: Vec<&str> = split.iter().map(|(p, _)| *p).collect();
    providers.dedup();
    if !providers.contains(&provider) {
        let hint = did_you_mean(provider, &providers)
            .map(|h| format!("; did you mean provider {h:?}?"))
            .unwrap_or_else(|| {
                if providers.is_empty() {
                    format!(
                        " (no agents under {}: is resource-agents installed?)",
                        root.display()
                    )
                } else {
                    format!(" (providers: {})", providers.join(", "))
                }
            });
        return format!("no provider {provider:?} in {}{hint}", root.display());
    }
    let kinds: Vec<&str> = split
        .iter()
        .filter(|(p, _)| *p == provider)
        .map(|(_, k)| *k)
        .collect();
    let hint = did_you_mean(kind, &kinds)
        .map(|h| format!("; did you mean {h:?}?"))
        .unwrap_or_default();
    format!(
        "no agent ocf:{provider}:{kind} (no {kind:?} in {}){hint}",
        root.join(provider).display()
    )
}

/// Programs that are not found, or not executable (`PATH` is searched for bare names).
pub fn check_programs(places: &Places, path_var: Option<&str>) -> Vec<Diagnostic> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let path_var = path_var.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    let mut out = Vec::new();
    for (program, pos) in &places.programs {
        if program.contains('/') {
            let p = Path::new(program);
            // A relative path is taken from the process's working directory: not checked.
            if p.is_absolute() && !executable(p) {
                let why = if p.exists() {
                    "is not an executable file"
                } else {
                    "does not exist"
                };
                out.push(at(*pos, format!("program {program:?} {why}")));
            }
        } else if !path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .any(|d| executable(&Path::new(d).join(program)))
        {
            out.push(at(
                *pos,
                format!("program {program:?} is not found in PATH ({path_var})"),
            ));
        }
    }
    out
}

/// `class = "systemd"` resources on a machine whose init system is not systemd.
pub fn check_systemd(places: &Places) -> Vec<Diagnostic> {
    let Some(why) = crate::exec::systemd::unavailable() else {
        return Vec::new();
    };
    places
        .systemd_units
        .iter()
        .map(|(unit, pos)| at(*pos, format!("{unit}: {why}")))
        .collect()
}

/// Users and groups that do not exist on this machine.
pub fn check_identities(places: &Places) -> Vec<Diagnostic> {
    use nix::unistd::{Group, User};
    let mut out = Vec::new();
    for (user, pos) in &places.users {
        if !matches!(User::from_name(user), Ok(Some(_))) {
            out.push(at(*pos, format!("no user {user:?} on this machine")));
        }
    }
    for (group, pos) in &places.groups {
        if !matches!(Group::from_name(group), Ok(Some(_))) {
            out.push(at(*pos, format!("no group {group:?} on this machine")));
        }
    }
    out
}
