//! `warden agent list|info`: the OCF agents installed here and what they take.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};

use crate::exec::metadata::list_agents;
use crate::exec::ocf;

/// Splits `ocf:provider:type` (or `provider:type`).
pub fn parse_agent_name(s: &str) -> anyhow::Result<(&str, &str)> {
    let rest = s.strip_prefix("ocf:").unwrap_or(s);
    match rest.split_once(':') {
        Some((p, t))
            if !p.is_empty() && !t.is_empty() && !t.contains(['/', ':']) && !p.contains('/') =>
        {
            Ok((p, t))
        }
        _ => bail!("bad agent name {s:?}: expected ocf:PROVIDER:TYPE, like ocf:heartbeat:Dummy"),
    }
}

pub fn list(ocf_root: &Path, json: bool) -> anyhow::Result<String> {
    let agents = list_agents(ocf_root)
        .with_context(|| format!("cannot list agents under {}/resource.d", ocf_root.display()))?;
    if json {
        return Ok(format!("{}\n", serde_json::json!(agents)));
    }
    Ok(agents.into_iter().map(|a| a + "\n").collect())
}

/// An agent's full name from what the operator typed: `ocf:PROVIDER:TYPE`, `PROVIDER:TYPE`, or
/// a bare `TYPE` when exactly one provider has it.
pub fn resolve_agent_name(ocf_root: &Path, name: &str) -> anyhow::Result<String> {
    if name.contains(':') {
        let (p, t) = parse_agent_name(name)?;
        return Ok(format!("ocf:{p}:{t}"));
    }
    let agents = list_agents(ocf_root).unwrap_or_default();
    let suffix = format!(":{name}");
    let matches: Vec<&String> = agents.iter().filter(|a| a.ends_with(&suffix)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let types: Vec<&str> = agents.iter().filter_map(|a| a.rsplit(':').next()).collect();
            let hint = crate::diag::did_you_mean(name, &types)
                .map(|t| format!("; did you mean {t:?}?"))
                .unwrap_or_default();
            bail!(
                "no agent named {name:?} under {}/resource.d{hint} (give ocf:PROVIDER:TYPE, like ocf:heartbeat:Dummy; `warden agent list` lists them)",
                ocf_root.display()
            )
        }
        several => bail!(
            "{name:?} is ambiguous: {} (give the whole name)",
            several
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub async fn info(ocf_root: &Path, name: &str, json: bool) -> anyhow::Result<String> {
    let full = resolve_agent_name(ocf_root, name)?;
    let (provider, kind) = parse_agent_name(&full)?;
    let md = ocf::metadata(ocf_root, provider, kind).await?;
    if json {
        let v = serde_json::json!({
            "agent": format!("ocf:{provider}:{kind}"),
            "version": md.version,
            "shortdesc": md.shortdesc,
            "longdesc": md.longdesc,
            "parameters": md.parameters.iter().map(|p| serde_json::json!({
                "name": p.name, "required": p.required, "unique": p.unique, "type": p.content_type,
                "default": p.default, "shortdesc": p.shortdesc, "longdesc": p.longdesc,
            })).collect::<Vec<_>>(),
            "actions": md.actions.iter().map(|a| serde_json::json!({
                "name": a.name, "timeout": a.timeout, "interval": a.interval, "depth": a.depth, "role": a.role,
            })).collect::<Vec<_>>(),
        });
        return Ok(serde_json::to_string_pretty(&v)? + "\n");
    }
    let mut o = String::new();
    writeln!(
        o,
        "ocf:{provider}:{kind} (version {}): {}",
        if md.version.is_empty() {
            "?"
        } else {
            &md.version
        },
        md.shortdesc
    )?;
    writeln!(o, "\nParameters (* required):")?;
    if md.parameters.is_empty() {
        writeln!(o, "  (none)")?;
    }
    let width = md
        .parameters
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in &md.parameters {
        let mut line = format!(
            "  {}{:<width$}  {:<8}",
            if p.required { "*" } else { " " },
            p.name,
            p.content_type
        );
        if let Some(d) = &p.default {
            write!(line, " default {d:?}")?;
        }
        if p.unique {
            line.push_str(" (unique)");
        }
        if !p.shortdesc.is_empty() {
            write!(line, "  {}", p.shortdesc)?;
        }
        writeln!(o, "{}", line.trim_end())?;
    }
    writeln!(o, "\nActions:")?;
    for a in &md.actions {
        let mut line = format!("  {:<10}", a.name);
        for (k, v) in [
            ("timeout", &a.timeout),
            ("interval", &a.interval),
            ("depth", &a.depth),
            ("role", &a.role),
        ] {
            if let Some(v) = v {
                write!(line, " {k} {v}")?;
            }
        }
        writeln!(o, "{}", line.trim_end())?;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names() {
        assert_eq!(
            parse_agent_name("ocf:heartbeat:Dummy").ok(),
            Some(("heartbeat", "Dummy"))
        );
        assert_eq!(
            parse_agent_name("pacemaker:Stateful").ok(),
            Some(("pacemaker", "Stateful"))
        );
        for bad in [
            "Dummy",
            "ocf::Dummy",
            "ocf:heartbeat:",
            "ocf:../x:y",
            "ocf:a:b/c",
        ] {
            assert!(parse_agent_name(bad).is_err(), "{bad}");
        }
    }
}
