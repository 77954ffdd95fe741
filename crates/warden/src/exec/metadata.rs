//! An OCF agent's `meta-data` XML: its parameters (required ones, defaults) and actions.

use std::path::Path;
use std::time::Duration;

/// What an agent says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentMetadata {
    pub name: String,
    pub version: String,
    pub shortdesc: String,
    pub longdesc: String,
    pub parameters: Vec<Parameter>,
    pub actions: Vec<ActionMeta>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub required: bool,
    pub unique: bool,
    pub shortdesc: String,
    pub longdesc: String,
    /// `string`, `integer`, `boolean`, ...
    pub content_type: String,
    pub default: Option<String>,
    /// `reloadable="1"`: the agent's `reload-agent` applies a change of it without a restart.
    pub reloadable: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionMeta {
    pub name: String,
    pub timeout: Option<String>,
    pub interval: Option<String>,
    pub depth: Option<String>,
    pub role: Option<String>,
}

/// Why meta-data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("meta-data is not XML: {0}")]
    Xml(#[from] roxmltree::Error),
    #[error("meta-data has no <resource-agent> root element")]
    NotAnAgent,
}

impl AgentMetadata {
    /// The parameters `reload-agent` applies without a restart; None when the agent has no
    /// `reload-agent` action.
    pub fn reloadable(&self) -> Option<Vec<String>> {
        self.actions
            .iter()
            .any(|a| a.name == "reload-agent")
            .then(|| {
                self.parameters
                    .iter()
                    .filter(|p| p.reloadable)
                    .map(|p| p.name.clone())
                    .collect()
            })
    }

    /// Parses meta-data XML. Unknown elements are ignored; missing ones are empty.
    pub fn parse(xml: &str) -> Result<AgentMetadata, MetadataError> {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(xml, opts)?;
        let root = doc.root_element();
        if root.tag_name().name() != "resource-agent" {
            return Err(MetadataError::NotAnAgent);
        }
        let text = |n: roxmltree::Node<'_, '_>, tag: &str| {
            n.children()
                .find(|c| c.has_tag_name(tag))
                .and_then(|c| c.text())
                .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        let flag = |n: roxmltree::Node<'_, '_>, attr: &str| {
            matches!(n.attribute(attr), Some("1" | "true" | "yes"))
        };
        let mut md = AgentMetadata {
            name: root.attribute("name").unwrap_or_default().to_owned(),
            version: text(root, "version"),
            shortdesc: text(root, "shortdesc"),
            longdesc: text(root, "longdesc"),
            ..AgentMetadata::default()
        };
        for section in root.children().filter(|c| c.is_element()) {
            match section.tag_name().name() {
                "parameters" => {
                    for p in section.children().filter(|c| c.has_tag_name("parameter")) {
                        let content = p.children().find(|c| c.has_tag_name("content"));
                        md.parameters.push(Parameter {
                            name: p.attribute("name").unwrap_or_default().to_owned(),
                            required: flag(p, "required"),
                            unique: flag(p, "unique"),
                            reloadable: flag(p, "reloadable"),
                            shortdesc: text(p, "shortdesc"),
                            longdesc: text(p, "longdesc"),
                            content_type: content
                                .and_then(|c| c.attribute("type"))
                                .unwrap_or("string")
                                .to_owned(),
                            default: content
                                .and_then(|c| c.attribute("default"))
                                .map(str::to_owned),
                        });
                    }
                }
                "actions" => {
                    for a in section.children().filter(|c| c.has_tag_name("action")) {
                        let attr = |k: &str| a.attribute(k).map(str::to_owned);
                        md.actions.push(ActionMeta {
                            name: attr("name").unwrap_or_default(),
                            timeout: attr("timeout"),
                            interval: attr("interval"),
                            depth: attr("depth"),
                            role: attr("role"),
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(md)
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

/// Every agent under `$OCF_ROOT/resource.d`, as `ocf:<provider>:<type>`, sorted.
pub fn list_agents(ocf_root: &Path) -> std::io::Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for provider in std::fs::read_dir(ocf_root.join("resource.d"))? {
        let provider = provider?;
        if !provider.file_type()?.is_dir() {
            continue;
        }
        for agent in std::fs::read_dir(provider.path())? {
            let agent = agent?;
            let meta = std::fs::metadata(agent.path())?;
            let name = agent.file_name().to_string_lossy().into_owned();
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 && !name.starts_with('.') {
                out.push(format!(
                    "ocf:{}:{name}",
                    provider.file_name().to_string_lossy()
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// How long fetching meta-data may take.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parameters_and_actions() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Thing" version="1.1">
<version>1.1</version>
<shortdesc lang="en">A thing</shortdesc>
<parameters>
<parameter name="path" required="1" unique="1"><shortdesc lang="en">Where</shortdesc>
<content type="string"/></parameter>
<parameter name="port" unique="0"><longdesc lang="en">The
  port</longdesc><content type="integer" default="80"/></parameter>
</parameters>
<actions><action name="start" timeout="20s"/><action name="monitor" timeout="20s" interval="10s" depth="0"/></actions>
</resource-agent>"#;
        let md = AgentMetadata::parse(xml).expect("parses");
        assert_eq!(md.name, "Thing");
        assert_eq!(md.shortdesc, "A thing");
        assert_eq!(md.parameters.len(), 2);
        let path = md.parameter("path").expect("path");
        assert!(path.required && path.unique);
        assert_eq!(path.default, None);
        let port = md.parameter("port").expect("port");
        assert!(!port.required);
        assert_eq!(port.content_type, "integer");
        assert_eq!(port.default.as_deref(), Some("80"));
        assert_eq!(port.longdesc, "The port");
        assert_eq!(md.actions[1].interval.as_deref(), Some("10s"));
    }

    #[test]
    fn refuses_what_is_not_meta_data() {
        assert!(matches!(
            AgentMetadata::parse("not xml <"),
            Err(MetadataError::Xml(_))
        ));
        assert!(matches!(
            AgentMetadata::parse("<other/>"),
            Err(MetadataError::NotAnAgent)
        ));
        for junk in [
            "",
            "<",
            "<resource-agent",
            "<resource-agent><parameters><parameter>",
            "\u{0}",
        ] {
            let _ = AgentMetadata::parse(junk);
        }
    }
}
